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
