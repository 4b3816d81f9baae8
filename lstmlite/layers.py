"""Layer specs: validated float32 weights plus attributes, in the engine's one convention.

The convention is PyTorch's: weight shapes (rows = gates * hidden, columns = inputs), gate
orders LSTM i, f, g, o and GRU r, z, n. Importers from other frameworks reorder into it. Every
array is stored as float32, C-contiguous; arrays that already are (for instance zero-copy views
into a loaded .lstm file) are kept as they are, never copied.
"""
from __future__ import annotations

import copy
import numbers
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from .errors import ModelError
from .quantize import QuantizedWeight

# ---- activations -------------------------------------------------------------------------

#: Activation name -> id, built from the C table (src/activations.c) so that the two can never
#: disagree. The ids are also stored in .lstm files.
ACTIVATION_IDS: Dict[str, int] = {name: i for i, name in enumerate(_core.activation_names())}
ACTIVATION_NAMES: Dict[int, str] = {i: name for name, i in ACTIVATION_IDS.items()}
_BY_LOWER = {name.lower(): name for name in ACTIVATION_IDS}

_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Defaults of alpha and beta where ONNX's operators of the same name define them (ONNX's
#: recurrent operators take "the defaults of the corresponding operators"). Affine and
#: ScaledTanh default to the identity and tanh.
ACTIVATION_DEFAULTS: Dict[str, Tuple[float, float]] = {
    "HardSigmoid": (0.2, 0.5),
    "LeakyRelu": (0.01, 0.0),
    "ThresholdedRelu": (1.0, 0.0),
    "Elu": (1.0, 0.0),
    "ScaledTanh": (1.0, 1.0),
    "Affine": (1.0, 0.0),
}

#: Activations that act on a whole vector: allowed only as a Dense head's activation.
VECTOR_ACTIVATIONS = ("Softmax", "LogSoftmax")
#: Activations usable inside recurrent cells (ONNX's set).
CELL_ACTIVATIONS = tuple(n for n in ACTIVATION_IDS if n not in VECTOR_ACTIVATIONS + ("Identity",))


class Activation(Tuple[str, float, float]):
    """An activation as (name, alpha, beta), name in ACTIVATION_IDS' spelling."""

    __slots__ = ()

    def __new__(cls, name: str, alpha: float, beta: float):
        return super().__new__(cls, (name, float(alpha), float(beta)))

    def __getnewargs__(self):  # copy and pickle call __new__ with these, not tuple's one
        return tuple(self)

    @property
    def name(self) -> str:
        return self[0]

    @property
    def id(self) -> int:
        return ACTIVATION_IDS[self[0]]

    def __repr__(self) -> str:
        name, alpha, beta = self
        if name in ACTIVATION_DEFAULTS:
            return f"{name}(alpha={alpha:g}, beta={beta:g})"
        return name


def parse_activation(spec: Any, where: str, allowed: Sequence[str]) -> Activation:
    """Accepts "Tanh" (any case), ("LeakyRelu", alpha), ("ScaledTanh", alpha, beta), a dict
    {"name": ..., "alpha": ..., "beta": ...} or an Activation."""
    alpha = beta = None
    if isinstance(spec, str):
        name = spec
    elif isinstance(spec, dict):
        unknown = set(spec) - {"name", "alpha", "beta"}
        if unknown or "name" not in spec:
            raise ModelError(f"{where}: an activation dict takes 'name', 'alpha', 'beta'; "
                             f"got keys {sorted(spec)}")
        name, alpha, beta = spec["name"], spec.get("alpha"), spec.get("beta")
    elif isinstance(spec, (tuple, list)) and 1 <= len(spec) <= 3:
        name = spec[0]
        alpha = spec[1] if len(spec) > 1 else None
        beta = spec[2] if len(spec) > 2 else None
    else:
        raise ModelError(f"{where}: expected an activation name or (name, alpha, beta), "
                         f"got {spec!r}")
    if not isinstance(name, str) or name.lower() not in _BY_LOWER:
        raise ModelError(f"{where}: unknown activation {name!r}; supported: "
                         f"{', '.join(allowed)}")
    canonical = _BY_LOWER[name.lower()]
    if canonical not in allowed:
        raise ModelError(f"{where}: activation {canonical!r} is not allowed here; supported: "
                         f"{', '.join(allowed)}")
    default_alpha, default_beta = ACTIVATION_DEFAULTS.get(canonical, (0.0, 0.0))
    alpha = default_alpha if alpha is None else alpha
    beta = default_beta if beta is None else beta
    for label, value in (("alpha", alpha), ("beta", beta)):
        # the engine computes in float32: 1e300 is finite here and infinite there
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
                not abs(float(value)) <= _FLOAT32_MAX:
            raise ModelError(f"{where}: activation {canonical} {label} must be a number "
                             f"finite in float32 (|x| <= 3.4e38), got {value!r}")
    return Activation(canonical, alpha, beta)


# ---- arrays ------------------------------------------------------------------------------

def as_weight(value: Any, name: str, where: str, int8_ok: bool = False):
    """float32 C-contiguous, finite. Arrays that already are stay the same object. Weight
    matrices (int8_ok) may also be a QuantizedWeight, validated when it was made."""
    if isinstance(value, QuantizedWeight):
        if not int8_ok:
            raise ModelError(f"{where}: {name} must be float32; only weight matrices can be "
                             f"int8")
        return value
    if isinstance(value, np.ndarray) and value.dtype == np.float32 and value.flags.c_contiguous:
        array = value
    else:
        try:
            array = np.asarray(value)
        except Exception as exc:  # ragged lists and the like
            raise ModelError(f"{where}: {name} is not an array: {exc}") from None
        if array.dtype.kind not in "fiu":
            raise ModelError(f"{where}: {name} must be numeric, got dtype {array.dtype}")
        array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ModelError(f"{where}: {name} contains {bad} NaN or infinite value(s)")
    return array


def _check_shape(array: np.ndarray, expected: Tuple[int, ...], name: str, where: str,
                 meaning: str) -> None:
    if tuple(array.shape) != tuple(expected):
        raise ModelError(f"{where}: {name} has shape {tuple(array.shape)}, expected "
                         f"{tuple(expected)} = {meaning}")


DIRECTIONS = ("forward", "reverse", "bidirectional")
#: What a recurrent layer outputs: "sequence", h at every step (for bidirectional layers
#: [forward h_t, reverse h_t]); "final" (bidirectional only), one vector per sequence,
#: [forward h at the last step, reverse h at the first]: both directions' final states, as
#: Keras' Bidirectional(return_sequences=False) and ONNX's Y_h concatenated give them.
OUTPUTS = ("sequence", "final")


#: Tensor dtype name -> id, from the C enum (src/lstmlite.h, enum ll_dtype); also the .lstm
#: file's dtype ids.
DTYPE_IDS: Dict[str, int] = {name: i for i, name in enumerate(_core.dtype_names())}
#: The dtypes a layer's weight matrices can compute in.
WEIGHT_DTYPES = ("float32", "int8")


class Layer:
    """Base of every layer spec. Subclasses set `type_name`, `kind` (the C / file id), sizes,
    and `arrays()` / `attributes()` (what the file format stores).

    weight_dtype: "float32", or "int8" when every weight matrix (`matrix_names`) is a
    QuantizedWeight; the kernels then compute the products in int8 (see lstmlite.quantize).
    """

    type_name = "Layer"
    kind = 0
    recurrent = False
    matrix_names: Tuple[str, ...] = ()  # the arrays that may be int8
    weight_dtype = "float32"
    input_size: int
    output_size: int

    def _settle_weight_dtype(self) -> None:
        """Every weight matrix float32, or every one int8: the kernels take one per layer."""
        kinds = {isinstance(getattr(self, name), QuantizedWeight)
                 for name in self.matrix_names if getattr(self, name) is not None}
        if len(kinds) > 1:
            raise ModelError(f"{self.type_name}: the weight matrices {self.matrix_names} must "
                             f"all be float32 or all be int8 (QuantizedWeight)")
        self.weight_dtype = "int8" if kinds == {True} else "float32"

    def with_weight_dtype(self, dtype: str) -> "Layer":
        """A copy of this layer whose weight matrices are `dtype` ("int8": quantized per
        output row; "float32": dequantized). The other arrays are shared, not copied."""
        if dtype not in WEIGHT_DTYPES:
            raise ModelError(f"{self.type_name}: weight dtype must be one of {WEIGHT_DTYPES}, "
                             f"got {dtype!r}")
        if getattr(self, "fft", None) is not None:
            raise ModelError(f"{self.type_name}: its weight is a windowed DFT basis, computed "
                             f"as an FFT in float32; int8 would only lose precision")
        if not self.matrix_names:
            raise ModelError(f"{self.type_name}: has no weight matrices to store as {dtype} "
                             f"(only LSTM, GRU, RNN, Dense and Conv1d layers can be "
                             f"quantized)")
        layer = copy.copy(self)
        for name in self.matrix_names:
            value = getattr(self, name)
            if value is None:
                continue
            if dtype == "int8" and not isinstance(value, QuantizedWeight):
                value = QuantizedWeight.from_float(value, f"{self.type_name} {name}")
            elif dtype == "float32" and isinstance(value, QuantizedWeight):
                value = value.dequantize()
            setattr(layer, name, value)
        layer._settle_weight_dtype()
        return layer

    def _core_matrix(self, value):
        """What the binding takes for a weight matrix: the array, or (q, scale) for int8."""
        if isinstance(value, QuantizedWeight):
            return (value.q, value.scale)
        return value

    @property
    def streamable(self) -> bool:
        return True

    def arrays(self) -> Dict[str, Optional[np.ndarray]]:
        raise NotImplementedError

    def attributes(self) -> Dict[str, Any]:
        raise NotImplementedError

    def core_spec(self) -> dict:
        raise NotImplementedError

    @property
    def parameter_count(self) -> int:
        return sum(int(a.size) for a in self.arrays().values() if a is not None)

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in self.attributes().items())
        return f"{self.type_name}({attrs})"


class _Recurrent(Layer):
    """Shared parts of LSTM, GRU and RNN: direction and output (OUTPUTS), clip, activations,
    per-direction arrays."""

    recurrent = True
    gates = 1
    gate_order = ""
    default_activations: Tuple[str, ...] = ()

    def _setup_direction(self, direction: str, output: str = "sequence") -> None:
        if direction not in DIRECTIONS:
            raise ModelError(f"{self.type_name}: direction must be one of {DIRECTIONS}, got "
                             f"{direction!r}")
        if output not in OUTPUTS:
            raise ModelError(f"{self.type_name}: output must be one of {OUTPUTS}, got "
                             f"{output!r}")
        if output == "final" and direction != "bidirectional":
            raise ModelError(f"{self.type_name}: output='final' is for bidirectional layers "
                             f"(a {direction} layer's final output is its "
                             f"{'last' if direction == 'forward' else 'first'} step: select it "
                             f"from run()'s output)")
        self.direction = direction
        self.output = output
        self.num_directions = 2 if direction == "bidirectional" else 1

    def with_output(self, output: str) -> "_Recurrent":
        """A copy of this layer with another `output` (OUTPUTS); the arrays are shared."""
        layer = copy.copy(self)
        layer._setup_direction(self.direction, output)
        return layer

    def _weight(self, value: Any, name: str, optional: bool = False):
        """Reads a per-direction array (a weight matrix may be a QuantizedWeight).
        Bidirectional arrays carry a leading axis of 2 (forward, reverse); single-direction
        arrays may carry a leading axis of 1."""
        if value is None:
            if optional:
                return None
            raise ModelError(f"{self.type_name}: {name} is required")
        return as_weight(value, name, self.type_name, int8_ok=name in self.matrix_names)

    def _directional_shape(self, array: np.ndarray, per_direction: Tuple[int, ...], name: str,
                           meaning: str) -> np.ndarray:
        """Checks (and for single directions, drops a leading axis of 1 from) an array."""
        if self.num_directions == 2:
            _check_shape(array, (2,) + per_direction, name, self.type_name,
                         f"(2 directions, {meaning})")
            return array
        if array.ndim == len(per_direction) + 1 and array.shape[0] == 1:
            array = array.reshape(array.shape[1:])
        _check_shape(array, per_direction, name, self.type_name, meaning)
        return array

    def _setup_clip(self, clip: Optional[float]) -> None:
        if clip is not None:
            if not isinstance(clip, numbers.Real) or isinstance(clip, bool) or \
                    not 0 < float(clip) <= _FLOAT32_MAX:
                raise ModelError(f"{self.type_name}: clip must be a positive number finite in "
                                 f"float32, or None, got {clip!r}")
            clip = float(np.float32(clip))
        self.clip = clip

    def _setup_activations(self, activations: Optional[Sequence[Any]]) -> None:
        per_direction = len(self.default_activations)
        if activations is None:
            activations = list(self.default_activations) * self.num_directions
        if isinstance(activations, (str, dict)) or not isinstance(activations, (list, tuple)):
            raise ModelError(f"{self.type_name}: activations must be a list of "
                             f"{per_direction} (or {2 * per_direction} for bidirectional), "
                             f"got {activations!r}")
        activations = list(activations)
        if self.num_directions == 2 and len(activations) == per_direction:
            activations = activations * 2
        if len(activations) != per_direction * self.num_directions:
            raise ModelError(f"{self.type_name}: expected {per_direction * self.num_directions} "
                             f"activations ({'/'.join(self.activation_roles)} per direction), "
                             f"got {len(activations)}")
        parsed = [parse_activation(a, f"{self.type_name} activation {i}", CELL_ACTIVATIONS)
                  for i, a in enumerate(activations)]
        self.activations = tuple(parsed)

    def _per_direction(self, array) -> List[Any]:
        if array is None:
            return [None] * self.num_directions
        if self.num_directions == 2:
            return [self._core_matrix(array[0]), self._core_matrix(array[1])]
        return [self._core_matrix(array)]

    @property
    def streamable(self) -> bool:
        return self.direction == "forward"

    @property
    def h_size(self) -> int:
        """Width of h (the layer's output per direction)."""
        return self.hidden_size

    @property
    def state_names(self) -> Tuple[str, ...]:
        return ("h",)

    def _activations_per_direction(self) -> List[List[Tuple[int, float, float]]]:
        n = len(self.default_activations)
        return [[(a.id, a[1], a[2]) for a in self.activations[d * n:(d + 1) * n]]
                for d in range(self.num_directions)]

    def _base_spec(self) -> dict:
        return {
            "kind": self.kind,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_directions": self.num_directions,
            "reverse": int(self.direction == "reverse"),
            "clip": float("inf") if self.clip is None else self.clip,
            "activations": self._activations_per_direction(),
            "weight_dtype": DTYPE_IDS[self.weight_dtype],
        }

    def _base_attributes(self) -> Dict[str, Any]:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "direction": self.direction,
            "output": self.output,
            "clip": self.clip,
            "activations": [a.name if a.name not in ACTIVATION_DEFAULTS else tuple(a)
                            for a in self.activations],
        }


class LSTM(_Recurrent):
    """Long short-term memory layer, PyTorch's convention.

    Arrays (float32; H = hidden_size, I = input_size, P = proj_size or H):
      weight_ih  (4H, I)   rows in gate order i, f, g, o (PyTorch weight_ih_l{k})
      weight_hh  (4H, P)   same gate order
      bias_ih    (4H,)     optional; bias_hh (4H,) optional: they are added to each other
      weight_hr  (P, H)    optional projection of h (PyTorch proj_size): h = W_hr (o * tanh(c))
      peepholes  (3, H)    optional, ONNX's order and meaning: rows i, o, f; i and f see the
                           previous cell, o sees the new one
    With direction="bidirectional" every array has a leading axis of 2 (forward, reverse),
    and the output is [forward h, reverse h] concatenated: 2P features; with output="final"
    too, run() gives one step per sequence, [forward h at its last step, reverse h at the
    first] (layers.OUTPUTS; the same option on GRU and RNN).
    weight_ih, weight_hh and weight_hr may instead all be lstmlite.QuantizedWeight (int8 q of
    the same shape plus one float32 scale per row): the products then run in int8.

    Options: input_forget couples the gates (f = 1 - i, ONNX); clip bounds the input of every
    gate activation to [-clip, clip] (ONNX; the cell value fed to h_act is not clipped);
    activations is ONNX's (f, g, h) list, default Sigmoid, Tanh, Tanh (per direction, or
    six for bidirectional), each a name or (name, alpha, beta).

    State per layer: h (num_directions, P) and c (num_directions, H).
    """

    type_name = "LSTM"
    kind = 1
    matrix_names = ("weight_ih", "weight_hh", "weight_hr")
    gates = 4
    gate_order = "ifgo"
    default_activations = ("Sigmoid", "Tanh", "Tanh")
    activation_roles = ("f", "g", "h")

    def __init__(self, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, weight_hr=None,
                 peepholes=None, input_forget: bool = False, clip: Optional[float] = None,
                 activations: Optional[Sequence[Any]] = None, direction: str = "forward",
                 output: str = "sequence"):
        self._setup_direction(direction, output)
        w_ih = self._weight(weight_ih, "weight_ih")
        if w_ih.ndim < 2 or w_ih.shape[-2] % 4 or w_ih.shape[-2] == 0 or w_ih.shape[-1] == 0:
            raise ModelError(f"LSTM: weight_ih has shape {tuple(w_ih.shape)}, expected "
                             f"(4*hidden_size, input_size) with hidden_size, input_size >= 1")
        H, I = w_ih.shape[-2] // 4, w_ih.shape[-1]
        w_hr = self._weight(weight_hr, "weight_hr", optional=True)
        P = H
        if w_hr is not None:
            if w_hr.ndim < 2 or w_hr.shape[-2] < 1 or w_hr.shape[-2] >= H:
                raise ModelError(f"LSTM: weight_hr has shape {tuple(w_hr.shape)}, expected "
                                 f"(proj_size, {H}) with 1 <= proj_size < hidden_size")
            P = w_hr.shape[-2]
            w_hr = self._directional_shape(w_hr, (P, H), "weight_hr", "(proj_size, hidden_size)")
        self.input_size, self.hidden_size = int(I), int(H)
        self.proj_size = int(P) if w_hr is not None else 0
        self.weight_ih = self._directional_shape(w_ih, (4 * H, I), "weight_ih",
                                                 "(4*hidden_size, input_size)")
        self.weight_hh = self._directional_shape(
            self._weight(weight_hh, "weight_hh"), (4 * H, P), "weight_hh",
            "(4*hidden_size, proj_size)" if w_hr is not None else "(4*hidden_size, hidden_size)")
        self.bias_ih = self._optional(bias_ih, "bias_ih", (4 * H,), "(4*hidden_size,)")
        self.bias_hh = self._optional(bias_hh, "bias_hh", (4 * H,), "(4*hidden_size,)")
        self.weight_hr = w_hr
        self.peepholes = self._optional(peepholes, "peepholes", (3, H),
                                        "(3, hidden_size) in i, o, f order")
        if not isinstance(input_forget, (bool, np.bool_, int)) or input_forget not in (0, 1):
            raise ModelError(f"LSTM: input_forget must be True or False, got {input_forget!r}")
        self.input_forget = bool(input_forget)
        self._setup_clip(clip)
        self._setup_activations(activations)
        self.output_size = self.num_directions * self.h_size
        self._settle_weight_dtype()

    def _optional(self, value, name, shape, meaning):
        array = self._weight(value, name, optional=True)
        return None if array is None else self._directional_shape(array, shape, name, meaning)

    @property
    def h_size(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def state_names(self) -> Tuple[str, ...]:
        return ("h", "c")

    def state_sizes(self) -> Tuple[int, ...]:
        return (self.h_size, self.hidden_size)

    def arrays(self):
        return {"weight_ih": self.weight_ih, "weight_hh": self.weight_hh,
                "bias_ih": self.bias_ih, "bias_hh": self.bias_hh,
                "weight_hr": self.weight_hr, "peepholes": self.peepholes}

    def attributes(self):
        attrs = self._base_attributes()
        attrs.update(proj_size=self.proj_size, input_forget=self.input_forget)
        return attrs

    def core_spec(self):
        spec = self._base_spec()
        spec.update(proj_size=self.proj_size, input_forget=int(self.input_forget))
        spec["arrays"] = {
            "w_ih": self._per_direction(self.weight_ih),
            "w_hh": self._per_direction(self.weight_hh),
            "b_ih": self._per_direction(self.bias_ih),
            "b_hh": self._per_direction(self.bias_hh),
            "w_hr": self._per_direction(self.weight_hr),
            "peephole": self._per_direction(self.peepholes),
        }
        return spec


class GRU(_Recurrent):
    """Gated recurrent unit layer, PyTorch's convention.

    Arrays (float32; H = hidden_size, I = input_size):
      weight_ih  (3H, I)   rows in gate order r, z, n (PyTorch weight_ih_l{k})
      weight_hh  (3H, H)   same gate order
      bias_ih    (3H,)     optional; bias_hh (3H,) optional. The n rows of bias_hh stay
                           separate from bias_ih: with linear_before_reset they are scaled by r.
    With direction="bidirectional" every array has a leading axis of 2 (forward, reverse).
    weight_ih and weight_hh may instead both be lstmlite.QuantizedWeight (int8 products).

    Candidate n:
      linear_before_reset=True (default; PyTorch, ONNX linear_before_reset=1, Keras
        reset_after=True):   n = g(W_in x + b_in + r * (W_hn h + b_hn))
      linear_before_reset=False (ONNX's default 0, TF1, Keras reset_after=False):
                             n = g(W_in x + b_in + W_hn (r * h) + b_hn)
    then h = (1 - z) * n + z * h. activations is ONNX's (f, g) list, default Sigmoid, Tanh;
    clip bounds the input of every activation.

    State per layer: h (num_directions, H).
    """

    type_name = "GRU"
    kind = 2
    matrix_names = ("weight_ih", "weight_hh")
    gates = 3
    gate_order = "rzn"
    default_activations = ("Sigmoid", "Tanh")
    activation_roles = ("f", "g")

    def __init__(self, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *,
                 linear_before_reset: bool = True, clip: Optional[float] = None,
                 activations: Optional[Sequence[Any]] = None, direction: str = "forward",
                 output: str = "sequence"):
        self._setup_direction(direction, output)
        _init_simple(self, weight_ih, weight_hh, bias_ih, bias_hh)
        if not isinstance(linear_before_reset, (bool, np.bool_, int)) or \
                linear_before_reset not in (0, 1):
            raise ModelError(f"GRU: linear_before_reset must be True or False, got "
                             f"{linear_before_reset!r}")
        self.linear_before_reset = bool(linear_before_reset)
        self._setup_clip(clip)
        self._setup_activations(activations)
        self._settle_weight_dtype()

    def state_sizes(self) -> Tuple[int, ...]:
        return (self.hidden_size,)

    def arrays(self):
        return {"weight_ih": self.weight_ih, "weight_hh": self.weight_hh,
                "bias_ih": self.bias_ih, "bias_hh": self.bias_hh}

    def attributes(self):
        attrs = self._base_attributes()
        attrs["linear_before_reset"] = self.linear_before_reset
        return attrs

    def core_spec(self):
        spec = self._base_spec()
        spec["linear_before_reset"] = int(self.linear_before_reset)
        spec["arrays"] = _simple_arrays(self)
        return spec


class RNN(_Recurrent):
    """Simple (Elman) recurrent layer, PyTorch's convention: h = f(W_ih x + b_ih + W_hh h + b_hh).

    Arrays (float32; H = hidden_size, I = input_size):
      weight_ih (H, I), weight_hh (H, H), bias_ih (H,) optional, bias_hh (H,) optional;
      leading axis of 2 (forward, reverse) with direction="bidirectional"; weight_ih and
      weight_hh may both be lstmlite.QuantizedWeight (int8 products).
    nonlinearity "tanh" (default) or "relu" as in PyTorch; or activations=[name or
    (name, alpha, beta)] from ONNX's set (one per direction). clip bounds f's input.

    State per layer: h (num_directions, H).
    """

    type_name = "RNN"
    kind = 3
    matrix_names = ("weight_ih", "weight_hh")
    gates = 1
    gate_order = ""
    default_activations = ("Tanh",)
    activation_roles = ("f",)

    def __init__(self, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *,
                 nonlinearity: Optional[str] = None, clip: Optional[float] = None,
                 activations: Optional[Sequence[Any]] = None, direction: str = "forward",
                 output: str = "sequence"):
        self._setup_direction(direction, output)
        _init_simple(self, weight_ih, weight_hh, bias_ih, bias_hh)
        if nonlinearity is not None:
            if nonlinearity not in ("tanh", "relu"):
                raise ModelError(f"RNN: nonlinearity must be 'tanh' or 'relu', got "
                                 f"{nonlinearity!r}")
            if activations is not None:
                raise ModelError("RNN: give nonlinearity or activations, not both")
            activations = [nonlinearity]
        self._setup_clip(clip)
        self._setup_activations(activations)
        self._settle_weight_dtype()

    def state_sizes(self) -> Tuple[int, ...]:
        return (self.hidden_size,)

    arrays = GRU.arrays

    def attributes(self):
        return self._base_attributes()

    def core_spec(self):
        spec = self._base_spec()
        spec["arrays"] = _simple_arrays(self)
        return spec


def _init_simple(layer: _Recurrent, weight_ih, weight_hh, bias_ih, bias_hh) -> None:
    """Weights of GRU and RNN: (G*H, I), (G*H, H), biases (G*H,)."""
    G, name = layer.gates, layer.type_name
    rows = f"{G}*hidden_size" if G > 1 else "hidden_size"
    w_ih = layer._weight(weight_ih, "weight_ih")
    if w_ih.ndim < 2 or w_ih.shape[-2] % G or w_ih.shape[-2] == 0 or w_ih.shape[-1] == 0:
        raise ModelError(f"{name}: weight_ih has shape {tuple(w_ih.shape)}, expected "
                         f"({rows}, input_size) with hidden_size, input_size >= 1")
    H, I = w_ih.shape[-2] // G, w_ih.shape[-1]
    layer.input_size, layer.hidden_size = int(I), int(H)
    layer.weight_ih = layer._directional_shape(w_ih, (G * H, I), "weight_ih",
                                               f"({rows}, input_size)")
    layer.weight_hh = layer._directional_shape(layer._weight(weight_hh, "weight_hh"),
                                               (G * H, H), "weight_hh", f"({rows}, hidden_size)")
    biases = []
    for value, bias_name in ((bias_ih, "bias_ih"), (bias_hh, "bias_hh")):
        array = layer._weight(value, bias_name, optional=True)
        if array is not None:
            array = layer._directional_shape(array, (G * H,), bias_name, f"({rows},)")
        biases.append(array)
    layer.bias_ih, layer.bias_hh = biases
    layer.output_size = layer.num_directions * H


def _simple_arrays(layer: _Recurrent) -> dict:
    return {
        "w_ih": layer._per_direction(layer.weight_ih),
        "w_hh": layer._per_direction(layer.weight_hh),
        "b_ih": layer._per_direction(layer.bias_ih),
        "b_hh": layer._per_direction(layer.bias_hh),
    }


class Dense(Layer):
    """Fully connected layer applied at every step: y = activation(weight @ x + bias).

    weight (out_features, in_features) float32 (PyTorch nn.Linear layout) or an
    lstmlite.QuantizedWeight of that shape (int8 product), bias (out_features,) or None.
    activation: None, "relu", "tanh", "sigmoid", "softmax", "log_softmax" (or any name of
    ONNX's recurrent activation set, with alpha/beta).
    """

    type_name = "Dense"
    kind = 4
    matrix_names = ("weight",)
    _SHORT_NAMES = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax",
                    "log_softmax": "LogSoftmax", "logsoftmax": "LogSoftmax", "none": "Identity",
                    "identity": "Identity", "linear": "Identity"}

    def __init__(self, weight, bias=None, activation: Any = None):
        w = as_weight(weight, "weight", "Dense", int8_ok=True)
        if w.ndim != 2 or 0 in w.shape:
            raise ModelError(f"Dense: weight has shape {tuple(w.shape)}, expected "
                             f"(out_features, in_features), both >= 1")
        self.weight = w
        self.output_size, self.input_size = int(w.shape[0]), int(w.shape[1])
        self.hidden_size = self.output_size
        self.bias = None
        if bias is not None:
            self.bias = as_weight(bias, "bias", "Dense")
            _check_shape(self.bias, (self.output_size,), "bias", "Dense", "(out_features,)")
        if activation is None:
            activation = "Identity"
        if isinstance(activation, str):
            activation = self._SHORT_NAMES.get(activation.lower(), activation)
        self.activation = parse_activation(activation, "Dense activation",
                                           tuple(ACTIVATION_IDS))
        self._settle_weight_dtype()

    def arrays(self):
        return {"weight": self.weight, "bias": self.bias}

    def attributes(self):
        act = self.activation
        return {"in_features": self.input_size, "out_features": self.output_size,
                "activation": act.name if act.name not in ACTIVATION_DEFAULTS else tuple(act)}

    def core_spec(self):
        act = self.activation
        return {"kind": self.kind, "input_size": self.input_size,
                "hidden_size": self.output_size,
                "activation": (act.id, act[1], act[2]),
                "weight_dtype": DTYPE_IDS[self.weight_dtype],
                "arrays": {"weight": self._core_matrix(self.weight), "bias": self.bias}}


class Normalize(Layer):
    """Elementwise input normalization applied at every step: y = (x - mean) / std.

    mean, std: (features,) float32; std must be non-zero. Computed as a true division, so a
    graph's Sub-then-Div gives the same bits.
    """

    type_name = "Normalize"
    kind = 5
    mode = 0

    def __init__(self, mean, std):
        self.mean = as_weight(mean, "mean", self.type_name)
        if self.mean.ndim != 1 or self.mean.size == 0:
            raise ModelError(f"Normalize: mean has shape {tuple(self.mean.shape)}, expected "
                             f"(features,)")
        self.std = as_weight(std, "std", self.type_name)
        _check_shape(self.std, self.mean.shape, "std", "Normalize", "(features,) like mean")
        if (self.std == 0).any():
            raise ModelError(f"Normalize: std has {int((self.std == 0).sum())} zero value(s)")
        self.input_size = self.output_size = int(self.mean.size)

    def arrays(self):
        return {"mean": self.mean, "std": self.std}

    def attributes(self):
        return {"features": self.input_size}

    def core_spec(self):
        return {"kind": self.kind, "input_size": self.input_size,
                "hidden_size": self.input_size, "mode": self.mode,
                "arrays": {"a": self.mean, "b": self.std}}


class Scale(Layer):
    """Elementwise scale and offset applied at every step: y = x * scale + offset.

    scale, offset: (features,) float32 (offset None means zeros). The form a chain of Mul and
    Add by constants folds into.
    """

    type_name = "Scale"
    kind = 5
    mode = 1

    def __init__(self, scale, offset=None):
        self.scale = as_weight(scale, "scale", self.type_name)
        if self.scale.ndim != 1 or self.scale.size == 0:
            raise ModelError(f"Scale: scale has shape {tuple(self.scale.shape)}, expected "
                             f"(features,)")
        if offset is None:
            offset = np.zeros_like(self.scale)
        self.offset = as_weight(offset, "offset", self.type_name)
        _check_shape(self.offset, self.scale.shape, "offset", "Scale", "(features,) like scale")
        self.input_size = self.output_size = int(self.scale.size)

    def arrays(self):
        return {"scale": self.scale, "offset": self.offset}

    def attributes(self):
        return {"features": self.input_size}

    def core_spec(self):
        return {"kind": self.kind, "input_size": self.input_size,
                "hidden_size": self.input_size, "mode": self.mode,
                "arrays": {"a": self.scale, "b": self.offset}}


#: Padding modes of a Conv1d's input positions (PyTorch's padding_mode names); the ids are the
#: C enum's (src/lstmlite.h, enum ll_pad_mode) and are stored in .lstm files.
PAD_MODES = ("zeros", "reflect", "replicate", "circular")


#: The most features a frame encoder's input or output may have per step (16 MB of float32 per
#: buffer; ten seconds of 48 kHz audio is 480,000): these layers' sizes come from attributes,
#: not from arrays a file must hold, so a file could otherwise ask for any amount of memory.
MAX_STEP_FEATURES = 1 << 22
#: The most floats of patches a Conv1d gathers per step (out_length x channels / groups x
#: kernel_size: 4 MB of scratch per stream, or per step of the 16 a sequence run takes at
#: once; silero-vad's largest is 1,548).
MAX_CONV_PATCHES = 1 << 20


def _positive_int(value: Any, name: str, where: str, minimum: int = 1,
                  maximum: int = MAX_STEP_FEATURES) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or \
            not minimum <= value <= maximum:
        raise ModelError(f"{where}: {name} must be an integer from {minimum} to {maximum}, "
                         f"got {value!r}")
    return int(value)


def _features_bound(where: str, **sizes: int) -> None:
    """Every named per-step size at most MAX_STEP_FEATURES."""
    for name, size in sizes.items():
        if size > MAX_STEP_FEATURES:
            raise ModelError(f"{where}: {name} is {size} features per step; lstmlite takes at "
                             f"most {MAX_STEP_FEATURES}")


class Conv1d(Layer):
    """A 1-D convolution over the step's own input, viewed as (in_channels, length), channel
    major (ONNX's and PyTorch's (C, L) layout, flattened): it encodes one step's frame (a
    chunk of audio, a window of sensor readings), it does not convolve across steps.

    weight: (out_channels, in_channels / groups, kernel_size) float32 (PyTorch nn.Conv1d's
    layout), or a QuantizedWeight of shape (out_channels, in_channels / groups * kernel_size)
    (int8: a scale per output channel; each patch of the input is quantized on its own).
    Stored flattened to that 2-D shape. bias: (out_channels,) or None.
    length: positions per step (the input has in_channels * length features).
    stride, dilation, groups as in PyTorch; padding: int (both ends) or (begin, end);
    padding_mode: "zeros", "reflect" (pads < length), "replicate" or "circular" (pads <=
    length). activation: an elementwise activation (as Dense's, no softmax).
    Output: (out_channels, out_length) channel major, out_length = (length + begin + end -
    dilation * (kernel_size - 1) - 1) // stride + 1.
    """

    type_name = "Conv1d"
    kind = 6
    matrix_names = ("weight",)

    def __init__(self, weight, bias=None, *, length: int, stride: int = 1, dilation: int = 1,
                 groups: int = 1, padding: Any = 0, padding_mode: str = "zeros",
                 activation: Any = None, in_channels: Optional[int] = None,
                 kernel_size: Optional[int] = None):
        where = "Conv1d"
        w = as_weight(weight, "weight", where, int8_ok=True)
        self.groups = _positive_int(groups, "groups", where)
        if w.ndim == 3:
            if isinstance(w, QuantizedWeight):
                raise ModelError(f"{where}: an int8 weight is 2-D (out_channels, in_channels / "
                                 f"groups * kernel_size), got {w.shape}")
            kernel_size = int(w.shape[2]) if kernel_size is None else kernel_size
            if kernel_size != w.shape[2]:
                raise ModelError(f"{where}: kernel_size {kernel_size} disagrees with weight "
                                 f"{tuple(w.shape)}")
            in_channels = int(w.shape[1]) * self.groups if in_channels is None else in_channels
            w = w.reshape(w.shape[0], -1)
        elif w.ndim != 2 or kernel_size is None:
            raise ModelError(f"{where}: weight has shape {tuple(w.shape)}, expected (out_channels, "
                             f"in_channels / groups, kernel_size) (or 2-D with kernel_size=)")
        self.kernel_size = _positive_int(kernel_size, "kernel_size", where)
        if 0 in w.shape or w.shape[1] % self.kernel_size:
            raise ModelError(f"{where}: weight has shape {tuple(w.shape)}, expected columns a "
                             f"multiple of kernel_size {self.kernel_size}")
        per_group = w.shape[1] // self.kernel_size
        self.in_channels = per_group * self.groups if in_channels is None else \
            _positive_int(in_channels, "in_channels", where)
        if self.in_channels != per_group * self.groups:
            raise ModelError(f"{where}: in_channels {self.in_channels} is not {per_group} per "
                             f"group x {self.groups} groups (weight {tuple(w.shape)})")
        self.out_channels = int(w.shape[0])
        if self.out_channels % self.groups:
            raise ModelError(f"{where}: {self.groups} groups do not divide {self.out_channels} "
                             f"out channels")
        self.weight = w
        self.length = _positive_int(length, "length", where)
        self.stride = _positive_int(stride, "stride", where)
        self.dilation = _positive_int(dilation, "dilation", where)
        if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
            padding = (padding, padding)
        if not isinstance(padding, (tuple, list)) or len(padding) != 2:
            raise ModelError(f"{where}: padding must be an int or (begin, end), got {padding!r}")
        self.padding = tuple(_positive_int(p, "padding", where, minimum=0) for p in padding)
        if padding_mode not in PAD_MODES:
            raise ModelError(f"{where}: padding_mode must be one of {PAD_MODES}, got "
                             f"{padding_mode!r}")
        self.padding_mode = padding_mode
        widest = max(self.padding)
        if (padding_mode == "reflect" and widest >= self.length) or \
                (padding_mode == "circular" and widest > self.length):
            raise ModelError(f"{where}: {padding_mode} padding of {widest} needs a longer input "
                             f"than {self.length} positions")
        span = self.dilation * (self.kernel_size - 1) + 1
        padded = self.length + sum(self.padding)
        if padded < span:
            raise ModelError(f"{where}: the kernel spans {span} positions, the padded input "
                             f"has {padded}")
        self.out_length = (padded - span) // self.stride + 1
        _features_bound(where, input=self.in_channels * self.length,
                        output=self.out_channels * self.out_length)
        if self.out_length * per_group * self.kernel_size > MAX_CONV_PATCHES:
            raise ModelError(f"{where}: its patches are {self.out_length} x "
                             f"{per_group * self.kernel_size} floats per step; lstmlite "
                             f"gathers at most {MAX_CONV_PATCHES}")
        self.bias = None
        if bias is not None:
            self.bias = as_weight(bias, "bias", where)
            _check_shape(self.bias, (self.out_channels,), "bias", where, "(out_channels,)")
        if activation is None:
            activation = "Identity"
        if isinstance(activation, str):
            activation = Dense._SHORT_NAMES.get(activation.lower(), activation)
        self.activation = parse_activation(activation, "Conv1d activation",
                                           tuple(n for n in ACTIVATION_IDS
                                                 if n not in VECTOR_ACTIVATIONS))
        self.input_size = self.in_channels * self.length
        self.output_size = self.out_channels * self.out_length
        self.hidden_size = self.out_channels
        self._settle_weight_dtype()
        #: (bins, sign) when the weight is a windowed DFT basis computed as an FFT, else None
        self.fft = self._dft_basis()
        if self.fft is not None:
            self.matrix_names = ()   # quantize() leaves it: int8 would only lose precision

    def _dft_basis(self) -> Optional[Tuple[int, int]]:
        """(bins, sign) when the float32 weight is a window times the DFT basis, rows k < bins
        window[n] cos(2 pi k n / N) and rows bins + k sign * window[n] sin(2 pi k n / N) (an
        STFT written as a Conv1d, as silero-vad's is), to float32 rounding; else None. Such
        a layer is computed as an FFT: the same values to rounding, in a fraction of the
        multiply-adds."""
        N, M = self.kernel_size, self.out_channels
        if self.weight_dtype != "float32" or self.in_channels != 1 or self.groups != 1 or \
                self.dilation != 1 or N < 4 or N & (N - 1) or M % 2 or M // 2 > N // 2 + 1:
            return None
        bins = M // 2
        weight = self.weight.astype(np.float64)
        window = weight[0]
        angle = 2 * np.pi * np.outer(np.arange(bins), np.arange(N)) / N
        tolerance = 1e-6 * max(float(np.abs(window).max()), 1e-30)
        if np.abs(weight[:bins] - window * np.cos(angle)).max() > tolerance:
            return None
        sine = window * np.sin(angle)
        for sign in (-1, 1):
            if np.abs(weight[bins:] - sign * sine).max() <= tolerance:
                return bins, sign
        return None

    def with_activation(self, activation: Any) -> "Conv1d":
        """A copy with another activation (the arrays shared)."""
        layer = copy.copy(self)
        if isinstance(activation, str):
            activation = Dense._SHORT_NAMES.get(activation.lower(), activation)
        layer.activation = parse_activation(activation, "Conv1d activation",
                                            tuple(n for n in ACTIVATION_IDS
                                                  if n not in VECTOR_ACTIVATIONS))
        return layer

    def arrays(self):
        return {"weight": self.weight, "bias": self.bias}

    def attributes(self):
        act = self.activation
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "length": self.length, "kernel_size": self.kernel_size, "stride": self.stride,
                "dilation": self.dilation, "groups": self.groups, "padding": self.padding,
                "padding_mode": self.padding_mode, "out_length": self.out_length,
                "activation": act.name if act.name not in ACTIVATION_DEFAULTS else tuple(act),
                **({"computed_as": "fft"} if self.fft else {})}

    def core_spec(self):
        act = self.activation
        return {"kind": self.kind, "input_size": self.input_size,
                "hidden_size": self.out_channels, "channels": self.in_channels,
                "length": self.length, "kernel_size": self.kernel_size, "stride": self.stride,
                "dilation": self.dilation, "groups": self.groups, "pads": self.padding,
                "pad_mode": PAD_MODES.index(self.padding_mode),
                "fft": self.fft or (0, 0),
                "activation": (act.id, act[1], act[2]),
                "weight_dtype": DTYPE_IDS[self.weight_dtype],
                "arrays": {"weight": self._core_matrix(self.weight), "bias": self.bias}}


class Magnitude(Layer):
    """The modulus of complex values held as two blocks of the step's input: y[r * n + i] =
    sqrt(x[real + r * row_stride + i]^2 + x[imag + r * row_stride + i]^2) for rows r <
    rows and i < n = size / rows. An STFT computed as a Conv1d gives its real and imaginary
    parts as two blocks of channels ((channels, positions) channel major: one row per
    channel, row_stride = positions; some of the positions where the graph slices them);
    this is the graph's sqrt(re^2 + im^2) after it.

    features: the input's size; size: the output's; real, imag: where the blocks start.
    """

    type_name = "Magnitude"
    kind = 7

    def __init__(self, features: int, size: int, real: int, imag: int, rows: int = 1,
                 row_stride: int = 0):
        where = "Magnitude"
        self.input_size = _positive_int(features, "features", where)
        self.output_size = self.hidden_size = _positive_int(size, "size", where)
        self.offsets = (_positive_int(real, "real", where, 0),
                        _positive_int(imag, "imag", where, 0))
        self.rows = _positive_int(rows, "rows", where)
        self.row_stride = _positive_int(row_stride, "row_stride", where, 0)
        if self.output_size % self.rows:
            raise ModelError(f"{where}: size {size} is not a whole number of {rows} rows")
        per_row = self.output_size // self.rows
        _features_bound(where, features=self.input_size)
        if self.rows > 1 and self.row_stride < per_row:
            raise ModelError(f"{where}: rows of {per_row} values {row_stride} apart overlap")
        last = max(self.offsets) + (self.rows - 1) * self.row_stride + per_row
        if last > self.input_size:
            raise ModelError(f"{where}: blocks of {rows} x {per_row} at {real} and {imag} do "
                             f"not fit in {features} features")

    def arrays(self):
        return {}

    def attributes(self):
        return {"features": self.input_size, "size": self.output_size,
                "real": self.offsets[0], "imag": self.offsets[1], "rows": self.rows,
                "row_stride": self.row_stride}

    def core_spec(self):
        return {"kind": self.kind, "input_size": self.input_size,
                "hidden_size": self.output_size, "offsets": self.offsets, "rows": self.rows,
                "row_stride": self.row_stride, "arrays": {}}


class Mean(Layer):
    """The mean over the positions of each channel of the step's input, viewed as
    (channels, length) channel major: (channels, length) -> (channels,), a sum then a
    division, as ONNX's ReduceMean does."""

    type_name = "Mean"
    kind = 8

    def __init__(self, channels: int, length: int):
        self.channels = _positive_int(channels, "channels", "Mean")
        self.length = _positive_int(length, "length", "Mean")
        self.input_size = self.channels * self.length
        self.output_size = self.hidden_size = self.channels
        _features_bound("Mean", input=self.input_size)

    def arrays(self):
        return {}

    def attributes(self):
        return {"channels": self.channels, "length": self.length}

    def core_spec(self):
        return {"kind": self.kind, "input_size": self.input_size,
                "hidden_size": self.channels, "channels": self.channels,
                "length": self.length, "arrays": {}}


class Elementwise(Layer):
    """An activation applied to every feature of the step: y = activation(x). What carries an
    activation that follows no layer able to apply it (a ReLU after a recurrent layer, as
    silero-vad's decoder has); any activation, softmax over the step's features included.
    features: the input's size (= the output's)."""

    type_name = "Elementwise"
    kind = 9

    def __init__(self, features: int, activation: Any):
        self.input_size = self.output_size = self.hidden_size = \
            _positive_int(features, "features", "Elementwise")
        if isinstance(activation, str):
            activation = Dense._SHORT_NAMES.get(activation.lower(), activation)
        self.activation = parse_activation(activation, "Elementwise activation",
                                           tuple(ACTIVATION_IDS))

    def arrays(self):
        return {}

    def attributes(self):
        act = self.activation
        return {"features": self.input_size,
                "activation": act.name if act.name not in ACTIVATION_DEFAULTS else tuple(act)}

    def core_spec(self):
        act = self.activation
        return {"kind": self.kind, "input_size": self.input_size,
                "hidden_size": self.input_size, "activation": (act.id, act[1], act[2]),
                "arrays": {}}


LAYER_TYPES = (LSTM, GRU, RNN, Dense, Normalize, Scale, Conv1d, Magnitude, Mean, Elementwise)
