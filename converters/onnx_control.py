"""Control flow fixed at conversion: graph inputs given constant values, and the If nodes
whose condition those values (or the graph's constants and static shapes) decide replaced by
the branch they take.

Silero VAD's graphs take the sample rate as an input `sr` and choose the 8 kHz or 16 kHz
network with `If(Equal(sr, 16000))`; a streaming model has one rate. `lstmlite convert
model.onnx --input sr=16000` (API: input_values={"sr": 16000}) makes `sr` a constant, folds the
condition with ONNX's reference evaluator, and puts the taken branch's nodes in the If's place
(nested Ifs in turn). The values are recorded in the signature ("fixed_inputs"); verification
feeds them to the original graph. An If whose condition still depends on a graph input is left
for the converter, which refuses it naming the input.
"""
from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lstmlite.errors import ConversionError

#: the constant part behind If conditions: at most this many elements per folded value
MAX_CONDITION_ELEMENTS = 1 << 20


def parse_input_values(items: Sequence[str]) -> Dict[str, Any]:
    """["sr=16000", "mode=[1, 2]"] -> {"sr": 16000, "mode": [1, 2]} (each value a JSON
    number or list of numbers); the CLI's --input."""
    values: Dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ConversionError(f"--input {item!r}: expected NAME=VALUE, e.g. sr=16000")
        try:
            value = json.loads(text)
        except ValueError:
            raise ConversionError(f"--input {item!r}: the value {text!r} is not a number or a "
                                  f"JSON list of numbers") from None
        if not _numeric(value):
            raise ConversionError(f"--input {item!r}: the value must be a number or a list of "
                                  f"numbers, not {text!r}")
        if name.strip() in values:
            raise ConversionError(f"--input {name.strip()!r} is given twice")
        values[name.strip()] = value
    return values


def parse_input_shapes(items: Sequence[str]) -> Dict[str, List[Any]]:
    """["input=?,576"] -> {"input": [None, 576]}: the CLI's --input-shape. A dimension is a
    positive integer (fixed) or ? (left as the graph has it: dynamic)."""
    shapes: Dict[str, List[Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise ConversionError(f"--input-shape {item!r}: expected NAME=DIMS, e.g. "
                                  f"input=?,576 (? leaves a dimension dynamic)")
        dims: List[Any] = []
        for part in text.split(","):
            part = part.strip()
            if part == "?":
                dims.append(None)
            elif part.isdigit() and int(part) > 0:
                dims.append(int(part))
            else:
                raise ConversionError(f"--input-shape {item!r}: dimension {part!r} is not a "
                                      f"positive integer or ?")
        if name in shapes:
            raise ConversionError(f"--input-shape {name!r} is given twice")
        shapes[name] = dims
    return shapes


def _fix_shapes(graph, shapes: Dict[str, List[Any]], source: str) -> Dict[str, List[Any]]:
    """Gives graph inputs the static dimensions asked for (a 16 kHz VAD's chunk of 576
    samples), so that shape inference makes the sizes after them static and the Ifs that
    test them (a frame count == 1) fold. Returns what was fixed, for the signature."""
    by_name = {v.name: v for v in graph.input}
    fixed = {}
    for name, dims in shapes.items():
        if name not in by_name:
            raise ConversionError(f"{source}: --input-shape {name}: the graph has no input of "
                                  f"that name; its inputs are "
                                  f"{', '.join(repr(v.name) for v in graph.input)}")
        tensor_type = by_name[name].type.tensor_type
        if not tensor_type.HasField("shape") or len(tensor_type.shape.dim) != len(dims):
            rank = len(tensor_type.shape.dim) if tensor_type.HasField("shape") else "unknown"
            raise ConversionError(f"{source}: --input-shape {name}: the graph input has rank "
                                  f"{rank}; {len(dims)} dimensions were given")
        for number, (dim, size) in enumerate(zip(tensor_type.shape.dim, dims)):
            if size is None:
                continue
            if dim.HasField("dim_value") and dim.dim_value != size:
                raise ConversionError(f"{source}: --input-shape {name}: dimension {number} is "
                                      f"{dim.dim_value} in the graph, not {size}")
            dim.Clear()
            dim.dim_value = size
        fixed[name] = list(dims)
    return fixed


def _numeric(value) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_numeric(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _constant_array(model, name: str, value: Any, source: str) -> np.ndarray:
    """value as the graph input `name` declares it: its element type (exactly: 16000 is a
    fine int64, 0.5 is not) and its shape (a single number fills any shape of one element)."""
    import onnx
    graph_input = next(v for v in model.graph.input if v.name == name)
    tensor_type = graph_input.type.tensor_type
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    given = np.asarray(value, dtype=np.float64)
    if dtype.kind not in "biuf":
        raise ConversionError(f"{source}: --input {name}: the graph input is of type {dtype}; "
                              f"lstmlite fixes numeric inputs only")
    array = given.astype(dtype)
    if not np.array_equal(array.astype(np.float64), given):
        raise ConversionError(f"{source}: --input {name}={json.dumps(value)}: the graph input "
                              f"is {dtype}, which cannot hold that value exactly")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in tensor_type.shape.dim] if tensor_type.HasField("shape") else None
    if dims is not None and array.ndim != len(dims):
        if array.size == 1 and all(d in (None, 1) for d in dims):
            array = array.reshape([1] * len(dims))
        else:
            raise ConversionError(f"{source}: --input {name}: the graph input has shape "
                                  f"{_show(dims)}; the value has shape {list(array.shape)}")
    if dims is not None and any(d is not None and d != n for d, n in zip(dims, array.shape)):
        raise ConversionError(f"{source}: --input {name}: the graph input has shape "
                              f"{_show(dims)}; the value has shape {list(array.shape)}")
    return array


def _show(dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def fix_inputs(model, values: Dict[str, Any], source: str,
               shapes: Optional[Dict[str, List[Any]]] = None) -> Tuple[Any, List[str], Dict,
                                                                     Dict]:
    """(a copy of model with each named graph input made a constant, the inputs in `shapes`
    given those static dimensions, and the If nodes those constants and shapes decide
    inlined; notes; the fixed values as JSON lists and the fixed shapes, for the
    signature)."""
    import onnx
    from onnx import numpy_helper
    initializers = {i.name for i in model.graph.initializer}
    inputs = [v.name for v in model.graph.input if v.name not in initializers]
    unknown = sorted(set(values) - set(inputs))
    if unknown:
        raise ConversionError(f"{source}: --input {unknown[0]}: the graph has no input of that "
                              f"name; its inputs are {', '.join(map(repr, inputs))}")
    if not values and not shapes and not any(n.op_type == "If" for n in model.graph.node):
        return model, [], {}, {}
    fixed_model = onnx.ModelProto()
    fixed_model.CopyFrom(model)
    graph = fixed_model.graph
    fixed_shapes = _fix_shapes(graph, shapes or {}, source)
    fixed = {}
    for name, value in values.items():
        array = _constant_array(model, name, value, source)
        kept = [v for v in graph.input if v.name != name]
        del graph.input[:]
        graph.input.extend(kept)
        graph.initializer.append(numpy_helper.from_array(array, name))
        fixed[name] = array.tolist()
    notes = []
    while True:
        taken = _inline_decided_ifs(graph, fixed_model, source)
        if not taken:
            break
        notes += taken
    if notes:
        _drop_unused(graph)
    return fixed_model, notes, fixed, fixed_shapes


def _drop_unused(graph) -> None:
    """Removes the nodes nothing reads any more (the conditions of the Ifs replaced), so the
    converter does not walk them."""
    while True:
        read = {v.name for v in graph.output}
        for node in graph.node:
            read.update(node.input)
            for attribute in node.attribute:
                for sub in ([attribute.g] if attribute.HasField("g") else []) + \
                        list(attribute.graphs):
                    read |= _names_in(sub)
        kept = [n for n in graph.node if any(o in read for o in n.output if o)]
        if len(kept) == len(graph.node):
            return
        del graph.node[:]
        graph.node.extend(kept)


def _inline_decided_ifs(graph, model, source: str) -> List[str]:
    """One pass: every top-level If whose condition folds to a constant is replaced by the
    branch it takes. Returns a note per If replaced."""
    import onnx
    notes = []
    known = _constants(graph, model, source)
    nodes = list(graph.node)
    for position in range(len(nodes) - 1, -1, -1):       # from the end: positions stay valid
        node = nodes[position]
        if node.op_type != "If" or node.domain not in ("", "ai.onnx") or \
                node.input[0] not in known:
            continue
        condition = np.asarray(known[node.input[0]])
        if condition.size != 1:
            raise ConversionError(f"{source}: If node {node.name!r}: its condition "
                                  f"{node.input[0]!r} has {condition.size} elements; an If "
                                  f"takes one")
        branch_name = "then_branch" if bool(condition.reshape(-1)[0]) else "else_branch"
        branch = next(onnx.helper.get_attribute_value(a) for a in node.attribute
                      if a.name == branch_name)
        replacement = _branch_nodes(graph, node, branch)
        nodes[position:position + 1] = replacement
        notes.append(f"If node {node.name!r}: its condition is a constant at conversion "
                     f"({bool(condition.reshape(-1)[0])}); kept its {branch_name} "
                     f"({len(branch.node)} nodes)")
    if notes:
        del graph.node[:]
        graph.node.extend(nodes)
    return notes


def _branch_nodes(graph, node, branch) -> list:
    """The branch's initializers moved into the graph, its nodes (names it defines renamed
    where the graph already uses them), and an Identity from each branch output to the
    If's output."""
    import onnx
    taken = _names_in(graph)
    defined = {i.name for i in branch.initializer} | \
        {out for n in branch.node for out in n.output if out}
    rename = {}
    for name in sorted(defined):
        if name in taken:
            fresh, k = f"{node.name}/{name}", 0
            while fresh in taken or fresh in defined:
                k += 1
                fresh = f"{node.name}/{name}_{k}"
            rename[name] = fresh
    for init in branch.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(init)
        copy.name = rename.get(init.name, init.name)
        graph.initializer.append(copy)
    out = []
    for inner in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(inner)
        _rename_node(copy, rename)
        out.append(copy)
    for branch_output, if_output in zip(branch.output, node.output):
        if if_output:
            out.append(onnx.helper.make_node(
                "Identity", [rename.get(branch_output.name, branch_output.name)], [if_output],
                name=f"{node.name}/output:{if_output}"))
    return out


def _rename_node(node, rename: Dict[str, str]) -> None:
    """Renames inputs and outputs, and the outer-scope names nested subgraphs read."""
    for k, name in enumerate(node.input):
        node.input[k] = rename.get(name, name)
    for k, name in enumerate(node.output):
        node.output[k] = rename.get(name, name)
    for attribute in node.attribute:
        for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
            for inner in sub.node:
                _rename_node(inner, rename)


def _names_in(graph) -> set:
    names = {v.name for v in graph.input} | {i.name for i in graph.initializer} | \
        {v.name for v in graph.output}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.HasField("g") else []) + \
                    list(attribute.graphs):
                names |= _names_in(sub)
    return names


def _constants(graph, model, source: str) -> Dict[str, np.ndarray]:
    """The values of everything the top-level If conditions are computed from, where that is
    constant: initializers and the nodes behind each condition, evaluated one at a time by
    ONNX's reference evaluator, each output bounded before it is computed."""
    from onnx import numpy_helper
    known = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    # what shape inference needs to see as constants (a Pad's pads computed from constants)
    for node in graph.node:
        _fold_node(node, model, known, f"{source}: node {node.name!r} ({node.op_type})",
                   refuse_large=False)
    shapes = _static_shapes(model, known)
    partial: Dict[str, list] = {}      # shape vectors with some dims known (None: dynamic)
    producer = {out: node for node in graph.node for out in node.output if out}
    wanted, stack = [], [n.input[0] for n in graph.node if n.op_type == "If" and n.input]
    seen = set()
    while stack:                                   # the nodes behind the conditions
        name = stack.pop()
        node = producer.get(name)
        if name in seen or node is None:
            continue
        seen.add(name)
        wanted.append(node)
        stack.extend(i for i in node.input if i)
    order = {id(node): k for k, node in enumerate(graph.node)}
    for node in sorted({id(n): n for n in wanted}.values(), key=lambda n: order[id(n)]):
        if all(o in known for o in node.output if o):
            continue                               # folded above
        if not _shape_of(node, shapes, known, partial):
            _fold_node(node, model, known, f"{source}: node {node.name!r} ({node.op_type})",
                       refuse_large=True)
    return known


def _fold_node(node, model, known: Dict[str, np.ndarray], where: str,
               refuse_large: bool) -> None:
    """Adds a node's outputs to `known` when all its inputs are known and it is a
    deterministic default-domain op without subgraphs, evaluated by ONNX's reference
    evaluator after its size is bounded: an output above MAX_CONDITION_ELEMENTS is refused
    (refuse_large) or left alone, as is an op whose size cannot be bounded or that fails (the
    converter reports those)."""
    import onnx
    from .onnx_values import RANDOM_OPS, _folded_elements, evaluate_node
    if node.domain not in ("", "ai.onnx") or node.op_type in RANDOM_OPS or any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute):
        return
    if not all((not i) or i in known for i in node.input):
        return
    inputs = [known[i] if i else None for i in node.input]
    try:
        elements = _folded_elements(node, inputs, where)
    except ConversionError:
        return
    if elements > MAX_CONDITION_ELEMENTS:
        if refuse_large:
            raise ConversionError(f"{where}: computing this If condition's input would "
                                  f"allocate {elements} elements (at most "
                                  f"{MAX_CONDITION_ELEMENTS})")
        return
    try:
        results = evaluate_node(model, node, {i: known[i] for i in node.input if i})
    except Exception:
        return
    known.update(zip([o for o in node.output if o], results))


def _static_shapes(model, known: Dict[str, np.ndarray]) -> Dict[str, list]:
    """name -> dims (int, or None where dynamic) for every value ONNX's shape inference
    types; {} where inference fails. Inference runs on a copy whose constant values (`known`:
    a Pad's pads computed from constants, as torch exports F.pad) are initializers, so that
    the sizes behind them are static too."""
    import onnx
    from onnx import numpy_helper
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    present = {i.name for i in graph.initializer}
    producers = {out for node in graph.node for out in node.output if out}
    graph.initializer.extend(numpy_helper.from_array(np.asarray(value), name)
                             for name, value in known.items()
                             if name not in present and name in producers)
    kept = [n for n in graph.node if not all(o in known for o in n.output if o)]
    del graph.node[:]
    graph.node.extend(kept)
    try:
        inferred = onnx.shape_inference.infer_shapes(copy)
    except Exception:
        return {}
    out = {}
    graph = inferred.graph
    for value in list(graph.value_info) + list(graph.input) + list(graph.output):
        tensor_type = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor_type.HasField("shape"):
            out[value.name] = [d.dim_value if d.HasField("dim_value") else None
                               for d in tensor_type.shape.dim]
    return out


def _shape_of(node, shapes, known, partial) -> bool:
    """Shape of a value whose static dims decide a condition (Shape(state)[0] is 2 whatever
    the batch), Gather from such a vector and Size of it (the rank) or of a value of static
    shape: evaluated from the inferred static shapes.
    Returns whether it handled the node."""
    if node.op_type == "Shape" and node.input[0] in shapes:
        attributes = {a.name: a.i for a in node.attribute}
        dims = shapes[node.input[0]]
        dims = dims[attributes.get("start", 0):attributes.get("end", len(dims)) or None] \
            if "end" in attributes else dims[attributes.get("start", 0):]
        if all(d is not None for d in dims):
            known[node.output[0]] = np.array(dims, dtype=np.int64)
        else:
            partial[node.output[0]] = dims
        return True
    if node.op_type == "Size" and node.input[0] in partial:
        # the length of a shape vector with dynamic entries: the rank (rnn.If in silero-vad
        # tests `state.dim() != 0` so)
        known[node.output[0]] = np.array(len(partial[node.input[0]]), dtype=np.int64)
        return True
    if node.op_type == "Size" and node.input[0] in shapes and \
            all(d is not None for d in shapes[node.input[0]]):
        known[node.output[0]] = np.array(math.prod(shapes[node.input[0]]), dtype=np.int64)
        return True
    if node.op_type == "Gather" and node.input[0] in partial and node.input[1] in known:
        dims, index = partial[node.input[0]], np.asarray(known[node.input[1]])
        picked = [dims[int(i)] for i in index.reshape(-1) if -len(dims) <= int(i) < len(dims)]
        if len(picked) == index.size and all(d is not None for d in picked):
            known[node.output[0]] = np.array(picked, dtype=np.int64).reshape(index.shape)
        return True
    return False


def dependencies(graph, name: str) -> Dict[str, str]:
    """The graph inputs a value is computed from: input name -> "value", or "shape" where
    every path from it passes through a Shape node (the value depends on its size only)."""
    initializers = {i.name for i in graph.initializer}
    inputs = [v.name for v in graph.input if v.name not in initializers]
    producer = {out: node for node in graph.node for out in node.output if out}
    found: Dict[str, str] = {}
    seen, stack = set(), [(name, False)]
    while stack:
        current, via_shape = stack.pop()
        if (current, via_shape) in seen:
            continue
        seen.add((current, via_shape))
        if current in inputs:
            if not via_shape or found.get(current) != "value":
                found[current] = "shape" if via_shape else "value"
        node = producer.get(current)
        if node is not None:
            shape = via_shape or node.op_type == "Shape"
            stack.extend((i, shape) for i in node.input if i)
    return {n: found[n] for n in inputs if n in found}
