import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from lstmlite import _core  # noqa: E402

# every set compiled in that this CPU runs (generic, avx2, avx512 on x86-64; neon, dotprod on ARM)
KERNEL_SETS = [name for name in _core.kernels_compiled() if _core.kernels_supported(name)]


@pytest.fixture(params=KERNEL_SETS)
def kernels(request):
    """Runs a test once per kernel set this CPU supports, then restores the default."""
    previous = _core.kernels_active()
    _core.select_kernels(request.param)
    yield request.param
    _core.select_kernels(previous)


@pytest.fixture
def rng(request):
    # a seed per test, stable across runs and independent of test order
    seed = sum(map(ord, request.node.nodeid)) % (2 ** 32)
    return np.random.default_rng(seed)


# Float32 results against the float64 reference: |a - ref| <= ATOL + RTOL * |ref|. ATOL is the
# 1e-5 the project promises; RTOL only matters for unbounded activations (Relu, Affine, ...)
# whose outputs reach hundreds at saturating inputs, where float32 itself has ~6e-8 relative
# resolution and the accumulated products ~1e-7.
ATOL = 1e-5
RTOL = 1e-5


def assert_close(actual, expected, atol=ATOL, rtol=RTOL, what=""):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    err = np.abs(actual - expected)
    bound = atol + rtol * np.abs(expected)
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else ()
    assert np.all(err <= bound), (
        f"{what}: max error {err.max():.3g} at {worst} (actual {actual[worst]!r}, "
        f"expected {expected[worst]!r}, bound {bound[worst]:.3g})")


def traced_allocations(loop, ok, attempts=3):
    """The (net, peak) bytes tracemalloc sees while loop() runs, measured up to `attempts`
    times until ok(net, peak) holds; returns every measurement. tracemalloc sees every thread
    of the process, and a thread or finalizer left by an earlier test may allocate a few
    hundred bytes during one measurement; code that allocates per iteration does so in every
    measurement, so one that passes proves the loop allocates nothing."""
    import tracemalloc
    seen = []
    for _ in range(attempts):
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            loop()
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        seen.append((after - before, peak - before))
        if ok(*seen[-1]):
            break
    return seen


_APT_TRIED = set()


def debian_tool(command: str, package: str, require_env: str) -> str:
    """The path of `command`, installing Debian's `package` with apt-get first where it is
    missing and this process may (root, apt-get present; once per package per session).
    Skips the calling test with the reason when it cannot be had, unless `require_env` is set
    (CI sets it), where the test fails instead."""
    import shutil
    import subprocess
    found = shutil.which(command)
    if found is None and package not in _APT_TRIED and shutil.which("apt-get") \
            and hasattr(os, "geteuid") and os.geteuid() == 0:
        _APT_TRIED.add(package)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], capture_output=True,
                       env=env)
        found = shutil.which(command)
    if found is None:
        message = (f"{command} is not installed and could not be installed "
                   f"(apt-get install {package})")
        if os.environ.get(require_env):
            pytest.fail(f"{message}; {require_env} is set")
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def silero_dir():
    """silero-vad's package directory (silero_vad/data/*.onnx, silero_vad.jit, utils_vad.py)
    from its wheel on the package index, downloaded once with pip (examples/vad/silero.py).
    Skips with the reason where it cannot be had, unless LSTMLITE_REQUIRE_SILERO=1 (CI sets
    it), where the test fails instead."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples",
                                    "vad"))
    import silero
    try:
        return silero.fetch()
    except silero.FetchError as exc:
        if os.environ.get("LSTMLITE_REQUIRE_SILERO"):
            pytest.fail(f"{exc}; LSTMLITE_REQUIRE_SILERO is set")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def silero_utils(silero_dir):
    """silero-vad's own utils_vad module (OnnxWrapper, get_speech_timestamps), which needs
    torch: the reference its users run."""
    pytest.importorskip("torch")
    import silero
    return silero.utils(silero_dir)
