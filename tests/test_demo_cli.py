"""The bundled example and the demo command, as a user runs them."""
import subprocess
import sys

import numpy as np
import pytest

import lstmlite as ll
from lstmlite.demo import build_demo_model, bundled_model_path


def test_bundled_model_matches_its_generator():
    bundled = ll.load(bundled_model_path())
    X = np.random.default_rng(3).standard_normal((50, 40)).astype(np.float32)
    np.testing.assert_array_equal(bundled.run(X), build_demo_model().run(X))
    assert bundled.metadata["labels"] == ["silence", "yes", "no", "unknown"]


def test_cli_errors_are_one_line_and_non_zero(tmp_path):
    bad = tmp_path / "x.lstm"
    bad.write_bytes(b"not a model")
    for args in (["demo", "--model", str(bad)], ["info", str(tmp_path / "missing.lstm")]):
        result = subprocess.run([sys.executable, "-m", "lstmlite", *args],
                                capture_output=True, text=True)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith(f"lstmlite {args[0]}: error: ")


def test_output_piped_into_a_closed_reader_exits_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "lstmlite", "demo"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"error" not in err and b"Traceback" not in err, err


def test_bench_times_every_available_kernel_set_in_float32_and_int8():
    from lstmlite import _core
    from lstmlite.demo import bundled_model_path
    result = subprocess.run([sys.executable, "-m", "lstmlite", "bench", bundled_model_path(),
                             "--steps", "20", "--repeats", "2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].split() == ["kernels", "float32", "int8"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines[3:-1]}
    assert set(rows) == {k for k in _core.kernels_compiled() if _core.kernels_supported(k)}
    assert all(float(t) > 0 for times in rows.values() for t in times)
    # onnxruntime on the same model, checked to agree before it is timed (the sdist check's
    # venvs have no onnxruntime: then the line says so)
    try:
        import onnxruntime  # noqa: F401
        assert lines[-1].split()[0] == "ort" and float(lines[-1].split()[1]) > 0
        assert "onnxruntime 1." in lines[-1] and "lstmlite float32 " in lines[-1], lines[-1]
    except ImportError:
        assert lines[-1].startswith("onnxruntime: not timed (")


@pytest.mark.parametrize("args,message", [
    (["bench", "MODEL", "--steps", "0"], "argument --steps: expected an integer from 1 to"),
    (["bench", "MODEL", "--repeats", "-1"], "argument --repeats: expected an integer from 1"),
    (["bench", "MODEL", "--steps", "1e3"], "argument --steps: expected an integer, got '1e3'"),
    (["demo", "--frames", "5"], "unrecognized arguments: --frames 5"),
    (["convert", "MODEL", "--seed", "-1"], "argument --seed: expected an integer from 0"),
    (["convert", "MODEL", "--tolerance", "nan"], "argument --tolerance: expected a positive "
                                                 "finite number, got nan"),
    (["convert", "MODEL", "--input-size", "0"], "argument --input-size: expected an integer "
                                                "from 1"),
    (["convert", "MODEL", "--weights-dtype", "int4"], "argument --weights-dtype: invalid "
                                                      "choice"),
    ([], "the following arguments are required: command"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    """argparse's refusals: one line naming the argument, status 2, no usage dump."""
    from lstmlite.demo import bundled_model_path
    args = [bundled_model_path() if a == "MODEL" else a for a in args]
    result = subprocess.run([sys.executable, "-m", "lstmlite", *args], capture_output=True,
                            text=True)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
