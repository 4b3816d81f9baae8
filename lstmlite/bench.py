"""Timing a stream step from Python: the one loop behind `lstmlite bench` and the scripts in
benchmarks/ (which add the peers). Medians, never asserted in tests: machines are noisy."""
from __future__ import annotations

import statistics
import time
from typing import Callable, List

import numpy as np

from . import _core, cpu_info
from .errors import LstmliteError
from .format import load


def median_step_us(step: Callable, frames: np.ndarray, steps: int, repeats: int) -> float:
    """Median of per-call microseconds over `repeats` runs of `steps` calls of step(frame),
    after 50 warm-up calls; frames (at least 256 of them) are cycled."""
    for frame in frames[:50]:
        step(frame)
    results = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for i in range(steps):
            step(frames[i & 255])
        results.append((time.perf_counter_ns() - start) / steps / 1000.0)
    return statistics.median(results)


def bench_file(path: str, steps: int = 2000, repeats: int = 15) -> List[str]:
    """The lines `lstmlite bench` prints: µs per stream step of the model in `path`, in float32
    and (when it has weight matrices) int8, with every kernel set this CPU runs."""
    if steps < 1 or repeats < 1:
        raise LstmliteError(f"--steps and --repeats must be at least 1, got {steps} and "
                            f"{repeats}")
    model = load(path, compute="float32")
    if not model.streamable:
        raise LstmliteError(f"{path}: has reverse or bidirectional layers; bench times stream "
                            f"steps")
    variants = {"float32": model}
    if any(layer.matrix_names for layer in model.layers):
        variants["int8"] = model.quantize()
    frames = np.random.default_rng(0).standard_normal((256, model.input_size)).astype(np.float32)
    info = cpu_info()
    lines = [f"{path}: {model.input_size} -> {model.output_size}, {model.parameter_count} "
             f"parameters",
             f"cpu: {info['machine']}, features: {' '.join(info['features']) or '(none)'}; "
             f"median of {repeats} runs of {steps} steps, microseconds per step",
             f"{'kernels':<10}" + "".join(f"{name:>10}" for name in variants)]
    previous = _core.kernels_active()
    default_times = []
    try:
        for kernels in info["available"]:
            _core.select_kernels(kernels)
            times = [median_step_us(variant.stream().step, frames, steps, repeats)
                     for variant in variants.values()]
            marker = " (default)" if kernels == previous else ""
            if kernels == previous:
                default_times = times
            lines.append(f"{kernels:<10}" + "".join(f"{t:>10.2f}" for t in times) + marker)
    finally:
        _core.select_kernels(previous)
    lines.append(onnxruntime_line(model, frames, steps, repeats, dict(zip(variants,
                                                                          default_times))))
    return lines


def onnxruntime_line(model, frames: np.ndarray, steps: int, repeats: int, ours: dict) -> str:
    """The table's last row: onnxruntime on the same model (a one-step ONNX graph, the state
    fed back on every call, one thread, in the float32 column), checked to agree with
    lstmlite before it is timed; or a line saying why it is not timed."""
    try:
        import onnxruntime
        from .converters.onnx_export import onnxruntime_stepper
    except ImportError as exc:
        return f"onnxruntime: not timed ({exc.name} is not installed: pip install onnx " \
               f"onnxruntime)"
    try:
        step = onnxruntime_stepper(model)
    except LstmliteError as exc:
        return f"onnxruntime: not timed ({exc})"
    stream = model.stream()
    difference = max(float(np.abs(step(frame) - stream.step(frame)).max())
                     for frame in frames[:50])
    if difference > 1e-4:
        return f"onnxruntime: not timed: its outputs differ from lstmlite's by {difference:.2e}"
    step.reset()
    peer = median_step_us(step, frames, steps, repeats)
    ratios = ", ".join(f"lstmlite {name} {peer / t:.1f}x faster" for name, t in ours.items())
    return (f"{'ort':<10}{peer:>10.2f}" + " " * 10 * (len(ours) - 1) +
            f"  onnxruntime {onnxruntime.__version__}, the same model as a one-step graph, "
            f"state fed back each call, 1 thread; {ratios}")
