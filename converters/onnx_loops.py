"""Recurrent cells that an exporter wrote as a Loop over the time steps, recognised and rewritten
as the one ONNX LSTM/GRU/RNN node they compute, before the graph converter reads the graph.

tf2onnx writes Keras' GRU and SimpleRNN, and LSTMs it cannot map onto ONNX's op (no bias, hard
sigmoid), as a Loop whose body reads step t of the time-major input (Gather(X, t)), multiplies
it and the carried state by loop-invariant kernels, and emits the new state as a scan output.
Recognition is by roles, then by numbers:

1. roles, from the body's wiring: the step counter (a carried value the body adds 1 to), the
   one Gather of an outer tensor at that counter (the input sequence), the carried states
   (carried values the body changes), the kernels (carried values passed through unchanged,
   fed by initializers), the scan output (the new h of every step);
2. the cell, from the kernels' shapes: (I, k H) and (H, k H) with k = 1, 3, 4 for RNN, GRU,
   LSTM, and a bias of k H or 2 k H (GRU's reset_after);
3. the activations and GRU's reset position, by evaluating the body (ONNX's reference
   evaluator) on random inputs and comparing it with each candidate cell in float64, Keras'
   formulas; the first within 1e-5 is taken, none is a refusal naming the loop.

The rewritten graph only feeds the graph converter: verification still runs the original
graph in onnxruntime, so a wrong recognition cannot pass. A Loop this module does not
recognise is left in place, and the converter refuses it saying what its body computes.
"""
import itertools
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lstmlite.errors import ConversionError

from .common import first_line
from .onnx_recurrent import LSTM_ENGINE_TO_ONNX, reorder_gates

MATCH_TOLERANCE = 1e-5
_PROBE_BATCH = 3
_HARD_SIGMOIDS = ((1.0 / 6.0, 0.5), (0.2, 0.5))  # Keras 3's (relu6(x + 3) / 6), tf_keras 2's


def _an(kind: str) -> str:
    return f"an {kind}" if kind in ("LSTM", "RNN") else f"a {kind}"


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _hard_sigmoid(alpha, beta):
    return lambda x: np.clip(alpha * x + beta, 0.0, 1.0)


# candidate activations: (ONNX name, alpha, beta, float64 function)
_GATE_ACTIVATIONS = [("Sigmoid", None, None, _sigmoid)] + \
    [("HardSigmoid", a, b, _hard_sigmoid(a, b)) for a, b in _HARD_SIGMOIDS]
_OUTPUT_ACTIVATIONS = [("Tanh", None, None, np.tanh),
                       ("Relu", None, None, lambda x: np.maximum(x, 0.0)),
                       ("Sigmoid", None, None, _sigmoid),
                       ("Affine", 1.0, 0.0, lambda x: x)]  # Keras' "linear"
_KIND_BY_GATES = {1: "RNN", 3: "GRU", 4: "LSTM"}


class _NotACell(Exception):
    """The loop is not a recurrent cell this module recognises (the converter then refuses
    it, describing the body); the message says which role was missing."""


def _attribute(onnx, node, name, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _nodes_computing(graph, names) -> Tuple[list, set]:
    """The nodes of graph that the values `names` depend on, in graph order, and every name
    they read (a subgraph's reads from the enclosing scope included)."""
    needed, keep = set(names), []
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            keep.append(node)
            needed.update(name for name in node.input if name)
            for attribute in node.attribute:
                for sub in ([attribute.g] if attribute.HasField("g") else []) + \
                        list(attribute.graphs):
                    needed.update(_outer_names(sub))
    return keep[::-1], needed


def _outer_names(body) -> List[str]:
    """Names the body reads from the enclosing graph."""
    local = {v.name for v in body.input} | {t.name for t in body.initializer} | \
        {out for node in body.node for out in node.output}
    return sorted({name for node in body.node for name in node.input
                   if name and name not in local})


class _LoopCell:
    """One top-level Loop's roles (see the module docstring), or _NotACell."""

    def __init__(self, onnx, graph, loop, source: str, opsets):
        self.onnx, self.graph, self.loop = onnx, graph, loop
        self.opsets = list(opsets)  # the model's, for the body evaluated on its own
        self.where = f"{source}: the Loop node {loop.name!r}"
        self.body = _attribute(onnx, loop, "body")
        if self.body is None:
            raise _NotACell("no body")
        body = self.body
        carried = len(loop.input) - 2
        if carried < 1 or len(body.input) != carried + 2 or len(body.output) < carried + 1:
            raise _NotACell("its inputs and body do not line up")
        self.carried_in = [v.name for v in body.input[2:]]
        self.carried_out = [v.name for v in body.output[1:1 + carried]]
        self.scan_out = [v.name for v in body.output[1 + carried:]]
        if len(self.scan_out) != 1:
            raise _NotACell(f"{len(self.scan_out)} scan outputs, not the one sequence of h")
        producer = {out: node for node in body.node for out in node.output}
        initializers = {t.name: t for t in graph.initializer}

        # the step counter: carried, and the body's next value of it is itself + 1
        counters = [j for j, (inp, out) in enumerate(zip(self.carried_in, self.carried_out))
                    if out in producer and producer[out].op_type == "Add"
                    and inp in producer[out].input]
        gathers = [node for node in body.node if node.op_type == "Gather"
                   and node.input[0] in _outer_names(body)]
        self.counter = next((j for j in counters
                             if any(g.input[1] == self.carried_in[j] for g in gathers)), None)
        if self.counter is None:
            raise _NotACell("no step counter that indexes an outer tensor")
        steps = [g for g in gathers if g.input[1] == self.carried_in[self.counter]]
        if len(steps) != 1:
            reads = ", ".join(sorted(g.input[0] for g in steps))
            raise ConversionError(
                f"{self.where} reads {len(steps)} tensors step by step ({reads}): the one "
                f"besides the sequence is a mask (Keras' Masking or mask_zero), which lstmlite "
                f"cannot express; remove the mask before exporting, or give sequence lengths "
                f"to Model.run instead")
        self.step_read = steps[0]
        self.sequence = self.step_read.input[0]  # (T, B, I), time-major
        # the nodes that compute the states and the scan output (not the loop condition)
        self.cell_nodes, _ = _nodes_computing(body, self.carried_out + self.scan_out)
        outer = {name for node in self.cell_nodes for name in node.input} & \
            set(_outer_names(body))
        if outer != {self.sequence}:
            raise _NotACell(f"the cell reads {sorted(outer)} from the enclosing graph")

        self.states, self.kernels = [], []
        for j, (inp, out) in enumerate(zip(self.carried_in, self.carried_out)):
            if j == self.counter:
                continue
            outer = loop.input[2 + j]
            if out == inp:
                if outer in initializers:
                    self.kernels.append(j)
                continue  # other pass-through values (the trip count) play no part
            self.states.append(j)
        if len(self.states) not in (1, 2):
            raise _NotACell(f"{len(self.states)} carried states")
        self.weights = {j: onnx.numpy_helper.to_array(initializers[loop.input[2 + j]])
                        for j in self.kernels}
        self.step_kernel = self._kernel_multiplying(self.step_read.output[0])
        if self.step_kernel is None:
            raise _NotACell("no kernel multiplies the step's input")
        W = self.weights[self.step_kernel]
        recurrent = [j for j in self.kernels if j != self.step_kernel
                     and self.weights[j].ndim == 2 and self.weights[j].shape[1] == W.shape[1]
                     and any(self.weights[j].shape[0] * k == W.shape[1] for k in (1, 3, 4))]
        if W.ndim != 2 or len(recurrent) != 1:
            raise _NotACell("no single recurrent kernel of the input kernel's width")
        self.recurrent_kernel = recurrent[0]
        U = self.weights[self.recurrent_kernel]
        self.hidden = U.shape[0]
        gates = W.shape[1] // self.hidden
        if W.shape[1] != gates * self.hidden or gates not in _KIND_BY_GATES:
            raise _NotACell(f"kernels {W.shape} and {U.shape} are no LSTM, GRU or RNN")
        self.kind = _KIND_BY_GATES[gates]
        if (self.kind == "LSTM") != (len(self.states) == 2):
            raise _NotACell(f"{len(self.states)} carried states for a {self.kind}")
        biases = [j for j in self.kernels if j not in (self.step_kernel, self.recurrent_kernel)]
        if len(biases) > 1:
            raise _NotACell("more than one bias")
        self.bias = self.weights[biases[0]] if biases else None
        if self.bias is not None and self.bias.size not in (W.shape[1], 2 * W.shape[1]):
            raise _NotACell(f"a bias of shape {self.bias.shape}")
        self.input_size = W.shape[0]
        # states must start at zero: the engine's initial state
        outer_producer = {out: node for node in graph.node for out in node.output}
        for j in self.states:
            if not self._is_zero(loop.input[2 + j], outer_producer, initializers):
                raise ConversionError(
                    f"{self.where} steps {_an(self.kind)} cell from an initial state "
                    f"{loop.input[2 + j]!r} that is not zeros; a converted model starts from "
                    f"zeros (give the state at run time: Stream.state = ..., or "
                    f"Model.run(X, initial_state=...))")

    def _kernel_multiplying(self, value: str) -> Optional[int]:
        for node in self.body.node:
            if node.op_type == "MatMul" and node.input[0] == value:
                for j in self.kernels:
                    if node.input[1] == self.carried_in[j]:
                        return j
        return None

    def _is_zero(self, name: str, producer, initializers) -> bool:
        """Whether the enclosing graph's value `name` is all zeros: a zero initializer, or
        zeros expanded or filled to a shape."""
        onnx = self.onnx
        if name in initializers:
            return not np.any(onnx.numpy_helper.to_array(initializers[name]))
        node = producer.get(name)
        if node is None:
            return False
        if node.op_type == "Expand" and node.input[0] in initializers:
            return not np.any(onnx.numpy_helper.to_array(initializers[node.input[0]]))
        if node.op_type == "ConstantOfShape":
            value = _attribute(onnx, node, "value")
            return value is None or not np.any(onnx.numpy_helper.to_array(value))
        return False

    # ---- the body, evaluated ----------------------------------------------------------

    def probe(self, rng) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
        """One step of the body from random x, h (and c): the inputs and the new states (and
        the scan output), by ONNX's reference evaluator."""
        onnx = self.onnx
        from onnx.reference import ReferenceEvaluator
        body = self.body
        graph_inputs = list(body.input) + [
            onnx.helper.make_tensor_value_info(self.sequence, onnx.TensorProto.FLOAT, None)]
        outputs = [body.output[1 + j] for j in self.states] + [body.output[-1]]
        probe_graph = onnx.helper.make_graph(self.cell_nodes, "loop_body_probe",
                                             graph_inputs, outputs, list(body.initializer))
        opsets = [onnx.helper.make_opsetid(o.domain, o.version) for o in self.opsets]
        probe_model = onnx.helper.make_model(probe_graph, opset_imports=opsets)
        x = rng.uniform(-2, 2, (1, _PROBE_BATCH, self.input_size))
        states = [rng.uniform(-1, 1, (_PROBE_BATCH, self.hidden)) for _ in self.states]
        feeds: Dict[str, Any] = {}
        for index, value in enumerate(body.input):
            dtype = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
            j = index - 2
            if index == 0:
                feeds[value.name] = np.array(0, dtype)
            elif index == 1:
                feeds[value.name] = np.array(True)
            elif j == self.counter:
                feeds[value.name] = np.array(0, dtype)
            elif j in self.states:
                feeds[value.name] = states[self.states.index(j)].astype(dtype)
            elif j in self.kernels:
                feeds[value.name] = self.weights[j].astype(dtype)
            else:  # the trip count and other pass-through values: one step
                feeds[value.name] = np.array(1, dtype)
        feeds[self.sequence] = x.astype(np.float32)
        results = ReferenceEvaluator(probe_model).run(None, feeds)
        by_name = dict(zip([o.name for o in outputs], results))
        new_states = [np.asarray(by_name[self.carried_out[j]], np.float64) for j in self.states]
        sequence_out = np.asarray(by_name[self.scan_out[0]], np.float64)
        inputs = {"x": x[0].astype(np.float32).astype(np.float64),
                  "states": [s.astype(np.float32).astype(np.float64) for s in states]}
        return inputs, {"states": new_states, "sequence": sequence_out}


def _keras_cell(kind, W, U, bias, x, states, gate, act, reset_after):
    """One step of Keras' cell in float64: (h, [c]) from x (B, I) and the states. Kernels are
    Keras' (I, k H) and (H, k H), gates in Keras' order (LSTM i f c o, GRU z r h)."""
    H = U.shape[0]
    if kind == "RNN":
        b = bias.reshape(-1) if bias is not None else 0.0
        return [act(x @ W + b + states[0] @ U)]
    if kind == "LSTM":
        h, c = states
        b = bias.reshape(-1) if bias is not None else 0.0
        z = x @ W + h @ U + b
        i, f, g, o = (z[:, k * H:(k + 1) * H] for k in range(4))
        c_new = gate(f) * c + gate(i) * act(g)
        return [gate(o) * act(c_new), c_new]
    h = states[0]
    if bias is None:
        b_in, b_rec = 0.0, 0.0
    elif bias.size == 2 * W.shape[1]:
        b_in, b_rec = bias.reshape(2, -1)
    else:
        b_in, b_rec = bias.reshape(-1), 0.0
    xs = x @ W + b_in
    if reset_after:
        hs = h @ U + b_rec
        z = gate(xs[:, :H] + hs[:, :H])
        r = gate(xs[:, H:2 * H] + hs[:, H:2 * H])
        candidate = act(xs[:, 2 * H:] + r * hs[:, 2 * H:])
    else:
        b_rec = np.zeros(3 * H) if np.ndim(b_rec) == 0 else b_rec
        z = gate(xs[:, :H] + h @ U[:, :H] + b_rec[:H])
        r = gate(xs[:, H:2 * H] + h @ U[:, H:2 * H] + b_rec[H:2 * H])
        candidate = act(xs[:, 2 * H:] + (r * h) @ U[:, 2 * H:] + b_rec[2 * H:])
    return [z * h + (1 - z) * candidate]


def _recognise(cell: _LoopCell, rng):
    """(gate activation, output activation, GRU reset_after, index of h among the states) of
    the first candidate within MATCH_TOLERANCE of the body, or None."""
    W, U = cell.weights[cell.step_kernel], cell.weights[cell.recurrent_kernel]
    W, U = W.astype(np.float64), U.astype(np.float64)
    bias = cell.bias.astype(np.float64) if cell.bias is not None else None
    inputs, outputs = cell.probe(rng)
    # LSTM: which carried state is h (the one the scan output repeats)
    h_index = 0
    if cell.kind == "LSTM":
        h_index = int(np.argmin([np.abs(s - outputs["sequence"].reshape(s.shape)).max()
                                 for s in outputs["states"]]))
    states = list(inputs["states"])
    if cell.kind == "LSTM" and h_index == 1:
        states = states[::-1]
    resets = [True, False] if cell.kind == "GRU" else [False]
    if cell.kind == "GRU" and bias is not None and bias.size == 2 * W.shape[1]:
        resets = [True]  # Keras' reset_after keeps an input and a recurrent bias
    gates = _GATE_ACTIVATIONS if cell.kind != "RNN" else [None]
    for gate, act, reset_after in itertools.product(gates, _OUTPUT_ACTIVATIONS, resets):
        new = _keras_cell(cell.kind, W, U, bias, inputs["x"], states,
                          gate[3] if gate else None, act[3], reset_after)
        if cell.kind == "LSTM" and h_index == 1:
            new = new[::-1]
        if all(np.abs(a - b).max() <= MATCH_TOLERANCE for a, b in zip(new, outputs["states"])):
            return gate, act, reset_after, h_index
    return None


def _onnx_node_weights(kind, W, U, bias):
    """ONNX's W (1, k H, I), R (1, k H, H), B (1, 2 k H) from Keras' kernels and bias."""
    H = U.shape[0]
    W, R = W.T[None], U.T[None]           # (1, k H, I), (1, k H, H)
    b_in = np.zeros(W.shape[1], np.float32)
    b_rec = np.zeros(W.shape[1], np.float32)
    if bias is not None:
        if bias.size == 2 * W.shape[1]:
            b_in, b_rec = bias.reshape(2, -1)
        else:
            b_in = bias.reshape(-1)
    if kind == "LSTM":  # Keras' i f c o is the engine's i f g o; ONNX's is i o f c
        W, R, b_in, b_rec = (reorder_gates(a, LSTM_ENGINE_TO_ONNX, H)
                             for a in (W, R, b_in, b_rec))
    B = np.concatenate([b_in, b_rec])[None]
    return W.astype(np.float32), R.astype(np.float32), B.astype(np.float32)


def rewrite_recurrent_loops(model_proto, source: str):
    """(model, notes, unrecognised): model_proto with every top-level Loop that steps a
    Keras-style cell replaced by the equivalent ONNX LSTM/GRU/RNN node (Squeezed to the Loop's
    outputs), unchanged (the same object) when there is none; a note per loop rewritten; and
    for each Loop left as it is, by name, the role it lacks (for the converter's refusal)."""
    import onnx
    loops = [n for n in model_proto.graph.node if n.op_type == "Loop"]
    unrecognised: Dict[str, str] = {}
    if not loops:
        return model_proto, [], unrecognised
    model = onnx.ModelProto()
    model.CopyFrom(model_proto)
    graph = model.graph
    notes: List[str] = []
    rng = np.random.default_rng(0)
    consumers = {name for node in graph.node for name in node.input} | \
        {o.name for o in graph.output}
    for loop in [n for n in graph.node if n.op_type == "Loop"]:
        try:
            cell = _LoopCell(onnx, graph, loop, source, model.opset_import)
        except _NotACell as reason:
            unrecognised[loop.name] = str(reason)
            continue
        try:
            found = _recognise(cell, rng)
        except Exception as exc:  # the evaluator's errors have no common base class
            raise ConversionError(
                f"{cell.where} looks like a {cell.kind} cell stepped over the sequence, but "
                f"its body does not evaluate on its own to be checked: "
                f"{first_line(exc)}") from None
        if found is None:
            raise ConversionError(
                f"{cell.where} steps a sequence with {cell.kind}-shaped kernels "
                f"({cell.weights[cell.step_kernel].shape}, "
                f"{cell.weights[cell.recurrent_kernel].shape}) but its body matches no "
                f"{cell.kind} cell lstmlite knows (Keras' formulas with sigmoid or hard "
                f"sigmoid gates and tanh, relu, sigmoid or linear activations, within "
                f"{MATCH_TOLERANCE:g})")
        gate, act, reset_after, h_index = found
        used = [out for out in loop.output if out in consumers]
        carried = len(loop.input) - 2
        allowed = {loop.output[carried]} | {loop.output[j] for j in cell.states}
        if set(used) - allowed:
            raise _refuse_outputs(cell, sorted(set(used) - allowed))
        _replace(onnx, graph, loop, cell, gate, act, reset_after, h_index)
        activations = [_describe_activation(p) for p in ([gate] if gate else []) + [act]]
        variant = (", reset_after" if reset_after else ", reset_before") \
            if cell.kind == "GRU" else ""
        notes.append(f"the Loop node {loop.name!r} steps a Keras {cell.kind} cell "
                     f"({' gates, '.join(activations)}{variant}, "
                     f"{'no bias' if cell.bias is None else 'with bias'}): converted as one "
                     f"{cell.kind} layer, its body checked against the cell to "
                     f"{MATCH_TOLERANCE:g}")
    if not notes:
        return model_proto, [], unrecognised
    prune(graph)
    return model, notes, unrecognised


def _describe_activation(candidate) -> str:
    name, alpha, beta = candidate[:3]
    if name == "Affine":
        return "linear"
    return f"{name}({alpha:.4g}, {beta:.4g})" if name == "HardSigmoid" else name


def _refuse_outputs(cell, names):
    return ConversionError(
        f"{cell.where} steps {_an(cell.kind)} cell, but the graph also reads its outputs "
        f"{names} (loop counters or kernels), which a recurrent layer does not give")


def _replace(onnx, graph, loop, cell, gate, act, reset_after, h_index):
    helper = onnx.helper
    W, U = cell.weights[cell.step_kernel], cell.weights[cell.recurrent_kernel]
    Wo, Ro, Bo = _onnx_node_weights(cell.kind, W, U, cell.bias)
    prefix = f"{loop.name or 'loop'}__cell"
    names = [f"{prefix}_W", f"{prefix}_R", f"{prefix}_B"]
    for name, value in zip(names, (Wo, Ro, Bo)):
        graph.initializer.append(onnx.numpy_helper.from_array(value, name))
    axes1, axes0 = f"{prefix}_axes1", f"{prefix}_axes0"
    graph.initializer.append(onnx.numpy_helper.from_array(np.array([1], np.int64), axes1))
    graph.initializer.append(onnx.numpy_helper.from_array(np.array([0], np.int64), axes0))
    # ONNX's f (gates), then g (and h for LSTM), each (name, alpha, beta, function)
    params = ([gate] if gate else []) + [act] * (2 if cell.kind == "LSTM" else 1)
    alphas = [p[1] for p in params if p[1] is not None]
    betas = [p[2] for p in params if p[2] is not None]
    attributes = {"hidden_size": int(cell.hidden), "activations": [p[0] for p in params]}
    if alphas:
        attributes["activation_alpha"] = [float(a) for a in alphas]
    if betas:
        attributes["activation_beta"] = [float(b) for b in betas]
    if cell.kind == "GRU":
        attributes["linear_before_reset"] = int(reset_after)
    Y, Y_h, Y_c = f"{prefix}_Y", f"{prefix}_Y_h", f"{prefix}_Y_c"
    outputs = [Y, Y_h] + ([Y_c] if cell.kind == "LSTM" else [])
    nodes = [helper.make_node(cell.kind, [cell.sequence, *names], outputs,
                              name=prefix, **attributes),
             helper.make_node("Squeeze", [Y, axes1], [loop.output[len(loop.input) - 2]],
                              name=f"{prefix}_sequence")]
    state_outputs = [Y_h, Y_c] if cell.kind == "LSTM" else [Y_h]
    if cell.kind == "LSTM" and h_index == 1:
        state_outputs = state_outputs[::-1]
    for k, j in enumerate(cell.states):
        nodes.append(helper.make_node("Squeeze", [state_outputs[k], axes0], [loop.output[j]],
                                      name=f"{prefix}_state{k}"))
    position = list(graph.node).index(loop)
    del graph.node[position]
    for offset, node in enumerate(nodes):
        graph.node.insert(position + offset, node)


def prune(graph):
    """Drops the nodes nothing downstream of the graph's outputs reads (the loop's trip count
    and condition), and initializers no node reads."""
    keep, needed = _nodes_computing(graph, [o.name for o in graph.output])
    del graph.node[:]
    graph.node.extend(keep)
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
