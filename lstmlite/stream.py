"""Stream: one (or a batch of) running sequence(s) of a Model, stepped a frame at a time."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from .errors import InputTypeError, ModelError, ShapeError
from .model import Model, as_float32_input


#: The largest batch a stream takes: far beyond what a device steps (the buffers grow with
#: it), and small enough that no size computed from it can overflow the C core's integers.
MAX_BATCH = 1 << 20


class Stream(_core.StreamCore):
    """The recurrent state of a Model plus every buffer a step needs, allocated once here.

    stream = model.stream()             # or model.stream(batch=B)
    y = stream.step(frame)              # frame (input_size,) -> y (output_size,)
                                        # batched: (B, input_size) -> (B, output_size)

    step(x, out=None):
      Advances every layer by one time step and returns the output. The state persists across
      calls until reset(). The returned array is the stream's own output buffer: the same
      object every call, overwritten by the next step (copy it to keep it), unless out= is
      given, in which case the result is copied into `out` (float32, C-contiguous, the output
      shape) and `out` is returned. x is read in place when it is a float32 C-contiguous array
      of the exact shape: that path allocates nothing and releases the GIL while it computes.
      Other inputs are converted first (float64 and integers are cast; strings, objects and
      booleans raise InputTypeError); a wrong shape raises ShapeError. A step that raises
      leaves the state as it was.

    A stream must not be stepped from two threads at once; different streams (of the same
    model or not) may be stepped in parallel threads.
    """

    def __init__(self, model: Model, batch: Optional[int] = None):
        if not isinstance(model, Model):
            raise ModelError(f"Stream: expected a Model, got {type(model).__name__}")
        model._check_streamable()
        if batch is not None:
            if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or \
                    not 1 <= batch <= MAX_BATCH:
                raise ModelError(f"Stream: batch must be an integer from 1 to {MAX_BATCH} or "
                                 f"None, got {batch!r}")
            batch = int(batch)
        self.model = model
        self.batch = batch
        try:
            self._setup_core(model._core, batch or 1, batch is not None)
        except MemoryError:
            raise ModelError(f"Stream: not enough memory for the buffers of batch={batch} "
                             f"({model._core.scratch_bytes(batch or 1)} bytes of scratch "
                             f"besides the state)") from None
        self.input_shape = (self.batch, model.input_size) if batch else (model.input_size,)
        self.output_shape = (self.batch, model.output_size) if batch else (model.output_size,)
        # views of the flat state buffer: per recurrent layer, blocks of shape (1, B, size)
        buffer = self._state_buffer
        count = batch or 1
        self._state_views: List[Tuple[np.ndarray, ...]] = []
        for _, h_offset, h_size, c_offset, c_size in model._core.state_layout(count):
            views = [buffer[h_offset:h_offset + count * h_size].reshape(1, count, h_size)]
            if c_size:
                views.append(buffer[c_offset:c_offset + count * c_size].reshape(1, count, c_size))
            self._state_views.append(tuple(views))

    # ---- input checks of the slow path (called by StreamCore.step) ---------------------

    def _coerce(self, x: Any) -> np.ndarray:
        array = as_float32_input(x, "step: x")
        if array.shape != self.input_shape:
            raise ShapeError(f"step: x has shape {tuple(array.shape)}, expected "
                             f"{self.input_shape}"
                             + ("" if self.batch else " (a single frame; use "
                                "model.stream(batch=B) to step B streams together)"))
        return np.ascontiguousarray(array)

    def _check_out(self, out: Any) -> None:
        if not isinstance(out, np.ndarray):
            raise InputTypeError(f"step: out must be a numpy array, got {type(out).__name__}")
        if out.dtype != np.float32 or not out.flags.c_contiguous or not out.flags.writeable:
            raise InputTypeError(f"step: out must be a writeable C-contiguous float32 array, "
                                 f"got dtype {out.dtype} (contiguous={out.flags.c_contiguous}, "
                                 f"writeable={out.flags.writeable})")
        if out.shape != self.output_shape:
            raise ShapeError(f"step: out has shape {out.shape}, expected {self.output_shape}")

    # ---- state -------------------------------------------------------------------------

    def reset(self) -> None:
        """Zero every layer's state (the start of a new sequence)."""
        self._state_buffer.fill(0.0)

    @property
    def state(self) -> List[Tuple[np.ndarray, ...]]:
        """A copy of the state: one entry per recurrent layer, (h, c) for LSTM and (h,) for
        GRU/RNN, each of shape (1, size), or (1, batch, size) for a batched stream (the
        leading 1 is num_directions, as in Model.run). Assigning a list of the same layout
        (arrays castable to float32) restores it; nothing changes unless every entry fits."""
        if self.batch:
            return [tuple(v.copy() for v in views) for views in self._state_views]
        return [tuple(v[:, 0].copy() for v in views) for views in self._state_views]

    @state.setter
    def state(self, value: Sequence[Sequence[Any]]) -> None:
        layers = self.model.recurrent_layers
        if not isinstance(value, (list, tuple)) or len(value) != len(layers):
            raise ShapeError(f"state: expected a list of {len(layers)} entries (one per "
                             f"recurrent layer), got {type(value).__name__}"
                             + (f" of {len(value)}" if isinstance(value, (list, tuple)) else ""))
        staged = []
        for number, (layer, entry, views) in enumerate(zip(layers, value, self._state_views)):
            if isinstance(entry, np.ndarray) and len(views) == 1:
                entry = (entry,)
            if not isinstance(entry, (list, tuple)) or len(entry) != len(views):
                raise ShapeError(f"state[{number}] ({layer.type_name}): expected "
                                 f"({', '.join(layer.state_names)}), got {entry!r:.80}")
            for name, item, view in zip(layer.state_names, entry, views):
                array = as_float32_input(item, f"state[{number}] {name}")
                expected = view.shape if self.batch else (1, view.shape[2])
                if array.shape != expected:
                    raise ShapeError(f"state[{number}] {name} ({layer.type_name}): expected "
                                     f"shape {expected}, got {tuple(array.shape)}")
                staged.append((view, array.reshape(view.shape)))
        for view, array in staged:
            view[...] = array

    def copy(self) -> "Stream":
        """A new stream of the same model with a copy of this stream's state."""
        other = Stream(self.model, self.batch)
        other._state_buffer[...] = self._state_buffer
        return other

    def __reduce__(self):
        """Pickling and copying: the model (as its .lstm bytes, see Model.__reduce__), the
        batch and a copy of the state. A stream rebuilt from it continues with the same bits
        as one that never stopped (a device's checkpoint across a restart). copy.copy shares
        the model, copy.deepcopy copies it too; the state is always copied."""
        return _restore_stream, (self.model, self.batch, self._state_buffer.copy())

    def __repr__(self) -> str:
        batch = f", batch={self.batch}" if self.batch else ""
        return (f"<lstmlite.Stream {self.model.input_size} -> {self.model.output_size}"
                f"{batch}>")


def _restore_stream(model: Model, batch: Optional[int], state_buffer: np.ndarray) -> Stream:
    """A Stream of `model` whose state is `state_buffer` (what Stream.__reduce__ saved)."""
    stream = Stream(model, batch)
    saved = np.asarray(state_buffer)
    if saved.dtype != stream._state_buffer.dtype or saved.shape != stream._state_buffer.shape:
        raise ShapeError(f"Stream: a saved state of dtype {saved.dtype} and shape "
                         f"{saved.shape} does not fit this model's "
                         f"{stream._state_buffer.shape} {stream._state_buffer.dtype} state")
    stream._state_buffer[...] = saved
    return stream
