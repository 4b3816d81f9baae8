"""Instructions per Silero VAD chunk on the Pi's instruction sets, under qemu: silero's network
as lstmlite runs it (benchmarks/arm/vad_count.c, the engine's C kernels, no Python), float32
and int8, on `qemu-aarch64 -cpu cortex-a72` (Pi 4, `neon`), `-cpu max` (dotprod, as the Pi
5) and `qemu-arm -cpu cortex-a7` (32-bit Pi OS), counted by bench_arm.py's TCG plugin as
(count of 2T chunks - count of T chunks) / T.

    python benchmarks/bench_vad_arm.py [--json]

The floor beside them: the graph's multiply-adds per chunk (its STFT counted as the Conv it is
in the graph; lstmlite computes it as an FFT, so its count can go below the floor's share for
it) divided by what one instruction does: fmla 4 in float32; in int8 the STFT stays float32
and the rest divides by smlal's 8 (neon) or sdot's 16 (dotprod). Needs Debian's
gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf, qemu-user and qemu's source package for the
plugin's header (bench_arm.py fetches it). Counts are deterministic; a run takes a few minutes.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_arm import ROOT, SOURCES, TARGETS, build_plugin, per_step  # noqa: E402

#: silero_vad.onnx's products per 16 kHz chunk (bench_vad.py's graph_multiply_adds)
STFT_MACS = 258 * 256 * 4
OTHER_MACS = 128 * 129 * 3 * 4 + 64 * 128 * 3 * 2 + 64 * 64 * 3 + 128 * 64 * 3 + \
    4 * 128 * 256 + 128


def build(compiler: str, work: str, target: str) -> str:
    exe = os.path.join(work, f"vad_count_{target}")
    cmd = [compiler, "-O3", "-std=c11", "-ffp-contract=fast", "-fno-trapping-math",
           "-fno-wrapv", "-I", os.path.join(ROOT, "src"),
           os.path.join(HERE, "arm", "vad_count.c")]
    cmd += [os.path.join(ROOT, "src", f"{source}.c") for source in SOURCES]
    subprocess.run(cmd + ["-lm", "-o", exe], check=True)
    return exe


def rows(work: str):
    plugin = build_plugin(work)
    for target, (compiler, emulator, sets, int8_macs) in TARGETS.items():
        exe = build(compiler, work, target)
        for dtype in ("float32", "int8"):
            floor = (STFT_MACS + OTHER_MACS) / 4 if dtype == "float32" else \
                STFT_MACS / 4 + OTHER_MACS / int8_macs
            yield {"target": target, "runtime": "floor", "dtype": dtype,
                   "insns_per_chunk": round(floor)}
            for kernels in sets[:-1] if len(sets) > 1 else sets:   # the SIMD sets
                insns = per_step(emulator, plugin, lambda steps: [
                    exe, dtype, str(steps), kernels], work)
                yield {"target": target, "runtime": f"lstmlite ({kernels})", "dtype": dtype,
                       "insns_per_chunk": round(insns), "of_floor": round(insns / floor, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        found = list(rows(work))
    if args.json:
        for row in found:
            print(json.dumps(row))
        return 0
    print("| target | runtime | float32 | int8 | int8 / float32 |")
    print("| --- | --- | ---: | ---: | ---: |")
    keyed = {(r["target"], r["runtime"], r["dtype"]): r["insns_per_chunk"] for r in found}
    for target in TARGETS:
        for runtime in dict.fromkeys(r["runtime"] for r in found if r["target"] == target):
            f32, i8 = keyed[(target, runtime, "float32")], keyed[(target, runtime, "int8")]
            print(f"| {target} | {runtime} | {f32:,} | {i8:,} | {i8 / f32:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
