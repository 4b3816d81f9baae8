"""Model: an ordered list of layers, run one step at a time (Stream) or over whole sequences."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from .errors import InputTypeError, ModelError, ShapeError, StreamingError
from .layers import Layer

if TYPE_CHECKING:  # stream.py imports this module
    from .stream import Stream


def as_float32_input(value: Any, what: str) -> np.ndarray:
    """float32 view or copy of an input: floats and integers are cast (float64 included);
    strings, objects, booleans and complex numbers are refused."""
    if isinstance(value, np.ndarray) and value.dtype == np.float32:
        return value
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise InputTypeError(f"{what}: cannot be read as an array: {exc}") from None
    if array.dtype.kind not in "fiu":
        raise InputTypeError(f"{what}: expected float32 (or a float or integer dtype that can "
                             f"be cast to it), got dtype {array.dtype}")
    return array.astype(np.float32)


class Model:
    """A recurrent network: layers applied in order at every time step.

    Model([Normalize(...), LSTM(...), LSTM(...), Dense(..., activation="softmax")])

    Layers must chain: each layer's input_size equals the previous layer's output_size. The
    layers' arrays are kept as given (no copies; a loaded file's are views of the one aligned
    copy load() made). int8 matrices are computed in place; float32 matrices are packed once,
    here, into the panel layout the float kernels stream, which holds them a second time.

    Attributes: layers (tuple), input_size, output_size, metadata (dict, saved with the file),
    streamable (False if a layer is reverse or bidirectional).
    """

    def __init__(self, layers: Sequence[Layer], metadata: Optional[Dict[str, Any]] = None):
        if isinstance(layers, Layer):
            layers = [layers]
        layers = list(layers)
        if not layers:
            raise ModelError("Model: needs at least one layer")
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ModelError(f"Model: layer {index} is a {type(layer).__name__}, expected "
                                 f"an lstmlite layer (LSTM, GRU, RNN, Dense, Normalize, Scale)")
        for index in range(1, len(layers)):
            previous, layer = layers[index - 1], layers[index]
            if layer.input_size != previous.output_size:
                raise ModelError(f"Model: layer {index} ({layer.type_name}) takes "
                                 f"{layer.input_size} input features, but layer {index - 1} "
                                 f"({previous.type_name}) outputs {previous.output_size}")
        self.layers: Tuple[Layer, ...] = tuple(layers)
        self.metadata: Dict[str, Any] = dict(metadata or {})
        try:
            self._core = _core.CoreModel([layer.core_spec() for layer in layers])
        except (ValueError, TypeError) as exc:  # the binding's last line of defence
            raise ModelError(f"Model: {exc}") from None
        self.input_size = self._core.input_size
        self.output_size = self._core.output_size
        #: the FileInfo of the .lstm file this model was loaded from, or None
        self.source = None

    # ---- files -------------------------------------------------------------------------

    def save(self, path, metadata: Optional[Dict[str, Any]] = None,
             weights_dtype: str = "float32") -> None:
        """Writes the model to a .lstm file (docs/FORMAT.md), atomically and deterministically.
        metadata (JSON-serialisable) is merged over self.metadata. int8 layers are stored as
        int8. weights_dtype applies to the float32 layers' weight matrices: "float16" stores
        them smaller (widened to float32 on load), "int8" quantizes them (symmetric, per
        output row) and they load as int8 layers."""
        from .format import save
        save(self, path, metadata=metadata, weights_dtype=weights_dtype)

    def __reduce__(self):
        """Pickling, copy.copy and copy.deepcopy: the model travels as the bytes of its .lstm
        file (save()'s encoding: int8 layers as int8, the rest float32, metadata kept) and is
        rebuilt by lstmlite.format.loads, through the same reader and checks as load(); the
        copy computes the same bits. A pickle runs code when it is read, whatever it holds:
        pickles are for passing models between your own processes, .lstm files for anything
        received from elsewhere."""
        from .format import encode, loads
        return loads, (encode(self),)

    # ---- int8 ----------------------------------------------------------------------------

    def quantize(self, dtype: str = "int8", layers: Optional[Sequence[int]] = None) -> "Model":
        """A new Model whose chosen layers have int8 weight matrices (symmetric, one scale
        per output row; products quantize their input every step, see lstmlite.quantize).
        layers: indices of the layers to quantize, None for every LSTM, GRU, RNN and Dense
        layer (e.g. [0, 1] keeps a Dense head at index 2 in float32). Naming a layer that has
        no weight matrices (Normalize, Scale) raises ModelError. Layers left alone, and
        every bias, are shared with this model, not copied."""
        if dtype != "int8":
            raise ModelError(f"quantize: dtype must be 'int8', got {dtype!r}")
        if layers is None:
            chosen = [i for i, layer in enumerate(self.layers) if layer.matrix_names]
        else:
            chosen = self._layer_indices(layers)
        new_layers = list(self.layers)
        for index in chosen:
            try:
                new_layers[index] = self.layers[index].with_weight_dtype("int8")
            except ModelError as exc:
                raise ModelError(f"quantize: layer {index}: {exc}") from None
        return Model(new_layers, metadata=self.metadata)

    def dequantize(self) -> "Model":
        """A new Model with every int8 weight matrix converted to float32 (q * scale)."""
        return Model([layer.with_weight_dtype("float32") if layer.weight_dtype == "int8"
                      else layer for layer in self.layers], metadata=self.metadata)

    def _layer_indices(self, layers: Sequence[int]) -> List[int]:
        """quantize()'s `layers`: an index or a sequence of them, negative ones from the end."""
        if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
            layers = [layers]
        indices = []
        for value in layers:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
                    not -len(self.layers) <= value < len(self.layers):
                raise ModelError(f"quantize: layers must be indices 0..{len(self.layers) - 1}, "
                                 f"got {value!r}")
            indices.append(int(value) % len(self.layers))
        return sorted(set(indices))

    @property
    def weight_bytes(self) -> int:
        """Bytes of every weight, scale and bias as the kernels read them: int8 matrices in
        place, float32 matrices in the panel-packed copy made when the model was built (held
        besides the arrays the layers were given, which save() and quantize() read)."""
        return sum(self._core.layer_weight_bytes(i) for i in range(len(self.layers)))

    # ---- description -------------------------------------------------------------------

    @property
    def recurrent_layers(self) -> List[Layer]:
        return [layer for layer in self.layers if layer.recurrent]

    @property
    def streamable(self) -> bool:
        return all(layer.streamable for layer in self.layers)

    @property
    def parameter_count(self) -> int:
        return sum(layer.parameter_count for layer in self.layers)

    def summary(self) -> str:
        """One line per layer: index, type, sizes, options, parameters."""
        lines = []
        for index, layer in enumerate(self.layers):
            shown = {k: v for k, v in layer.attributes().items()
                     if k not in ("input_size", "hidden_size", "in_features", "out_features",
                                  "features") and v not in (None, False, 0, "forward",
                                                            "sequence")}
            if layer.recurrent and [a.name for a in layer.activations] == \
                    list(layer.default_activations) * layer.num_directions:
                shown.pop("activations", None)  # the defaults say nothing
            if layer.weight_dtype != "float32":
                shown["weights"] = f"{layer.weight_dtype} (int8 products, float32 gates)"
            attrs = ", ".join(f"{k}={v}" for k, v in shown.items())
            lines.append(f"  {index}: {layer.type_name:<11} {layer.input_size:>5} -> "
                         f"{layer.output_size:<5} {attrs}  ({layer.parameter_count} parameters)")
        lines.append(f"  total: {self.parameter_count} parameters ({self.weight_bytes} bytes "
                     f"as computed), input {self.input_size}, output {self.output_size}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Model({list(self.layers)!r})"

    # ---- streaming ---------------------------------------------------------------------

    def stream(self, batch: Optional[int] = None) -> "Stream":
        """A Stream that steps this model one frame at a time; its state and scratch are
        allocated here, once. batch=None: step takes (input_size,); batch=B: B independent
        streams stepped together, step takes (B, input_size)."""
        from .stream import Stream
        return Stream(self, batch)

    def _check_streamable(self) -> None:
        for index, layer in enumerate(self.layers):
            if not layer.streamable:
                raise StreamingError(
                    f"layer {index} ({layer.type_name}, direction={layer.direction!r}) needs "
                    f"the whole sequence; a stream can only run forward layers. Use "
                    f"Model.run(X) for whole sequences.")

    # ---- whole sequences ---------------------------------------------------------------

    def run(self, X, initial_state: Optional[Sequence[Any]] = None,
            sequence_lengths=None, return_state: bool = False):
        """Runs whole sequences through every layer.

        X: (T, input_size) or (B, T, input_size) (batch first), cast to float32.
        initial_state: None (zeros), or a list with one entry per recurrent layer (in order):
          (h, c) for LSTM, (h,) for GRU/RNN, each (num_directions, hidden) for 2-D X or
          (num_directions, B, hidden) for 3-D X; None entries mean zeros.
        sequence_lengths: None (all T) or (B,) integers in 0..T (a scalar for 2-D X). A
          recurrent layer stops at each sequence's length: its output is zero past it and its
          final state is the one at the length; reverse directions start at length - 1.
          Position-wise layers (Dense, Normalize, Scale) still apply at every position.
        Returns Y (T, output_size) or (B, T, output_size), and with return_state=True also
        the final state in the layout of initial_state. After a bidirectional layer with
        output="final" the sequence is one step long: Y is (1, output_size) or
        (B, 1, output_size).
        """
        X = as_float32_input(X, "run: X")
        if X.ndim not in (2, 3) or X.shape[-1] != self.input_size:
            raise ShapeError(f"run: X has shape {tuple(X.shape)}, expected (T, "
                             f"{self.input_size}) or (B, T, {self.input_size})")
        unbatched = X.ndim == 2
        if unbatched:
            X = X[None]
        X = np.ascontiguousarray(X)
        B, T = X.shape[0], X.shape[1]
        lengths = self._parse_lengths(sequence_lengths, B, T, unbatched)
        states = self._parse_state(initial_state, B, unbatched)

        current = X
        final_states = []
        recurrent_index = 0
        for index, layer in enumerate(self.layers):
            out = np.empty((B, T, layer.output_size), dtype=np.float32)
            # a fixed size whatever B and T: the input gates are computed in chunks of steps
            scratch = np.empty(max(1, self._core.sequence_scratch_bytes(index)), dtype=np.uint8)
            h = c = None
            if layer.recurrent:
                h, c = states[recurrent_index]
                recurrent_index += 1
            self._core.run_layer(index, current, out, lengths, h, c, scratch)
            if layer.recurrent:
                final_states.append((h, c) if c is not None else (h,))
                if layer.output == "final":
                    out = _final_outputs(out, lengths, layer.h_size)
                    T = 1
                    lengths = None if lengths is None else np.minimum(lengths, 1)
            current = out

        Y = current[0] if unbatched else current
        if not return_state:
            return Y
        if unbatched:
            final_states = [tuple(s[:, 0] for s in entry) for entry in final_states]
        return Y, final_states

    def _parse_lengths(self, sequence_lengths, B: int, T: int, unbatched: bool):
        if sequence_lengths is None:
            return None
        lengths = np.asarray(sequence_lengths)
        if lengths.dtype.kind not in "iu":
            raise InputTypeError(f"run: sequence_lengths must be integers, got dtype "
                                 f"{lengths.dtype}")
        if unbatched and lengths.ndim == 0:
            lengths = lengths.reshape(1)
        if lengths.shape != (B,):
            raise ShapeError(f"run: sequence_lengths has shape {tuple(lengths.shape)}, "
                             f"expected ({B},)")
        if B and (lengths.min() < 0 or lengths.max() > T):
            raise ShapeError(f"run: sequence_lengths must lie in 0..{T} (the sequence "
                             f"length), got {lengths.tolist()}")
        return np.ascontiguousarray(lengths, dtype=np.int32)

    def state_shapes(self, batch: Optional[int] = None) -> List[Tuple[Tuple[int, ...], ...]]:
        """Shapes of the state entries of run() for the given batch (None: 2-D input)."""
        shapes = []
        for layer in self.recurrent_layers:
            lead = (layer.num_directions,) if batch is None else (layer.num_directions, batch)
            shapes.append(tuple(lead + (size,) for size in layer.state_sizes()))
        return shapes

    def _parse_state(self, initial_state, B: int, unbatched: bool):
        """Validated per-layer (h, c) float32 arrays shaped (num_directions, B, size), fresh
        copies the C code updates in place."""
        layers = self.recurrent_layers
        if initial_state is None:
            initial_state = [None] * len(layers)
        if not isinstance(initial_state, (list, tuple)) or len(initial_state) != len(layers):
            raise ShapeError(f"initial_state: expected a list of {len(layers)} entries (one "
                             f"per recurrent layer), got {_describe(initial_state)}")
        parsed = []
        for number, (layer, entry) in enumerate(zip(layers, initial_state)):
            names = layer.state_names
            if entry is None:
                entry = (None,) * len(names)
            elif isinstance(entry, np.ndarray) and len(names) == 1:
                entry = (entry,)
            if not isinstance(entry, (list, tuple)) or len(entry) != len(names):
                raise ShapeError(f"initial_state[{number}] ({layer.type_name}): expected "
                                 f"{'(' + ', '.join(names) + ',)'}, got {_describe(entry)}")
            arrays = []
            for name, size, value in zip(names, layer.state_sizes(), entry):
                full = (layer.num_directions, B, size)
                if value is None:
                    arrays.append(np.zeros(full, dtype=np.float32))
                    continue
                array = as_float32_input(value, f"initial_state[{number}] {name}")
                expected = (layer.num_directions, size) if unbatched else full
                if array.shape != expected:
                    raise ShapeError(f"initial_state[{number}] {name} ({layer.type_name}): "
                                     f"expected shape {expected} (num_directions, "
                                     f"{'' if unbatched else 'batch, '}size), got "
                                     f"{tuple(array.shape)}")
                arrays.append(np.array(array.reshape(full), dtype=np.float32, order="C"))
            parsed.append((arrays[0], arrays[1] if len(arrays) > 1 else None))
        return parsed


def _final_outputs(out: np.ndarray, lengths: Optional[np.ndarray], hidden: int) -> np.ndarray:
    """A bidirectional layer's output="final": (B, T, 2 hidden) -> (B, 1, 2 hidden), each
    sequence's [forward h at its last step, reverse h at its first] (a sequence of length 0:
    zeros, the outputs there)."""
    B, T = out.shape[0], out.shape[1]
    final = np.empty((B, 1, out.shape[2]), dtype=np.float32)
    last = np.full(B, T - 1) if lengths is None else np.maximum(lengths.astype(np.int64) - 1, 0)
    final[:, 0, :hidden] = out[np.arange(B), last, :hidden] if T else 0.0
    final[:, 0, hidden:] = out[:, 0, hidden:] if T else 0.0
    return final


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__
