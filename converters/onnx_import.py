"""from_onnx(): an .onnx file or ModelProto -> a verified lstmlite Model.

Loading and checking use onnx itself (onnx.load, the checker, local-function inlining);
constant folding uses onnx's reference evaluator; the graph walk is onnx_graph.py.
Verification runs the source graph in onnxruntime (or, for batch-major layout=1 nodes that
onnxruntime rejects, in onnx's reference evaluator where that implements every attribute the
graph uses, else in onnxruntime on a copy rewritten to layout=0 with Transposes) and the
converted model through run_signature, on the same seeded random inputs.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lstmlite.errors import ConversionError, VerificationError
from lstmlite.fileio import open_regular, read_regular
from lstmlite.model import Model

from .common import (DEFAULT_TOLERANCE, Conversion, VerificationReport, first_line,
                     verified_conversion)
from .signature import run_signature

def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ConversionError("converting ONNX needs the onnx package: pip install "
                              "'lstmlite[onnx]'") from None
    return onnx


def load_onnx(source) -> Tuple[Any, str]:
    """A ModelProto from a path, bytes or a ModelProto; the name used in messages."""
    onnx = _import_onnx()
    if isinstance(source, onnx.ModelProto):
        return source, "model"
    if isinstance(source, (bytes, bytearray)):
        name, data = "model", bytes(source)
    else:
        name = os.fspath(source)
        data = read_regular(name, "ONNX file", ConversionError)
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:
        raise ConversionError(f"{name}: not an ONNX model (protobuf parse failed: "
                              f"{first_line(exc)})") from None
    if not model.graph.node and not model.graph.input:
        raise ConversionError(f"{name}: not an ONNX model (no graph)")
    external = [t for t in _all_tensors(model.graph)
                if t.data_location == onnx.TensorProto.EXTERNAL or t.external_data]
    if external:
        if not isinstance(source, (str, os.PathLike)):
            raise ConversionError(f"{name}: tensor {external[0].name!r} is stored in an "
                                  f"external file; pass the .onnx path")
        directory = os.path.dirname(os.path.abspath(name))
        for tensor in external:
            _load_external(tensor, directory, name)
    return model, name


#: A tensor of external data may not claim more than this (the weights of any model this
#: engine runs are far smaller); the bytes come from a file next to the model.
MAX_EXTERNAL_TENSOR_BYTES = 1 << 30


def _all_tensors(graph):
    """Every TensorProto of a graph: initializers, sparse initializers' parts, Constant
    values and every tensor attribute, in subgraphs too (an If/Loop/Scan body)."""
    onnx = _import_onnx()
    for tensor in graph.initializer:
        yield tensor
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                yield attribute.t
            elif attribute.type == onnx.AttributeProto.TENSORS:
                yield from attribute.tensors
            elif attribute.type == onnx.AttributeProto.SPARSE_TENSOR:
                yield attribute.sparse_tensor.values
                yield attribute.sparse_tensor.indices
            elif attribute.type == onnx.AttributeProto.GRAPH:
                yield from _all_tensors(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _all_tensors(subgraph)


def _load_external(tensor, directory: str, name: str) -> None:
    """Reads an external-data tensor's bytes into the tensor itself, from a regular file
    inside the model's directory (resolved there, never against the working directory; no
    absolute paths, no '..', no symlink leading out), with offset and length inside the
    file and the length the tensor's shape needs. onnx's own loader is not used: it is only
    called for initializers, and numpy_helper would resolve the rest against the cwd."""
    onnx = _import_onnx()
    where = f"{name}: tensor {tensor.name!r}: external data"
    fields = {entry.key: entry.value for entry in tensor.external_data}
    unknown = set(fields) - {"location", "offset", "length", "checksum", "basepath"}
    if unknown:
        raise ConversionError(f"{where}: unknown keys {sorted(unknown)}")
    location = fields.get("location", "")
    if not location or os.path.isabs(location) or "\0" in location or \
            ".." in location.replace("\\", "/").split("/"):
        raise ConversionError(f"{where}: location {location!r} must be a relative path inside "
                              f"the model's directory")
    root = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, target]) != root:
        raise ConversionError(f"{where}: location {location!r} leads outside the model's "
                              f"directory (through a symlink)")
    try:
        offset = int(fields.get("offset", "0"))
        length = int(fields["length"]) if "length" in fields else None
    except ValueError:
        raise ConversionError(f"{where}: offset and length must be integers") from None
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except Exception:
        raise ConversionError(f"{where}: unsupported data type {tensor.data_type}") from None
    needed = itemsize
    for dim in tensor.dims:
        needed *= dim
    if any(dim < 0 for dim in tensor.dims) or needed > MAX_EXTERNAL_TENSOR_BYTES:
        raise ConversionError(f"{where}: shape {list(tensor.dims)} needs {needed} bytes "
                              f"(at most {MAX_EXTERNAL_TENSOR_BYTES})")
    if length is None:
        length = needed
    if length != needed or offset < 0:
        raise ConversionError(f"{where}: length {length} at offset {offset}; the shape "
                              f"{list(tensor.dims)} needs {needed} bytes")
    with open_regular(target, "external data file", ConversionError) as handle:
        size = os.fstat(handle.fileno()).st_size
        if offset + length > size:
            raise ConversionError(f"{where}: bytes {offset}..{offset + length} lie past the "
                                  f"end of {location!r} ({size} bytes)")
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise ConversionError(f"{where}: {location!r} shrank while being read")
    tensor.raw_data = data
    del tensor.external_data[:]
    tensor.data_location = onnx.TensorProto.DEFAULT


def _prepare(model, name: str):
    onnx = _import_onnx()
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ConversionError(f"{name}: the ONNX checker rejects the model: "
                              f"{first_line(exc)}") from None
    if model.functions:
        from onnx import inliner
        model = inliner.inline_local_functions(model)
    return model


def convert_onnx(source, *, verify: bool = True, tolerance: float = DEFAULT_TOLERANCE,
                 seed: int = 0, input_values: Optional[Dict[str, Any]] = None,
                 input_shapes: Optional[Dict[str, List[Any]]] = None) -> Conversion:
    """Converts and (unless verify=False) verifies. Raises ConversionError for anything the
    engine cannot honour, VerificationError when the outputs differ beyond `tolerance`.
    input_values: graph inputs fixed at conversion ({"sr": 16000}); the If nodes they decide
    keep the branch taken (onnx_control.py), and the signature records them. input_shapes:
    graph inputs given static dimensions ({"input": [None, 576]}, None = left dynamic): the
    frame a step takes, where the graph leaves it dynamic; Ifs on the sizes that follow
    fold."""
    from .onnx_graph import OnnxGraphConverter
    from .onnx_directions import merge_direction_pairs
    from .onnx_loops import rewrite_recurrent_loops
    from .onnx_sorted_batches import rewrite_sorted_batches
    model_proto, name = load_onnx(source)
    model_proto = _prepare(model_proto, name)
    # inputs given values, and the If nodes that constants and static shapes decide
    from .onnx_control import fix_inputs
    fixed_proto, fixed_notes, fixed, fixed_shapes = fix_inputs(model_proto, input_values or {},
                                                               name, input_shapes)
    # Loops that step a recurrent cell become the ONNX node they compute; verification below
    # still runs the graph as given
    converted_proto, loop_notes, unrecognised = rewrite_recurrent_loops(fixed_proto, name)
    # an LSTM step written out as products and elementwise ops becomes the LSTM node
    from .onnx_cells import rewrite_lstm_cells
    converted_proto, cell_notes = rewrite_lstm_cells(converted_proto, name)
    loop_notes = loop_notes + cell_notes
    # two forward nodes, the second over the reversed sequence, are one bidirectional layer
    converted_proto, pair_notes = merge_direction_pairs(converted_proto)
    # pack_padded_sequence(enforce_sorted=False)'s sort of the batch and its undoing go too
    converted_proto, sort_notes = rewrite_sorted_batches(converted_proto)
    layers, signature, notes = OnnxGraphConverter(converted_proto, name,
                                                  loop_reasons=unrecognised).convert()
    if fixed:
        signature["fixed_inputs"] = fixed
    if fixed_shapes:
        signature["fixed_shapes"] = fixed_shapes
    notes = fixed_notes + loop_notes + pair_notes + sort_notes + list(notes)
    source_record = {"format": "onnx", "file": os.path.basename(name),
                     "producer": f"{model_proto.producer_name} "
                                 f"{model_proto.producer_version}".strip(),
                     "opset": next((o.version for o in model_proto.opset_import
                                    if o.domain in ("", "ai.onnx")), None)}

    def check(candidate: Model) -> VerificationReport:
        return verify_onnx(model_proto, candidate, signature, tolerance=tolerance, seed=seed,
                           name=name)
    return verified_conversion(layers, signature, notes, source_record, check, verify=verify,
                               where=name)


def from_onnx(source, *, verify: bool = True, tolerance: float = DEFAULT_TOLERANCE,
              seed: int = 0, input_values: Optional[Dict[str, Any]] = None,
              input_shapes: Optional[Dict[str, List[Any]]] = None) -> Model:
    """Converts an ONNX model (path, bytes or onnx.ModelProto) to an lstmlite Model.

    With verify=True (default) the source runs in onnxruntime on seeded random inputs and
    the conversion is refused (VerificationError) if any output differs by more than
    `tolerance`; without onnxruntime installed a warning says verification was skipped.
    model.metadata["signature"] maps the graph's inputs and outputs onto run().
    input_values fixes graph inputs at conversion ({"sr": 16000}): an If whose condition they
    decide keeps the branch taken; they are recorded in the signature's "fixed_inputs".
    input_shapes gives graph inputs static dimensions ({"input": [None, 576]}: None stays
    dynamic), for graphs whose frame size is dynamic (silero-vad's chunk).
    """
    conversion = convert_onnx(source, verify=verify, tolerance=tolerance, seed=seed,
                              input_values=input_values, input_shapes=input_shapes)
    if conversion.report is not None and conversion.report.skipped:
        warnings.warn(f"lstmlite.from_onnx: {conversion.report.skipped}", stacklevel=2)
    return conversion.model


# ---- verification -------------------------------------------------------------------------

def make_feeds(model_proto, signature, *, batch: int, steps: int, seed: int):
    """Seeded random feeds for every graph input the signature uses, sized by the graph's
    static dimensions where it has them."""
    import onnx
    rng = np.random.default_rng(seed)
    seq = signature["sequence_input"]
    inputs = {v.name: v for v in model_proto.graph.input}
    initializers = {i.name for i in model_proto.graph.initializer}
    feeds = {}
    # the sizes: static where the graph fixes them
    seq_type = inputs[seq["name"]].type.tensor_type
    sizes = {"B": batch, "T": steps, "1": 1}
    for role, dim in zip(seq["axes"], seq_type.shape.dim):
        if role in ("B", "T") and dim.HasField("dim_value"):
            sizes[role] = int(dim.dim_value)
    fixed = signature.get("fixed_inputs") or {}
    fixed_shapes = signature.get("fixed_shapes") or {}

    def dims_of(name, tensor_type):
        """the graph input's dims, with those --input-shape fixed (0 where still dynamic)"""
        given = fixed_shapes.get(name) or [None] * len(tensor_type.shape.dim)
        return [size if size is not None else int(d.dim_value)
                for d, size in zip(tensor_type.shape.dim, given)]
    for name, value_info in inputs.items():
        if name in initializers:
            continue
        tensor_type = value_info.type.tensor_type
        if name in fixed:          # the value it was converted with
            feeds[name] = np.asarray(fixed[name],
                                     dtype=onnx.helper.tensor_dtype_to_np_dtype(
                                         tensor_type.elem_type))
            continue
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        if name == seq["name"]:
            shape = [sizes[a] if a != "F" else d
                     for a, d in zip(seq["axes"], dims_of(name, tensor_type))]
            feeds[name] = rng.standard_normal(shape).astype(dtype)
            continue
        shape = [int(d.dim_value) if d.HasField("dim_value") else sizes["B"]
                 for d in tensor_type.shape.dim]
        if np.dtype(dtype).kind in "iu":  # sequence lengths
            lengths = rng.integers(1, sizes["T"] + 1, size=shape)
            lengths.flat[0] = sizes["T"]
            feeds[name] = lengths.astype(dtype)
        else:
            feeds[name] = (0.5 * rng.standard_normal(shape)).astype(dtype)
    return feeds, sizes


def _reference_evaluator_covers(model_proto) -> bool:
    """onnx's reference LSTM/GRU/RNN ignore sequence_lens, clip, input_forget, activations
    and (LSTM) direction; it is a faithful reference only for graphs that use none of them."""
    import onnx
    for node in model_proto.graph.node:
        if node.op_type not in ("LSTM", "GRU", "RNN"):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if len(node.input) > 4 and node.input[4]:
            return False
        if any(k in attrs for k in ("clip", "activations", "activation_alpha",
                                    "activation_beta")) or attrs.get("input_forget", 0):
            return False
        if node.op_type == "LSTM" and attrs.get("direction", b"forward") not in \
                (b"forward", "forward"):
            return False
    return True


def _to_time_major(model_proto):
    """A copy with every layout=1 recurrent node replaced by Transposes around a layout=0
    node (the ONNX spec's definition of layout), for onnxruntime, which rejects layout=1."""
    import onnx
    from onnx import helper
    model = onnx.ModelProto()
    model.CopyFrom(model_proto)
    nodes = []
    for number, node in enumerate(model.graph.node):
        attrs = {a.name: a for a in node.attribute}
        layout = helper.get_attribute_value(attrs["layout"]) if "layout" in attrs else 0
        if node.op_type not in ("LSTM", "GRU", "RNN") or layout != 1:
            nodes.append(node)
            continue
        tag = f"__lstmlite_tm{number}"
        inputs = list(node.input)
        nodes.append(helper.make_node("Transpose", [inputs[0]], [tag + "_x"], perm=[1, 0, 2]))
        inputs[0] = tag + "_x"
        for position in (5, 6):
            if len(inputs) > position and inputs[position]:
                nodes.append(helper.make_node("Transpose", [inputs[position]],
                                              [f"{tag}_s{position}"], perm=[1, 0, 2]))
                inputs[position] = f"{tag}_s{position}"
        outputs = [f"{tag}_o{k}" if o else "" for k, o in enumerate(node.output)]
        new = helper.make_node(node.op_type, inputs, outputs, name=node.name)
        new.attribute.extend(a for a in node.attribute if a.name != "layout")
        nodes.append(new)
        for k, original in enumerate(node.output):
            if original:
                perm = [2, 0, 1, 3] if k == 0 else [1, 0, 2]
                nodes.append(helper.make_node("Transpose", [outputs[k]], [original], perm=perm))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _run_onnxruntime(model_proto, feeds):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(model_proto.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
    except Exception as exc:
        if "IR version" not in str(exc) or model_proto.ir_version <= 10:
            raise
        # a newer onnx wrote a newer IR version than this onnxruntime reads; the graph
        # itself uses nothing of it
        import onnx
        copy = onnx.ModelProto()
        copy.CopyFrom(model_proto)
        copy.ir_version = 10
        session = onnxruntime.InferenceSession(copy.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(None, {k: v for k, v in feeds.items() if k in wanted})))


def _describe_reference(model_proto, layout1: bool) -> str:
    """What runs the source graph in verification."""
    if layout1 and _reference_evaluator_covers(model_proto):
        return "onnx.reference.ReferenceEvaluator (layout=1)"
    import onnxruntime
    if layout1:
        return (f"onnxruntime {onnxruntime.__version__} (layout=1 nodes rewritten as "
                f"Transpose + layout=0)")
    return f"onnxruntime {onnxruntime.__version__}"


def _run_reference(model_proto, feeds, layout1: bool) -> Dict[str, Any]:
    """The source graph's outputs by name on feeds, from _describe_reference's runtime."""
    if layout1 and _reference_evaluator_covers(model_proto):
        from onnx.reference import ReferenceEvaluator
        evaluator = ReferenceEvaluator(model_proto)
        wanted = set(evaluator.input_names)
        results = evaluator.run(None, {k: v for k, v in feeds.items() if k in wanted})
        return dict(zip(evaluator.output_names, results))
    if layout1:
        return _run_onnxruntime(_to_time_major(model_proto), feeds)
    return _run_onnxruntime(model_proto, feeds)


def verify_onnx(model_proto, model: Model, signature, *, tolerance: float = DEFAULT_TOLERANCE,
                seed: int = 0, batch: int = 3, steps: int = 11,
                name: str = "model") -> VerificationReport:
    """Runs the source and the conversion on the same seeded random inputs; raises
    VerificationError if an output differs by more than `tolerance` (absolute)."""
    import onnx
    report = VerificationReport(tolerance=tolerance)
    layout1 = any(a.name == "layout" and onnx.helper.get_attribute_value(a) == 1
                  for n in model_proto.graph.node if n.op_type in ("LSTM", "GRU", "RNN")
                  for a in n.attribute)
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    if onnxruntime is None and not (layout1 and _reference_evaluator_covers(model_proto)):
        report.skipped = ("onnxruntime is not installed (pip install onnxruntime); the "
                          "conversion was not checked against it")
        return report
    report.reference = _describe_reference(model_proto, layout1)
    feeds, sizes = make_feeds(model_proto, signature, batch=batch, steps=steps, seed=seed)
    try:
        expected = _run_reference(model_proto, feeds, layout1)
    except Exception as exc:  # anything the reference runtime raises
        first_failure = first_line(exc)
        if (sizes["B"], sizes["T"]) == (1, 1):
            expected = None
        else:
            # torch's dynamo exporter specialises an example's size-1 axes even when they are
            # declared dynamic: such a graph runs only at batch 1 and one step
            sizes_tried = f"{sizes['B']} x {sizes['T']} steps"
            feeds, sizes = make_feeds(model_proto, signature, batch=1, steps=1, seed=seed)
            try:
                expected = _run_reference(model_proto, feeds, layout1)
                report.note = (f"the source graph itself fails to run at batch "
                               f"{sizes_tried}: its exporter fixed the example's size-1 "
                               f"axes; verified at batch 1 x 1 step (the converted model "
                               f"runs at any size)")
            except Exception:
                expected = None
        if expected is None:
            raise VerificationError(f"{name}: {report.reference} could not "
                                    f"run the source model ({first_failure}); convert with "
                                    f"verification off (--no-verify) to skip the check") \
                from None
    report.batch, report.steps = sizes["B"], sizes["T"]
    return report.compare(expected, run_signature(model, signature, feeds), name)
