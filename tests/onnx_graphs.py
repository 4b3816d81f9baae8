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
