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
from .layers import (ACTIVATION_IDS, GRU, LSTM, RNN, Activation, Conv1d, Dense, Elementwise,
                     Layer, Magnitude, Mean, Normalize, Scale)
from .format import load, loads
from .model import Model
from .quantize import CompareReport, QuantizedWeight, compare
from .stream import Stream
from . import examples  # lstmlite.examples.path("kws")

__version__ = "0.1.0"

__all__ = [
    "Model", "Stream", "load", "loads", "LSTM", "GRU", "RNN", "Dense", "Normalize", "Scale",
    "Conv1d", "Magnitude", "Mean", "Elementwise", "Layer",
    "Activation", "ACTIVATION_IDS", "cpu_info", "QuantizedWeight", "compare", "CompareReport",
    "LstmliteError", "ModelError", "ShapeError", "InputTypeError", "StreamingError",
    "FormatError", "ConversionError", "VerificationError", "examples", "__version__",
]


def cpu_info() -> dict:
    """What the compiled core detected and chose: the machine, the CPU features the dispatcher
    probed for and found ("avx2", "fma", "avxvnni", "avx512f", "avx512bw", "avx512vnni",
    "neon", "asimddp"), the kernel sets
    compiled in and those this CPU runs (best first), the one in use, and whether
    LSTMLITE_KERNELS forced it."""
    return {
        "machine": _platform.machine(),
        "features": _core.cpu_features(),
        "kernels": _core.kernels_active(),
        "compiled": _core.kernels_compiled(),
        "available": [name for name in _core.kernels_compiled()
                      if _core.kernels_supported(name)],
        "forced_by_environment": _os.environ.get("LSTMLITE_KERNELS") or None,
    }
