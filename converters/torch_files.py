"""PyTorch files as data: what lstmlite checks before torch sees a byte of them.

torch's loaders can run code that a file carries: torch.load without weights_only unpickles
anything; torch.export.load unpickles weights and constants marked `use_pickle`, falls back
to an unrestricted unpickler for sample inputs that the safe one refuses, loads AOTInductor
shared libraries, resolves node targets by attribute walks from the torch module (torch.os is
os), hands symbolic-shape strings to sympy.sympify (which calls eval) and turns guard strings
into Python that ExportedProgram.module() executes; a TorchScript archive is code by design.

So the file is read once, into memory (the bytes inspected are the bytes torch loads), and:
- any zip: at most MAX_ARCHIVE_ENTRIES records whose declared uncompressed sizes add up to at
  most twice the file plus MAX_ARCHIVE_SLACK (torch writes records uncompressed; a DEFLATE
  bomb is refused before a byte is inflated);
- a .pt2 archive: only the records a torch.export.save archive of one program has; every
  weight and constant raw (no use_pickle); sample inputs that torch.load(weights_only=True)
  reads; every node target an aten operator or a whitelisted arithmetic function; every
  symbolic expression made of integers, operators, shape symbols and torch's sympy functions;
  no custom objects, no subgraphs; then torch.export.load, and module(check_guards=False) so
  the guard strings are never compiled;
- a TorchScript archive: refused unless the caller passes trust_code=True;
- anything else: torch.load(weights_only=True), which only rebuilds tensors and containers.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from typing import Any, List

from lstmlite.errors import ConversionError

MAX_ARCHIVE_ENTRIES = 100_000
MAX_ARCHIVE_SLACK = 64 << 20
MAX_PROGRAM_JSON = 64 << 20

#: What `--trust-code` trusts, said in every refusal.
TRUST_CODE_HELP = (
    "a TorchScript archive is a program: loading it runs its own code (__setstate__, "
    "forward), which can read, write and delete files. lstmlite refuses it unless you trust "
    "the file: --trust-code (trust_code=True). Safer: save the weights "
    "(torch.save(model.state_dict(), 'weights.pt')) or a torch.export program (.pt2)")


def archive_names(data: bytes, where: str) -> List[str]:
    """The record names of a zip archive (after the size checks), or [] if `data` is not one."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError,
            OSError, EOFError) as exc:
        raise ConversionError(f"{where}: a damaged zip archive: {exc}") from None
    if len(records) > MAX_ARCHIVE_ENTRIES:
        raise ConversionError(f"{where}: the archive has {len(records)} records, more than the "
                              f"{MAX_ARCHIVE_ENTRIES} lstmlite accepts")
    declared = sum(record.file_size for record in records)
    bound = 2 * len(data) + MAX_ARCHIVE_SLACK
    if declared > bound:
        raise ConversionError(
            f"{where}: the archive's records expand to {declared} bytes from a {len(data)}-byte "
            f"file (bound: {bound}); torch writes its records uncompressed, so this is refused "
            f"as a decompression bomb")
    return [record.filename for record in records]


def is_torchscript(names: List[str]) -> bool:
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def is_export_archive(names: List[str]) -> bool:
    return any(n.endswith("/archive_format") or n.endswith("serialized_exported_program.json")
               or "/models/" in n for n in names)


# ---- .pt2 ----------------------------------------------------------------------------------

_PT2_FIXED = {"archive_format", "archive_version", "byteorder", ".data/version",
              ".data/serialization_id", "models/model.json", "data/sample_inputs/model.pt",
              "data/weights/model_weights_config.json",
              "data/constants/model_constants_config.json"}
_PT2_PAYLOAD = re.compile(r"^data/(weights/weight|constants/tensor)_\d+$")

_SAFE_TARGET = re.compile(
    r"^(torch\.ops\.aten\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?"
    r"|_operator\.(getitem|add|sub|mul|truediv|floordiv|mod|neg|pow|eq|ne|lt|le|gt|ge|and_|"
    r"or_|not_)"
    r"|math\.(ceil|floor|trunc|sqrt)"
    r"|torch\.sym_(float|int|max|min|not|ite|sum|sqrt))$")

_SYMPY_NAMES = {
    # torch.utils._sympy.functions, as the deserializer binds them
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt",
    "FloorToInt", "CeilDiv", "IntTrueDiv", "FloatTrueDiv", "LShift", "RShift",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt",
    "RoundDecimal", "ToFloat", "FloatPow", "PowByNatural", "Identity", "OpaqueUnaryFn",
    # sympy's own, as str(expr) and srepr(expr) print them
    "Symbol", "Integer", "Float", "Rational", "Mul", "Add", "Pow", "Max", "Min", "Eq", "Ne",
    "Lt", "Le", "Gt", "Ge", "StrictLessThan", "StrictGreaterThan", "LessThan",
    "GreaterThan", "Equality", "Unequality", "And", "Or", "Not", "Abs", "True", "False",
    "true", "false", "oo", "zoo", "nan", "Infinity", "NegativeInfinity", "floor", "ceiling",
    "Piecewise", "ITE", "sqrt", "Tuple",
    # the assumptions srepr writes as keyword arguments: Symbol('s0', positive=True)
    "positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite",
    "nonzero", "zero", "even", "odd", "precision"}
_SYMBOL = re.compile(r"^[a-z]\d+$")  # s0, u3: torch's shape symbols
# A string literal may only be a shape symbol's name (srepr's Symbol('s77', ...)) or a
# number (Float('1.5', precision=53)): no string that names or builds code.
_EXPR_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?(?:e[-+]?\d+)?)|([A-Za-z][A-Za-z0-9]*)|"
                         r"('(?:[a-z]\d+|-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)')|"
                         r"(\*\*|//|<=|>=|==|!=|[-+*/%(),<>&|~=]))")


def _check_expression(text: Any, where: str) -> None:
    """A symbolic-shape expression: integers, operators, shape symbols and the sympy
    functions torch uses. Names are not attributes (no '.', no '_'), strings cannot be built,
    so what sympify evaluates is arithmetic only."""
    if not isinstance(text, str) or len(text) > 4096:
        raise ConversionError(f"{where}: a symbolic expression must be a short string")
    position = 0
    while position < len(text.rstrip()):
        match = _EXPR_TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ConversionError(f"{where}: the symbolic expression {text[:60]!r} has "
                                  f"{text[position:position + 10]!r}, which is not arithmetic "
                                  f"on shape symbols; refused (torch would eval it)")
        name = match.group(2)
        if name is not None and name not in _SYMPY_NAMES and not _SYMBOL.match(name):
            raise ConversionError(f"{where}: the symbolic expression {text[:60]!r} names "
                                  f"{name!r}, which is neither a shape symbol nor one of "
                                  f"torch's sympy functions; refused (torch would eval it)")
        position = match.end()


def _walk_program(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "target" and isinstance(item, str):
                if not _SAFE_TARGET.match(item):
                    raise ConversionError(
                        f"{where}: a node calls {item[:80]!r}; lstmlite accepts programs of "
                        f"aten operators (and shape arithmetic) only, and torch would resolve "
                        f"that name to any Python function")
            elif key == "expr_str":
                _check_expression(item, where)
            elif key in ("as_custom_obj", "custom_obj", "as_graph", "custom_obj_values") \
                    and item:
                raise ConversionError(f"{where}: the program holds {key.replace('as_', '')} "
                                      f"values (script objects or subgraphs), which lstmlite "
                                      f"does not load")
            else:
                _walk_program(item, where)
    elif isinstance(value, list):
        for item in value:
            _walk_program(item, where)


def _payload_config(archive: zipfile.ZipFile, name: str, where: str) -> dict:
    try:
        config = json.loads(archive.read(name))["config"]
    except (ValueError, RecursionError, KeyError, TypeError):
        config = None
    if not isinstance(config, dict):
        raise ConversionError(f"{where}: {name} is not a payload configuration")
    for fqn, entry in config.items():
        if not isinstance(entry, dict) or entry.get("use_pickle") is not False:
            raise ConversionError(
                f"{where}: {name}: {fqn!r} is stored as a pickle (use_pickle), which "
                f"torch.export.load would unpickle with no restriction; lstmlite refuses "
                f"pickled content (save plain tensors as parameters or buffers)")
        path_name = entry.get("path_name")
        if not isinstance(path_name, str) or not re.match(r"^(weight|tensor)_\d+$", path_name):
            raise ConversionError(f"{where}: {name}: {fqn!r} is stored as {path_name!r}, not "
                                  f"as a raw tensor record")
    return config


def check_export_archive(data: bytes, names: List[str], where: str) -> None:
    """Refuses (ConversionError naming the record and the reason) a .pt2 archive whose
    loading could run code; see the module docstring for the rules."""
    try:
        _check_export_archive(data, names, where)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError,
            OSError, zlib.error) as exc:
        raise ConversionError(f"{where}: a damaged zip archive: {exc}") from None


def _check_export_archive(data: bytes, names: List[str], where: str) -> None:
    import torch
    prefixes = {name.split("/", 1)[0] for name in names}
    if len(prefixes) != 1 or any("/" not in name for name in names):
        raise ConversionError(f"{where}: not a torch.export.save archive (its records are not "
                              f"under one folder)")
    prefix = prefixes.pop() + "/"
    relative = [name[len(prefix):] for name in names]
    if "models/model.json" not in relative or "archive_version" not in relative:
        raise ConversionError(f"{where}: not a torch.export.save archive of this format "
                              f"(no models/model.json; archives from torch < 2.8 are not "
                              f"read: export again)")
    for name in relative:
        if name not in _PT2_FIXED and not _PT2_PAYLOAD.match(name):
            raise ConversionError(
                f"{where}: the archive holds {prefix + name!r}; lstmlite reads archives of one "
                f"exported program only (no AOTInductor libraries, extra files or custom "
                f"objects, which torch would load as code)")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for config in ("data/weights/model_weights_config.json",
                       "data/constants/model_constants_config.json"):
            if config in relative:
                _payload_config(archive, prefix + config, where)
        if "data/sample_inputs/model.pt" in relative:
            try:
                torch.load(io.BytesIO(archive.read(prefix + "data/sample_inputs/model.pt")),
                           weights_only=True)
            except Exception:
                raise ConversionError(
                    f"{where}: the archive's sample inputs are not plain tensors "
                    f"(torch.load(weights_only=True) refuses them), and torch.export.load "
                    f"would unpickle them with no restriction") from None
        info = archive.getinfo(prefix + "models/model.json")
        if info.file_size > MAX_PROGRAM_JSON:
            raise ConversionError(f"{where}: models/model.json has {info.file_size} bytes, "
                                  f"more than the {MAX_PROGRAM_JSON} lstmlite reads")
        try:
            program = json.loads(archive.read(info))
        except (ValueError, RecursionError):
            raise ConversionError(f"{where}: models/model.json is not JSON") from None
    try:
        _walk_program(program, f"{where}: models/model.json")
    except RecursionError:  # JSON just inside json's depth limit, plus this walk's frames
        raise ConversionError(f"{where}: models/model.json is nested too deeply") from None
