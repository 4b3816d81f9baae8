"""The keyword spotter's per-frame cost, front end and model, against what a Python edge app
does today, in the same process, one after the other. Per 10 ms hop of 16 kHz audio:

  front end   lstmlite.features.LogMel.push(160 samples)
              librosa.feature.melspectrogram on the last 512 samples (center=False), + log
              numpy: rfft of the windowed 512 samples, power, mel matrix, log (hand-written)
  model       lstmlite Stream.step (float32 and int8) on the bundled kws model
              onnxruntime on the same model (one-step graph, state fed back, 1 thread)
              torch eager GRU + Linear + softmax with the same weights, state carried

All front ends are checked to give the same frames (1e-4 relative) and all models the same
posteriors (1e-4) before anything is timed. Medians of --repeats runs of --frames hops.

    python benchmarks/bench_frontend.py [--frames 2000] [--repeats 15]
"""
import argparse
import statistics
import time

import numpy as np

import lstmlite
from lstmlite.features import LogMel


def median_us(function, inputs, repeats):
    for x in inputs[:20]:
        function(x)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for x in inputs:
            function(x)
        samples.append((time.perf_counter() - start) / len(inputs) * 1e6)
    return statistics.median(samples)


def front_ends(front: LogMel, audio: np.ndarray):
    """name -> (per-hop function taking the hop index, the frames it gives for hops 0..n)."""
    hop, n_fft = front.hop_length, front.n_fft
    window = np.zeros(n_fft)
    left = (n_fft - front.win_length) // 2
    window[left:left + front.win_length] = np.hanning(front.win_length + 1)[:-1]
    filters = lstmlite.features.mel_filters(front.sample_rate, n_fft, front.n_mels, front.fmin,
                                            front.fmax)

    def numpy_frame(t):
        spectrum = np.fft.rfft(audio[t * hop:t * hop + n_fft] * window)
        return np.log(filters @ (spectrum.real ** 2 + spectrum.imag ** 2) + front.log_offset)

    functions = {"lstmlite LogMel.push": None, "numpy rfft per hop": numpy_frame}
    try:
        import librosa

        def librosa_frame(t):
            power = librosa.feature.melspectrogram(
                y=audio[t * hop:t * hop + n_fft], sr=front.sample_rate, n_fft=n_fft,
                hop_length=hop, win_length=front.win_length, center=False, n_mels=front.n_mels,
                fmin=front.fmin, fmax=front.fmax)
            return np.log(power[:, 0] + front.log_offset)
        functions["librosa melspectrogram per hop"] = librosa_frame
    except ImportError:
        print("librosa: not installed, not timed")
    return functions


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    model = lstmlite.load(lstmlite.examples.path("kws"))
    model8 = lstmlite.load(lstmlite.examples.path("kws-int8"))
    front = LogMel.from_model(model)
    hop = front.hop_length
    rng = np.random.default_rng(0)
    audio = 0.05 * rng.standard_normal(hop * (args.frames + 8) + front.n_fft)
    reference = front.transform(audio)[:args.frames]
    hops = list(range(args.frames))
    functions = front_ends(front, audio)

    print(f"front end per 10 ms hop ({front}); median of {args.repeats} x {args.frames} hops")
    results = {}
    lead = front.n_fft - hop                  # pushed first: then every hop completes a frame

    def stream_all():
        front.reset()
        front.push(audio[:lead])
        start = time.perf_counter()
        for t in hops:
            front.push(audio[lead + t * hop:lead + (t + 1) * hop])
        return (time.perf_counter() - start) / len(hops) * 1e6

    front.reset()
    front.push(audio[:lead])
    frames = np.concatenate([np.array(front.push(audio[lead + t * hop:lead + (t + 1) * hop]))
                             for t in hops])
    assert np.abs(frames - reference).max() <= 1e-4 * max(1.0, np.abs(reference).max())
    for name, function in functions.items():
        if function is None:
            results[name] = statistics.median(stream_all() for _ in range(args.repeats))
        else:
            frames = np.array([function(t) for t in hops[:50]])
            error = np.abs(frames - reference[:50]) / np.maximum(np.abs(reference[:50]), 1)
            assert error.max() <= 1e-4, (name, error.max())
            results[name] = median_us(function, hops, args.repeats)
    base = results["lstmlite LogMel.push"]
    for name, us in results.items():
        print(f"  {name:<34} {us:8.2f} us  ({us / base:.2f}x lstmlite)")

    print(f"model per frame ({model.parameter_count} parameters)")
    peers = {"lstmlite float32 Stream.step": model.stream().step,
             "lstmlite int8 Stream.step": model8.stream().step}
    try:
        from lstmlite.converters.onnx_export import onnxruntime_stepper
        peers["onnxruntime (same model, 1 thread)"] = onnxruntime_stepper(model)
    except ImportError:
        print("onnxruntime: not installed, not timed")
    check = model.stream()
    for name, step in peers.items():
        worst = max(float(np.abs(step(x) - check.step(x)).max()) for x in reference[:50])
        check.reset()
        assert worst <= (0.05 if "int8" in name else 1e-4), (name, worst)
        if hasattr(step, "reset"):
            step.reset()
    base = None
    for name, step in peers.items():
        us = median_us(step, reference, args.repeats)
        base = base or us
        print(f"  {name:<34} {us:8.2f} us  ({us / base:.2f}x lstmlite float32)")


if __name__ == "__main__":
    main()
