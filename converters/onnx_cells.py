"""One LSTM step written out as ops, recognised and rewritten as the ONNX LSTM node it computes,
before the graph converter reads the graph.

torch's exporters write nn.LSTMCell (and silero_vad_op18_ifless.onnx writes its decoder's
LSTM) as products and elementwise ops, with the state an input and an output of every call:

    gates = x W_ih^T + b_ih + h W_hh^T + b_hh        (Gemm, or MatMul and Add; two products)
    four blocks = Split(gates, 4)                     (the gates, in the exporter's order)
    c_new = sigmoid(f) * c + sigmoid(i) * tanh(g)     (Mul, Mul, Add)
    h_new = sigmoid(o) * tanh(c_new)                  (Tanh, Mul)

Recognition is by roles, then by numbers:

1. roles, from the wiring around a Split into four: the gate that goes through Tanh is g; the
   sigmoid that multiplies tanh(g) is i, the one that multiplies a value from outside the cell
   is f (that value is c), the one that multiplies tanh(c_new) is o; the two products' inputs
   are x and h, h being the one that comes (through Gather, Squeeze, Slice, ... only) from the
   same graph input as c, or, when that does not tell, the only one whose weight is (4H, H);
2. the numbers: the matched ops are evaluated by ONNX's reference evaluator on random x, h, c
   and compared with the LSTM formula on the weights read from them, in float64 (within 1e-5),
   so a cell with another activation, a peephole or a coupled gate is not taken for an LSTM.

The cell's ops are replaced by Unsqueeze -> LSTM (one step, initial_h = h, initial_c = c) ->
Squeeze to the same output names. The rewritten graph only feeds the graph converter:
verification still runs the original graph in onnxruntime.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from lstmlite.errors import ConversionError

from .common import first_line
from .onnx_recurrent import LSTM_ENGINE_TO_ONNX, reorder_gates

MATCH_TOLERANCE = 1e-5
#: ops a state value may pass through between a graph input and the cell
_LAYOUT = ("Gather", "Squeeze", "Unsqueeze", "Slice", "Identity", "Reshape", "Cast", "Flatten")


class _NotACell(Exception):
    pass


class _Ambiguous(_NotACell):
    """Wired like an LSTM step, but which product reads h cannot be told."""


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class _Graph:
    """Lookups over one graph: producers, consumers, constants."""

    def __init__(self, graph):
        from onnx import numpy_helper
        self.graph = graph
        self.producer = {out: node for node in graph.node for out in node.output if out}
        self.consumers: Dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in graph.output}
        self.constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        initializers = {i.name for i in graph.initializer}
        self.inputs = [v.name for v in graph.input if v.name not in initializers]

    def only_consumer(self, name: str, op: str):
        users = self.consumers.get(name, [])
        if len(users) != 1 or users[0].op_type != op or name in self.outputs:
            raise _NotACell(f"{name!r} is not read by one {op}")
        return users[0]

    def made_by(self, name: str, *ops: str):
        node = self.producer.get(name)
        if node is None or node.op_type not in ops:
            raise _NotACell(f"{name!r} is not made by {'/'.join(ops)}")
        return node

    def origin(self, name: str) -> Optional[str]:
        """The graph input a value is taken from by layout ops alone, or None."""
        for _ in range(32):
            if name in self.inputs:
                return name
            node = self.producer.get(name)
            if node is None or node.op_type not in _LAYOUT:
                return None
            name = node.input[0]
        return None


def _attributes(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _product(g: _Graph, name: str):
    """(input, weight (rows, in), bias or None, nodes) of v W^T + b written as Gemm, or MatMul
    with an optional Add of a constant."""
    node = g.made_by(name, "Gemm", "MatMul", "Add")
    if node.op_type == "Add":
        operands = list(node.input)
        constant = [n for n in operands if n in g.constants]
        if len(constant) != 1:
            raise _NotACell("an Add that is not a product plus a constant bias")
        inner = g.made_by([n for n in operands if n not in g.constants][0], "MatMul")
        v, w, _, nodes = _product(g, inner.output[0])
        return v, w, g.constants[constant[0]].reshape(-1), nodes + [node]
    if node.op_type == "MatMul":
        if node.input[1] not in g.constants:
            raise _NotACell("a MatMul by a computed weight")
        weight = g.constants[node.input[1]]
        if weight.ndim != 2:
            raise _NotACell("a MatMul weight that is not a matrix")
        return node.input[0], weight.T, None, [node]
    attrs = _attributes(node)
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or \
            attrs.get("beta", 1.0) != 1.0 or node.input[1] not in g.constants:
        raise _NotACell("a Gemm with transA, alpha, beta or a computed weight")
    weight = g.constants[node.input[1]]
    weight = weight if attrs.get("transB", 0) else weight.T
    bias = None
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in g.constants:
            raise _NotACell("a Gemm with a computed bias")
        bias = g.constants[node.input[2]].reshape(-1)
    return node.input[0], weight, bias, [node]


class _Cell:
    """The roles of one LSTM step written out as ops (see the module docstring)."""

    def __init__(self, g: _Graph, split):
        self.g = g
        outputs = [o for o in split.output]
        if split.op_type != "Split" or len(outputs) != 4 or not all(outputs):
            raise _NotACell("not a Split into four")
        axis = _attributes(split).get("axis", 0)
        if axis not in (1, -1):
            raise _NotACell("a Split along another axis than the features")
        gates_node = g.made_by(split.input[0], "Add")
        acts = [g.only_consumer(o, "Sigmoid") if g.consumers.get(o) and
                g.consumers[o][0].op_type == "Sigmoid" else g.only_consumer(o, "Tanh")
                for o in outputs]
        kinds = [a.op_type for a in acts]
        if kinds.count("Tanh") != 1:
            raise _NotACell("not three sigmoids and a tanh")
        g_index = kinds.index("Tanh")
        tanh_g = acts[g_index].output[0]
        sig = {k: acts[k].output[0] for k in range(4) if k != g_index}
        # i: the sigmoid multiplying tanh(g)
        mul_ig = g.only_consumer(tanh_g, "Mul")
        i_name = [n for n in mul_ig.input if n != tanh_g]
        i_index = next((k for k, v in sig.items() if [v] == i_name), None)
        if i_index is None:
            raise _NotACell("tanh(g) is not multiplied by a gate")
        c_new_node = g.only_consumer(mul_ig.output[0], "Add")
        other = [n for n in c_new_node.input if n != mul_ig.output[0]]
        mul_fc = g.made_by(other[0], "Mul") if len(other) == 1 else None
        if mul_fc is None:
            raise _NotACell("c_new is not a sum of two products")
        f_index = next((k for k, v in sig.items() if v in mul_fc.input and k != i_index), None)
        if f_index is None:
            raise _NotACell("the forget gate does not multiply c")
        c_in = [n for n in mul_fc.input if n != sig[f_index]]
        if len(c_in) != 1:
            raise _NotACell("f multiplies more than c")
        self.c = c_in[0]
        self.c_new = c_new_node.output[0]
        users = g.consumers.get(self.c_new, [])
        tanh_c = [u for u in users if u.op_type == "Tanh"]
        if len(tanh_c) != 1:
            raise _NotACell("c_new does not go through one tanh")
        mul_oh = g.only_consumer(tanh_c[0].output[0], "Mul")
        o_index = next((k for k, v in sig.items() if v in mul_oh.input and
                        k not in (i_index, f_index)), None)
        if o_index is None:
            raise _NotACell("tanh(c_new) is not multiplied by the last gate")
        self.h_new = mul_oh.output[0]
        self.order = (i_index, f_index, g_index, o_index)   # the split's gate positions
        # the two products
        products = [_product(g, name) for name in gates_node.input]
        self.nodes = [split, gates_node, *acts, mul_ig, mul_fc, c_new_node, tanh_c[0], mul_oh]
        for product in products:
            self.nodes += product[3]
        rows = {p[1].shape[0] for p in products}
        if len(rows) != 1 or rows.pop() % 4:
            raise _NotACell("the two products have other numbers of rows than 4 H")
        self.hidden = products[0][1].shape[0] // 4
        h_side = self._h_side(products)
        x_product, h_product = products[1 - h_side], products[h_side]
        self.x, self.w_ih, self.b_ih = x_product[0], x_product[1], x_product[2]
        self.h, self.w_hh, self.b_hh = h_product[0], h_product[1], h_product[2]
        if self.w_hh.shape != (4 * self.hidden, self.hidden):
            raise _NotACell("the recurrent weight is not (4 H, H)")
        # nothing outside the cell may read its intermediate values
        inside = {n.output[0] for n in self.nodes} - {self.h_new, self.c_new}
        for name in inside:
            readers = g.consumers.get(name, [])
            mine = {n.output[0] for n in self.nodes}
            if name in g.outputs or any(r.output[0] not in mine for r in readers):
                raise _NotACell(f"{name!r} is also read outside the cell")

    def _h_side(self, products) -> int:
        """Which product reads h: the one from the same graph input as c, else the only
        one with a square (4H, H) weight."""
        c_origin = self.g.origin(self.c)
        origins = [self.g.origin(p[0]) for p in products]
        if c_origin is not None and origins.count(c_origin) == 1:
            return origins.index(c_origin)
        square = [p[1].shape == (4 * self.hidden, self.hidden) for p in products]
        if square.count(True) == 1:
            return square.index(True)
        raise _Ambiguous(f"both products' weights are ({4 * self.hidden}, "
                         f"{self.hidden}) and neither input comes from the graph input c "
                         f"comes from, so which of {products[0][0]!r} and {products[1][0]!r} "
                         f"is h cannot be told")

    def gates_in_order(self, array: np.ndarray, order) -> np.ndarray:
        """The exporter's gate blocks (rows or bias) in the engine's i, f, g, o order."""
        blocks = np.split(array, 4, axis=0)
        return np.concatenate([blocks[k] for k in order], axis=0)


def _check_numbers(g: _Graph, cell: _Cell, model) -> float:
    """The matched ops on random x, h, c (ONNX's reference evaluator) against the LSTM
    formula on the weights read from them; returns the largest difference."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    H = cell.hidden
    I = cell.w_ih.shape[1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, I)).astype(np.float32)
    h = rng.standard_normal((3, H)).astype(np.float32)
    c = rng.standard_normal((3, H)).astype(np.float32)
    used = {n for node in cell.nodes for n in node.input if n in g.constants}
    order = {n.output[0]: k for k, n in enumerate(g.graph.node)}
    nodes = sorted(cell.nodes, key=lambda n: order[n.output[0]])
    names = {cell.x: x, cell.h: h, cell.c: c}
    if len(names) != 3:
        raise _NotACell("x, h and c are not three different values")
    probe = helper.make_graph(
        nodes, "cell", [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                        for n in names],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
         for n in (cell.h_new, cell.c_new)],
        [numpy_helper.from_array(g.constants[n], n) for n in used])
    probe_model = helper.make_model(probe, opset_imports=model.opset_import,
                                    ir_version=model.ir_version)
    got_h, got_c = ReferenceEvaluator(probe_model).run(None, names)
    w_ih, w_hh = cell.w_ih.astype(np.float64), cell.w_hh.astype(np.float64)
    gates = x @ w_ih.T + h @ w_hh.T
    for bias in (cell.b_ih, cell.b_hh):
        if bias is not None:
            gates = gates + bias
    blocks = np.split(gates, 4, axis=1)
    i_, f_, g_, o_ = (blocks[k] for k in cell.order)
    c_new = _sigmoid(f_) * c + _sigmoid(i_) * np.tanh(g_)
    h_new = _sigmoid(o_) * np.tanh(c_new)
    return float(max(np.abs(got_h - h_new).max(), np.abs(got_c - c_new).max()))


def _replacement(cell: _Cell, opset: int, tag: str):
    """(nodes, initializers) computing h_new and c_new with one ONNX LSTM node."""
    from onnx import helper, numpy_helper
    H = cell.hidden
    # the exporter's order -> the engine's i, f, g, o -> ONNX's i, o, f, c
    w = cell.gates_in_order(cell.w_ih, cell.order)[None]
    r = cell.gates_in_order(cell.w_hh, cell.order)[None]
    zero = np.zeros(4 * H, np.float32)
    b_ih = zero if cell.b_ih is None else cell.gates_in_order(cell.b_ih, cell.order)
    b_hh = zero if cell.b_hh is None else cell.gates_in_order(cell.b_hh, cell.order)
    W = reorder_gates(w.astype(np.float32), LSTM_ENGINE_TO_ONNX, H)
    R = reorder_gates(r.astype(np.float32), LSTM_ENGINE_TO_ONNX, H)
    B = np.concatenate([reorder_gates(b_ih.astype(np.float32), LSTM_ENGINE_TO_ONNX, H),
                        reorder_gates(b_hh.astype(np.float32), LSTM_ENGINE_TO_ONNX, H)])[None]
    inits = [numpy_helper.from_array(W, f"{tag}/W"), numpy_helper.from_array(R, f"{tag}/R"),
             numpy_helper.from_array(B, f"{tag}/B")]

    def axis_op(op, src, dst):
        if opset >= 13:
            return helper.make_node(op, [src, f"{tag}/axis0"], [dst], name=f"{tag}/{dst}")
        return helper.make_node(op, [src], [dst], axes=[0], name=f"{tag}/{dst}")
    if opset >= 13:
        inits.append(numpy_helper.from_array(np.array([0], np.int64), f"{tag}/axis0"))
    nodes = [axis_op("Unsqueeze", cell.x, f"{tag}/X"),
             axis_op("Unsqueeze", cell.h, f"{tag}/h0"),
             axis_op("Unsqueeze", cell.c, f"{tag}/c0"),
             helper.make_node("LSTM", [f"{tag}/X", f"{tag}/W", f"{tag}/R", f"{tag}/B", "",
                                       f"{tag}/h0", f"{tag}/c0"],
                              [f"{tag}/Y", f"{tag}/Y_h", f"{tag}/Y_c"], hidden_size=H,
                              name=f"{tag}/LSTM"),
             axis_op("Squeeze", f"{tag}/Y_h", cell.h_new),
             axis_op("Squeeze", f"{tag}/Y_c", cell.c_new)]
    return nodes, inits


def rewrite_lstm_cells(model_proto, source: str) -> Tuple[object, List[str]]:
    """(model, notes): model_proto with every top-level LSTM step written out as ops replaced
    by the ONNX LSTM node it computes, a note for each; the same object when there is none,
    or when the graph already has recurrent nodes (an exporter that writes one cell out
    writes them all so)."""
    import onnx
    if not any(n.op_type == "Split" for n in model_proto.graph.node) or \
            any(n.op_type in ("LSTM", "GRU", "RNN") for n in model_proto.graph.node):
        return model_proto, []
    opset = next((o.version for o in model_proto.opset_import if o.domain in ("", "ai.onnx")),
                 None)
    g = _Graph(model_proto.graph)
    cells = []
    for split in [n for n in model_proto.graph.node if n.op_type == "Split"]:
        try:
            cells.append(_Cell(g, split))
        except _Ambiguous as reason:
            raise ConversionError(
                f"{source}: the ops around Split {split.name!r} are wired like an LSTM step, "
                f"but {reason}: give the cell h and c from one state input (as silero-vad "
                f"and torch's stacked (2, B, H) states do), or an input size other than the "
                f"hidden size") from None
        except (_NotACell, KeyError, IndexError, ValueError):
            continue
    if not cells or opset is None:
        return model_proto, []
    model = onnx.ModelProto()
    model.CopyFrom(model_proto)
    graph = model.graph
    g = _Graph(graph)
    notes = []
    for number, found in enumerate(cells):
        cell = _Cell(g, next(n for n in graph.node if list(n.output) == list(found.nodes[0]
                                                                              .output)))
        try:
            error = _check_numbers(g, cell, model)
        except Exception as exc:  # the evaluator's errors have no common base class
            raise ConversionError(f"{source}: the ops around Split {found.nodes[0].name!r} look "
                                  f"like an LSTM step written out, but they do not evaluate on "
                                  f"their own to be checked: {first_line(exc)}") from None
        if not error <= MATCH_TOLERANCE:
            notes.append(f"the ops around Split {found.nodes[0].name!r} are wired like an LSTM "
                         f"step but compute something else (max difference {error:.2e} from "
                         f"the LSTM formula): left as they are")
            continue
        tag = f"lstm_cell_{number}"
        nodes, inits = _replacement(cell, opset, tag)
        removed = {n.output[0] for n in cell.nodes}   # node outputs are unique in a graph
        kept = [n for n in graph.node if n.output[0] not in removed]
        # the LSTM goes where the cell's last op was: everything it reads exists there
        position = max(k for k, n in enumerate(graph.node) if n.output[0] in removed)
        before = sum(1 for n in list(graph.node)[:position] if n.output[0] not in removed)
        kept[before:before] = nodes
        del graph.node[:]
        graph.node.extend(kept)
        graph.initializer.extend(inits)
        g = _Graph(graph)
        notes.append(f"the ops around Split {found.nodes[0].name!r} ({len(cell.nodes)} nodes: "
                     f"two products, Split, three Sigmoid, two Tanh, Mul and Add) compute one "
                     f"LSTM step with hidden size {cell.hidden}: converted as an LSTM node "
                     f"(checked against them on random inputs: max difference {error:.1e})")
    return model, notes
