"""Silero VAD per 512-sample chunk from Python: lstmlite float32 and int8 against onnxruntime
(the way silero-vad's own OnnxWrapper calls it) and PyTorch (silero's TorchScript file), in one
process, one after the other, after checking that all agree. Prints medians and ratios.

    python benchmarks/bench_vad.py            # needs espeak-ng and sox (the dialogue)
    python benchmarks/bench_vad.py --quick    # fewer repeats, for a smoke run

Each peer does what a user does for every 32 ms of 16 kHz audio:
  lstmlite     stream.step(frame), the frame (64 samples of context + the chunk) from
               lstmlite.features.Chunks, the LSTM state kept by the stream
  onnxruntime  sess.run({"input": (1, 576), "state": (2, 1, 128), "sr": 16000}) on
               silero_vad.onnx, one thread, sequential, the state fed back (OnnxWrapper's
               session options and feeds, without its torch tensors); and silero-vad's
               OnnxWrapper itself, called with a (512,) torch tensor as its users call it
  torch        silero_vad.jit (its own streaming module: context and state inside) called
               with a (1, 512) chunk under inference_mode, one thread
The floor: the graph's multiply-adds per chunk divided by this CPU's float32 multiply-add rate
measured alone (benchmarks/fma_peak.c, built here when a C compiler is found).
Agreement: the probabilities of every peer on the same chunks of a synthesized dialogue
(examples/vad/dialogue.py), against onnxruntime's. Never asserted in tests: machines are
shared and noisy.
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import lstmlite as ll
from lstmlite.bench import median_step_us as measure
from lstmlite.features import Chunks

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "examples", "vad"))
import dialogue  # noqa: E402
import silero  # noqa: E402


def graph_multiply_adds(model) -> int:
    """Multiply-adds per step of the graph's products (its STFT counted as the Conv it is in
    the graph, though lstmlite computes it as an FFT)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, ll.Conv1d):
            total += layer.out_channels * layer.out_length * \
                layer.in_channels // layer.groups * layer.kernel_size
        elif isinstance(layer, ll.LSTM):
            total += 4 * layer.hidden_size * (layer.input_size + layer.hidden_size)
        elif isinstance(layer, ll.Dense):
            total += layer.input_size * layer.output_size
    return total


def peak_gmacs():
    """This CPU's float32 multiply-adds per ns (benchmarks/fma_peak.c), or None."""
    compiler = shutil.which("cc")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory() as work:
        exe = os.path.join(work, "fma_peak")
        built = subprocess.run([compiler, "-O2", "-march=native",
                                os.path.join(HERE, "fma_peak.c"), "-o", exe],
                               capture_output=True)
        if built.returncode != 0:
            return None
        out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    return float(out.split()[0])


def onnxruntime_step(path):
    """step(chunk of 576) -> probability, silero's OnnxWrapper's way without torch."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = {"state": np.zeros((2, 1, 128), np.float32), "sr": np.array(16000, np.int64)}

    def step(frame):
        feeds["input"] = frame.reshape(1, -1)
        out, feeds["state"] = session.run(None, feeds)
        return out

    def reset():
        feeds["state"] = np.zeros((2, 1, 128), np.float32)
    return step, reset


def torch_step(package):
    """step(chunk of 512) -> probability with silero's TorchScript model (its own context and
    state), or None without torch."""
    try:
        import torch
    except ImportError:
        return None, None
    torch.set_num_threads(1)
    model = torch.jit.load(os.path.join(package, "data", "silero_vad.jit"))
    model.eval()

    def step(chunk):
        with torch.inference_mode():
            return model(torch.from_numpy(chunk).reshape(1, -1), 16000)

    return step, model.reset_states


def wrapper_step(package):
    """step(chunk of 512) through silero-vad's own OnnxWrapper (torch tensors in and out, its
    context and state kept inside), or None without torch: what its users call."""
    try:
        import torch
    except ImportError:
        return None, None
    model = silero.utils(package).OnnxWrapper(os.path.join(package, "data", "silero_vad.onnx"),
                              force_onnx_cpu=True)

    def step(chunk):
        return model(torch.from_numpy(chunk), 16000)

    return step, model.reset_states


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="chunks per run")
    parser.add_argument("--repeats", type=int, default=15, help="runs per figure")
    parser.add_argument("--minutes", type=float, default=2.0, help="dialogue length")
    parser.add_argument("--quick", action="store_true", help="steps=300, repeats=5")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.minutes = 300, 5, 1.0

    package = silero.fetch()
    onnx_path = os.path.join(package, "data", "silero_vad.onnx")
    model = silero.convert(onnx_path).model
    variants = {"lstmlite f32": model, "lstmlite int8": model.quantize()}

    with tempfile.TemporaryDirectory() as work:
        wav = os.path.join(work, "dialogue.wav")
        dialogue.make_dialogue(wav, args.minutes, seed=1)
        from lstmlite.wavfile import read_wav
        samples = read_wav(wav, 16000).astype(np.float32) / 32768.0
    front = Chunks()
    frames = front.transform(samples)
    chunks = np.ascontiguousarray(frames[:, front.context:])

    # agreement, on every chunk of the dialogue
    ort_step, ort_reset = onnxruntime_step(onnx_path)
    reference = np.array([float(ort_step(frame)[0, 0]) for frame in frames])
    print(f"{platform.machine()}, {ll.cpu_info()['kernels']} kernels; silero-vad "
          f"{silero.SILERO_VERSION}; {len(frames)} chunks ({len(samples) / 16000:.0f} s) of a "
          f"synthesized dialogue, {np.mean(reference >= 0.5):.0%} of them speech")
    print("agreement with onnxruntime (max |difference| of the probability; decisions at 0.5 "
          "that differ):")
    probabilities = {}
    for name, variant in variants.items():
        stream = variant.stream()
        probabilities[name] = np.array([float(stream.step(frame)[0]) for frame in frames])
    t_step, t_reset = torch_step(package)
    if t_step is not None:
        t_reset()
        probabilities["torch (silero_vad.jit)"] = np.array([float(t_step(c)) for c in chunks])
    for name, values in probabilities.items():
        difference = np.abs(values - reference)
        flips = np.mean((values >= 0.5) != (reference >= 0.5))
        print(f"  {name:<24} max {difference.max():.2e}, within 0.03 on "
              f"{np.mean(difference <= 0.03):.1%} of chunks, decisions differ on {flips:.2%}")

    # timing
    timed = {}
    for name, variant in variants.items():
        timed[name] = measure(variant.stream().step, frames, args.steps, args.repeats)
    ort_reset()
    timed["onnxruntime"] = measure(ort_step, frames, args.steps, args.repeats)
    w_step, w_reset = wrapper_step(package)
    if w_step is not None:
        w_reset()
        timed["onnxruntime via OnnxWrapper"] = measure(w_step, chunks, args.steps,
                                                       args.repeats)
    if t_step is not None:
        t_reset()
        timed["torch (silero_vad.jit)"] = measure(t_step, chunks, args.steps, args.repeats)
    front_us = measure(lambda chunk: front.push(chunk), chunks, args.steps, args.repeats)

    macs = graph_multiply_adds(model)
    peak = peak_gmacs()
    floor = macs / (peak * 1e3) if peak else None
    print(f"\nmicroseconds per chunk from Python (median of {args.repeats} runs of "
          f"{args.steps} chunks; Chunks.push of 512 samples {front_us:.2f} us more):")
    print("| peer | us per chunk | / onnxruntime | / floor |")
    print("| --- | ---: | ---: | ---: |")
    for name, us in timed.items():
        ratio = us / timed["onnxruntime"]
        over = f"{us / floor:.2f}" if floor else "-"
        print(f"| {name} | {us:.2f} | {ratio:.3f} | {over} |")
    print(f"\nthe graph: {macs:,} multiply-adds per chunk")
    if peak:
        print(f"this CPU: {peak:.1f} GMAC/s float32 (fma_peak.c); floor {floor:.2f} us per chunk")
    else:
        print("no C compiler: the floor was not measured")


if __name__ == "__main__":
    main()
