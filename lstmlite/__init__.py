"""lstmlite: recurrent networks (LSTM, GRU, RNN, with Dense heads) one time step at a time.

    import lstmlite
    model = lstmlite.Model([lstmlite.LSTM(w_ih, w_hh, b_ih, b_hh), lstmlite.Dense(w, b)])
    stream = model.stream()
    y = stream.step(frame)        # no allocation, GIL released while it computes

The runtime needs numpy only; converters (lstmlite.converters) need onnx or torch.
"""
import os as _os
import platform as _platform

from . import _core
from .errors import (ConversionError, FormatError, InputTypeError, LstmliteError, ModelError,
                     ShapeError, StreamingError, VerificationError)
from .layers import (ACTIVATION_IDS, GRU, LSTM, RNN, Activation, Dense, Layer, Normalize,
                     Scale)
from .format import load
from .model import Model
from .stream import Stream

__version__ = "0.1.0"

__all__ = [
    "Model", "Stream", "load", "LSTM", "GRU", "RNN", "Dense", "Normalize", "Scale", "Layer",
    "Activation", "ACTIVATION_IDS", "cpu_info",
    "LstmliteError", "ModelError", "ShapeError", "InputTypeError", "StreamingError",
    "FormatError", "ConversionError", "VerificationError", "__version__",
]


def cpu_info() -> dict:
    """What the compiled core detected and chose: the machine, which kernel sets this CPU can
    run, the one in use, and whether LSTMLITE_KERNELS forced it."""
    return {
        "machine": _platform.machine(),
        "kernels": _core.kernels_active(),
        "available": [name for name in ("generic", "avx2") if _core.kernels_supported(name)],
        "forced_by_environment": _os.environ.get("LSTMLITE_KERNELS") or None,
    }
