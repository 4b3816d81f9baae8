"""`lstmlite convert` as a user runs it: success, verification failure and every error class,
each with its exit code, a one-line message and no file left behind."""
import os
import re
import subprocess
import sys

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402

import lstmlite  # noqa: E402
from lstmlite.cli import main  # noqa: E402

from onnx_graphs import keras_style_lstm, recurrent_model  # noqa: E402


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lstmlite", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def assert_one_line_error(result, *fragments, status=1):
    """One line on stderr naming the problem; status 1 for errors in the work, 2 for
    arguments argparse refuses."""
    assert result.returncode == status, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmlite convert: error:"), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def files(directory):
    return sorted(p.name for p in directory.iterdir())


def test_convert_writes_beside_the_source_with_labels(tmp_path):
    source = tmp_path / "kws.onnx"
    onnx.save(keras_style_lstm("GRU"), str(source))
    labels = tmp_path / "labels.txt"
    labels.write_text("yes\nno\n\nup\nleft\nright\nstop\n")
    result = run_cli("convert", source, "--labels", labels)
    assert result.returncode == 0, result.stderr
    assert "verification against onnxruntime" in result.stdout
    assert "max abs difference" in result.stdout and "FAILED" not in result.stdout
    assert "wrote" in result.stdout
    model = lstmlite.load(tmp_path / "kws.lstm")
    assert model.metadata["labels"] == ["yes", "no", "up", "left", "right", "stop"]
    assert model.metadata["verification"]["max_abs_difference"]["last"] < 1e-5
    assert model.metadata["signature"]["outputs"]["last"]["last_step"] is True


def test_convert_with_output_name_and_int8_verifies_the_stored_weights(tmp_path):
    source = tmp_path / "m.onnx"
    onnx.save(recurrent_model("LSTM", state_inputs=True), str(source))
    out = tmp_path / "small.lstm"
    strict = run_cli("convert", source, "-o", out, "--weights-dtype", "int8")
    assert strict.returncode == 1 and "differs from onnxruntime" in strict.stderr
    # the refusal says that the float32 conversion passed, that it is the int8 weights, by
    # how much, and how to accept them, on one line
    assert re.search(r"with int8 weights as loaded from the file \(the float32 conversion "
                     r"differs by [0-9.e-]+\): int8 weights change the outputs by their own "
                     r"rounding .* give a --tolerance that allows it", strict.stderr), \
        strict.stderr
    assert len(strict.stderr.strip().splitlines()) == 1
    assert files(tmp_path) == ["m.onnx"]
    # an int8 file runs the int8 kernels (weights and per-step activations quantized):
    # measured 5.1e-3 to 6.9e-3 against onnxruntime over seeds 0..4
    loose = run_cli("convert", source, "-o", out, "--weights-dtype", "int8",
                    "--tolerance", "0.02")
    assert loose.returncode == 0, loose.stderr
    assert "with int8 weights, as loaded from the file" in loose.stdout
    assert re.search(r"against the float32 conversion: max abs [0-9.e-]+, mean abs .*, "
                     r"top-1 agreement [0-9.]+% over 200 steps", loose.stdout), loose.stdout
    from lstmlite.format import read_info
    info, _ = read_info(str(out))
    assert "int8" in {t.dtype for t in info.tensors.values()}


def test_verification_failure_writes_nothing(tmp_path, monkeypatch, capsys):
    from lstmlite.converters import onnx_recurrent
    source = tmp_path / "m.onnx"
    onnx.save(recurrent_model("LSTM"), str(source))
    monkeypatch.setattr(onnx_recurrent, "LSTM_ONNX_TO_ENGINE", (0, 1, 2, 3))  # a broken converter
    code = main(["convert", str(source)])
    captured = capsys.readouterr()
    assert code == 1
    assert "differs from onnxruntime" in captured.err and "nothing was written" in captured.err
    assert files(tmp_path) == ["m.onnx"]
    # --no-verify converts what the converter made, and says it did not check
    assert main(["convert", str(source), "--no-verify"]) == 0
    assert "verification: off" in capsys.readouterr().out


def test_no_onnxruntime_says_it_skipped(tmp_path, monkeypatch, capsys):
    source = tmp_path / "m.onnx"
    onnx.save(recurrent_model("GRU"), str(source))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(["convert", str(source)]) == 0
    assert "verification skipped: onnxruntime is not installed" in capsys.readouterr().out


def _unsupported_op_model():
    model = keras_style_lstm("LSTM")
    last = model.graph.output[0].name
    model.graph.node.append(helper.make_node("Erf", [last], ["erf_out"], name="my_erf"))
    model.graph.output[0].name = "erf_out"
    return model


ERROR_CASES = {
    "unsupported op": (_unsupported_op_model, ["node 'my_erf' (Erf)", "not supported"]),
    "attribute value": (lambda: recurrent_model("RNN", attributes=dict(activations=["Gelu"])),
                        ["node 'rnn_node' (RNN)", "'activations'[0] is 'Gelu'"]),
    "no recurrent node": (lambda: _without_recurrent(), ["no LSTM, GRU or RNN node"]),
}


def _without_recurrent():
    from onnx_graphs import chain_model
    return chain_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [1, 3])],
                       [("y", [1, 3])], {})


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_conversion_errors(tmp_path, case):
    build, fragments = ERROR_CASES[case]
    source = tmp_path / "m.onnx"
    onnx.save(build(), str(source))
    result = run_cli("convert", source)
    assert_one_line_error(result, "m.onnx", *fragments)
    assert files(tmp_path) == ["m.onnx"]


def test_file_errors(tmp_path):
    assert_one_line_error(run_cli("convert", tmp_path / "missing.onnx"), "missing.onnx",
                          "No such file or directory")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(os.urandom(300))
    assert_one_line_error(run_cli("convert", junk), "junk.onnx", "not an ONNX model")
    other = tmp_path / "model.h5"
    other.write_bytes(b"\x89HDF\r\n")
    assert_one_line_error(run_cli("convert", other), "model.h5", "unknown kind of model file")
    assert files(tmp_path) == ["junk.onnx", "model.h5"]


def test_option_errors(tmp_path):
    source = tmp_path / "m.onnx"
    onnx.save(keras_style_lstm("LSTM"), str(source))
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    assert_one_line_error(run_cli("convert", source, "--labels", labels),
                          "labels.txt", "has 2 labels", "6 outputs")
    assert_one_line_error(run_cli("convert", source, "--tolerance", "-1"), "--tolerance",
                          "expected a positive finite number, got -1", status=2)
    assert_one_line_error(run_cli("convert", source, "--head-activation", "softmax"),
                          "--head-activation", "does not apply to ONNX models")
    assert_one_line_error(run_cli("convert", source, "-o", source), "overwrite the source")
    assert files(tmp_path) == ["labels.txt", "m.onnx"]
