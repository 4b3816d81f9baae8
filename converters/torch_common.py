"""What the PyTorch front ends share (torch_import.py: modules and .pt2 programs;
torch_script.py: TorchScript; torch_state_dict.py: state_dicts): torch imported on demand,
the default tolerance, and verification against the source run by torch."""
from __future__ import annotations

import numpy as np

from lstmlite.errors import ConversionError

from .common import VerificationReport
from .signature import run_signature

#: torch and lstmlite both compute in float32 with the same equations: tighter than ONNX's.
DEFAULT_TOLERANCE = 1e-5

PICKLED_MODULE_HELP = (
    "lstmlite loads .pt files with torch.load(weights_only=True) and never unpickles "
    "arbitrary objects (unpickling can run any code). Save the weights instead: "
    "torch.save(model.state_dict(), 'weights.pt'), or a traced program: "
    "torch.export.save(torch.export.export(model, (x,)), 'model.pt2')")


def torch_module():
    """torch, or a ConversionError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ConversionError("converting PyTorch models needs torch: pip install "
                              "'lstmlite[torch]'") from None
    return torch


def verify_torch(run_source, model, signature, example_inputs, *, tolerance: float,
                 seed: int, name: str) -> VerificationReport:
    torch = torch_module()
    from torch.utils._pytree import tree_flatten
    rng = np.random.default_rng(seed)
    names = signature.get("input_order") or [signature["sequence_input"]["name"]]
    feeds = {}
    for input_name, example in zip(names, example_inputs):
        shape = tuple(example.shape)
        feeds[input_name] = rng.standard_normal(shape).astype(np.float32) * \
            (1.0 if input_name == names[0] else 0.5)
    report = VerificationReport(tolerance=tolerance,
                                reference=f"torch {torch.__version__.split('+')[0]}")
    axes = signature["sequence_input"]["axes"]
    shape = feeds[names[0]].shape
    report.batch = shape[axes.index("B")] if "B" in axes else 1
    report.steps = shape[axes.index("T")] if "T" in axes else 1
    outputs, _ = tree_flatten(run_source(*[torch.from_numpy(feeds[n]) for n in names]))
    expected = {f"output{number}": value.detach().numpy()
                for number, value in enumerate(outputs)}
    return report.compare(expected, run_signature(model, signature, feeds), name)
