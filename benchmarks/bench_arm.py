"""Instructions per step on the Raspberry Pi's instruction sets, counted under qemu-user, for
lstmlite and its peers on the same LSTM stacks, with the arithmetic floor beside them.

    python benchmarks/bench_arm.py [--json] [--targets a72,max,a7] [--levels c,python]

Targets (qemu's CPU models for the Pis):
  a72   qemu-aarch64 -cpu cortex-a72   Pi 4 (the Pi 3's A53 has the same features): neon
  max   qemu-aarch64 -cpu max          a CPU with dotprod, as the Pi 5's A76: dotprod
  a7    qemu-arm -cpu cortex-a7        32-bit Raspberry Pi OS: neon (armv7)
Configs (I:H:L, an L-layer LSTM stack): 40:64:1, 40:128:1, 40:256:2, 64:512:1.

Levels:
  c       benchmarks/arm/step_count.c, cross-compiled against src/: the engine's step with no
          Python, for every kernel set the CPU runs (the best one is the row "lstmlite").
  python  a step from Python in the Debian bookworm arm64 system of tools/arm-check (built on
          first use, about 15 minutes): lstmlite's stream.step, and onnxruntime's and LiteRT's
          aarch64 wheels called as bench_step.py calls them (benchmarks/arm/python_step.py;
          LiteRT's models made once by TensorFlow in a venv of its own,
          benchmarks/arm/make_tflite.py), after checking that they agree with lstmlite on the
          same weights. aarch64 targets only (arm-check cannot run armhf).
Each figure is (count(2T steps) - count(T steps)) / T: building the model cancels out; at the
Python level the counts are also taken only between two marks python_step.py makes around its
steps (insn_count.c), since starting Python and importing the libraries varies between runs
by more than a few steps cost. The floor is the multiply-adds of a step divided by what one
instruction of that set does: fmla 4 (float32, aarch64 and armv7's vmla.f32 q alike), sdot
16 (int8 with dotprod), smlal 8 (int8 on neon).

What the counts do not show: instruction counts are not time. There are no cache misses or
memory stalls in them, and an instruction that does 16 multiply-adds counts as one like an
add. The bytes of weights a step reads are printed beside them, against the Pi 4's 1 MB L2
and a few GB/s of memory.

Counting: benchmarks/arm/insn_count.c, a qemu TCG plugin (API version 1, qemu 7.2), built
against the qemu-plugin.h of Debian's qemu source package (fetched with apt-get source into
LSTMLITE_ARM_ROOT, default /var/tmp/lstmlite-arm, on first use; needs a deb-src entry, which
this script adds to /etc/apt/sources.list.d/debian.sources when missing, as root).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ARM_ROOT = os.environ.get("LSTMLITE_ARM_ROOT", "/var/tmp/lstmlite-arm")
#: the engine's C files (the Cython binding's generated _core.c aside), by name
SOURCES = sorted(os.path.splitext(os.path.basename(path))[0]
                 for path in glob.glob(os.path.join(ROOT, "src", "*.c"))
                 if not path.endswith("_core.c"))
CONFIGS = [(40, 64, 1), (40, 128, 1), (40, 256, 2), (64, 512, 1)]
#: target -> (compiler, emulator command, kernel sets the CPU runs, best first, int8 MACs
#: per instruction of the best set)
TARGETS = {
    "a72": ("aarch64-linux-gnu-gcc",
            ["qemu-aarch64", "-cpu", "cortex-a72", "-L", "/usr/aarch64-linux-gnu"],
            ["neon", "generic"], 8),
    "max": ("aarch64-linux-gnu-gcc",
            ["qemu-aarch64", "-cpu", "max", "-L", "/usr/aarch64-linux-gnu"],
            ["dotprod", "neon", "generic"], 16),
    "a7": ("arm-linux-gnueabihf-gcc",
           ["qemu-arm", "-cpu", "cortex-a7", "-L", "/usr/arm-linux-gnueabihf"],
           ["neon", "generic"], 8),
}
FLOAT_MACS_PER_INSN = 4
STEPS = 40   # T: counts of T and 2T steps


def config_name(config) -> str:
    return ":".join(str(v) for v in config)


def macs_per_step(I: int, H: int, L: int) -> int:
    """Multiply-adds of one LSTM stack step: 4H x (inputs + H) per layer."""
    return sum(4 * H * ((I if k == 0 else H) + H) for k in range(L))


def weight_bytes(I: int, H: int, L: int, dtype: str) -> int:
    """Bytes of weight matrices a step reads (int8: one byte each and a float scale per row)."""
    count = sum(4 * H * ((I if k == 0 else H) + H) for k in range(L))
    rows = sum(2 * 4 * H for _ in range(L))
    return 4 * count if dtype == "float32" else count + 4 * rows


# ---- the counting plugin ------------------------------------------------------------------

def plugin_header() -> str:
    """The directory of qemu-plugin.h from Debian's source package of the installed qemu."""
    found = glob.glob(os.path.join(ARM_ROOT, "qemu-src", "qemu-*", "include", "qemu",
                                   "qemu-plugin.h"))
    if found:
        return os.path.dirname(found[0])
    source = os.path.join(ARM_ROOT, "qemu-src")
    os.makedirs(source, exist_ok=True)
    sources = "/etc/apt/sources.list.d/debian.sources"
    if os.path.exists(sources) and "deb-src" not in open(sources).read():
        text = open(sources).read().replace("Types: deb\n", "Types: deb deb-src\n")
        with open(sources, "w") as handle:
            handle.write(text)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "source", "--download-only", "qemu"], cwd=source, check=True,
                   stdout=subprocess.DEVNULL)
    tarball = sorted(glob.glob(os.path.join(source, "qemu_*.orig.tar.*")))[-1]
    members = subprocess.run(["tar", "-tf", tarball], capture_output=True, text=True,
                             check=True).stdout.split()
    header = next(m for m in members if m.endswith("include/qemu/qemu-plugin.h"))
    subprocess.run(["tar", "-xf", tarball, header], cwd=source, check=True)
    return os.path.dirname(os.path.join(source, header))


def build_plugin(work: str) -> str:
    path = os.path.join(work, "insn_count.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-I", plugin_header(),
                    os.path.join(HERE, "arm", "insn_count.c"), "-o", path], check=True)
    return path


def count(emulator: List[str], plugin: str, command: List[str], work: str,
          env: Optional[Dict[str, str]] = None) -> int:
    """Guest instructions `command` executes under `emulator`."""
    out = os.path.join(work, "count.txt")
    result = subprocess.run(emulator + ["-plugin", f"{plugin},outfile={out}"] + command,
                            capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed under {emulator[0]}:\n"
                           f"{result.stdout}{result.stderr}")
    with open(out) as handle:
        return int(handle.read())


def per_step(emulator, plugin, command_for_steps, work, env=None) -> float:
    """(count(2T) - count(T)) / T."""
    once = count(emulator, plugin, command_for_steps(STEPS), work, env)
    twice = count(emulator, plugin, command_for_steps(2 * STEPS), work, env)
    return (twice - once) / STEPS


# ---- the C level ----------------------------------------------------------------------------

def build_step_count(compiler: str, work: str, name: str) -> str:
    exe = os.path.join(work, f"step_count_{name}")
    # setup.py's flags for the extension: the same code the package runs
    cmd = [compiler, "-O3", "-std=c11", "-ffp-contract=fast", "-fno-trapping-math",
           "-I", os.path.join(ROOT, "src"), os.path.join(HERE, "arm", "step_count.c")]
    cmd += [os.path.join(ROOT, "src", f"{source}.c") for source in SOURCES]
    subprocess.run(cmd + ["-lm", "-o", exe], check=True)
    return exe


def c_rows(target: str, plugin: str, work: str):
    compiler, emulator, sets, int8_macs = TARGETS[target]
    exe = build_step_count(compiler, work, target)
    for config in CONFIGS:
        I, H, L = config
        macs = macs_per_step(I, H, L)
        for dtype in ("float32", "int8"):
            floor = macs / (FLOAT_MACS_PER_INSN if dtype == "float32" else int8_macs)
            yield {"target": target, "config": config_name(config), "runtime": "floor",
                   "dtype": dtype, "insns_per_step": round(floor), "level": "c",
                   "weight_bytes": weight_bytes(I, H, L, dtype)}
            for rank, kernels in enumerate(sets):
                insns = per_step(emulator, plugin, lambda steps: [
                    exe, str(I), str(H), str(L), dtype, str(steps), kernels], work)
                yield {"target": target, "config": config_name(config),
                       "runtime": "lstmlite" if rank == 0 else f"lstmlite-{kernels}",
                       "dtype": dtype, "insns_per_step": round(insns), "level": "c",
                       "kernels": kernels, "of_floor": round(insns / floor, 2)}


# ---- the Python level -----------------------------------------------------------------------

#: onnxruntime's aarch64 wheel: 1.32 dies of SIGSEGV on import under qemu 7.2 (either CPU);
#: 1.22.1 runs
ORT_AARCH64 = "onnxruntime==1.22.1"
#: where tools/arm-check leaves its venv (lstmlite installed from the sdist, as on a Pi)
GUEST_WORK = "/root/lstmlite-check"
GUEST_PYTHON = GUEST_WORK + "/venv/bin/python"


def guest(system: str, qemu: str, argv: List[str]) -> List[str]:
    """argv run in the emulated system under proot, as tools/arm-check runs it."""
    return ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root", "LANG=C.UTF-8", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PYTHONHASHSEED=0",
            "PIP_CERT=/etc/ssl/certs/ca-certificates.crt", "OMP_NUM_THREADS=1",
            "proot", "-q", qemu, "-0", "-r", system, "-w", "/root", "-b", "/dev", "-b",
            "/proc", "-b", "/sys", "-b", "/etc/resolv.conf", "-b", "/etc/hosts", "-b",
            f"{os.environ.get('SSL_CERT_FILE', '/etc/ssl/certs/ca-certificates.crt')}:"
            f"/etc/ssl/certs/ca-certificates.crt"] + argv


def prepare_guest(emulator: List[str]) -> str:
    """The arm64 system with lstmlite installed (tools/arm-check, on first use) and the
    peers' manylinux aarch64 wheels (downloaded on the host, installed once), and the
    benchmark scripts copied in; returns the system's root."""
    system = os.path.join(ARM_ROOT, "arm64")
    if not os.path.exists(os.path.join(system, GUEST_PYTHON.lstrip("/"))):
        subprocess.run([os.path.join(ROOT, "tools", "arm-check"), "arm64"], check=True)
    cpu = emulator[emulator.index("-cpu") + 1]
    qemu = f"qemu-aarch64 -cpu {cpu}"
    marker = os.path.join(system, GUEST_WORK.lstrip("/"), "venv", ".peers-installed")
    if not os.path.exists(marker):
        wheels = os.path.join(ARM_ROOT, "wheels-aarch64")
        os.makedirs(wheels, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", wheels,
                        "--platform", "manylinux_2_28_aarch64", "--platform",
                        "manylinux_2_17_aarch64", "--platform", "manylinux2014_aarch64",
                        "--python-version", "3.11", "--only-binary", ":all:", ORT_AARCH64,
                        "onnx", "ai-edge-litert"], check=True)
        target = os.path.join(system, "root", "wheels")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(wheels, target)
        subprocess.run(guest(system, qemu, [GUEST_PYTHON, "-m", "pip", "install", "-q",
                                            "--no-index", "--find-links", "/root/wheels",
                                            ORT_AARCH64, "onnx", "ai-edge-litert"]),
                       check=True)
        open(marker, "w").close()
    scripts = os.path.join(system, "root", "bench")
    os.makedirs(os.path.join(scripts, "arm"), exist_ok=True)
    for name in ("bench_int8.py", "bench_step.py", "lstm_weights.py"):
        shutil.copy(os.path.join(HERE, name), os.path.join(scripts, name))
    shutil.rmtree(os.path.join(scripts, "tflite"), ignore_errors=True)
    shutil.copytree(tflite_models(), os.path.join(scripts, "tflite"))
    shutil.copy(os.path.join(HERE, "arm", "python_step.py"),
                os.path.join(scripts, "arm", "python_step.py"))
    return system


def tflite_models() -> str:
    """LiteRT's models of every config (benchmarks/arm/make_tflite.py), made once by
    TensorFlow in a venv of its own under LSTMLITE_ARM_ROOT."""
    directory = os.path.join(ARM_ROOT, "tflite")
    names = [f"lstm_{I}_{H}_{L}_{dtype}.tflite" for I, H, L in CONFIGS
             for dtype in ("float32", "int8")]
    if all(os.path.exists(os.path.join(directory, name)) for name in names):
        return directory
    venv = os.path.join(ARM_ROOT, "tf-venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "tensorflow-cpu", "numpy"],
                       check=True)
    subprocess.run([python, os.path.join(HERE, "arm", "make_tflite.py"), directory] +
                   [config_name(c) for c in CONFIGS], check=True,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), stdout=subprocess.DEVNULL)
    return directory


def python_rows(target: str, plugin: str, work: str):
    """Per step from Python in tools/arm-check's arm64 system: lstmlite's stream.step and
    onnxruntime's session (float32, and int8 by its quantize_dynamic), each checked against
    lstmlite float32 before the counted steps (benchmarks/arm/python_step.py)."""
    _, emulator, _, _ = TARGETS[target]
    system = prepare_guest(emulator)
    cpu = emulator[emulator.index("-cpu") + 1]
    # proot translates qemu's own file accesses into the guest too: the plugin and its
    # output file live in the guest's /root/bench
    shutil.copy(plugin, os.path.join(system, "root", "bench", "insn_count.so"))
    out = os.path.join(system, "root", "bench", "count.txt")
    for config in CONFIGS:
        I, H, L = config
        for runtime in ("lstmlite", "onnxruntime", "litert"):
            for dtype in ("float32", "int8"):
                counts = []
                for steps in (STEPS, 2 * STEPS):
                    qemu = (f"qemu-aarch64 -cpu {cpu} -plugin /root/bench/insn_count.so,"
                            f"outfile=/root/bench/count.txt")
                    result = subprocess.run(
                        guest(system, qemu, [GUEST_PYTHON, "/root/bench/arm/python_step.py",
                                             runtime, dtype, str(I), str(H), str(L),
                                             str(steps)]),
                        capture_output=True, text=True, timeout=3600)
                    if result.returncode in (3, 4):
                        break  # not installed here, or not in agreement: no figure
                    if result.returncode != 0:
                        raise RuntimeError(f"{runtime} {dtype} {config} failed in the guest:\n"
                                           f"{result.stdout}{result.stderr}")
                    with open(out) as handle:
                        counts.append(int(handle.read()))
                if len(counts) != 2:
                    why = "not installed" if result.returncode == 3 else \
                        "disagrees with lstmlite float32: " + result.stderr.strip()[-200:]
                    print(f"# {target} {config_name(config)} {runtime} {dtype}: {why}",
                          file=sys.stderr)
                    continue
                yield {"target": target, "config": config_name(config), "runtime": runtime,
                       "dtype": dtype, "insns_per_step": round((counts[1] - counts[0]) / STEPS),
                       "level": "python"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--targets", default="a72,max,a7")
    parser.add_argument("--levels", default="c,python")
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    levels = [lv for lv in args.levels.split(",") if lv]
    for target in targets:
        if target not in TARGETS:
            parser.error(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
    work = tempfile.mkdtemp(prefix="bench_arm_")
    try:
        plugin = build_plugin(work)
        rows = []
        for target in targets:
            generators = []
            if "c" in levels:
                generators.append(c_rows(target, plugin, work))
            if "python" in levels and target != "a7":
                generators.append(python_rows(target, plugin, work))
            for generator in generators:
                for row in generator:
                    rows.append(row)
                    if args.json:
                        print(json.dumps(row), flush=True)
        if not args.json:
            print_table(rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def print_table(rows) -> None:
    """Per target and level: instructions per step of each runtime, float32 / int8."""
    keys = sorted({(r["target"], r["level"]) for r in rows},
                  key=lambda k: (list(TARGETS).index(k[0]), k[1]))
    for target, level in keys:
        print(f"\n{target}, {level} level: instructions per step, float32 / int8")
        mine = [r for r in rows if r["target"] == target and r["level"] == level]
        runtimes = list(dict.fromkeys(r["runtime"] for r in mine))
        print("| runtime | " + " | ".join(config_name(c) for c in CONFIGS) + " |")
        print("| --- " * (len(CONFIGS) + 1) + "|")
        for runtime in runtimes:
            cells = []
            for config in CONFIGS:
                values = {r["dtype"]: r["insns_per_step"] for r in mine
                          if r["runtime"] == runtime and r["config"] == config_name(config)}
                cells.append(" / ".join(f"{values[d]:,}" if d in values else "-"
                                        for d in ("float32", "int8")))
            print(f"| {runtime} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
