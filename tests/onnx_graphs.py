"""Hand-built ONNX graphs around one recurrent node, for attribute-by-attribute tests."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def recurrent_model(op: str = "LSTM", *, input_size: int = 5, hidden: int = 7,
                    direction: str = "forward", layout: int = 0, opset: int = 22,
                    attributes: Optional[Dict] = None, bias: bool = True,
                    peepholes: bool = False, state_inputs: bool = False,
                    lengths_input: bool = False, outputs: Sequence[str] = ("Y", "Y_h"),
                    seed: int = 0, scale: float = 0.5, batch="B", time="T",
                    ir_version: int = 8) -> onnx.ModelProto:
    """One LSTM/GRU/RNN node. Weights are initializers; X, initial states and sequence
    lengths are graph inputs with dynamic time and batch."""
    rng = np.random.default_rng(seed)
    D = 2 if direction == "bidirectional" else 1
    G = GATES[op]
    inits = [numpy_helper.from_array((scale * rng.standard_normal((D, G * hidden, input_size))
                                      ).astype(np.float32), "W"),
             numpy_helper.from_array((scale * rng.standard_normal((D, G * hidden, hidden))
                                      ).astype(np.float32), "R")]
    inputs = ["X", "W", "R", "", "", "", "", ""]
    if bias:
        inits.append(numpy_helper.from_array(
            (scale * rng.standard_normal((D, 2 * G * hidden))).astype(np.float32), "B"))
        inputs[3] = "B"
    x_shape = [time, batch, input_size] if layout == 0 else [batch, time, input_size]
    state_shape = [D, batch, hidden] if layout == 0 else [batch, D, hidden]
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)]
    if lengths_input:
        graph_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32,
                                                          [batch]))
        inputs[4] = "sequence_lens"
    if state_inputs:
        graph_inputs.append(helper.make_tensor_value_info("initial_h", TensorProto.FLOAT,
                                                          state_shape))
        inputs[5] = "initial_h"
        if op == "LSTM":
            graph_inputs.append(helper.make_tensor_value_info("initial_c", TensorProto.FLOAT,
                                                              state_shape))
            inputs[6] = "initial_c"
    if peepholes:
        inits.append(numpy_helper.from_array(
            (scale * rng.standard_normal((D, 3 * hidden))).astype(np.float32), "P"))
        inputs[7] = "P"
    while inputs and inputs[-1] == "":
        inputs.pop()
    attrs = dict(hidden_size=hidden, direction=direction)
    if opset >= 14:
        attrs["layout"] = layout
    attrs.update(attributes or {})
    out_names = ["Y", "Y_h", "Y_c"][:3 if op == "LSTM" else 2]
    node_outputs = [name if name in outputs else "" for name in out_names]
    while node_outputs and node_outputs[-1] == "":
        node_outputs.pop()
    node = helper.make_node(op, inputs, node_outputs, name=f"{op.lower()}_node", **attrs)
    shapes = {"Y": [time, D, batch, hidden] if layout == 0 else [batch, time, D, hidden],
              "Y_h": state_shape, "Y_c": state_shape}
    graph_outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shapes[name])
                     for name in outputs]
    graph = helper.make_graph([node], f"{op}_graph", graph_inputs, graph_outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=ir_version, producer_name="lstmlite-tests")


def chain_model(nodes, inputs, outputs, initializers, opset: int = 17,
                ir_version: int = 8) -> onnx.ModelProto:
    """A model from nodes; inputs/outputs are (name, shape) pairs, float32 unless the
    shape is given as (name, shape, elem_type)."""
    def info(entry):
        name, shape = entry[0], entry[1]
        elem = entry[2] if len(entry) > 2 else TensorProto.FLOAT
        return helper.make_tensor_value_info(name, elem, shape)
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()]
    graph = helper.make_graph(nodes, "chain", [info(i) for i in inputs],
                              [info(o) for o in outputs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=ir_version)


def keras_style_lstm(cell: str = "LSTM", last_step: bool = True, seed: int = 0,
                     features: int = 5, hidden: int = 6,
                     slice_end: int = 2 ** 31 - 1) -> onnx.ModelProto:
    """What tf2onnx makes of a Keras LSTM/GRU layer (batch-major input, time-major node):
    Transpose, zero initial state from Shape/Gather/Concat/ConstantOfShape, Keras' bias in
    Wb with Rb zero (GRU reset_after=True keeps both), hard-sigmoid recurrent activation for
    Keras 2 models (alpha 0.2, beta 0.5), Squeeze of the direction axis, Transpose back, and
    for return_sequences=False a Slice of the last step, [-1:INT32_MAX] as tf2onnx writes
    it (slice_end)."""
    rng = np.random.default_rng(seed)
    G = 4 if cell == "LSTM" else 3
    W = (0.4 * rng.standard_normal((1, G * hidden, features))).astype(np.float32)
    R = (0.4 * rng.standard_normal((1, G * hidden, hidden))).astype(np.float32)
    Wb = (0.4 * rng.standard_normal((1, G * hidden))).astype(np.float32)
    Rb = np.zeros_like(Wb) if cell == "LSTM" else \
        (0.4 * rng.standard_normal((1, G * hidden))).astype(np.float32)
    inits = {"W": W, "R": R, "B": np.concatenate([Wb, Rb], axis=1),
             "perm_axes": np.array([0], dtype=np.int64),
             "one": np.array([1], dtype=np.int64), "hid": np.array([hidden], dtype=np.int64),
             "sq1": np.array([1], dtype=np.int64), "starts": np.array([-1], dtype=np.int64),
             "ends": np.array([slice_end], dtype=np.int64), "axis1": np.array([1], dtype=np.int64)}
    acts = ["HardSigmoid", "Tanh", "Tanh"] if cell == "LSTM" else ["HardSigmoid", "Tanh"]
    extra = {"linear_before_reset": 1} if cell == "GRU" else {}
    state_inputs = ["zeros"] + (["zeros"] if cell == "LSTM" else [])
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2], name="transpose_in"),
        helper.make_node("Shape", ["x"], ["x_shape"], name="shape"),
        helper.make_node("Gather", ["x_shape", "perm_axes"], ["batch"], axis=0, name="batch"),
        helper.make_node("Concat", ["one", "batch", "hid"], ["state_shape"], axis=0,
                         name="state_shape"),
        helper.make_node("ConstantOfShape", ["state_shape"], ["zeros"], name="zeros",
                         value=numpy_helper.from_array(np.zeros(1, np.float32))),
        helper.make_node(cell, ["x_tm", "W", "R", "B", ""] + state_inputs,
                         ["y"], name="keras_" + cell.lower(), hidden_size=hidden,
                         activations=acts, activation_alpha=[0.2], activation_beta=[0.5],
                         direction="forward", **extra),
        helper.make_node("Squeeze", ["y", "sq1"], ["y3"], name="squeeze_dir"),
        helper.make_node("Transpose", ["y3"], ["y_bm"], perm=[1, 0, 2], name="transpose_out"),
    ]
    out = "y_bm"
    if last_step:
        nodes += [helper.make_node("Slice", ["y_bm", "starts", "ends", "axis1"], ["last3"],
                                   name="last_step"),
                  helper.make_node("Squeeze", ["last3", "axis1"], ["last"], name="squeeze_t")]
        out = "last"
    shape = ["B", hidden] if last_step else ["B", "T", hidden]
    return chain_model(nodes, [("x", ["B", "T", features])], [(out, shape)], inits,
                       opset=14)


def keras_loop_model(cell: str = "GRU", *, input_size: int = 5, hidden: int = 6,
                     activation: str = "Tanh", gate: str = "Sigmoid",
                     hard_sigmoid=(0.2, 0.5), bias: bool = True, reset_after: bool = True,
                     initial_state: str = "zeros", states_c_first: bool = False,
                     mask: bool = False, extra_mul: bool = False, seed: int = 0):
    """What tf2onnx makes of a Keras GRU/SimpleRNN (and a bias-free or hard-sigmoid LSTM): a
    Loop over the time steps of the time-major input. The body reads step t by Gather(X, t),
    multiplies it and the carried state by the kernels (carried through unchanged), applies
    Keras' cell (gates in Keras' order: LSTM i f c o, GRU z r h) and emits the new h as the
    scan output; the condition is recomputed from the trip count read from outside, as
    tf2onnx does. Options make variants: activations (Tanh, Relu, Sigmoid, or Identity for
    "linear"; gate Sigmoid or HardSigmoid written as Mul, Add, Clip), GRU's reset_after, no
    bias, LSTM's carried (c, h) instead of (h, c), an initial state that is not zeros, a
    second per-step Gather (a mask), and an extra Mul that no cell has. Input x (B, T, I),
    output y (B, T, H)."""
    rng = np.random.default_rng(seed)
    k = GATES[cell]
    I, H = input_size, hidden
    inits: Dict[str, np.ndarray] = {
        "kernel": rng.uniform(-0.5, 0.5, (I, k * H)).astype(np.float32),
        "recurrent": rng.uniform(-0.5, 0.5, (H, k * H)).astype(np.float32),
        "one": np.array(1, np.int64), "zero": np.array(0, np.int64),
        "zero_f": np.array(0.0 if initial_state == "zeros" else 0.25, np.float32),
        "axes0": np.array([0], np.int64), "hidden_dim": np.array([H], np.int64),
        "true": np.array(True)}
    names = ["kernel", "recurrent"]
    if bias:
        shape = (2, k * H) if cell == "GRU" and reset_after else (k * H,)
        inits["bias"] = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
        names.append("bias")
    n = helper.make_node
    body_init: Dict[str, np.ndarray] = {"b_one": np.array(1, np.int64),
                                        "b_onef": np.array(1.0, np.float32),
                                        "alpha": np.array(hard_sigmoid[0], np.float32),
                                        "beta": np.array(hard_sigmoid[1], np.float32),
                                        "two": np.array(2.0, np.float32),
                                        "clip_lo": np.array(0.0, np.float32),
                                        "clip_hi": np.array(1.0, np.float32)}
    nodes = [n("Gather", ["X", "t"], ["x_t"])]
    if mask:
        nodes.append(n("Gather", ["M", "t"], ["m_t"]))
    fresh = iter(range(1000))

    def apply(kind, value):
        out = f"a{next(fresh)}"
        if kind == "HardSigmoid":
            nodes.extend([n("Mul", [value, "alpha"], [out + "m"]),
                          n("Add", [out + "m", "beta"], [out + "a"]),
                          n("Clip", [out + "a", "clip_lo", "clip_hi"], [out])])
        else:
            nodes.append(n(kind, [value], [out]))
        return out

    def split(value, parts):
        outs = [f"s{next(fresh)}" for _ in range(parts)]
        nodes.append(n("Split", [value], outs, axis=-1, num_outputs=parts) if parts > 1
                     else n("Identity", [value], outs))
        return outs

    nodes.append(n("MatMul", ["x_t", "k_in"], ["xw"]))
    xs = "xw"
    if bias and not (cell == "GRU" and reset_after):
        nodes.append(n("Add", ["xw", "b_in"], ["xwb"]))
        xs = "xwb"
    if cell == "RNN":
        nodes.extend([n("MatMul", ["h", "r_in"], ["hu"]), n("Add", [xs, "hu"], ["pre"])])
        new_h = apply(activation, "pre")
        new_states = [new_h]
    elif cell == "LSTM":
        nodes.extend([n("MatMul", ["h", "r_in"], ["hu"]), n("Add", [xs, "hu"], ["z"])])
        i, f, g, o = split("z", 4)
        i, f, o = apply(gate, i), apply(gate, f), apply(gate, o)
        g = apply(activation, g)
        nodes.extend([n("Mul", [f, "c"], ["fc"]), n("Mul", [i, g], ["ig"]),
                      n("Add", ["fc", "ig"], ["c_new"])])
        new_h = "h_new"
        nodes.append(n("Mul", [o, apply(activation, "c_new")], [new_h]))
        new_states = [new_h, "c_new"]
    else:
        if bias and reset_after:
            nodes.extend([n("Gather", ["b_in", "zero_i"], ["b_x"]),
                          n("Gather", ["b_in", "b_one"], ["b_h"]),
                          n("Add", ["xw", "b_x"], ["xwb"])])
            body_init["zero_i"] = np.array(0, np.int64)
            xs = "xwb"
        xz, xr, xh = split(xs, 3)
        if reset_after:
            nodes.append(n("MatMul", ["h", "r_in"], ["hu"]))
            hs = "hu"
            if bias:
                nodes.append(n("Add", ["hu", "b_h"], ["hub"]))
                hs = "hub"
            hz, hr, hh = split(hs, 3)
            nodes.extend([n("Add", [xz, hz], ["zp"]), n("Add", [xr, hr], ["rp"])])
            z, r = apply(gate, "zp"), apply(gate, "rp")
            nodes.extend([n("Mul", [r, hh], ["rhh"]), n("Add", [xh, "rhh"], ["np_"])])
        else:
            nodes.extend([n("Slice", ["r_in", "st0", "en0", "ax1"], ["u_zr"]),
                          n("Slice", ["r_in", "en0", "en1", "ax1"], ["u_h"])])
            body_init.update(st0=np.array([0], np.int64), en0=np.array([2 * H], np.int64),
                             en1=np.array([3 * H], np.int64), ax1=np.array([1], np.int64))
            nodes.append(n("MatMul", ["h", "u_zr"], ["hzr"]))
            hz, hr = split("hzr", 2)
            nodes.extend([n("Add", [xz, hz], ["zp"]), n("Add", [xr, hr], ["rp"])])
            z, r = apply(gate, "zp"), apply(gate, "rp")
            nodes.extend([n("Mul", [r, "h"], ["rh"]), n("MatMul", ["rh", "u_h"], ["rhu"]),
                          n("Add", [xh, "rhu"], ["np_"])])
        candidate = apply(activation, "np_")
        nodes.extend([n("Sub", ["b_onef", z], ["one_z"]), n("Mul", ["one_z", candidate], ["a"]),
                      n("Mul", [z, "h"], ["b"]), n("Add", ["a", "b"], ["h_new"])])
        new_states = ["h_new"]
    if extra_mul:
        nodes.append(n("Mul", [new_states[0], "two"], ["h_twice"]))
        new_states[0] = "h_twice"
    if mask:
        nodes.append(n("Mul", [new_states[0], "m_t"], ["h_masked"]))
        new_states[0] = "h_masked"
    nodes.extend([n("Add", ["t", "b_one"], ["t_next"]),
                  n("Less", ["t_next", "trip_outer"], ["cond_out"]),
                  n("Identity", [new_states[0]], ["y_t"])])

    def vi(name, elem=TensorProto.FLOAT, shape=None):
        return helper.make_tensor_value_info(name, elem, shape)
    states = [("h", "h0", new_states[0])] + ([("c", "c0", new_states[1])]
                                             if cell == "LSTM" else [])
    if states_c_first:
        states = states[::-1]
    carried = [("t", "zero", "t_next", TensorProto.INT64)] + \
        [(a, b, c, TensorProto.FLOAT) for a, b, c in states] + \
        [(w, w_outer, w, TensorProto.FLOAT) for w, w_outer in
         zip(["k_in", "r_in", "b_in"][:len(names)], names)]
    used = {name for node in nodes for name in node.input}
    body = helper.make_graph(
        nodes, "body",
        [vi("iter", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, [])] +
        [vi(name, elem) for name, _, _, elem in carried],
        [vi("cond_out", TensorProto.BOOL, [])] +
        [vi(name if name in ("k_in", "r_in", "b_in") else out, elem)
         for name, _, out, elem in carried] + [vi("y_t")],
        [numpy_helper.from_array(v, k) for k, v in body_init.items() if k in used])
    outer = [n("Transpose", ["x"], ["X"], perm=[1, 0, 2]),
             n("Shape", ["X"], ["x_shape"]),
             n("Gather", ["x_shape", "zero"], ["trip_outer"]),
             n("Gather", ["x_shape", "one"], ["batch"]),
             n("Unsqueeze", ["batch", "axes0"], ["batch1"]),
             n("Concat", ["batch1", "hidden_dim"], ["state_shape"], axis=0),
             n("Expand", ["zero_f", "state_shape"], ["h0"]),
             n("Expand", ["zero_f", "state_shape"], ["c0"])]
    inputs = [("x", ["B", "T", I])]
    if mask:
        outer.append(n("Transpose", ["mask"], ["M"], perm=[1, 0, 2]))
        inputs.append(("mask", ["B", "T", 1]))
    loop_inputs = ["trip_outer", "true"] + [outer_name for _, outer_name, _, _ in carried]
    loop_outputs = [f"final_{name}" for name, _, _, _ in carried] + ["ys"]
    outer.append(n("Loop", loop_inputs, loop_outputs, body=body, name="keras_while"))
    outer.append(n("Transpose", ["ys"], ["y"], perm=[1, 0, 2]))
    return chain_model(outer, inputs, [("y", ["B", "T", H])], inits, opset=18)


def keras_go_backwards_model(*, return_sequences: bool = False, stacked: bool = False,
                             dense: int = 0, input_size: int = 5, hidden: int = 6,
                             seed: int = 0):
    """What tf2onnx makes of Keras' LSTM(go_backwards=True): the time-major input reversed
    by ReverseSequence over every step (sequence_lens = Expand(T, [B]) of the input's shape),
    then a forward LSTM node; with return_sequences=False its last step (Slice [-1:INT32_MAX]),
    else every step, still in reversed order (Keras does not put them back). stacked: a
    second forward LSTM reads the first's reversed-order sequence; dense: a Dense of that
    many units after it. Input x (B, T, I)."""
    rng = np.random.default_rng(seed)
    n = helper.make_node
    inits: Dict[str, np.ndarray] = {"axes0": np.array([0], np.int64),
                                    "axes1": np.array([1], np.int64),
                                    "minus1": np.array([-1], np.int64),
                                    "int32_max": np.array([2147483647], np.int64)}
    nodes = [n("Transpose", ["x"], ["X"], perm=[1, 0, 2]),
             n("Shape", ["X"], ["shape"]),
             n("Gather", ["shape", "axes0"], ["T"]),
             n("Gather", ["shape", "axes1"], ["B"]),
             n("Expand", ["T", "B"], ["lengths"]),
             n("ReverseSequence", ["X", "lengths"], ["X_reversed"], batch_axis=1,
               time_axis=0)]
    current, size = "X_reversed", input_size
    for number in range(2 if stacked else 1):
        for name, shape in (("W", (1, 4 * hidden, size)), ("R", (1, 4 * hidden, hidden)),
                            ("B", (1, 8 * hidden))):
            inits[f"{name}{number}"] = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
        nodes += [n("LSTM", [current, f"W{number}", f"R{number}", f"B{number}"],
                    [f"Y{number}", "", ""], hidden_size=hidden),
                  n("Squeeze", [f"Y{number}", "axes1"], [f"seq{number}"])]
        current, size = f"seq{number}", hidden
    if return_sequences:
        nodes.append(n("Transpose", [current], ["out_seq"], perm=[1, 0, 2]))
        current, out_shape = "out_seq", ["B", "T", hidden]
    else:
        nodes += [n("Slice", [current, "minus1", "int32_max", "axes0"], ["last1"]),
                  n("Squeeze", ["last1", "axes0"], ["last"])]
        current, out_shape = "last", ["B", hidden]
    if dense:
        inits["dense_w"] = rng.uniform(-0.5, 0.5, (hidden, dense)).astype(np.float32)
        inits["dense_b"] = rng.uniform(-0.5, 0.5, dense).astype(np.float32)
        nodes += [n("MatMul", [current, "dense_w"], ["dense_mm"]),
                  n("Add", ["dense_mm", "dense_b"], ["dense_out"])]
        current, out_shape = "dense_out", out_shape[:-1] + [dense]
    nodes.append(n("Identity", [current], ["y"]))
    return chain_model(nodes, [("x", ["B", "T", input_size])], [("y", out_shape)], inits)
