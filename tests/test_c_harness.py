"""Builds and runs the C harness (tests/c/test_kernels.c): the kernels without Python, float32
and int8, against a double-precision C reference, with malloc wrapped to prove a step never
allocates; natively, and cross-compiled for aarch64 and armv7 under qemu-user on the CPUs of
the Raspberry Pi models (no binfmt_misc: qemu is called explicitly with -L).

Every kernel set the (emulated) CPU runs must run the same checks as the generic set. The ARM
targets need Debian's gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf and qemu-user; without
them they skip, unless LSTMLITE_REQUIRE_QEMU=1 (set by CI), where a missing tool fails."""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from lstmlite import _core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the engine's C files (the Cython binding's generated _core.c aside), by name
SOURCES = sorted(os.path.splitext(os.path.basename(path))[0]
                 for path in glob.glob(os.path.join(ROOT, "src", "*.c"))
                 if not path.endswith("_core.c"))
REQUIRE_QEMU = os.environ.get("LSTMLITE_REQUIRE_QEMU") == "1"
MIN_CHECKS_PER_SET = 100

# (id, compiler, emulator command, the kernel sets that CPU must run)
TARGETS = [
    ("aarch64-cortex-a72", "aarch64-linux-gnu-gcc",
     ["qemu-aarch64", "-cpu", "cortex-a72", "-L", "/usr/aarch64-linux-gnu"],
     {"generic", "neon"}),            # Pi 4 (the Pi 3's A53 has the same features)
    ("aarch64-cortex-a76", "aarch64-linux-gnu-gcc",
     ["qemu-aarch64", "-cpu", "max", "-L", "/usr/aarch64-linux-gnu"],
     {"generic", "neon", "dotprod"}),  # Pi 5's A76 has dotprod; qemu's "max" CPU does too
    ("armv7-cortex-a7", "arm-linux-gnueabihf-gcc",
     ["qemu-arm", "-cpu", "cortex-a7", "-L", "/usr/arm-linux-gnueabihf"],
     {"generic", "neon"}),            # 32-bit Pi OS
]


def build_harness(out_dir, compiler="cc", extra=()):
    exe = os.path.join(out_dir, "test_kernels")
    cmd = [compiler, "-O2", "-std=c11", "-ffp-contract=fast", "-fno-trapping-math",
           "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-Wno-psabi",
           "-I", os.path.join(ROOT, "src"), os.path.join(ROOT, "tests", "c", "test_kernels.c")]
    cmd += [os.path.join(ROOT, "src", f"{name}.c") for name in SOURCES]
    cmd += ["-lm", "-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc", "-o", exe, *extra]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"harness did not compile with {compiler}:\n{exc.stderr}")
    return exe


def check_output(result, expected_sets):
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    counts = {name: int(n) for name, n in re.findall(r"^kernels (\w+): (\d+) checks$",
                                                     result.stdout, re.M)}
    assert set(counts) == set(expected_sets), (counts, expected_sets, output)
    assert counts["generic"] >= MIN_CHECKS_PER_SET, output
    assert len(set(counts.values())) == 1, f"sets ran different checks: {counts}"
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed, 0 failed", last), output
    assert int(last.split()[0]) == sum(counts.values()), output


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("cc") is None,
                    reason="needs a Linux C compiler (GNU ld's --wrap)")
def test_c_harness_native(tmp_path):
    exe = build_harness(str(tmp_path))
    result = subprocess.run([exe], capture_output=True, text=True, timeout=120)
    # the harness and the extension must agree on which sets this CPU runs
    expected = {name for name in _core.kernels_compiled() if _core.kernels_supported(name)}
    check_output(result, expected)


@pytest.mark.parametrize("target", TARGETS, ids=[t[0] for t in TARGETS])
def test_c_harness_under_qemu(tmp_path, target):
    name, compiler, emulator, expected = target
    missing = [tool for tool in (compiler, emulator[0]) if shutil.which(tool) is None]
    if missing:
        message = (f"{name}: {', '.join(missing)} not installed (apt-get install "
                   f"gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user)")
        if REQUIRE_QEMU:
            pytest.fail(message)
        pytest.skip(message)
    exe = build_harness(str(tmp_path), compiler)
    result = subprocess.run(emulator + [exe], capture_output=True, text=True, timeout=300)
    check_output(result, expected)
