"""A float32 lstmlite Model as a one-step ONNX graph, the way onnxruntime users stream today:
the recurrent state is a graph input and output, fed back by the caller on every call.

    onnx_bytes, state_names = step_graph(model)

Used by `lstmlite bench` to time onnxruntime on the very model it times lstmlite on. Graph:
inputs x (1, 1, input_size) and, per recurrent layer k, h{k} (1, 1, H) (and c{k} for LSTM);
outputs y (1, 1, output_size) and h{k}_out (c{k}_out). Gate orders are converted from
PyTorch's (LSTM i, f, g, o; GRU r, z, n) to ONNX's (i, o, f, c; z, r, h). Frame encoders
become Reshape/Pad/Conv (Conv1d), Gather/Mul/Add/Sqrt (Magnitude), ReduceMean (Mean) and the
activation's operator (Elementwise). Refused with a ConversionError naming the layer: reverse
and bidirectional layers (not streamable), LSTM projections (ONNX's LSTM has none) and
activations that are not ONNX operators (ScaledTanh, Affine).
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from lstmlite.errors import ConversionError
from lstmlite.layers import (GRU, LSTM, RNN, Conv1d, Dense, Elementwise, Magnitude, Mean,
                             Normalize, Scale)

from .onnx_recurrent import GRU_ENGINE_TO_ONNX, LSTM_ENGINE_TO_ONNX, reorder_gates

OPSET = 17
#: Dense activations that are ONNX operators of the same name (alpha/beta as attributes)
_DENSE_OPS = {"Relu": (), "Tanh": (), "Sigmoid": (), "Softsign": (), "Softplus": (),
              "LeakyRelu": ("alpha",), "ThresholdedRelu": ("alpha",), "Elu": ("alpha",),
              "HardSigmoid": ("alpha", "beta")}


def step_graph(model) -> Tuple[bytes, List[Tuple[str, Tuple[int, ...]]]]:
    """(serialized ModelProto, [(state input name, shape), ...]); each state input `name` has
    the output `name + "_out"`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers = [], []
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, model.input_size])]
    outputs, states = [], []
    current = "x"

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32),
                                                    name))
        return name

    def shape(name: str, dims) -> str:
        initializers.append(numpy_helper.from_array(np.array(dims, np.int64), name))
        return name
    constant.shape = shape

    for index, layer in enumerate(model.layers):
        where = f"layer {index} ({layer.type_name})"
        if layer.weight_dtype != "float32":
            raise ConversionError(f"{where}: int8 weights; export the float32 model")
        name = f"l{index}"
        if isinstance(layer, Normalize):
            nodes.append(helper.make_node("Sub", [current, constant(f"{name}_mean",
                                                                    layer.mean)], [f"{name}_c"]))
            nodes.append(helper.make_node("Div", [f"{name}_c", constant(f"{name}_std",
                                                                         layer.std)], [name]))
        elif isinstance(layer, Scale):
            scaled = f"{name}_s" if layer.offset is not None else name
            nodes.append(helper.make_node("Mul", [current, constant(f"{name}_scale",
                                                                    layer.scale)], [scaled]))
            if layer.offset is not None:
                nodes.append(helper.make_node("Add", [scaled, constant(
                    f"{name}_offset", layer.offset)], [name]))
        elif isinstance(layer, Dense):
            activation = layer.activation.name
            linear = name if activation == "Identity" else f"{name}_z"
            product = f"{name}_p" if layer.bias is not None else linear
            nodes.append(helper.make_node("MatMul", [current, constant(f"{name}_w",
                                                                       layer.weight.T)],
                                          [product]))
            if layer.bias is not None:
                nodes.append(helper.make_node("Add", [product, constant(f"{name}_b",
                                                                        layer.bias)], [linear]))
            if activation != "Identity":
                _activation(layer.activation, linear, name, nodes, where)
        elif isinstance(layer, (LSTM, GRU, RNN)):
            if layer.direction != "forward":
                raise ConversionError(f"{where}: a {layer.direction} layer cannot be stepped")
            hidden = layer.hidden_size
            attributes = {"hidden_size": hidden,
                          "activations": [a.name for a in layer.activations],
                          "activation_alpha": [a[1] for a in layer.activations],
                          "activation_beta": [a[2] for a in layer.activations]}
            if layer.clip is not None:
                attributes["clip"] = layer.clip
            if isinstance(layer, LSTM):
                if layer.proj_size:
                    raise ConversionError(f"{where}: ONNX's LSTM has no projection (proj_size)")
                order = LSTM_ENGINE_TO_ONNX
                if layer.input_forget:
                    attributes["input_forget"] = 1
            elif isinstance(layer, GRU):
                order = GRU_ENGINE_TO_ONNX
                attributes["linear_before_reset"] = int(layer.linear_before_reset)
            else:
                order = (0,)
            gates = len(order) * hidden
            bias_ih = layer.bias_ih if layer.bias_ih is not None else np.zeros(gates)
            bias_hh = layer.bias_hh if layer.bias_hh is not None else np.zeros(gates)
            # (1, gates, inputs): one direction, as reorder_gates takes them
            W = reorder_gates(layer.weight_ih[None], order, hidden)
            R = reorder_gates(layer.weight_hh[None], order, hidden)
            B = np.concatenate([reorder_gates(bias_ih, order, hidden),
                                reorder_gates(bias_hh, order, hidden)])[None]
            node_inputs = [current, constant(f"{name}_W", W), constant(f"{name}_R", R),
                           constant(f"{name}_B", B), "", f"h{index}"]
            node_outputs = ["", f"h{index}_out"]
            states.append((f"h{index}", (1, 1, hidden)))
            if isinstance(layer, LSTM):
                node_inputs.append(f"c{index}")
                node_outputs.append(f"c{index}_out")
                states.append((f"c{index}", (1, 1, hidden)))
                if layer.peepholes is not None:
                    node_inputs.append(constant(f"{name}_P", layer.peepholes.reshape(1, -1)))
            nodes.append(helper.make_node(layer.type_name, node_inputs, node_outputs,
                                          **attributes))
            # Y_h, (directions=1, batch=1, H), is also this step's output in (seq, batch, H)
            nodes.append(helper.make_node("Identity", [f"h{index}_out"], [name]))
        elif isinstance(layer, Conv1d):
            _conv1d(layer, current, name, nodes, constant, where)
        elif isinstance(layer, Magnitude):
            parts = []
            for part, offset in zip(("re", "im"), layer.offsets):
                per_row = layer.output_size // layer.rows
                index = (offset + np.arange(layer.rows)[:, None] * layer.row_stride +
                         np.arange(per_row)[None, :]).reshape(-1).astype(np.int64)
                initializers.append(numpy_helper.from_array(index, f"{name}_{part}_index"))
                nodes.append(helper.make_node("Gather", [current, f"{name}_{part}_index"],
                                              [f"{name}_{part}"], axis=2))
                nodes.append(helper.make_node("Mul", [f"{name}_{part}", f"{name}_{part}"],
                                              [f"{name}_{part}2"]))
                parts.append(f"{name}_{part}2")
            nodes.append(helper.make_node("Add", parts, [f"{name}_power"]))
            nodes.append(helper.make_node("Sqrt", [f"{name}_power"], [name]))
        elif isinstance(layer, Mean):
            shape(f"{name}_frame_shape", [1, layer.channels, layer.length])
            nodes.append(helper.make_node("Reshape", [current, f"{name}_frame_shape"],
                                          [f"{name}_frame"]))
            nodes.append(helper.make_node("ReduceMean", [f"{name}_frame"], [f"{name}_mean"],
                                          axes=[2], keepdims=0))
            shape(f"{name}_out_shape", [1, 1, layer.channels])
            nodes.append(helper.make_node("Reshape", [f"{name}_mean", f"{name}_out_shape"],
                                          [name]))
        elif isinstance(layer, Elementwise):
            _activation(layer.activation, current, name, nodes, where)
        else:
            raise ConversionError(f"{where}: no ONNX form for this layer")
        current = name
    nodes.append(helper.make_node("Identity", [current], ["y"]))
    for state, shape in states:
        inputs.append(helper.make_tensor_value_info(state, TensorProto.FLOAT, list(shape)))
        outputs.append(helper.make_tensor_value_info(f"{state}_out", TensorProto.FLOAT,
                                                     list(shape)))
    outputs.insert(0, helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                    [1, 1, model.output_size]))
    graph = helper.make_graph(nodes, "lstmlite_step", inputs, outputs, initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=8, producer_name="lstmlite")
    onnx.checker.check_model(proto)
    return proto.SerializeToString(), states


def _activation(activation, source: str, name: str, nodes: list, where: str) -> None:
    """The ONNX operator of an lstmlite activation, source -> name (Softmax over the last
    axis); refused when it is none."""
    from onnx import helper
    kind = activation.name
    if kind == "Identity":
        nodes.append(helper.make_node("Identity", [source], [name]))
    elif kind in ("Softmax", "LogSoftmax"):
        nodes.append(helper.make_node(kind, [source], [name], axis=-1))
    elif kind in _DENSE_OPS:
        attributes = dict(zip(("alpha", "beta"), activation[1:]))
        attributes = {key: attributes[key] for key in _DENSE_OPS[kind]}
        nodes.append(helper.make_node(kind, [source], [name], **attributes))
    else:
        raise ConversionError(f"{where}: activation {kind} is not an ONNX operator")


#: Conv1d padding modes -> ONNX Pad modes
_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _conv1d(layer, source: str, name: str, nodes: list, constant, where: str) -> None:
    """Reshape to (1, C, L), Pad (when not zeros), Conv with its weight (M, C / groups, K),
    the activation, Reshape back to (1, 1, M L_out)."""
    from onnx import helper
    constant.shape(f"{name}_frame_shape", [1, layer.in_channels, layer.length])
    nodes.append(helper.make_node("Reshape", [source, f"{name}_frame_shape"],
                                  [f"{name}_frame"]))
    frame, pads = f"{name}_frame", list(layer.padding)
    if layer.padding_mode != "zeros" and any(pads):
        constant.shape(f"{name}_pads", [0, 0, pads[0], 0, 0, pads[1]])
        nodes.append(helper.make_node("Pad", [frame, f"{name}_pads"], [f"{name}_padded"],
                                      mode=_PAD_MODES[layer.padding_mode]))
        frame, pads = f"{name}_padded", [0, 0]
    weight = layer.weight.reshape(layer.out_channels, layer.in_channels // layer.groups,
                                  layer.kernel_size)
    inputs = [frame, constant(f"{name}_w", weight)]
    if layer.bias is not None:
        inputs.append(constant(f"{name}_b", layer.bias))
    nodes.append(helper.make_node("Conv", inputs, [f"{name}_conv"],
                                  kernel_shape=[layer.kernel_size], strides=[layer.stride],
                                  dilations=[layer.dilation], group=layer.groups, pads=pads))
    _activation(layer.activation, f"{name}_conv", f"{name}_act", nodes, where)
    constant.shape(f"{name}_out_shape", [1, 1, layer.output_size])
    nodes.append(helper.make_node("Reshape", [f"{name}_act", f"{name}_out_shape"], [name]))


def onnxruntime_stepper(model):
    """A step(frame) -> (output_size,) function running `model` in a one-thread onnxruntime
    session, feeding the state back on every call; and reset() to zero the state."""
    import onnxruntime
    payload, states = step_graph(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(payload, options,
                                           providers=["CPUExecutionProvider"])
    names = ["y"] + [f"{state}_out" for state, _ in states]
    feed = {}

    def reset():
        for state, shape in states:
            feed[state] = np.zeros(shape, np.float32)

    def step(frame):
        feed["x"] = frame.reshape(1, 1, -1)
        results = session.run(names, feed)
        for (state, _), value in zip(states, results[1:]):
            feed[state] = value
        return results[0].reshape(-1)

    reset()
    step.reset = reset
    return step
