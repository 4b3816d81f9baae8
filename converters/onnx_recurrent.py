"""ONNX LSTM, GRU and RNN nodes -> lstmlite layers: attributes, gate orders, biases.

Every attribute of every opset that defines these operators is either honoured or refused
with a ConversionError naming the node, the attribute and the value; none is ignored.

Gate orders: ONNX stores LSTM gates as i, o, f, c and GRU gates as z, r, h; the engine uses
PyTorch's i, f, g, o and r, z, n. The rows are permuted here, on constants, once.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from lstmlite.errors import ConversionError
from lstmlite.layers import (ACTIVATION_DEFAULTS, CELL_ACTIVATIONS, GRU, LSTM, RNN,
                             Activation)

#: ONNX gate blocks -> engine gate blocks: engine block k is ONNX block ORDER[k].
LSTM_ONNX_TO_ENGINE = (0, 2, 3, 1)  # engine i, f, g, o <- ONNX i, o, f, c
GRU_ONNX_TO_ENGINE = (1, 0, 2)      # engine r, z, n <- ONNX z, r, h
#: The inverse permutations, for writing ONNX (onnx_export): ONNX block j is engine block
#: ORDER[j].
LSTM_ENGINE_TO_ONNX = tuple(LSTM_ONNX_TO_ENGINE.index(j) for j in range(4))  # (0, 3, 1, 2)
GRU_ENGINE_TO_ONNX = tuple(GRU_ONNX_TO_ENGINE.index(j) for j in range(3))    # (1, 0, 2)

#: Attributes each operator accepts (union over its opsets: 1, 3/7, 14, 22).
KNOWN_ATTRIBUTES = {
    "LSTM": {"activation_alpha", "activation_beta", "activations", "clip", "direction",
             "hidden_size", "input_forget", "layout", "output_sequence"},
    "GRU": {"activation_alpha", "activation_beta", "activations", "clip", "direction",
            "hidden_size", "layout", "linear_before_reset", "output_sequence"},
    "RNN": {"activation_alpha", "activation_beta", "activations", "clip", "direction",
            "hidden_size", "layout", "output_sequence"},
}
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
DEFAULT_ACTIVATIONS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"),
                       "RNN": ("Tanh",)}
_CELL_BY_LOWER = {name.lower(): name for name in CELL_ACTIVATIONS}


def reorder_gates(array: np.ndarray, order: Sequence[int], hidden: int) -> np.ndarray:
    """Permutes gate blocks of `hidden` rows along axis -2 (matrices) or -1 (bias vectors)
    of a per-direction array."""
    axis = -2 if array.ndim == 3 else -1
    blocks = np.split(array, len(order), axis=axis)
    assert all(b.shape[axis] == hidden for b in blocks)
    return np.ascontiguousarray(np.concatenate([blocks[k] for k in order], axis=axis))


class RecurrentNode:
    """One ONNX LSTM/GRU/RNN node's attributes, parsed and checked. `where` names the node in
    every message."""

    def __init__(self, op: str, attributes: Dict[str, Any], where: str):
        self.op, self.where = op, where
        unknown = sorted(set(attributes) - KNOWN_ATTRIBUTES[op])
        if unknown:
            raise ConversionError(f"{where}: attribute {unknown[0]!r} (value "
                                  f"{attributes[unknown[0]]!r}) is not an attribute of ONNX "
                                  f"{op}; lstmlite will not ignore it")
        self.direction = attributes.get("direction", "forward")
        if isinstance(self.direction, bytes):
            self.direction = self.direction.decode("utf-8", "replace")
        if self.direction not in ("forward", "reverse", "bidirectional"):
            raise ConversionError(f"{where}: attribute 'direction' is {self.direction!r}; "
                                  f"expected 'forward', 'reverse' or 'bidirectional'")
        self.num_directions = 2 if self.direction == "bidirectional" else 1
        self.layout = int(attributes.get("layout", 0))
        if self.layout not in (0, 1):
            raise ConversionError(f"{where}: attribute 'layout' is {self.layout}; expected 0 "
                                  f"(time-major) or 1 (batch-major)")
        self.hidden_size = attributes.get("hidden_size")
        self.clip = attributes.get("clip")
        if self.clip is not None and not (np.isfinite(self.clip) and self.clip > 0):
            raise ConversionError(f"{where}: attribute 'clip' is {self.clip!r}; lstmlite "
                                  f"supports a positive finite clip")
        self.input_forget = int(attributes.get("input_forget", 0))
        if self.input_forget not in (0, 1):
            raise ConversionError(f"{where}: attribute 'input_forget' is "
                                  f"{self.input_forget}; expected 0 or 1")
        self.linear_before_reset = int(attributes.get("linear_before_reset", 0))
        if self.linear_before_reset not in (0, 1):
            raise ConversionError(f"{where}: attribute 'linear_before_reset' is "
                                  f"{self.linear_before_reset}; expected 0 or 1")
        output_sequence = int(attributes.get("output_sequence", 0))
        if output_sequence not in (0, 1):  # opset 1: only says whether Y is optional
            raise ConversionError(f"{where}: attribute 'output_sequence' is "
                                  f"{output_sequence}; expected 0 or 1")
        self.activations = self._parse_activations(attributes)

    def _parse_activations(self, attributes: Dict[str, Any]) -> List[Activation]:
        """ONNX's activations list: per direction, forward first. activation_alpha and
        activation_beta are consumed in list order by the activations that take that
        parameter (as onnxruntime does); the others take the operator's defaults."""
        per_direction = DEFAULT_ACTIVATIONS[self.op]
        names = attributes.get("activations")
        if names is None:
            names = list(per_direction) * self.num_directions
        names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]
        expected = len(per_direction) * self.num_directions
        if len(names) != expected:
            raise ConversionError(
                f"{self.where}: attribute 'activations' has {len(names)} entries {names}; "
                f"{self.op} with direction={self.direction!r} needs {expected} "
                f"({'/'.join(('f', 'g', 'h')[:len(per_direction)])} per direction)")
        alphas = list(attributes.get("activation_alpha", []))
        betas = list(attributes.get("activation_beta", []))
        parsed = []
        for index, name in enumerate(names):
            canonical = _CELL_BY_LOWER.get(str(name).lower())
            if canonical is None:
                raise ConversionError(f"{self.where}: attribute 'activations'[{index}] is "
                                      f"{name!r}; supported: {', '.join(CELL_ACTIVATIONS)}")
            alpha, beta = ACTIVATION_DEFAULTS.get(canonical, (0.0, 0.0))
            if canonical in _NO_AGREED_DEFAULTS and \
                    (not alphas or (canonical in _TAKES_BETA and not betas)):
                onnx_says, runtime_uses = _NO_AGREED_DEFAULTS[canonical]
                raise ConversionError(
                    f"{self.where}: attribute 'activations'[{index}] is {canonical} without "
                    f"its own activation_alpha{'/activation_beta' if canonical in _TAKES_BETA else ''}"
                    f" value. ONNX says the defaults are {canonical}'s ({onnx_says}) but "
                    f"onnxruntime uses {runtime_uses}; lstmlite will not guess. Give the "
                    f"values explicitly")
            if canonical in _TAKES_ALPHA and alphas:
                alpha = alphas.pop(0)
            if canonical in _TAKES_BETA and betas:
                beta = betas.pop(0)
            parsed.append(Activation(canonical, alpha, beta))
        if alphas or betas:
            raise ConversionError(
                f"{self.where}: attributes 'activation_alpha'/'activation_beta' have "
                f"{len(alphas)}/{len(betas)} value(s) that no activation in {names} takes")
        return parsed

    # ---- weights -------------------------------------------------------------------------

    def layer(self, W: np.ndarray, R: np.ndarray, B: Optional[np.ndarray],
              P: Optional[np.ndarray]):
        """Builds the engine layer from ONNX's W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H)
        and, for LSTM, P (D, 3*H)."""
        op, where, G, D = self.op, self.where, GATES[self.op], self.num_directions
        W, R = _as_float(W, "W", where), _as_float(R, "R", where)
        if W.ndim != 3 or W.shape[0] != D or W.shape[1] % G or W.shape[1] == 0:
            raise ConversionError(f"{where}: input W has shape {W.shape}; expected "
                                  f"({D}, {G}*hidden_size, input_size) for "
                                  f"direction={self.direction!r}")
        H = W.shape[1] // G
        if self.hidden_size is not None and self.hidden_size != H:
            raise ConversionError(f"{where}: attribute 'hidden_size' is {self.hidden_size} "
                                  f"but W has shape {W.shape}, i.e. hidden_size {H}")
        if R.shape != (D, G * H, H):
            raise ConversionError(f"{where}: input R has shape {R.shape}; expected "
                                  f"{(D, G * H, H)}")
        bias_ih = bias_hh = None
        if B is not None:
            B = _as_float(B, "B", where)
            if B.shape != (D, 2 * G * H):
                raise ConversionError(f"{where}: input B has shape {B.shape}; expected "
                                      f"{(D, 2 * G * H)} (Wb then Rb)")
            bias_ih, bias_hh = B[:, :G * H], B[:, G * H:]
        if P is not None:
            if op != "LSTM":
                raise ConversionError(f"{where}: {op} has no input P")
            P = _as_float(P, "P", where)
            if P.shape != (D, 3 * H):
                raise ConversionError(f"{where}: input P has shape {P.shape}; expected "
                                      f"{(D, 3 * H)} (peepholes i, o, f)")
            P = P.reshape(D, 3, H)
        direction = self.direction
        clip = None if self.clip is None else float(self.clip)
        if op == "LSTM":
            order = LSTM_ONNX_TO_ENGINE
            fix = lambda a: None if a is None else reorder_gates(a, order, H)  # noqa: E731
            return LSTM(fix(W), fix(R), fix(bias_ih), fix(bias_hh), peepholes=P,
                        input_forget=bool(self.input_forget), clip=clip,
                        activations=self.activations, direction=direction)
        if op == "GRU":
            order = GRU_ONNX_TO_ENGINE
            fix = lambda a: None if a is None else reorder_gates(a, order, H)  # noqa: E731
            return GRU(fix(W), fix(R), fix(bias_ih), fix(bias_hh),
                       linear_before_reset=bool(self.linear_before_reset), clip=clip,
                       activations=self.activations, direction=direction)
        return RNN(W, R, bias_ih, bias_hh, clip=clip, activations=self.activations,
                   direction=direction)


_TAKES_ALPHA = {"Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu"}
_TAKES_BETA = {"Affine", "ScaledTanh", "HardSigmoid"}
#: Activations whose default alpha/beta differ between ONNX's text and onnxruntime, measured
#: on onnxruntime 1.31 (tests/test_onnx_import.py): what ONNX says, what onnxruntime does.
_NO_AGREED_DEFAULTS = {"Affine": ("alpha=1, beta=0", "alpha=0, beta=0"),
                       "ScaledTanh": ("no stated values", "alpha=0, beta=0"),
                       "ThresholdedRelu": ("alpha=1", "alpha=0")}


def _as_float(array: np.ndarray, name: str, where: str) -> np.ndarray:
    if array.dtype.kind != "f":
        raise ConversionError(f"{where}: input {name} has dtype {array.dtype}; expected a "
                              f"floating-point tensor")
    if not np.isfinite(array).all():
        raise ConversionError(f"{where}: input {name} contains NaN or infinite values")
    return np.asarray(array, dtype=np.float32)
