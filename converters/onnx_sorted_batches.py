"""torch's pack_padded_sequence(enforce_sorted=False), undone before the graph walk.

torch.onnx.export writes a packed sequence whose lengths come in any order as a sort of the
batch by length and its undoing:

    sorted_lengths, order = TopK(lengths, k=batch)            (Casts around them)
    x_sorted = Gather(x, order, axis=batch)
    Y = LSTM(x_sorted, ..., sequence_lens=sorted_lengths)
    inverse = ScatterElements(zeros, order, Range(0, batch, 1), axis=0)
    y = Gather(Y', inverse, axis=batch)                      (also h_n, c_n when returned)

Every batch entry of a recurrent layer runs on its own, and lstmlite takes lengths in any
order, so gathering by `order` before and by its inverse after changes nothing but the
order the entries are computed in: the Gathers become Identities and the recurrent nodes read
the lengths as given. The rewrite needs the whole pattern: k the lengths' own count (so
`order` is a permutation of the whole batch); `order` read only by Gathers, by Shape and by
the ScatterElements that inverts it (updates Range(0, n, 1), so it is the inverse
permutation); the inverse read only by Gathers; and the sorted lengths only as recurrent
nodes' sequence_lens. Anything else is left for the converter to refuse. Verification runs
the original graph, with lengths in random order.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

from .onnx_loops import prune


def _aliases(name: str, consumers: Dict[str, list]) -> Set[str]:
    """`name` and every value that Casts (or Identities) of it give, transitively."""
    found, stack = set(), [name]
    while stack:
        value = stack.pop()
        if value in found:
            continue
        found.add(value)
        for node, _ in consumers.get(value, []):
            if node.op_type in ("Cast", "Identity"):
                stack.append(node.output[0])
    return found


def _uses(values: Set[str], consumers: Dict[str, list]) -> List[Tuple[object, int]]:
    """(node, input index) of every use of `values` by a node other than their Casts."""
    return [(node, index) for value in values for node, index in consumers.get(value, [])
            if not (node.op_type in ("Cast", "Identity") and node.output[0] in values)]


def _constant_scalar(graph, name: str, producer) -> Optional[float]:
    """The value of a one-element initializer or Constant node, else None."""
    import onnx
    from onnx import numpy_helper
    for tensor in graph.initializer:
        if tensor.name == name:
            array = numpy_helper.to_array(tensor)
            return float(array.reshape(-1)[0]) if array.size == 1 else None
    node = producer.get(name)
    if node is not None and node.op_type == "Constant":
        for attribute in node.attribute:
            if attribute.name == "value":
                array = numpy_helper.to_array(attribute.t)
                return float(array.reshape(-1)[0]) if array.size == 1 else None
            if attribute.name in ("value_int", "value_float"):
                return float(onnx.helper.get_attribute_value(attribute))
    return None


def _is_identity_range(graph, name: str, producer) -> bool:
    """`name` is Range(0, n, 1) for some n (through Casts)."""
    node = producer.get(name)
    while node is not None and node.op_type == "Cast":
        node = producer.get(node.input[0])
    return node is not None and node.op_type == "Range" and \
        _constant_scalar(graph, node.input[0], producer) == 0 and \
        _constant_scalar(graph, node.input[2], producer) == 1


def _is_whole_batch(graph, name: str, lengths: str, producer) -> bool:
    """`name` (TopK's k) is the lengths' own count: Gather(Shape(lengths), 0 or -1) of the
    lengths or of a Cast of them, through Casts, Unsqueezes and Reshapes; then the order TopK gives
    is a permutation of the whole batch."""
    node = producer.get(name)
    while node is not None and node.op_type in ("Cast", "Unsqueeze", "Reshape"):
        node = producer.get(node.input[0])
    # lengths are a vector: entry 0 (or -1, as torch writes it) of their shape is their count
    if node is None or node.op_type != "Gather" or \
            _constant_scalar(graph, node.input[1], producer) not in (0, -1):
        return False
    shape = producer.get(node.input[0])
    if shape is None or shape.op_type != "Shape":
        return False
    sources = {lengths}
    upstream = producer.get(lengths)
    while upstream is not None and upstream.op_type == "Cast":  # the lengths before their Casts
        sources.add(upstream.input[0])
        upstream = producer.get(upstream.input[0])
    return shape.input[0] in sources


def rewrite_sorted_batches(model_proto):
    """(model, notes): model_proto with each enforce_sorted=False sort and unsort removed
    (see the module docstring), unchanged (the same object) when there is none."""
    import onnx
    if not any(node.op_type == "TopK" for node in model_proto.graph.node):
        return model_proto, []
    model = onnx.ModelProto()
    model.CopyFrom(model_proto)
    graph = model.graph
    notes: List[str] = []
    for topk in [n for n in graph.node if n.op_type == "TopK"]:
        consumers: Dict[str, list] = {}
        for node in graph.node:
            for index, name in enumerate(node.input):
                if name:
                    consumers.setdefault(name, []).append((node, index))
        producer = {out: node for node in graph.node for out in node.output if out}
        graph_outputs = {o.name for o in graph.output}
        if len(topk.output) < 2 or len(topk.input) < 2 or \
                not _is_whole_batch(graph, topk.input[1], topk.input[0], producer):
            continue
        values, order = _aliases(topk.output[0], consumers), _aliases(topk.output[1], consumers)
        if (values | order) & graph_outputs:
            continue
        forward, inverses, ok = [], [], True
        for node, index in _uses(order, consumers):
            if node.op_type == "Gather" and index == 1:
                forward.append(node)
            elif node.op_type == "ScatterElements" and index == 1 and \
                    _is_identity_range(graph, node.input[2], producer):
                inverses.append(node)
            elif node.op_type != "Shape":
                ok = False
        lengths_uses = _uses(values, consumers)
        ok = ok and all(node.op_type in ("LSTM", "GRU", "RNN") and index == 4
                        for node, index in lengths_uses)
        backward = []
        for scatter in inverses:
            inverse = _aliases(scatter.output[0], consumers)
            uses = _uses(inverse, consumers)
            ok = ok and not inverse & graph_outputs and \
                all(node.op_type == "Gather" and index == 1 for node, index in uses)
            backward += [node for node, _ in uses]
        if not (ok and forward and backward and lengths_uses):
            continue
        for gather in forward + backward:  # a permutation and its inverse: no reordering
            gather.op_type = "Identity"
            del gather.input[1:]
            del gather.attribute[:]
        # the sorted lengths and their Casts become the lengths as given, with the same Casts
        for node, index in consumers[topk.output[0]]:
            node.input[index] = topk.input[0]
        notes.append(f"the TopK node {topk.name!r} sorts the batch by length and the Gathers "
                     f"{sorted(g.name for g in forward)} and "
                     f"{sorted(g.name for g in backward)} apply that order and undo it "
                     f"(pack_padded_sequence(enforce_sorted=False)): removed, the recurrent "
                     f"layers take the lengths in their given order")
    if not notes:
        return model_proto, []
    prune(graph)
    return model, notes

