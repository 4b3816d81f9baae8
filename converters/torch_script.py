"""TorchScript archives (trusted only: they are programs that run their own code): torch's
TorchScript ONNX exporter, then the ONNX importer, then verification against the scripted
module itself."""
from __future__ import annotations

import io
import os
from typing import Optional

from lstmlite.errors import ConversionError

from .common import Conversion, first_line, record_verification
from .torch_common import torch_module as _torch
from .torch_common import verify_torch


def _torchscript_input_size(frozen) -> Optional[int]:
    """The feature count, read from the first op that consumes the input with a constant
    tensor (a weight or a normalization buffer), following layout ops."""
    graph = frozen.graph
    inputs = list(graph.inputs())
    if len(inputs) < 2:
        return None
    frontier = [inputs[1]]
    for _ in range(8):
        following = []
        for value in frontier:
            for use in value.uses():
                node = use.user
                for operand in node.inputs():
                    producer = operand.node()
                    candidates = [operand] if producer.kind() == "prim::Constant" else \
                        list(producer.inputs()) if producer.kind() == "prim::ListConstruct" \
                        else []
                    for candidate in candidates:
                        if candidate.node().kind() != "prim::Constant":
                            continue
                        tensor = candidate.toIValue()
                        if isinstance(tensor, (list, tuple)) and tensor and \
                                hasattr(tensor[0], "shape"):
                            tensor = tensor[0]  # an RNN's parameter list: weight_ih_l0 first
                        if hasattr(tensor, "shape") and tensor.dim() == 2:
                            return int(tensor.shape[1])
                        if hasattr(tensor, "shape") and tensor.dim() == 1 and \
                                node.kind() in ("aten::sub", "aten::div", "aten::mul",
                                                "aten::add"):
                            return int(tensor.shape[0])
                following.extend(node.outputs())
        frontier = following
    return None


def convert_torchscript(source, path, *, verify, tolerance, seed, input_size,
                         head) -> Conversion:
    """TorchScript (trusted: it runs its own code): torch's TorchScript ONNX exporter, then
    the ONNX importer; verified against the scripted module itself. `source` is the file's
    bytes as a BytesIO, `path` its name."""
    torch = _torch()
    import warnings
    if head is not None:
        raise ConversionError(f"{path}: option --head-activation applies to state_dict files; "
                              f"a TorchScript archive carries its activations")
    try:
        scripted = torch.jit.load(source, map_location="cpu").eval()
        frozen = torch.jit.freeze(scripted)
    except Exception as exc:
        raise ConversionError(f"{path}: torch.jit.load failed: {first_line(exc)}") from None
    try:
        arguments = [a for a in scripted.forward.schema.arguments[1:]   # [0] is self
                     if not a.has_default_value()]
    except (AttributeError, RuntimeError):
        arguments = []
    if len(arguments) > 1:
        raise ConversionError(
            f"{path}: its forward takes {len(arguments)} inputs "
            f"({', '.join(a.name for a in arguments)}); lstmlite converts a module whose "
            f"forward takes the sequence alone (the state lives in the stream): script a "
            f"wrapper whose forward(x) calls it")
    size = input_size or _torchscript_input_size(frozen)
    if size is None:
        raise ConversionError(f"{path}: cannot tell the input's feature count from the "
                              f"TorchScript graph; give it with --input-size")
    example = torch.randn(1, 5, size)
    with torch.no_grad():
        try:
            from torch.utils._pytree import tree_flatten
            count = len(tree_flatten(scripted(example))[0])
        except Exception as exc:
            hint = (f"is --input-size {size} right?" if input_size else
                    "give the feature count with --input-size")
            raise ConversionError(f"{path}: the scripted module does not run on a (1, 5, "
                                  f"{size}) input: {first_line(exc)}; {hint}") from None
    try:
        from .onnx_import import convert_onnx
    except ImportError:
        raise ConversionError(f"{path}: TorchScript archives are converted through ONNX: pip "
                              f"install 'lstmlite[onnx]'") from None
    buffer = io.BytesIO()
    outputs = [f"output{i}" for i in range(count)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(scripted, (example,), buffer, dynamo=False, input_names=["x"],
                              output_names=outputs, dynamic_axes={"x": {0: "d0", 1: "d1"}})
    except Exception as exc:
        raise ConversionError(f"{path}: torch's TorchScript ONNX exporter failed: {first_line(exc)} "
                              f"(nn.LSTM proj_size has no ONNX form: save a torch.export "
                              f"program instead)") from None
    conversion = convert_onnx(buffer.getvalue(), verify=False)
    conversion.signature["input_order"] = ["x"]
    conversion.model.metadata["source"] = {"format": "torchscript",
                                           "file": os.path.basename(path)}

    def run_source(*tensors):
        with torch.no_grad():
            return scripted(*tensors)

    def check(candidate):
        return verify_torch(run_source, candidate, conversion.signature, (example,),
                            tolerance=tolerance, seed=seed, name=path)
    conversion.verify = check
    return record_verification(conversion, verify)
