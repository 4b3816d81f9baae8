"""ONNX frame encoders: Conv (1-D: pads, auto_pad, strides, dilations, groups), a Pad before it
in every mode, the magnitude sqrt(a^2 + b^2) of two channel slices, ReduceMean over the
frame's positions, and --input-shape (a graph input's dims fixed at conversion). Every
conversion is verified against onnxruntime running the graph as given (convert_onnx's own
check, at 1e-5) and the outputs are compared with onnxruntime again here; what lstmlite
cannot honour is refused naming the node."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from lstmlite import ConversionError  # noqa: E402
from lstmlite.converters import convert_onnx, run_signature  # noqa: E402
from lstmlite.converters.onnx_control import parse_input_shapes  # noqa: E402


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _out(name, rank):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                         [f"{name}_{i}" for i in range(rank)])


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def frame_encoder(rng, samples, convs, pad=None, magnitude=False, mean=False, hidden=8):
    """x (B, samples) -> [Pad] -> Unsqueeze(1) -> Conv (+Relu) ... -> [magnitude of the two
    halves of the first conv's channels] -> [ReduceMean over positions] -> flattened per step
    -> LSTM over steps (x is (T, B, samples): the steps are the time axis) -> Y."""
    nodes, inits = [], [_const("one", np.array([1], np.int64)),
                        _const("two", np.array([2], np.int64))]
    nodes.append(helper.make_node("Unsqueeze", ["x", "two"], ["x3"]))   # (T, B, 1, samples)
    nodes.append(helper.make_node("Reshape", ["x3", "flat_shape"], ["frames"]))
    inits.append(_const("flat_shape", np.array([-1, 1, samples], np.int64)))
    current, channels, length = "frames", 1, samples
    if pad is not None:
        mode, begin, end = pad
        inits.append(_const("pads", np.array([0, 0, begin, 0, 0, end], np.int64)))
        nodes.append(helper.make_node("Pad", [current, "pads"], ["padded"], mode=mode))
        current, length = "padded", length + begin + end
    for number, conv in enumerate(convs):
        M, K = conv["out"], conv["kernel"]
        groups = conv.get("group", 1)
        weight = (rng.standard_normal((M, channels // groups, K)) /
                  np.sqrt(channels // groups * K)).astype(np.float32)
        inits.append(_const(f"w{number}", weight))
        inputs = [current, f"w{number}"]
        if conv.get("bias", True):
            inits.append(_const(f"b{number}", rng.standard_normal(M).astype(np.float32)))
            inputs.append(f"b{number}")
        attrs = {k: v for k, v in conv.items() if k in ("pads", "strides", "dilations",
                                                         "group", "auto_pad")}
        nodes.append(helper.make_node("Conv", inputs, [f"c{number}"], name=f"conv{number}",
                                      kernel_shape=[K], **attrs))
        current = f"c{number}"
        if conv.get("relu"):
            nodes.append(helper.make_node("Relu", [current], [f"r{number}"]))
            current = f"r{number}"
        channels = M
        if magnitude and number == 0:
            half = M // 2
            inits += [_const("s0", np.array([0], np.int64)), _const("s1", np.array([half],
                                                                                   np.int64)),
                      _const("s2", np.array([M], np.int64)), _const("ax", np.array([1],
                                                                                   np.int64)),
                      _const("exp", np.array(2.0, np.float32))]
            nodes += [helper.make_node("Slice", [current, "s0", "s1", "ax"], ["re"]),
                      helper.make_node("Slice", [current, "s1", "s2", "ax"], ["im"]),
                      helper.make_node("Pow", ["re", "exp"], ["re2"]),
                      helper.make_node("Mul", ["im", "im"], ["im2"]),
                      helper.make_node("Add", ["re2", "im2"], ["power"]),
                      helper.make_node("Sqrt", ["power"], ["mag"], name="magnitude")]
            current, channels = "mag", half
    if mean:
        nodes.append(helper.make_node("ReduceMean", [current], ["avg"], axes=[2], keepdims=0))
        current = "avg"
    # back to (T, B, features)
    nodes.append(helper.make_node("Shape", ["x"], ["x_shape"]))
    inits.append(_const("first_two", np.array([0, 2], np.int64)))
    inits.append(_const("start0", np.array([0], np.int64)))
    nodes.append(helper.make_node("Slice", ["x_shape", "start0", "two"], ["tb"]))
    inits.append(_const("minus_one", np.array([-1], np.int64)))
    nodes.append(helper.make_node("Concat", ["tb", "minus_one"], ["seq_shape"], axis=0))
    nodes.append(helper.make_node("Reshape", [current, "seq_shape"], ["features"]))
    return nodes, inits, hidden


def _model(rng, samples, convs, lstm_inputs, **kwargs):
    nodes, inits, hidden = frame_encoder(rng, samples, convs, **kwargs)
    W = rng.standard_normal((1, 4 * hidden, lstm_inputs)).astype(np.float32) * 0.3
    R = rng.standard_normal((1, 4 * hidden, hidden)).astype(np.float32) * 0.3
    inits += [_const("W", W), _const("R", R)]
    nodes.append(helper.make_node("LSTM", ["features", "W", "R"], ["Y"], hidden_size=hidden,
                                  name="lstm"))
    graph = helper.make_graph(
        nodes, "encoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                         ["T", "B", samples])],
        [_out("Y", 4)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             ir_version=8)


def _features(samples, convs, pad, magnitude, mean):
    """The flattened size per step, from the ONNX definitions."""
    length = samples + (pad[1] + pad[2] if pad else 0)
    channels = 1
    for number, conv in enumerate(convs):
        pads = conv.get("pads", [0, 0])
        stride = conv.get("strides", [1])[0]
        dilation = conv.get("dilations", [1])[0]
        if conv.get("auto_pad") in ("SAME_UPPER", "SAME_LOWER"):
            length = -(-length // stride)
        else:
            length = (length + sum(pads) - dilation * (conv["kernel"] - 1) - 1) // stride + 1
        channels = conv["out"]
        if magnitude and number == 0:
            channels //= 2
    return channels if mean else channels * length


CASES = {
    "stft-like reflect": (64, [dict(out=10, kernel=16, strides=[8], bias=False)],
                          ("reflect", 0, 8), True, False),
    "encoder stack": (40, [dict(out=6, kernel=5, strides=[2], pads=[2, 2], relu=True),
                           dict(out=4, kernel=3, pads=[1, 1], relu=True),
                           dict(out=4, kernel=3, strides=[2], pads=[1, 1], group=2)],
                      None, False, False),
    "edge pad, dilation": (30, [dict(out=5, kernel=3, dilations=[3], relu=True)],
                           ("edge", 4, 2), False, False),
    "wrap pad, stride > kernel": (33, [dict(out=3, kernel=2, strides=[5])],
                                  ("wrap", 3, 3), False, True),
    "same_upper": (21, [dict(out=4, kernel=4, strides=[2], auto_pad="SAME_UPPER")],
                   None, False, False),
    "same_lower, mean": (17, [dict(out=6, kernel=3, auto_pad="SAME_LOWER", relu=True)],
                         None, False, True),
    "zero pad + conv pads": (20, [dict(out=4, kernel=5, pads=[1, 2])],
                             ("constant", 2, 1), False, False),
    "magnitude then mean": (48, [dict(out=8, kernel=8, strides=[4], bias=False),
                                 dict(out=3, kernel=3, pads=[1, 1])],
                            ("reflect", 4, 4), True, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_frame_encoders_convert_and_equal_onnxruntime(rng, case):
    samples, convs, pad, magnitude, mean = CASES[case]
    features = _features(samples, convs, pad, magnitude, mean)
    model = _model(rng, samples, convs, features, pad=pad, magnitude=magnitude, mean=mean)
    conversion = convert_onnx(model.SerializeToString(), tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()
    kinds = [type(layer).__name__ for layer in conversion.model.layers]
    assert kinds.count("Conv1d") == len(convs) and kinds[-1] == "LSTM"
    assert ("Magnitude" in kinds) == magnitude and ("Mean" in kinds) == mean
    x = (rng.standard_normal((7, 3, samples)) * 0.5).astype(np.float32)
    expected = _session(model).run(None, {"x": x})[0]
    got = run_signature(conversion.model, conversion.signature, {"x": x})["Y"]
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_a_relu_after_a_conv_runs_inside_the_layer(rng):
    model = _model(rng, 40, [dict(out=6, kernel=5, strides=[2], pads=[2, 2], relu=True)],
                   6 * 20)
    conversion = convert_onnx(model.SerializeToString(), tolerance=1e-5)
    conv = conversion.model.layers[0]
    assert conv.activation.name == "Relu" and len(conversion.model.layers) == 2


def _refused(model, *patterns):
    with pytest.raises(ConversionError) as info:
        convert_onnx(model.SerializeToString())
    for pattern in patterns:
        assert pattern in str(info.value), str(info.value)


def test_a_2d_convolution_is_refused_naming_the_node(rng):
    graph = helper.make_graph(
        [helper.make_node("Unsqueeze", ["x", "axes"], ["x4"]),
         helper.make_node("Reshape", ["x", "shape4"], ["img"]),
         helper.make_node("Conv", ["img", "w"], ["c"], name="conv2d", kernel_shape=[2, 2]),
         helper.make_node("Reshape", ["c", "shape3"], ["f"]),
         helper.make_node("LSTM", ["f", "W", "R"], ["Y"], hidden_size=4)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 16])],
        [_out("Y", 4)],
        [_const("axes", np.array([2], np.int64)), _const("shape4", np.array([-1, 1, 4, 4])),
         _const("w", np.ones((2, 1, 2, 2), np.float32)),
         _const("shape3", np.array([-1, 1, 18])),
         _const("W", np.zeros((1, 16, 18), np.float32)),
         _const("R", np.zeros((1, 16, 4), np.float32))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=8)
    _refused(model, "conv2d", "1-D convolutions")


def test_a_sqrt_that_is_not_a_magnitude_is_refused(rng):
    graph = helper.make_graph(
        [helper.make_node("Sqrt", ["x"], ["root"], name="root"),
         helper.make_node("LSTM", ["root", "W", "R"], ["Y"], hidden_size=4)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 5])],
        [_out("Y", 4)],
        [_const("W", np.zeros((1, 16, 5), np.float32)),
         _const("R", np.zeros((1, 16, 4), np.float32))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=8)
    _refused(model, "'root'", "magnitude sqrt(a^2 + b^2)")


def test_a_convolution_across_time_is_refused(rng):
    """(B, features, T) convolved with a kernel of 3 mixes time steps: no stream can do it."""
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["bft"], perm=[1, 2, 0]),
         helper.make_node("Conv", ["bft", "w"], ["c"], name="temporal", kernel_shape=[3],
                          pads=[1, 1]),
         helper.make_node("Transpose", ["c"], ["tbf"], perm=[2, 0, 1]),
         helper.make_node("LSTM", ["tbf", "W", "R"], ["Y"], hidden_size=4)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 5])],
        [_out("Y", 4)],
        [_const("w", np.ones((6, 5, 3), np.float32)),
         _const("W", np.zeros((1, 16, 6), np.float32)),
         _const("R", np.zeros((1, 16, 4), np.float32))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=8)
    _refused(model, "'temporal'", "convolves along the time axis")


def test_a_pointwise_convolution_across_time_is_a_dense(rng):
    """silero-vad's 16k_sequence graph ends with a 1x1 Conv over (1, features, T)."""
    w = rng.standard_normal((3, 4, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=4),
         helper.make_node("Squeeze", ["Y", "one"], ["y"]),
         helper.make_node("Transpose", ["y"], ["bft"], perm=[1, 2, 0]),
         helper.make_node("Conv", ["bft", "w", "b"], ["c"], kernel_shape=[1]),
         helper.make_node("Transpose", ["c"], ["out"], perm=[2, 0, 1])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 5])],
        [_out("out", 3)],
        [_const("w", w), _const("b", rng.standard_normal(3).astype(np.float32)),
         _const("one", np.array([1], np.int64)),
         _const("W", rng.standard_normal((1, 16, 5)).astype(np.float32)),
         _const("R", rng.standard_normal((1, 16, 4)).astype(np.float32))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=8)
    conversion = convert_onnx(model.SerializeToString(), tolerance=1e-5)
    assert conversion.report.passed
    assert type(conversion.model.layers[-1]).__name__ == "Dense"


@pytest.mark.parametrize("pad,message", [
    ([0, 2, 0, 0, 0, 0], r"pads axes \[1\]"),                   # the channel axis
    ([0, 0, -2, 0, 0, 0], "negative pads"),
])
def test_a_pad_lstmlite_cannot_take_is_refused(rng, pad, message):
    model = _model(rng, 20, [dict(out=2, kernel=3)], 2 * 18)
    graph = model.graph
    for init in graph.initializer:
        if init.name == "flat_shape":
            init.CopyFrom(_const("flat_shape", np.array([-1, 1, 20], np.int64)))
    graph.initializer.append(_const("bad_pads", np.array(pad, np.int64)))
    conv = next(n for n in graph.node if n.op_type == "Conv")
    pad_node = helper.make_node("Pad", ["frames", "bad_pads"], ["bad"], name="bad_pad",
                                mode="reflect")
    conv.input[0] = "bad"
    graph.node.insert(list(graph.node).index(conv), pad_node)
    with pytest.raises(ConversionError, match="node 'bad_pad' \\(Pad\\): " + message):
        convert_onnx(model.SerializeToString(), verify=False)


def test_a_constant_pad_of_another_value_is_refused(rng):
    model = _model(rng, 20, [dict(out=2, kernel=3)], 2 * 20, pad=("constant", 1, 1))
    model.graph.initializer.append(_const("fill", np.array(0.5, np.float32)))
    pad = next(n for n in model.graph.node if n.op_type == "Pad")
    pad.input.append("fill")
    with pytest.raises(ConversionError, match="pads with the constant 0.5"):
        convert_onnx(model.SerializeToString(), verify=False)


# ---- --input-shape -------------------------------------------------------------------------

def dynamic_frame_model(rng, samples=32):
    """A frame encoder whose input is (B, ?) in the graph: the frame size is dynamic, and an
    If on the encoded length (== 1, silero-vad's test) chooses between a Squeeze and an
    Identity."""
    weight = (rng.standard_normal((4, 1, samples)) / np.sqrt(samples)).astype(np.float32)
    squeeze = helper.make_graph([helper.make_node("Squeeze", ["c", "minus_one"], ["sq"])],
                                "then", [], [helper.make_tensor_value_info(
                                    "sq", TensorProto.FLOAT, None)])
    keep = helper.make_graph([helper.make_node("Flatten", ["c"], ["fl"], axis=1)], "else", [],
                             [helper.make_tensor_value_info("fl", TensorProto.FLOAT, None)])
    graph = helper.make_graph(
        [helper.make_node("Unsqueeze", ["input", "one"], ["x3"]),
         helper.make_node("Conv", ["x3", "w"], ["c"], kernel_shape=[samples],
                          strides=[samples]),
         helper.make_node("Shape", ["c"], ["c_shape"]),
         helper.make_node("Gather", ["c_shape", "two"], ["length"], axis=0),
         helper.make_node("Equal", ["length", "one_scalar"], ["single"]),
         helper.make_node("If", ["single"], ["encoded"], name="length_is_one",
                          then_branch=squeeze, else_branch=keep),
         helper.make_node("Unsqueeze", ["encoded", "zero"], ["seq"]),
         helper.make_node("LSTM", ["seq", "W", "R", "", "", "h0"], ["Y", "Y_h"],
                          hidden_size=3),
         helper.make_node("Squeeze", ["Y_h", "zero"], ["out"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["B", "N"]),
         helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "B", 3])],
        [_out("out", 3)],
        [_const("w", weight), _const("one", np.array([1], np.int64)),
         _const("zero", np.array([0], np.int64)), _const("two", np.array(2, np.int64)),
         _const("minus_one", np.array([-1], np.int64)),
         _const("one_scalar", np.array(1, np.int64)),
         _const("W", rng.standard_normal((1, 12, 4)).astype(np.float32)),
         _const("R", rng.standard_normal((1, 12, 3)).astype(np.float32))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             ir_version=8)


def test_a_fixed_frame_size_folds_the_ifs_on_it(rng):
    model = dynamic_frame_model(rng)
    with pytest.raises(ConversionError, match="dynamic size of graph input 'input'"):
        convert_onnx(model.SerializeToString())
    conversion = convert_onnx(model.SerializeToString(), input_shapes={"input": [None, 32]},
                              tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()
    assert conversion.signature["fixed_shapes"] == {"input": [None, 32]}
    assert any("length_is_one" in note for note in conversion.notes)
    assert conversion.model.input_size == 32
    from lstmlite.converters.signature import describe
    assert any("shape fixed at (?, 32)" in line for line in describe(conversion.signature))


@pytest.mark.parametrize("shapes,message", [
    ({"frame": [None, 32]}, "--input-shape frame: the graph has no input of that name"),
    ({"input": [32]}, "--input-shape input: the graph input has rank 2; 1 dimensions"),
])
def test_bad_input_shapes_are_refused_naming_them(rng, shapes, message):
    with pytest.raises(ConversionError, match=message):
        convert_onnx(dynamic_frame_model(rng).SerializeToString(), input_shapes=shapes)


def test_a_shape_that_contradicts_a_static_dim_is_refused(rng):
    model = dynamic_frame_model(rng)
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 32
    with pytest.raises(ConversionError, match="dimension 1 is 32 in the graph, not 64"):
        convert_onnx(model.SerializeToString(), input_shapes={"input": [None, 64]})


@pytest.mark.parametrize("items,message", [
    (["input"], "expected NAME=DIMS"), (["input=?,x"], "dimension 'x' is not a positive"),
    (["input=?,0"], "dimension '0'"), (["input=1", "input=2"], "given twice"),
])
def test_the_cli_shape_syntax_is_checked(items, message):
    with pytest.raises(ConversionError, match=message):
        parse_input_shapes(items)
    assert parse_input_shapes(["input=?,576"]) == {"input": [None, 576]}


def test_a_slice_of_channels_anywhere_but_a_magnitude_is_refused_saying_so(rng):
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "frame_shape"], ["frames"]),
         helper.make_node("Conv", ["frames", "w"], ["c"], kernel_shape=[3]),
         helper.make_node("Slice", ["c", "s0", "s1", "ax"], ["part"]),
         helper.make_node("Relu", ["part"], ["r"], name="relu_of_part"),
         helper.make_node("Reshape", ["r", "seq_shape"], ["f"]),
         helper.make_node("LSTM", ["f", "W", "R"], ["Y"], hidden_size=3)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 10])], [_out("Y", 4)],
        [_const("frame_shape", np.array([-1, 1, 10], np.int64)),
         _const("w", np.ones((4, 1, 3), np.float32)), _const("s0", np.array([0], np.int64)),
         _const("s1", np.array([2], np.int64)), _const("ax", np.array([1], np.int64)),
         _const("seq_shape", np.array([-1, 1, 16], np.int64)),
         _const("W", np.zeros((1, 12, 16), np.float32)),
         _const("R", np.zeros((1, 12, 3), np.float32))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    _refused(model, "'relu_of_part'", "a slice of channels (lstmlite takes one only into a "
                                      "magnitude")
