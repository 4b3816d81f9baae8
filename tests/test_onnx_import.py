"""from_onnx: every attribute and optional input of LSTM, GRU and RNN, the graph patterns
around them, and every error class. Each converted graph is checked against onnxruntime
(the converter's own verification, at 1e-5) on seeded random inputs."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import lstmlite  # noqa: E402
from lstmlite import ConversionError, VerificationError  # noqa: E402
from lstmlite.converters import convert_onnx, from_onnx, run_signature  # noqa: E402
from lstmlite.converters.onnx_import import make_feeds  # noqa: E402

import onnx_graphs as G  # noqa: E402
from onnx_graphs import chain_model, keras_style_lstm, recurrent_model  # noqa: E402

TOLERANCE = 1e-5


def check(model, **kwargs):
    """Converts with verification at 1e-5; returns the Conversion."""
    conversion = convert_onnx(model, tolerance=TOLERANCE, **kwargs)
    assert conversion.report.passed, conversion.report.lines()
    assert conversion.report.differences
    return conversion


# ---- attributes, one at a time and combined ------------------------------------------------

ACTIVATION_CASES = {
    "LSTM": [dict(activations=["HardSigmoid", "LeakyRelu", "ScaledTanh"],
                  activation_alpha=[0.3, 0.05, 1.5], activation_beta=[0.4, 0.7]),
             dict(activations=["Sigmoid", "Elu", "ThresholdedRelu"],
                  activation_alpha=[0.6, 0.1]),
             dict(activations=["HardSigmoid", "Softsign", "Softplus"]),
             dict(activations=["Sigmoid", "Affine", "Tanh"], activation_alpha=[0.7],
                  activation_beta=[0.1])],
    "GRU": [dict(activations=["HardSigmoid", "Softsign"], activation_alpha=[0.25],
                 activation_beta=[0.45]),
            dict(activations=["Sigmoid", "LeakyRelu", "Sigmoid", "Tanh"],
                 activation_alpha=[0.2])],
    "RNN": [dict(activations=["Relu"]), dict(activations=["LeakyRelu"]),
            dict(activations=["Elu", "Softsign"], activation_alpha=[0.5])],
}


def _cases():
    cases = []
    for op in ("LSTM", "GRU", "RNN"):
        for direction in ("forward", "reverse", "bidirectional"):
            for layout in (0, 1):
                cases.append((op, dict(direction=direction, layout=layout,
                                       state_inputs=True, lengths_input=True)))
            cases.append((op, dict(direction=direction, bias=False)))
        cases.append((op, dict(attributes=dict(clip=0.7), state_inputs=True)))
        cases.append((op, dict(attributes=dict(clip=0.7), direction="bidirectional",
                               layout=1)))
        for opset in (7, 14):
            cases.append((op, dict(opset=opset, state_inputs=True)))
        for attributes in ACTIVATION_CASES[op]:
            direction = "bidirectional" if len(attributes["activations"]) > \
                {"LSTM": 3, "GRU": 2, "RNN": 1}[op] else "forward"
            cases.append((op, dict(attributes=attributes, direction=direction)))
    cases += [
        ("LSTM", dict(peepholes=True, state_inputs=True, lengths_input=True)),
        ("LSTM", dict(peepholes=True, direction="bidirectional", layout=1)),
        ("LSTM", dict(attributes=dict(input_forget=1), state_inputs=True)),
        ("LSTM", dict(attributes=dict(input_forget=1, clip=0.5), peepholes=True,
                      direction="bidirectional")),
        ("LSTM", dict(outputs=("Y", "Y_h", "Y_c"), direction="bidirectional",
                      state_inputs=True)),
        ("LSTM", dict(outputs=("Y_c",))),
        ("GRU", dict(attributes=dict(linear_before_reset=0), state_inputs=True)),
        ("GRU", dict(attributes=dict(linear_before_reset=1), direction="bidirectional",
                     lengths_input=True)),
        ("GRU", dict(attributes=dict(linear_before_reset=0), opset=7, layout=0)),
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("op,options", CASES, ids=[f"{op}-{i}" for i, (op, _) in
                                                    enumerate(CASES)])
def test_recurrent_node_matches_onnxruntime(op, options):
    model = recurrent_model(op, **options)
    conversion = check(model)
    layer = conversion.model.layers[0]
    assert layer.type_name == op
    assert layer.direction == options.get("direction", "forward")


def test_large_weights_saturate_like_onnxruntime():
    """Weights ×6 drive the gates into saturation. Here float32 rounding grows through the
    recurrence in any engine: against a float64 reference, lstmlite is 1.6e-5 and
    onnxruntime 4.6e-5 off (GRU below, measured), so the two are compared at 1e-4."""
    for model in (recurrent_model("LSTM", scale=3.0, direction="bidirectional",
                                  peepholes=True),
                  recurrent_model("GRU", scale=3.0, attributes=dict(linear_before_reset=0))):
        report = convert_onnx(model, tolerance=1e-4).report
        assert report.passed, report.lines()


def test_layout_1_uses_the_reference_evaluator_only_where_it_is_faithful():
    plain = convert_onnx(recurrent_model("GRU", layout=1), tolerance=TOLERANCE).report
    assert "ReferenceEvaluator" in plain.reference
    clipped = convert_onnx(recurrent_model("GRU", layout=1, attributes=dict(clip=0.5)),
                           tolerance=TOLERANCE).report
    assert "onnxruntime" in clipped.reference and "layout=0" in clipped.reference


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_opset_1_attributes_convert_like_opset_7(op):
    """onnxruntime runs opset >= 7 only; an opset 1 node (output_sequence) must convert to
    exactly the layers its opset 7 twin does."""
    old = recurrent_model(op, opset=1, attributes=dict(output_sequence=1))
    new = recurrent_model(op, opset=7)
    a = convert_onnx(old, verify=False).model
    b = check(new).model
    X = np.random.default_rng(1).standard_normal((2, 9, 5)).astype(np.float32)
    np.testing.assert_array_equal(a.run(X), b.run(X))


def test_gru_opset_3_default_is_linear_before_reset_0():
    model = recurrent_model("GRU", opset=3)
    layer = convert_onnx(model, verify=False).model.layers[0]
    assert layer.linear_before_reset is False


def test_parameter_defaults_match_onnxruntime():
    for name in ("LeakyRelu", "Elu", "HardSigmoid"):
        check(recurrent_model("RNN", attributes=dict(activations=[name])))


@pytest.mark.parametrize("name", ["Affine", "ScaledTanh", "ThresholdedRelu"])
def test_activation_without_agreed_defaults_is_refused(name):
    """ONNX's text and onnxruntime disagree on these defaults: refused unless explicit, and
    with explicit values the conversion matches onnxruntime."""
    model = recurrent_model("RNN", attributes=dict(activations=[name]))
    with pytest.raises(ConversionError, match=f"'activations'\\[0\\] is {name} without"):
        convert_onnx(model)
    explicit = dict(activations=[name], activation_alpha=[0.7])
    if name != "ThresholdedRelu":
        explicit["activation_beta"] = [0.3]
    check(recurrent_model("RNN", attributes=explicit))


# ---- graph patterns ---------------------------------------------------------------------------

@pytest.mark.parametrize("slice_end", [2 ** 31 - 1, 2 ** 63 - 1], ids=["int32max", "int64max"])
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
@pytest.mark.parametrize("last_step", [True, False])
def test_keras_style_tf2onnx_graph(cell, last_step, slice_end):
    """tf2onnx ends the last-step Slice at INT32_MAX, torch at INT64_MAX: both 'to the end'."""
    conversion = check(keras_style_lstm(cell, last_step, slice_end=slice_end))
    layer = conversion.model.layers[0]
    assert layer.activations[0].name == "HardSigmoid"
    output = next(iter(conversion.signature["outputs"].values()))
    assert output["last_step"] is last_step


def _lstm_weights(rng, hidden=4, features=3):
    W = rng.standard_normal((1, 4 * hidden, features)).astype(np.float32) * 0.5
    R = rng.standard_normal((1, 4 * hidden, hidden)).astype(np.float32) * 0.5
    B = rng.standard_normal((1, 8 * hidden)).astype(np.float32) * 0.5
    return W, R, B


def test_weights_computed_in_the_graph_are_folded():
    """PyTorch's exporters reorder gates with Slice/Concat on constants; a Constant node
    holds R. Folding runs them through onnx's reference evaluator."""
    rng = np.random.default_rng(3)
    W, R, B = _lstm_weights(rng)
    raw = W[0]  # (16, 3) in an i, f, g, o order the graph permutes to i, o, f, c
    h = 4
    inits = {"raw": raw, "B": B,
             "s0": np.array([0], np.int64), "s1": np.array([h], np.int64),
             "s2": np.array([2 * h], np.int64), "s3": np.array([3 * h], np.int64),
             "s4": np.array([4 * h], np.int64), "ax": np.array([0], np.int64)}
    nodes = [helper.make_node("Slice", ["raw", "s0", "s1", "ax"], ["gi"]),
             helper.make_node("Slice", ["raw", "s1", "s2", "ax"], ["gf"]),
             helper.make_node("Slice", ["raw", "s2", "s3", "ax"], ["gg"]),
             helper.make_node("Slice", ["raw", "s3", "s4", "ax"], ["go"]),
             helper.make_node("Concat", ["gi", "go", "gf", "gg"], ["w2"], axis=0),
             helper.make_node("Unsqueeze", ["w2", "ax"], ["W"]),
             helper.make_node("Constant", [], ["R"], value=numpy_helper.from_array(R)),
             helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y"], hidden_size=h,
                              name="lstm")]
    model = chain_model(nodes, [("x", ["T", "B", 3])], [("Y", ["T", 1, "B", h])], inits)
    check(model)


def _head_model(head_nodes, head_inits, out_shape, opset=17, normalize=None):
    rng = np.random.default_rng(5)
    W, R, B = _lstm_weights(rng)
    inits = {"W": W, "R": R, "B": B, "sq": np.array([1], np.int64),
             "idx": np.array(-1, np.int64)}
    inits.update(head_inits)
    nodes = list(normalize or [])
    source = nodes[-1].output[0] if nodes else "x"
    nodes += [helper.make_node("Transpose", [source], ["xt"], perm=[1, 0, 2]),
              helper.make_node("LSTM", ["xt", "W", "R", "B"], ["Y"], hidden_size=4,
                               name="lstm"),
              helper.make_node("Squeeze", ["Y", "sq"], ["Y3"]) if opset >= 13 else
              helper.make_node("Squeeze", ["Y"], ["Y3"], axes=[1]),
              helper.make_node("Gather", ["Y3", "idx"], ["last"], axis=0)]
    nodes += head_nodes
    return chain_model(nodes, [("x", ["B", "T", 3])], [("out", out_shape)], inits,
                       opset=opset)


def test_gemm_head_with_alpha_beta_and_transposed_weight():
    rng = np.random.default_rng(0)
    head = [helper.make_node("Gemm", ["last", "Wd", "bd"], ["g"], alpha=0.5, beta=2.0),
            helper.make_node("LogSoftmax", ["g"], ["out"], axis=1)]
    model = _head_model(head, {"Wd": rng.standard_normal((4, 5)).astype(np.float32),
                               "bd": rng.standard_normal(5).astype(np.float32)}, ["B", 5])
    conversion = check(model)
    assert [l.type_name for l in conversion.model.layers] == ["LSTM", "Dense"]
    assert conversion.model.layers[1].activation.name == "LogSoftmax"


def test_matmul_add_relu_softmax_head_and_opset_11_softmax():
    rng = np.random.default_rng(1)
    head = [helper.make_node("MatMul", ["last", "W1"], ["m"]),
            helper.make_node("Add", ["b1", "m"], ["a"]),
            helper.make_node("Relu", ["a"], ["r"]),
            helper.make_node("Gemm", ["r", "W2", "b2"], ["g"], transB=1),
            helper.make_node("Softmax", ["g"], ["out"])]   # opset 11: axis=1, 2-D input
    model = _head_model(head, {"W1": rng.standard_normal((4, 6)).astype(np.float32),
                               "b1": rng.standard_normal(6).astype(np.float32),
                               "W2": rng.standard_normal((3, 6)).astype(np.float32),
                               "b2": rng.standard_normal(3).astype(np.float32)},
                        ["B", 3], opset=11)
    conversion = check(model)
    assert [l.type_name for l in conversion.model.layers] == ["LSTM", "Dense", "Dense"]


def test_input_normalization_sub_div_mul_add():
    mean = np.linspace(-1, 1, 3).astype(np.float32)
    std = np.linspace(0.5, 2, 3).astype(np.float32)
    normalize = [helper.make_node("Sub", ["x", "mean"], ["centred"]),
                 helper.make_node("Div", ["centred", "std"], ["scaled"]),
                 helper.make_node("Mul", ["scaled", "gain"], ["gained"]),
                 helper.make_node("Add", ["gained", "shift"], ["shifted"])]
    head = [helper.make_node("Identity", ["last"], ["out"])]
    model = _head_model(head, {"mean": mean, "std": std,
                               "gain": np.float32(1.5), "shift": np.full((1, 1, 3), 0.25,
                                                                         np.float32)},
                        ["B", 4], normalize=normalize)
    conversion = check(model)
    assert [l.type_name for l in conversion.model.layers] == ["Normalize", "Scale", "Scale",
                                                              "LSTM"]


def test_flatten_dropout_cast_identity_are_layout_only():
    rng = np.random.default_rng(2)
    head = [helper.make_node("Unsqueeze", ["last", "sq"], ["u"]),
            helper.make_node("Flatten", ["u"], ["f"], axis=1),
            helper.make_node("Dropout", ["f"], ["d"]),
            helper.make_node("Cast", ["d"], ["c"], to=TensorProto.FLOAT),
            helper.make_node("Gemm", ["c", "Wd"], ["out"])]
    model = _head_model(head, {"Wd": rng.standard_normal((4, 2)).astype(np.float32)},
                        ["B", 2])
    check(model)


def test_step_model_state_maps_to_the_stream():
    """A graph exported for one step (x (B, F), h/c in and out) becomes a model whose Stream
    carries that state: stepping the stream equals feeding the graph its own outputs."""
    import onnxruntime
    rng = np.random.default_rng(4)
    W, R, B = _lstm_weights(rng)
    nodes = [helper.make_node("Unsqueeze", ["x", "ax0"], ["x3"]),
             helper.make_node("LSTM", ["x3", "W", "R", "B", "", "h", "c"],
                              ["", "h_out", "c_out"], hidden_size=4, name="step")]
    model = chain_model(nodes, [("x", ["B", 3]), ("h", [1, "B", 4]), ("c", [1, "B", 4])],
                        [("h_out", [1, "B", 4]), ("c_out", [1, "B", 4])],
                        {"W": W, "R": R, "B": B, "ax0": np.array([0], np.int64)})
    conversion = check(model)
    # the graph's h output is state, so the model's own output is h too
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    stream = conversion.model.stream()
    h = np.zeros((1, 1, 4), np.float32)
    c = np.zeros((1, 1, 4), np.float32)
    for _ in range(20):
        x = rng.standard_normal((1, 3)).astype(np.float32)
        h, c = session.run(None, {"x": x, "h": h, "c": c})
        y = stream.step(x[0])
        np.testing.assert_allclose(y, h[0, 0], atol=TOLERANCE)
        np.testing.assert_allclose(stream.state[0][0][0], h[0, 0], atol=TOLERANCE)
        np.testing.assert_allclose(stream.state[0][1][0], c[0, 0], atol=TOLERANCE)


def test_from_onnx_path_and_metadata(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(recurrent_model("GRU", state_inputs=True), str(path))
    model = from_onnx(path, tolerance=TOLERANCE)
    assert model.metadata["source"]["format"] == "onnx"
    assert model.metadata["verification"]["max_abs_difference"]["Y"] <= TOLERANCE
    model.save(tmp_path / "m.lstm")
    loaded = lstmlite.load(tmp_path / "m.lstm")
    signature = loaded.metadata["signature"]
    feeds, _ = make_feeds(onnx.load(str(path)), signature, batch=2, steps=5, seed=1)
    a = run_signature(model, model.metadata["signature"], feeds)
    b = run_signature(loaded, signature, feeds)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_verification_failure_raises(monkeypatch):
    from lstmlite.converters import onnx_recurrent
    monkeypatch.setattr(onnx_recurrent, "LSTM_ONNX_TO_ENGINE", (0, 1, 2, 3))
    with pytest.raises(VerificationError, match="differs from onnxruntime"):
        convert_onnx(recurrent_model("LSTM"))


def test_without_onnxruntime_verification_is_skipped(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.warns(UserWarning, match="onnxruntime is not installed"):
        model = from_onnx(recurrent_model("RNN"))
    assert "verification" not in model.metadata


# ---- errors ---------------------------------------------------------------------------------

def _error(model, match):
    with pytest.raises(ConversionError, match=match) as info:
        convert_onnx(model)
    assert "Traceback" not in str(info.value)
    return str(info.value)


def test_error_unknown_op():
    head = [helper.make_node("Erf", ["last"], ["out"], name="the_erf")]
    _error(_head_model(head, {}, ["B", 4]), r"node 'the_erf' \(Erf\): op Erf is not supported")


def test_error_attribute_value():
    model = recurrent_model("LSTM", attributes=dict(activations=["Sigmoid", "Gelu", "Tanh"]))
    _error(model, r"node 'lstm_node' \(LSTM\): attribute 'activations'\[1\] is 'Gelu'")


def test_error_direction_value():
    model = recurrent_model("GRU")
    for attribute in model.graph.node[0].attribute:
        if attribute.name == "direction":
            attribute.s = b"sideways"
    _error(model, r"attribute 'direction' is 'sideways'")


def test_error_weight_depends_on_input():
    model = recurrent_model("RNN")
    W = model.graph.initializer[0]
    model.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT,
                                                           list(W.dims)))
    del model.graph.initializer[0]
    _error(model, r"input 1 \(W, 'W'\) depends on the graph's inputs")


def test_error_unrolled_recurrence():
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gather", ["x", "i0"], ["x0"], axis=1),
             helper.make_node("MatMul", ["x0", "Wx"], ["h0"]),
             helper.make_node("Gather", ["x", "i1"], ["x1"], axis=1),
             helper.make_node("MatMul", ["x1", "Wx"], ["a1"]),
             helper.make_node("MatMul", ["h0", "Wh"], ["b1"]),
             helper.make_node("Add", ["a1", "b1"], ["out"])]
    model = chain_model(nodes, [("x", [1, 2, 3])], [("out", [1, 4])],
                        {"Wx": rng.standard_normal((3, 4)).astype(np.float32),
                         "Wh": rng.standard_normal((4, 4)).astype(np.float32),
                         "i0": np.array(0, np.int64), "i1": np.array(1, np.int64)})
    _error(model, "no LSTM, GRU or RNN node.*unrolled the recurrence")


def test_error_non_zero_constant_initial_state():
    model = recurrent_model("GRU")
    node = model.graph.node[0]
    model.graph.initializer.append(numpy_helper.from_array(np.ones((1, 2, 7), np.float32),
                                                           "h_init"))
    while len(node.input) < 6:
        node.input.append("")
    node.input[5] = "h_init"
    _error(model, "initial_h is a non-zero constant")


def test_error_constant_sequence_lens():
    model = recurrent_model("GRU")
    node = model.graph.node[0]
    model.graph.initializer.append(numpy_helper.from_array(np.array([3, 2], np.int32), "L"))
    while len(node.input) < 5:
        node.input.append("")
    node.input[4] = "L"
    _error(model, r"sequence_lens is the constant \[3, 2\]")


def test_error_time_step_other_than_last():
    head = [helper.make_node("Identity", ["last"], ["out"])]
    model = _head_model(head, {}, ["B", 4])
    for init in model.graph.initializer:
        if init.name == "idx":
            init.CopyFrom(numpy_helper.from_array(np.array(0, np.int64), "idx"))
    _error(model, "selects time step 0; lstmlite can select only the last step")


def test_error_two_heads_branch():
    rng = np.random.default_rng(0)
    head = [helper.make_node("MatMul", ["last", "Wa"], ["out"]),
            helper.make_node("MatMul", ["last", "Wb"], ["other"])]
    model = _head_model(head, {"Wa": rng.standard_normal((4, 2)).astype(np.float32),
                               "Wb": rng.standard_normal((4, 2)).astype(np.float32)},
                        ["B", 2])
    model.graph.output.append(helper.make_tensor_value_info("other", TensorProto.FLOAT,
                                                            ["B", 2]))
    _error(model, "the graph branches")


def test_error_residual_add_of_two_values():
    head = [helper.make_node("Add", ["last", "last"], ["out"], name="residual")]
    _error(_head_model(head, {}, ["B", 4]), r"node 'residual' \(Add\): Add of two computed")


def test_error_softmax_over_time():
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=4),
             helper.make_node("Softmax", ["Y"], ["out"], axis=0, name="sm")]
    rng = np.random.default_rng(0)
    W, R, _ = _lstm_weights(rng)
    model = chain_model(nodes, [("x", ["T", "B", 3])], [("out", ["T", 1, "B", 4])],
                        {"W": W, "R": R})
    _error(model, r"node 'sm' \(Softmax\): attribute axis=0 is not the feature axis")


def test_error_encoder_decoder_state():
    rng = np.random.default_rng(0)
    W, R, B = _lstm_weights(rng)
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y", "Yh", "Yc"],
                              hidden_size=4, name="encoder"),
             helper.make_node("Squeeze", ["Y", "sq"], ["Y3"]),
             helper.make_node("MatMul", ["Y3", "P"], ["Z"]),
             helper.make_node("LSTM", ["Z", "W", "R", "B", "", "Yh", "Yc"], ["out"],
                              hidden_size=4, name="decoder")]
    model = chain_model(nodes, [("x", ["T", "B", 3])], [("out", ["T", 1, "B", 4])],
                        {"W": W, "R": R, "B": B, "sq": np.array([1], np.int64),
                         "P": rng.standard_normal((4, 3)).astype(np.float32)})
    _error(model, r"node 'decoder' \(LSTM\): input initial_h comes from another recurrent")


def test_error_not_onnx(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\xffnot a protobuf" * 10)
    _error(str(path), "junk.onnx: not an ONNX model")
    _error(str(tmp_path / "missing.onnx"), "missing.onnx: cannot read")


def test_error_checker_rejects_unknown_attribute():
    model = recurrent_model("LSTM")
    model.graph.node[0].attribute.append(helper.make_attribute("forget_bias", 1.0))
    _error(model, "the ONNX checker rejects the model.*forget_bias")


def _lstm_then(nodes, rng):
    """An LSTM over x (T, 1, 5), its Y squeezed to (T, 1, 8), then `nodes` ending in 'out'."""
    W = rng.standard_normal((1, 32, 5)).astype(np.float32)
    R = rng.standard_normal((1, 32, 8)).astype(np.float32)
    return chain_model(
        [helper.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=8),
         helper.make_node("Squeeze", ["Y", "axis1"], ["Ys"]), *nodes],
        [("x", ["T", 1, 5])], [("out", ["T", 1, 8])],
        {"W": W, "R": R, "axis1": np.array([1], np.int64),
         "other": np.ones((1, 1, 3), np.float32)})


def test_a_one_input_concat_is_the_identity(rng):
    """darts' ONNX export wraps its output in a Concat of one input."""
    conversion = convert_onnx(_lstm_then([helper.make_node("Concat", ["Ys"], ["out"], axis=-1)],
                                         rng).SerializeToString())
    assert conversion.report.passed


def test_a_concat_with_other_values_names_what_it_joins(rng):
    model = _lstm_then([helper.make_node("Concat", ["Ys", "other"], ["out"], axis=-1)], rng)
    with pytest.raises(ConversionError, match="concatenates 'Ys' \\(seq\\), 'other' \\(const\\)"):
        convert_onnx(model.SerializeToString())


def _lstm_branch(name, rng):
    W = rng.standard_normal((1, 32, 5)).astype(np.float32)
    R = rng.standard_normal((1, 32, 8)).astype(np.float32)
    return helper.make_graph(
        [helper.make_node("LSTM", ["x", f"W{name}", f"R{name}"], [f"Y{name}"], hidden_size=8,
                          name=f"lstm_{name}")], name, [],
        [helper.make_tensor_value_info(f"Y{name}", TensorProto.FLOAT, ["T", 1, 1, 8])],
        [numpy_helper.from_array(W, f"W{name}"), numpy_helper.from_array(R, f"R{name}")])


def test_an_lstm_inside_an_if_is_named_where_it_is(rng):
    """silero-vad's graph chooses its network with an If: the refusal says the LSTM is there,
    not that the graph has none."""
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["out"], then_branch=_lstm_branch("a", rng),
                          else_branch=_lstm_branch("b", rng), name="rate_switch")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 5]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["T", 1, 1, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(ConversionError, match="the LSTM node 'lstm_[ab]' is in the "
                                              "(then|else)_branch graph of the If node "
                                              "'rate_switch'"):
        convert_onnx(model.SerializeToString())


def test_a_loop_is_called_a_loop(rng):
    """tf2onnx writes Keras GRU and SimpleRNN as a Loop over the time steps."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("MatMul", ["h_in", "R"], ["z"]),
         helper.make_node("Tanh", ["z"], ["h_out"]),
         helper.make_node("Identity", ["h_out"], ["y"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "R")])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["steps", "go", "h0"], ["h_last", "ys"], body=body,
                          name="while_simple_rnn")], "g",
        [helper.make_tensor_value_info("steps", TensorProto.INT64, []),
         helper.make_tensor_value_info("go", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("ys", TensorProto.FLOAT, ["T", 1, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(ConversionError, match="the recurrence is the Loop node "
                                              "'while_simple_rnn', a loop over the time steps "
                                              "whose body computes the cell \\(Identity, MatMul, "
                                              "Tanh\\). lstmlite converts a Loop that steps a "
                                              "Keras LSTM, GRU or SimpleRNN cell .* and this "
                                              "loop is not one \\(no step counter that "
                                              "indexes an outer tensor\\)"):
        convert_onnx(model.SerializeToString())


# Loops that step a Keras cell, as tf2onnx writes them (onnx_graphs.keras_loop_model): each
# variant converts, verified against onnxruntime on the Loop graph to 1e-5, and its note says
# what the body was recognised as
LOOP_CELLS = [
    (dict(cell="GRU"), "GRU cell (Sigmoid gates, Tanh, reset_after, with bias)"),
    (dict(cell="GRU", reset_after=False), "GRU cell (Sigmoid gates, Tanh, reset_before"),
    (dict(cell="GRU", bias=False), "GRU cell (Sigmoid gates, Tanh, reset_after, no bias)"),
    (dict(cell="GRU", reset_after=False, bias=False, gate="HardSigmoid"),
     "GRU cell (HardSigmoid(0.2, 0.5) gates, Tanh, reset_before, no bias)"),
    (dict(cell="RNN", activation="Relu"), "RNN cell (Relu, with bias)"),
    (dict(cell="RNN", activation="Identity", bias=False), "RNN cell (linear, no bias)"),
    (dict(cell="RNN", activation="Sigmoid"), "RNN cell (Sigmoid, with bias)"),
    (dict(cell="LSTM"), "LSTM cell (Sigmoid gates, Tanh, with bias)"),
    (dict(cell="LSTM", states_c_first=True), "LSTM cell (Sigmoid gates, Tanh, with bias)"),
    (dict(cell="LSTM", gate="HardSigmoid", hard_sigmoid=(1 / 6, 0.5), bias=False),
     "LSTM cell (HardSigmoid(0.1667, 0.5) gates, Tanh, no bias)"),
    (dict(cell="LSTM", gate="HardSigmoid", activation="Relu"),
     "LSTM cell (HardSigmoid(0.2, 0.5) gates, Relu, with bias)"),
]


@pytest.mark.parametrize("options,recognised", LOOP_CELLS,
                         ids=[f"{o['cell']}-{i}" for i, (o, _) in enumerate(LOOP_CELLS)])
def test_a_loop_that_steps_a_keras_cell_converts(options, recognised, rng):
    model = G.keras_loop_model(**options)
    conversion = convert_onnx(model.SerializeToString(), tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()
    assert any(f"the Loop node 'keras_while' steps a Keras {recognised}" in note
               for note in conversion.notes), conversion.notes
    layer = conversion.model.layers[0]
    assert layer.type_name == options["cell"]
    # the same numbers from the Loop graph in onnxruntime, at another batch and length
    import onnxruntime
    x = rng.standard_normal((3, 11, 5)).astype(np.float32)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(conversion.model.run(x), session.run(None, {"x": x})[0],
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("options,refusal", [
    (dict(cell="LSTM", initial_state="quarter"),
     "the Loop node 'keras_while' steps an LSTM cell from an initial state 'h0' that is not "
     "zeros; a converted model starts from zeros"),
    (dict(cell="GRU", mask=True),
     "the Loop node 'keras_while' reads 2 tensors step by step \\(M, X\\): the one besides "
     "the sequence is a mask"),
    (dict(cell="RNN", extra_mul=True),
     "the Loop node 'keras_while' steps a sequence with RNN-shaped kernels \\(\\(5, 6\\), "
     "\\(6, 6\\)\\) but its body matches no RNN cell lstmlite knows"),
    (dict(cell="GRU", gate="HardSigmoid", hard_sigmoid=(0.3, 0.5)),
     "its body matches no GRU cell lstmlite knows"),
], ids=["initial-state", "mask", "not-a-cell", "unknown-hard-sigmoid"])
def test_a_loop_that_is_no_cell_lstmlite_knows_is_refused_saying_why(options, refusal):
    with pytest.raises(ConversionError, match=refusal):
        convert_onnx(G.keras_loop_model(**options).SerializeToString())


@pytest.mark.parametrize("options", [
    dict(), dict(dense=3), dict(return_sequences=True), dict(return_sequences=True, dense=2),
    dict(stacked=True), dict(stacked=True, return_sequences=True),
], ids=["last", "last-dense", "sequences", "sequences-dense", "stacked-last",
        "stacked-sequences"])
def test_a_reversed_sequence_is_a_reverse_layer_put_back_in_order(options, rng):
    """Keras' go_backwards as tf2onnx writes it (ReverseSequence, then a forward LSTM): the
    layer runs in reverse, and the output is the model's first step (the last of the
    reversed sequence) or every step in reverse order; verified against onnxruntime, and
    again at another length and batch."""
    import onnxruntime
    model = G.keras_go_backwards_model(**options)
    conversion = convert_onnx(model.SerializeToString(), tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()
    directions = [layer.direction for layer in conversion.model.layers if layer.recurrent]
    # a forward layer on a reversed sequence runs in reverse; the next one, reading that
    # output (still in reversed order), runs in reverse too
    assert directions == ["reverse"] * (2 if options.get("stacked") else 1)
    spec = next(iter(conversion.signature["outputs"].values()))
    key = "reversed" if options.get("return_sequences") else "first_step"
    assert spec.get(key) is True
    x = rng.standard_normal((3, 9, 5)).astype(np.float32)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    got = run_signature(conversion.model, conversion.signature, {"x": x})["y"]
    np.testing.assert_allclose(got, session.run(None, {"x": x})[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(lstmlite.StreamingError):
        conversion.model.stream()


def test_a_reversal_by_lengths_other_than_the_whole_sequence_is_refused():
    model = G.keras_go_backwards_model()
    lengths = next(node for node in model.graph.node if node.op_type == "Expand")
    lengths.op_type, lengths.input[:] = "Identity", ["B"]   # lengths = the batch size
    with pytest.raises(ConversionError, match="reverses sequences by lengths that are not "
                                              "the whole time axis for every sequence"):
        convert_onnx(model.SerializeToString())


def _clip_model(*, relu: bool, low, high, as_attributes: bool = False, head: bool = True):
    """x (T, B, 5) -> [Gemm-style MatMul + Add, [Relu]] -> Clip(low, high) -> GRU -> y: the
    fully connected front of torchaudio's DeepSpeech (Linear, ReLU, hardtanh) in small."""
    rng = np.random.default_rng(3)
    n = helper.make_node
    inits = {"w": rng.uniform(-2, 2, (5, 4)).astype(np.float32),
             "b": rng.uniform(-1, 1, 4).astype(np.float32),
             "W": rng.uniform(-0.5, 0.5, (1, 9, 4)).astype(np.float32),
             "R": rng.uniform(-0.5, 0.5, (1, 9, 3)).astype(np.float32),
             "axes1": np.array([1], np.int64)}
    nodes = [n("MatMul", ["x", "w"], ["xw"]), n("Add", ["xw", "b"], ["pre"])] if head else []
    current = "pre" if head else "x"
    if relu:
        nodes.append(n("Relu", [current], ["relu"]))
        current = "relu"
    if as_attributes:  # Clip before opset 11: bounds are attributes
        nodes.append(n("Clip", [current], ["clipped"], min=float(low), max=float(high)))
    else:
        bounds = []
        for name, value in (("low", low), ("high", high)):
            if value is None:
                bounds.append("")
            else:
                inits[name] = np.array(value, np.float32)
                bounds.append(name)
        while bounds and bounds[-1] == "":
            bounds.pop()
        nodes.append(n("Clip", [current] + bounds, ["clipped"]))
    squeeze = n("Squeeze", ["Y"], ["y"], axes=[1]) if as_attributes else \
        n("Squeeze", ["Y", "axes1"], ["y"])  # axes an attribute before opset 13
    nodes += [n("GRU", ["clipped", "W", "R"], ["Y"], hidden_size=3), squeeze]
    return chain_model(nodes, [("x", ["T", "B", 5 if head else 4])], [("y", ["T", "B", 3])],
                       inits, opset=10 if as_attributes else 17)


@pytest.mark.parametrize("options", [
    dict(relu=True, low=0.0, high=1.5),          # DeepSpeech's hardtanh(0, 20) after a ReLU
    dict(relu=False, low=-1.0, high=1.0),        # hardtanh
    dict(relu=True, low=-2.0, high=1.0),         # the ReLU raises the low bound to 0
    dict(relu=False, low=0.0, high=6.0),         # relu6
    dict(relu=False, low=0.0, high=None),        # Clip(0, inf): a Relu
    dict(relu=False, low=-0.5, high=0.5, as_attributes=True),
    dict(relu=False, low=-0.5, high=0.5, head=False),   # no Dense before it
], ids=["relu-clip", "hardtanh", "relu-negative-low", "relu6", "relu-by-clip", "opset10",
        "no-dense"])
def test_clip_is_a_hard_sigmoid_and_a_scale(options):
    conversion = convert_onnx(_clip_model(**options).SerializeToString(), tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()
    kinds = [layer.type_name for layer in conversion.model.layers]
    if options["high"] is None:
        assert "Scale" not in kinds  # a plain Relu
    else:   # the HardSigmoid on the head's Dense, or on a layer of its own
        assert kinds[kinds.index("Scale") - 1] == ("Dense" if options.get("head", True)
                                                   else "Elementwise")


@pytest.mark.parametrize("low,high", [(None, 5.0), (-np.inf, 2.0), (1.0, 1.0)])
def test_a_clip_lstmlite_cannot_express_is_refused(low, high):
    with pytest.raises(ConversionError, match="clips to .*; lstmlite converts a Clip with "
                                              "both bounds finite"):
        convert_onnx(_clip_model(relu=False, low=low, high=high).SerializeToString())


def test_a_channel_axis_of_size_1_in_the_input_is_squeezed():
    """torchaudio's DeepSpeech takes (batch, 1, time, features): the unit axis is part of the
    signature ("1") and the model sees (batch, time, features)."""
    rng = np.random.default_rng(4)
    n = helper.make_node
    inits = {"W": rng.uniform(-0.5, 0.5, (1, 12, 5)).astype(np.float32),
             "R": rng.uniform(-0.5, 0.5, (1, 12, 3)).astype(np.float32),
             "axes1": np.array([1], np.int64)}
    nodes = [n("Squeeze", ["x", "axes1"], ["x3"]),
             n("Transpose", ["x3"], ["xt"], perm=[1, 0, 2]),
             n("LSTM", ["xt", "W", "R"], ["Y"], hidden_size=3),
             n("Squeeze", ["Y", "axes1"], ["y"])]
    model = chain_model(nodes, [("x", ["B", 1, "T", 5])], [("y", ["T", "B", 3])], inits)
    conversion = convert_onnx(model.SerializeToString(), tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()
    assert conversion.signature["sequence_input"]["axes"] == ["B", "1", "T", "F"]
    x = rng.standard_normal((2, 1, 6, 5)).astype(np.float32)
    y = run_signature(conversion.model, conversion.signature, {"x": x})["y"]
    np.testing.assert_allclose(y.transpose(1, 0, 2), conversion.model.run(x[:, 0]),
                               atol=0, rtol=0)
