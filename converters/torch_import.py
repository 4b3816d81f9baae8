"""from_torch(): PyTorch modules, torch.export programs, state_dicts and TorchScript archives
-> a verified lstmlite Model. This file is the entry of the PyTorch importer: modules and .pt2
programs (traced by torch.export, walked by torch_program.py) and the file dispatcher; the
other front ends are torch_script.py (TorchScript, through the ONNX importer) and
torch_state_dict.py (state_dicts, by key patterns). All of them end in the same
build-verify-record step as the ONNX importer (common.verified_conversion).

The structure comes from tracing, never from the order of a module's attributes. Files are
data: state_dicts are read with torch.load(weights_only=True), .pt2 archives are checked
before torch.export.load sees them, TorchScript archives (code) need trust_code=True;
torch_files.py has the rules.
"""
from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any, Dict, Optional

from lstmlite.errors import ConversionError
from lstmlite.fileio import read_regular

from .common import Conversion, first_line, reject_options, verified_conversion
from .torch_common import DEFAULT_TOLERANCE, PICKLED_MODULE_HELP, verify_torch
from .torch_common import torch_module as _torch
from .torch_files import (TRUST_CODE_HELP, archive_names, check_export_archive,
                          is_export_archive, is_torchscript)
from .torch_program import TorchProgramConverter
from .torch_script import convert_torchscript
from .torch_state_dict import HEAD_ACTIVATIONS, convert_state_dict, from_state_dict

if TYPE_CHECKING:
    from lstmlite.model import Model

__all__ = ["DEFAULT_TOLERANCE", "HEAD_ACTIVATIONS", "convert_torch", "from_torch",
           "convert_torch_file", "convert_state_dict", "from_state_dict", "verify_torch"]


# ---- entry points ---------------------------------------------------------------------------

def _export(module, example_inputs, where: str):
    torch = _torch()
    import warnings
    if not isinstance(module, torch.nn.Module):
        raise ConversionError(f"{where}: expected a torch.nn.Module, got "
                              f"{type(module).__name__}")
    if example_inputs is None:
        raise ConversionError(f"{where}: needs example_input, e.g. torch.randn(1, 50, "
                              f"features): the structure is found by tracing")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(module, tuple(example_inputs)), tuple(example_inputs)
    except Exception as exc:  # whatever torch.export raises
        raise ConversionError(f"{where}: torch.export could not trace the module: "
                              f"{first_line(exc)}") from None
    finally:
        module.train(was_training)


def _convert_program(program, where: str, run_source, example_inputs, *, verify: bool,
                     tolerance: float, seed: int, source: dict) -> Conversion:
    layers, signature, notes = TorchProgramConverter(program, where).convert()

    def check(candidate):
        return verify_torch(run_source, candidate, signature, example_inputs,
                            tolerance=tolerance, seed=seed, name=where)
    return verified_conversion(layers, signature, notes, source, check, verify=verify,
                               where=where)


def convert_torch(module, example_input=None, *, verify: bool = True,
                  tolerance: float = DEFAULT_TOLERANCE, seed: int = 0) -> Conversion:
    where = type(module).__name__
    program, examples = _export(module, example_input, where)

    def run_source(*tensors):
        torch = _torch()
        with torch.no_grad():
            was = module.training
            module.eval()
            try:
                return module(*tensors)
            finally:
                module.train(was)
    return _convert_program(program, where, run_source, examples, verify=verify,
                            tolerance=tolerance, seed=seed,
                            source={"format": "torch", "module": where})


def from_torch(module, example_input=None, *, verify: bool = True,
               tolerance: float = DEFAULT_TOLERANCE, seed: int = 0) -> "Model":
    """Converts an nn.Module: traced with torch.export on `example_input` (a tensor of shape
    (batch, time, features) or (time, batch, features) as the module takes it, or a tuple of
    the forward's tensors, e.g. (x, h0, c0)). With verify=True the module and the conversion
    run on seeded random inputs of the example's shapes and the conversion is refused
    (VerificationError) if any output differs by more than `tolerance`."""
    return convert_torch(module, example_input, verify=verify, tolerance=tolerance,
                         seed=seed).model


def convert_torch_file(path: str, *, verify: bool = True, tolerance: float = DEFAULT_TOLERANCE,
                       seed: int = 0, options: Optional[Dict[str, Any]] = None,
                       trust_code: bool = False) -> Conversion:
    """A .pt2 program, a TorchScript archive (only with trust_code=True: it runs its own
    code) or a state_dict file. The file is read once and checked before torch loads those
    bytes (torch_files.py says what is checked)."""
    torch = _torch()
    options = dict(options or {})
    data = read_regular(path, "PyTorch file", ConversionError)
    names = archive_names(data, path)
    if path.lower().endswith(".pt2") or is_export_archive(names):
        reject_options(options, path, "a torch.export program")
        if not names:
            raise ConversionError(f"{path}: not a torch.export.save archive (not a zip file)")
        check_export_archive(data, names, path)
        return _convert_pt2(data, path, verify=verify, tolerance=tolerance, seed=seed)
    if is_torchscript(names):
        if not trust_code:
            raise ConversionError(f"{path}: {TRUST_CODE_HELP}")
        return convert_torchscript(io.BytesIO(data), path, verify=verify,
                                    tolerance=tolerance, seed=seed,
                                    input_size=options.get("input_size"),
                                    head=options.get("head_activation"))
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text or "GLOBAL" in text:
            raise ConversionError(f"{path}: holds a pickled Python object (a whole module?). "
                                  f"{PICKLED_MODULE_HELP}") from None
        raise ConversionError(f"{path}: not a PyTorch file torch.load can read: "
                              f"{first_line(exc)}") from None
    return convert_state_dict(loaded, path, verify=verify, tolerance=tolerance, seed=seed,
                              **options)


def _convert_pt2(data: bytes, path: str, *, verify, tolerance, seed) -> Conversion:
    """A checked .pt2 archive's bytes (check_export_archive) -> Conversion."""
    torch = _torch()
    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as exc:
        raise ConversionError(f"{path}: torch.export.load failed: {first_line(exc)}") from None
    examples = []
    for node in program.graph_module.graph.nodes:
        if node.op == "placeholder" and node.name in {
                s.arg.name for s in program.graph_signature.input_specs
                if s.kind.name == "USER_INPUT"}:
            examples.append(torch.zeros(tuple(int(d) for d in node.meta["val"].shape)))
    # check_guards=False: the guards are strings of Python that module() would otherwise
    # compile and run; the verification feeds shapes the program was exported for
    runner = program.module(check_guards=False)

    def run_source(*tensors):
        with torch.no_grad():
            return runner(*tensors)
    return _convert_program(program, path, run_source, tuple(examples), verify=verify,
                            tolerance=tolerance, seed=seed,
                            source={"format": "torch.export", "file": os.path.basename(path)})
