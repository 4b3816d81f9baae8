"""Importers into lstmlite's Model (installed as lstmlite.converters): from ONNX and PyTorch.
They need onnx (and onnxruntime to verify) or torch, which the runtime never imports.

    from lstmlite.converters import from_onnx
    model = from_onnx("model.onnx")
    conversion = convert_source("model.pt2")   # any file `lstmlite convert` takes

The converted model's metadata["signature"] records how the source graph's inputs and
outputs map onto Model.run(); `run_signature(model, model.metadata["signature"], feeds)` runs
the model exactly as the graph would be run.
"""
from .files import convert_source
from .onnx_import import convert_onnx, from_onnx, verify_onnx
from .signature import describe as describe_signature
from .signature import run_signature

__all__ = ["convert_source", "from_onnx", "convert_onnx", "verify_onnx", "run_signature", "describe_signature",
           "from_torch", "convert_torch", "from_state_dict"]


def __getattr__(name):
    # the PyTorch importer imports torch, so only when asked for
    if name in ("from_torch", "convert_torch", "from_state_dict"):
        from . import torch_import
        return getattr(torch_import, name)
    raise AttributeError(name)
