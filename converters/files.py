"""`lstmlite convert`: any supported source file -> a verified .lstm file.

The kind of source is told by its extension and checked against its first bytes: .onnx
(protobuf), .pt2 (a torch.export archive), .pt/.pth (a state_dict, or a TorchScript archive).
Nothing is written unless conversion and verification succeed; the file is written
atomically, so a failure never leaves a partial file.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from typing import Any, Dict, List, Optional

from lstmlite.errors import ConversionError, VerificationError
from lstmlite.fileio import open_regular, read_regular

#: A labels file is a few KB; a bigger one is a mistake (or a device), refused before reading.
MAX_LABELS_BYTES = 1 << 20
#: The largest difference between a model stored with float16 or int8 weights and its float32
#: conversion, as a fraction of the float32 outputs' largest magnitude. Healthy int8 models
#: measure 0.3-4% (the bundled examples: kws 2.0%, activity 0.4%, gait 3.7%; float16 about
#: 0.01%); a broken quantization (a wrong scale, a dropped row) is off by tens of percent.
DEFAULT_QUANTIZED_TOLERANCE = 0.1


def source_kind(path: str) -> str:
    extension = os.path.splitext(path)[1].lower()
    if extension == ".onnx":
        return "onnx"
    if extension in (".pt", ".pth", ".pt2", ".ckpt", ".bin"):
        return "torch"
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        return "torch"
    if extension == ".lstm":
        raise ConversionError(f"{path}: is already an .lstm file, lstmlite's own format "
                              f"(`lstmlite info` describes it, `lstmlite run` runs it); "
                              f"convert takes .onnx, .pt2 and .pt/.pth files")
    raise ConversionError(f"{path}: unknown kind of model file (extension "
                          f"{extension or 'none'!r}); lstmlite converts .onnx, .pt2 "
                          f"(torch.export), .pt/.pth (state_dict or TorchScript)")


def convert_source(path: str, *, verify: bool = True, tolerance: Optional[float] = None,
                   seed: int = 0, options: Optional[Dict[str, Any]] = None,
                   trust_code: bool = False, input_values: Optional[Dict[str, Any]] = None,
                   input_shapes: Optional[Dict[str, Any]] = None):
    """Converts a file; returns the Conversion (see onnx_import.Conversion). The file is
    data: nothing in it runs, except a TorchScript archive's own code with trust_code=True
    (without it such archives are refused). input_values: ONNX graph inputs fixed at
    conversion and input_shapes: their static dimensions (onnx_control.py)."""
    options = dict(options or {})
    open_regular(path, "model file", ConversionError).close()  # a FIFO or device: refused now
    kind = source_kind(path)
    if kind == "onnx":
        from .common import DEFAULT_TOLERANCE, reject_options
        from .onnx_import import convert_onnx
        reject_options(options, path, "ONNX models")
        return convert_onnx(path, verify=verify, seed=seed, input_values=input_values,
                            input_shapes=input_shapes,
                            tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance)
    if input_values or input_shapes:
        raise ConversionError(f"{path}: --input and --input-shape fix inputs of ONNX graphs "
                              f"(their If nodes, their frame size); a torch source has none "
                              f"to fix")
    from .torch_import import DEFAULT_TOLERANCE, convert_torch_file
    return convert_torch_file(path, verify=verify, seed=seed, options=options,
                              tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
                              trust_code=trust_code)


def read_labels(path: str, output_size: int) -> List[str]:
    data = read_regular(path, "labels file", ConversionError, limit=MAX_LABELS_BYTES)
    try:
        labels = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise ConversionError(f"{path}: labels are not UTF-8 text ({exc.reason})") from None
    if len(labels) != output_size:
        raise ConversionError(f"{path}: has {len(labels)} labels (one per non-empty line); "
                              f"the model has {output_size} outputs")
    return labels


def verify_stored(conversion, weights_dtype: str, seed: int = 0,
                  tolerance: float = DEFAULT_QUANTIZED_TOLERANCE, where: str = "model"):
    """For float16/int8 weights: the model as it will be loaded (an int8 file runs the int8
    kernels), written to a private temporary file, read back and compared with the float32
    conversion (already verified against its source) on seeded random sequences (4 x 50
    steps). Returns the lstmlite.CompareReport; raises VerificationError when its max abs
    difference exceeds `tolerance` times the float32 conversion's largest |output| (a
    fraction of the outputs' range, so one default fits probabilities and sensor units
    alike): the smaller weights' own rounding, measured apart from the float32 check.
    `where` names the source in the error."""
    import numpy as np
    from lstmlite import compare
    from lstmlite.format import load
    handle, temporary = tempfile.mkstemp(suffix=".lstm")
    os.close(handle)
    try:
        conversion.model.save(temporary, weights_dtype=weights_dtype)
        stored = load(temporary)
    finally:
        os.unlink(temporary)
    X = np.random.default_rng(seed).standard_normal(
        (4, 50, conversion.model.input_size)).astype(np.float32)
    accuracy = compare(conversion.model, stored, X)
    if not accuracy.relative <= tolerance:  # NaN fails too
        raise VerificationError(
            f"{where}: with {weights_dtype} weights as loaded from the file, the model "
            f"differs from the float32 conversion (which passed its own verification) by more "
            f"than the "
            f"quantized tolerance {tolerance:g} of its largest output: {accuracy}; "
            f"--quantized-tolerance accepts a larger error. Nothing was written")
    return accuracy
