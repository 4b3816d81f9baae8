"""Control flow fixed at conversion (converters/onnx_control.py) and refusals that list
everything: graph inputs given values with --input / input_values, If nodes whose condition
those values or static shapes decide replaced by the branch taken (checked against
onnxruntime running the original graph with the same values), and every unsupported node of
a graph named in one error."""
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from lstmlite import ConversionError, ShapeError  # noqa: E402
from lstmlite.converters import convert_onnx, run_signature  # noqa: E402
from lstmlite.converters.onnx_control import parse_input_values  # noqa: E402


def _branch(tag, rng, hidden=8, features=5):
    """An LSTM over the outer graph's x, with its own weights: the two branches compute
    different things, so the wrong one cannot pass verification."""
    W = rng.standard_normal((1, 4 * hidden, features)).astype(np.float32) * 0.5
    R = rng.standard_normal((1, 4 * hidden, hidden)).astype(np.float32) * 0.5
    return helper.make_graph(
        [helper.make_node("LSTM", ["x", f"W_{tag}", f"R_{tag}"], [f"Y_{tag}"],
                          hidden_size=hidden, name=f"lstm_{tag}"),
         helper.make_node("Squeeze", [f"Y_{tag}", "one"], [f"out_{tag}"])], f"branch_{tag}",
        [], [helper.make_tensor_value_info(f"out_{tag}", TensorProto.FLOAT, ["T", 1, hidden])],
        [numpy_helper.from_array(W, f"W_{tag}"), numpy_helper.from_array(R, f"R_{tag}")])


def rate_switch(rng, nested=False, sr_type=TensorProto.INT64):
    """silero-vad's shape: If(Equal(sr, 16000)) chooses the 16 kHz or the 8 kHz network (with
    nested=True the 8 kHz side is itself an If on sr == 8000)."""
    else_branch = _branch("8k", rng)
    if nested:
        inner = helper.make_node("If", ["is_8k"], ["out_inner"], name="inner_switch",
                                 then_branch=_branch("8k", rng), else_branch=_branch("x", rng))
        else_branch = helper.make_graph(
            [helper.make_node("Equal", ["sr", "eight"], ["is_8k"]), inner], "outer_else", [],
            [helper.make_tensor_value_info("out_inner", TensorProto.FLOAT, ["T", 1, 8])])
    graph = helper.make_graph(
        [helper.make_node("Equal", ["sr", "sixteen"], ["is_16k"]),
         helper.make_node("If", ["is_16k"], ["out"], name="sr_switch",
                          then_branch=_branch("16k", rng), else_branch=else_branch)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 5]),
         helper.make_tensor_value_info("sr", sr_type, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["T", 1, 8])],
        [numpy_helper.from_array(np.array(16000, dtype=helper.tensor_dtype_to_np_dtype(
            sr_type)), "sixteen"),
         numpy_helper.from_array(np.array(8000, dtype=helper.tensor_dtype_to_np_dtype(
             sr_type)), "eight"),
         numpy_helper.from_array(np.array([1], dtype=np.int64), "one")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _onnxruntime(model, feeds):
    import onnxruntime
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("sr", [16000, 8000])
@pytest.mark.parametrize("nested", [False, True])
def test_a_fixed_rate_keeps_the_branch_it_takes(rng, sr, nested):
    model = rate_switch(rng, nested)
    conversion = convert_onnx(model.SerializeToString(), input_values={"sr": sr},
                              tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()   # against the original graph
    assert conversion.signature["fixed_inputs"] == {"sr": sr}
    assert sum("If node" in note for note in conversion.notes) == (2 if nested and sr == 8000
                                                                   else 1)
    x = rng.standard_normal((7, 1, 5)).astype(np.float32)
    expected = _onnxruntime(model, {"x": x, "sr": np.array(sr, dtype=np.int64)})
    got = run_signature(conversion.model, conversion.signature, {"x": x, "sr": sr})["out"]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    other = _onnxruntime(model, {"x": x, "sr": np.array(24000 - sr, dtype=np.int64)})
    assert np.abs(other - expected).max() > 0.01            # the branches really differ
    with pytest.raises(ShapeError, match="fixed at 16000|fixed at 8000"):
        run_signature(conversion.model, conversion.signature, {"x": x, "sr": 24000 - sr})
    from lstmlite.converters.signature import describe
    assert any(f"'sr': fixed at {sr}" in line for line in describe(conversion.signature))


def test_an_unfixed_condition_names_the_input_and_the_option(rng):
    with pytest.raises(ConversionError, match="the LSTM node 'lstm_16k' is in the then_branch "
                                              "graph of the If node 'sr_switch'.*the condition "
                                              "of If 'sr_switch' depends on graph input 'sr'.*"
                                              "--input sr=VALUE"):
        convert_onnx(rate_switch(rng).SerializeToString())


def test_a_condition_on_a_static_size_folds_without_being_asked(rng):
    """Shape(h0)[0] is the number of directions, static even when the batch is not: an If on
    it (silero-vad's decoder has one) keeps its branch with no --input."""
    model = rate_switch(rng)
    graph = model.graph
    graph.input.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [2, "B", 8]))
    del graph.node[0]
    graph.node.insert(0, helper.make_node("Shape", ["h0"], ["h0_shape"]))
    graph.node.insert(1, helper.make_node("Gather", ["h0_shape", "zero"], ["directions"],
                                          axis=0))
    graph.node.insert(2, helper.make_node("Equal", ["directions", "two"], ["is_16k"]))
    graph.initializer.extend([numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
                              numpy_helper.from_array(np.array(2, dtype=np.int64), "two")])
    conversion = convert_onnx(model.SerializeToString(), tolerance=1e-5)
    assert conversion.report.passed
    assert any("If node 'sr_switch'" in note and "then_branch" in note
               for note in conversion.notes)


@pytest.mark.parametrize("values,message", [
    ({"rate": 16000}, "--input rate: the graph has no input of that name; its inputs are "
                      "'x', 'sr'"),
    ({"sr": 16000.5}, "--input sr=16000.5: the graph input is int64, which cannot hold that "
                      "value exactly"),
    ({"sr": [16000, 8000]}, r"--input sr: the graph input has shape \[\]; the value has "
                            r"shape \[2\]"),
])
def test_bad_input_values_are_refused_naming_them(rng, values, message):
    with pytest.raises(ConversionError, match=message):
        convert_onnx(rate_switch(rng).SerializeToString(), input_values=values)


def test_a_float_input_takes_a_whole_number(rng):
    conversion = convert_onnx(rate_switch(rng, sr_type=TensorProto.FLOAT).SerializeToString(),
                              input_values={"sr": 16000}, tolerance=1e-5)
    assert conversion.report.passed and conversion.signature["fixed_inputs"] == {"sr": 16000.0}


@pytest.mark.parametrize("items,message", [
    (["sr"], "expected NAME=VALUE"), (["sr=fast"], "is not a number"),
    (["sr=true"], "must be a number"), (["sr=1", "sr=2"], "given twice"),
    (["sr=NaN"], "must be a number"),
])
def test_the_cli_syntax_is_checked(items, message):
    with pytest.raises(ConversionError, match=message):
        parse_input_values(items)
    assert parse_input_values(["sr=16000", "gain=[1, 2.5]"]) == {"sr": 16000,
                                                                 "gain": [1, 2.5]}


def test_convert_cli_with_input(tmp_path, rng):
    source = tmp_path / "vad.onnx"
    source.write_bytes(rate_switch(rng).SerializeToString())
    run = subprocess.run([sys.executable, "-m", "lstmlite", "convert", str(source),
                          "--input", "sr=16000", "-o", str(tmp_path / "vad.lstm")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "input 'sr': fixed at 16000" in run.stdout and "ok" in run.stdout
    import lstmlite
    assert lstmlite.load(tmp_path / "vad.lstm").metadata["signature"]["fixed_inputs"] == \
        {"sr": 16000}
    refused = subprocess.run([sys.executable, "-m", "lstmlite", "convert", str(source),
                              "-o", str(tmp_path / "other.lstm")], capture_output=True,
                             text=True)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "--input sr=VALUE" in refused.stderr and not (tmp_path / "other.lstm").exists()


def test_every_unsupported_node_is_named_in_one_error(rng):
    """Grouped by op with counts, the names of the first four of each, not only the first."""
    W = rng.standard_normal((1, 32, 5)).astype(np.float32)
    R = rng.standard_normal((1, 32, 8)).astype(np.float32)
    nodes = [helper.make_node("Erf", ["x"], ["e0"], name="erf_0"),
             helper.make_node("Erf", ["e0"], ["e1"], name="erf_1"),
             helper.make_node("Cos", ["e1"], ["s"], name="the_cos")]
    for k in range(6):
        nodes.append(helper.make_node("Sin", ["s" if k == 0 else f"sin_{k - 1}"],
                                      [f"sin_{k}"], name=f"sin_{k}"))
    nodes.append(helper.make_node("LSTM", ["sin_5", "W", "R"], ["Y"], hidden_size=8))
    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             ["T", 1, 5])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT,
                                                             ["T", 1, 1, 8])],
                              [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(ConversionError) as error:
        convert_onnx(model.SerializeToString())
    message = str(error.value)
    assert "9 nodes of 3 ops cannot be converted: Cos (1 node: 'the_cos'); " \
           "Erf (2 nodes: 'erf_0', 'erf_1'); " \
           "Sin (6 nodes: 'sin_0', 'sin_1', 'sin_2', 'sin_3' and 2 more). lstmlite converts " \
           "Add," in message


def test_a_cell_written_out_as_ops_is_called_that(rng):
    """silero_vad_op18_ifless.onnx computes its LSTM step from Gemm, Split, Sigmoid and Tanh
    with the state as an input and an output: not an unrolled sequence."""
    hidden = 4
    Wt = rng.standard_normal((5 + hidden, 4 * hidden)).astype(np.float32)
    nodes = [helper.make_node("Concat", ["x", "h"], ["xh"], axis=1),
             helper.make_node("Gemm", ["xh", "W"], ["gates"]),
             helper.make_node("Split", ["gates"], ["i", "f", "g", "o"], axis=1,
                              num_outputs=4),
             helper.make_node("Sigmoid", ["i"], ["si"]), helper.make_node("Sigmoid", ["f"], ["sf"]),
             helper.make_node("Tanh", ["g"], ["tg"]), helper.make_node("Sigmoid", ["o"], ["so"]),
             helper.make_node("Mul", ["sf", "c"], ["fc"]), helper.make_node("Mul", ["si", "tg"],
                                                                           ["ig"]),
             helper.make_node("Add", ["fc", "ig"], ["c_next"]),
             helper.make_node("Tanh", ["c_next"], ["tc"]),
             helper.make_node("Mul", ["so", "tc"], ["h_next"])]
    graph = helper.make_graph(
        nodes, "cell",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, s])
         for n, s in (("x", 5), ("h", hidden), ("c", hidden))],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, hidden])
         for n in ("h_next", "c_next")], [numpy_helper.from_array(Wt, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    with pytest.raises(ConversionError, match="It computes one step of a recurrent cell "
                                              "written out as Add, Gemm, Mul, Sigmoid, Split, "
                                              "Tanh ops"):
        convert_onnx(model.SerializeToString())


def test_torch_sources_take_no_input_values(tmp_path):
    from lstmlite.converters.files import convert_source
    path = tmp_path / "weights.pt"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(ConversionError, match="--input and --input-shape fix inputs of ONNX "
                                              "graphs"):
        convert_source(str(path), input_values={"sr": 16000})
    with pytest.raises(ConversionError, match="a torch source has none to fix"):
        convert_source(str(path), input_shapes={"input": [None, 576]})
