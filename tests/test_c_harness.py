"""Builds and runs the C harness (tests/c/test_kernels.c): the kernels without Python, against
a double-precision C reference, with malloc wrapped to prove a step never allocates."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["dispatch", "kernels_generic", "kernels_avx2", "activations", "lstm", "gru", "rnn",
           "dense", "model"]


def build_harness(out_dir, compiler="cc", extra=()):
    exe = os.path.join(out_dir, "test_kernels")
    cmd = [compiler, "-O2", "-std=c11", "-ffp-contract=fast", "-fno-trapping-math",
           "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
           "-I", os.path.join(ROOT, "src"), os.path.join(ROOT, "tests", "c", "test_kernels.c")]
    cmd += [os.path.join(ROOT, "src", f"{name}.c") for name in SOURCES]
    cmd += ["-lm", "-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc", "-o", exe, *extra]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("cc") is None,
                    reason="needs a Linux C compiler (GNU ld's --wrap)")
def test_c_harness(tmp_path):
    try:
        exe = build_harness(str(tmp_path))
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"harness did not compile:\n{exc.stderr}")
    result = subprocess.run([exe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.endswith(" 0 failed") and int(last.split()[0]) >= 80, result.stdout
