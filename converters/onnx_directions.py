"""Two one-way recurrent nodes that are one bidirectional layer, merged before the graph walk.

tf2onnx writes a Keras Bidirectional layer whose cell it cannot map onto ONNX's bidirectional
op (a GRU or SimpleRNN, which it writes as Loops that onnx_loops.py turns into forward nodes)
as two forward nodes over the same sequence, the second reading it reversed:

    Y1 = GRU(S, W1, R1, B1)                      Y2 = GRU(ReverseSequence(S), W2, R2, B2)

which is exactly ONNX's bidirectional GRU(S, [W1; W2], [R1; R2], [B1; B2]) whose Y has the
forward direction at index 0 of its direction axis, and the reverse direction at index 1 in
the graph's own time order, so that Y2 = ReverseSequence(Y[:, 1]) and Y1 = Y[:, 0:1]. This
module makes that one node (the Slices and the ReverseSequence put the old values back for
their readers), so the walk sees a bidirectional layer and follows its two halves (joined at
every step, or as its final states: the forward direction's last step and the reverse
direction's first). Only pairs that match exactly are merged: the same op and attributes,
forward, constant weights, no lengths or initial states, the second node's input the first's
reversed over every step (time-major), its sequence output read only by the Squeeze that
drops its direction axis. Verification runs the original graph.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from .onnx_loops import prune

#: the attributes two nodes must agree on to be one layer's directions (all but direction)
_IGNORED = ("direction",)


def _attributes(onnx, node) -> Dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def merge_direction_pairs(model_proto):
    """(model, notes): model_proto with each forward/reversed pair of recurrent nodes merged
    into one bidirectional node (see the module docstring), unchanged when there is none."""
    import onnx
    graph = model_proto.graph
    if not any(n.op_type == "ReverseSequence" for n in graph.node):
        return model_proto, []
    model = onnx.ModelProto()
    model.CopyFrom(model_proto)
    graph = model.graph
    notes: List[str] = []
    while True:
        pair = _find_pair(onnx, graph)
        if pair is None:
            break
        forward, backward, reverse = pair
        _merge(onnx, graph, forward, backward, reverse)
        notes.append(f"the {forward.op_type} nodes {forward.name!r} and {backward.name!r} run "
                     f"over the same sequence, the second reversed: one bidirectional "
                     f"{forward.op_type} layer (as Keras' Bidirectional)")
    if not notes:
        return model_proto, []
    prune(graph)
    return model, notes


def _find_pair(onnx, graph):
    """(forward node, backward node, its ReverseSequence) of the first mergeable pair."""
    producer = {out: node for node in graph.node for out in node.output if out}
    constants = {t.name for t in graph.initializer}
    readers: Dict[str, list] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            readers.setdefault(name, []).append((node, index))
    outputs = {o.name for o in graph.output}
    recurrent = [n for n in graph.node if n.op_type in ("LSTM", "GRU", "RNN")]

    def plain(node) -> bool:
        attrs = _attributes(onnx, node)
        extra = [name for name in node.input[4:] if name]
        return attrs.get("direction", b"forward") in (b"forward", "forward") and \
            not attrs.get("layout", 0) and not extra and len(node.input) >= 3 and \
            all(name in constants for name in node.input[1:4] if name)

    for backward in recurrent:
        reverse = producer.get(backward.input[0])
        if reverse is None or reverse.op_type != "ReverseSequence" or not plain(backward):
            continue
        attrs = _attributes(onnx, reverse)
        if (attrs.get("time_axis", 0), attrs.get("batch_axis", 1)) != (0, 1):
            continue
        for forward in recurrent:
            if forward is backward or forward.op_type != backward.op_type or \
                    forward.input[0] != reverse.input[0] or not plain(forward):
                continue
            first = {k: v for k, v in _attributes(onnx, forward).items() if k not in _IGNORED}
            second = {k: v for k, v in _attributes(onnx, backward).items()
                      if k not in _IGNORED}
            if first != second or bool(forward.input[3:4] and forward.input[3]) != \
                    bool(backward.input[3:4] and backward.input[3]):
                continue
            y = backward.output[0] if backward.output else ""
            if y in outputs or not all(
                    node.op_type == "Squeeze" and index == 0 and
                    _squeezes_direction(onnx, graph, node)
                    for node, index in readers.get(y, [])):
                continue
            if any(out in outputs for out in forward.output[:1]):
                continue
            return forward, backward, reverse
    return None


def _squeezes_direction(onnx, graph, node) -> bool:
    """The Squeeze removes axis 1 (the direction axis of a recurrent node's Y) alone."""
    axes = _attributes(onnx, node).get("axes")
    if axes is None and len(node.input) > 1:
        tensor = next((t for t in graph.initializer if t.name == node.input[1]), None)
        axes = None if tensor is None else onnx.numpy_helper.to_array(tensor).tolist()
    return axes is not None and list(np.ravel(axes)) == [1]


def _merge(onnx, graph, forward, backward, reverse) -> None:
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    tensors = {t.name: t for t in graph.initializer}
    prefix = f"{forward.name or 'rnn'}__bidirectional"

    def constant(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    inputs = [forward.input[0]]
    for slot, role in ((1, "W"), (2, "R"), (3, "B")):
        names = [node.input[slot] if len(node.input) > slot else "" for node in
                 (forward, backward)]
        if not all(names):
            inputs.append("")
            continue
        arrays = [numpy_helper.to_array(tensors[name]) for name in names]
        inputs.append(constant(f"{prefix}_{role}", np.concatenate(arrays, axis=0)))
    while inputs and not inputs[-1]:
        inputs.pop()
    attrs = _attributes(onnx, forward)
    attrs["direction"] = "bidirectional"
    for key in ("activations", "activation_alpha", "activation_beta"):
        if key in attrs:  # one list per direction, forward then reverse
            attrs[key] = list(attrs[key]) * 2
    count = len(forward.output)
    merged_outputs = [f"{prefix}_out{k}" for k in range(count)]
    merged = helper.make_node(forward.op_type, inputs, merged_outputs, name=prefix, **attrs)

    def axis_const(tag: str, values) -> str:
        return constant(f"{prefix}_{tag}", np.array(values, dtype=np.int64))

    starts0, starts1 = axis_const("start0", [0]), axis_const("start1", [1])
    ends1, ends2 = axis_const("end1", [1]), axis_const("end2", [2])
    along1, along0 = axis_const("axis1", [1]), axis_const("axis0", [0])
    # the forward node's outputs: index 0 of the direction axis (axis 1 of Y, 0 of Y_h, Y_c)
    forward_nodes = [helper.make_node("Slice", [merged_outputs[k], starts0, ends1,
                                                along1 if k == 0 else along0],
                                      [forward.output[k]], name=f"{prefix}_forward{k}")
                     for k in range(count) if forward.output[k]]
    # the backward node's: index 1, its sequence put back in the order it had
    backward_nodes = []
    for k in range(count):
        if not backward.output[k]:
            continue
        backward_nodes.append(helper.make_node(
            "Slice", [merged_outputs[k], starts1, ends2, along1 if k == 0 else along0],
            [backward.output[k] if k else f"{prefix}_reverse_y"], name=f"{prefix}_reverse{k}"))
    if backward.output[0]:
        readers = [n for n in graph.node if backward.output[0] in n.input]
        for squeeze in readers:  # Squeeze(Y2, 1) -> ReverseSequence(Squeeze(Y[:, 1:2], 1))
            squeezed = squeeze.output[0]
            squeeze.input[0] = f"{prefix}_reverse_y"
            squeeze.output[0] = f"{squeezed}__in_merged_order"
            position = list(graph.node).index(squeeze)
            graph.node.insert(position + 1, helper.make_node(
                "ReverseSequence", [squeeze.output[0], reverse.input[1]], [squeezed],
                name=f"{squeeze.name}__reversed", time_axis=0, batch_axis=1))
    position = list(graph.node).index(forward)
    graph.node.remove(forward)
    for offset, node in enumerate([merged] + forward_nodes):
        graph.node.insert(position + offset, node)
    position = list(graph.node).index(backward)
    graph.node.remove(backward)
    for offset, node in enumerate(backward_nodes):
        graph.node.insert(position + offset, node)
