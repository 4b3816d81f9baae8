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


def test_int8_is_checked_against_the_float32_conversion_at_its_own_tolerance(tmp_path):
    """--tolerance stays the float32 check against onnxruntime (default 1e-4); the stored int8
    model is compared with the float32 conversion at --quantized-tolerance, a fraction of the
    largest output (default 0.1), and the report is printed and recorded."""
    source = tmp_path / "m.onnx"
    onnx.save(recurrent_model("LSTM", state_inputs=True), str(source))
    out = tmp_path / "small.lstm"
    result = run_cli("convert", source, "-o", out, "--weights-dtype", "int8")
    assert result.returncode == 0, result.stderr
    assert "tolerance 0.0001" in result.stdout and "FAILED" not in result.stdout
    match = re.search(r"with int8 weights, as loaded from the file, against the float32 "
                      r"conversion \(4 x 50 seeded random steps; quantized tolerance 0.1 of the "
                      r"largest output\): max abs ([0-9.e-]+) \(([0-9.e-]+)% of the largest "
                      r"output, [0-9.e-]+\), mean abs .*, top-1 agreement [0-9.]+% over 200 "
                      r"steps  ok", result.stdout)
    assert match, result.stdout
    assert 0 < float(match.group(1)) < 0.05 and float(match.group(2)) < 10
    from lstmlite.format import read_info
    info, _ = read_info(str(out))
    assert "int8" in {t.dtype for t in info.tensors.values()}
    recorded = info.metadata["verification"]
    assert recorded["max_abs_difference"]["Y"] < 1e-4          # the float32 check
    assert recorded["stored"]["weights_dtype"] == "int8"
    assert recorded["stored"]["max_abs_difference"] == pytest.approx(float(match.group(1)),
                                                                     rel=1e-2)
    # a quantized tolerance below what this model's int8 weights measure: refused, one line
    # saying it is the int8 weights against the float32 conversion, and how to accept them
    strict = run_cli("convert", source, "-o", tmp_path / "strict.lstm", "--weights-dtype",
                     "int8", "--quantized-tolerance", "1e-5")
    assert_one_line_error(strict, "m.onnx: with int8 weights as loaded from the file, the "
                                  "model differs from the float32 conversion (which passed "
                                  "its own verification) by more than the quantized "
                                  "tolerance 1e-05", "--quantized-tolerance accepts",
                          "Nothing was written")
    assert not (tmp_path / "strict.lstm").exists()
    # float16 passes the default by far
    half = run_cli("convert", source, "-o", tmp_path / "half.lstm", "--weights-dtype",
                   "float16")
    assert half.returncode == 0 and "with float16 weights" in half.stdout, half.stderr
    assert_one_line_error(run_cli("convert", source, "--quantized-tolerance", "0.1"),
                          "--quantized-tolerance bounds a model stored with --weights-dtype")


def test_a_broken_quantization_is_caught_at_the_default(tmp_path, monkeypatch, capsys):
    """int8 weights whose scales are off by 2x (a broken quantizer) are refused at the default
    quantized tolerance, though the float32 conversion passes."""
    import lstmlite.format as FORMAT
    source = tmp_path / "m.onnx"
    onnx.save(recurrent_model("GRU"), str(source))
    quantize_rows = FORMAT.quantize_rows
    monkeypatch.setattr(FORMAT, "quantize_rows",
                        lambda array: (lambda q, s: (q, s * 2))(*quantize_rows(array)))
    assert main(["convert", str(source), "--weights-dtype", "int8"]) == 1
    captured = capsys.readouterr()
    assert "max abs difference" in captured.out and "FAILED" not in captured.out
    assert "by more than the quantized tolerance 0.1" in captured.err, captured.err
    assert files(tmp_path) == ["m.onnx"]


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


def test_output_errors_come_before_any_work(tmp_path, monkeypatch, capsys):
    """A path that cannot be written is refused before the source is even read as a model:
    the converter is never called."""
    from lstmlite.converters import files as converter_files
    source = tmp_path / "m.onnx"
    onnx.save(keras_style_lstm("LSTM"), str(source))
    calls = []
    monkeypatch.setattr(converter_files, "convert_source", lambda *a, **k: calls.append(a))
    (tmp_path / "plain").write_text("")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    (tmp_path / "elsewhere.lstm").write_text("keep")
    os.symlink(tmp_path / "elsewhere.lstm", tmp_path / "alias.lstm")
    os.link(source, tmp_path / "hardlink.lstm")
    cases = [
        (tmp_path / "missing" / "x.lstm", "the directory " + str(tmp_path / "missing") +
         " does not exist"),
        (tmp_path / "plain" / "x.lstm", "is not a directory"),
        (tmp_path, "exists and is a directory"),
        (tmp_path / "alias.lstm", "exists and is a symbolic link"),
        (source, "the output would overwrite the source"),
        (tmp_path / "hardlink.lstm", "the output would overwrite the source"),
    ]
    for output, message in cases:
        assert main(["convert", str(source), "-o", str(output)]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (output, err)
    # a directory this process may not write in (root may write anywhere: asked of os.access)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if os.path.samefile(
        path, locked) else real_access(path, mode))
    assert main(["convert", str(source), "-o", str(locked / "x.lstm")]) == 1
    err = capsys.readouterr().err
    assert f"no permission to create files in {locked}" in err, err
    assert calls == [] and (tmp_path / "elsewhere.lstm").read_text() == "keep"


def test_an_lstm_source_is_named_for_what_it_is(tmp_path):
    model = tmp_path / "kws.lstm"
    model.write_bytes(open(lstmlite.examples.path("kws"), "rb").read())
    assert_one_line_error(run_cli("convert", model), "kws.lstm: is already an .lstm file, "
                          "lstmlite's own format", "lstmlite info", "convert takes .onnx")
