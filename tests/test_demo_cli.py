"""The bundled example and the demo command, as a user runs them."""
import subprocess
import sys

import numpy as np

import lstmlite as ll
from lstmlite.demo import build_demo_model, bundled_model_path


def test_bundled_model_matches_its_generator():
    bundled = ll.load(bundled_model_path())
    X = np.random.default_rng(3).standard_normal((50, 40)).astype(np.float32)
    np.testing.assert_array_equal(bundled.run(X), build_demo_model().run(X))
    assert bundled.metadata["labels"] == ["silence", "yes", "no", "unknown"]


def test_demo_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lstmlite", "demo", "--frames", "120"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "demo.lstm" in result.stdout and "frame  100:" in result.stdout
    assert "max |stream - run()| = 0.0e+00" in result.stdout


def test_cli_errors_are_one_line_and_non_zero(tmp_path):
    bad = tmp_path / "x.lstm"
    bad.write_bytes(b"not a model")
    for args in (["demo", "--model", str(bad)], ["info", str(tmp_path / "missing.lstm")]):
        result = subprocess.run([sys.executable, "-m", "lstmlite", *args],
                                capture_output=True, text=True)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith(f"lstmlite {args[0]}: error: ")


def test_output_piped_into_a_closed_reader_exits_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "lstmlite", "demo", "--frames", "2000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"error" not in err and b"Traceback" not in err, err
