"""The example's figure: Silero VAD's speech probability over a synthesized dialogue with
noise (examples/vad/dialogue.py), from lstmlite float32 and int8 and from onnxruntime, with
the segments `lstmlite run` prints and the turns the dialogue was made of.

    python examples/vad/plot.py [vad.png]      # needs espeak-ng, sox, matplotlib

It converts silero_vad.onnx itself (examples/vad/silero.py) and runs onnxruntime the way
silero-vad's OnnxWrapper does (one thread, the state fed back).
"""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dialogue  # noqa: E402
import silero  # noqa: E402


def onnxruntime_probabilities(path, frames):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 128), np.float32)
    out = []
    for frame in frames:
        probability, state = session.run(None, {"input": frame[None], "state": state,
                                                "sr": np.array(16000, np.int64)})
        out.append(float(probability[0, 0]))
    return np.array(out)


def main() -> None:
    output = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "vad.png")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lstmlite import features
    from lstmlite.detection import Segmenter
    from lstmlite.wavfile import read_wav

    package = silero.fetch()
    onnx_path = os.path.join(package, "data", "silero_vad.onnx")
    model = silero.convert(onnx_path).model
    with tempfile.TemporaryDirectory() as work:
        wav = os.path.join(work, "dialogue.wav")
        turns = dialogue.make_dialogue(wav, minutes=0.75, seed=2)
        samples = read_wav(wav, 16000).astype(np.float32) / 32768.0
    front = features.from_model(model)
    frames = front.transform(samples)
    float32 = model.run(frames[None])[0, :, 0]
    int8 = model.quantize().run(frames[None])[0, :, 0]
    reference = onnxruntime_probabilities(onnx_path, frames)
    segmenter = Segmenter.from_config(model.metadata["detection"], 16000, front.chunk)
    segments = [s for p in float32 for s in segmenter.update(float(p))]
    segments += segmenter.finish(len(samples))

    times = (np.arange(len(frames)) + 1) * front.frame_seconds
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True,
                                         gridspec_kw={"height_ratios": [1, 1.4]})
    seconds = np.arange(len(samples)) / 16000
    top.plot(seconds, samples, color="0.4", linewidth=0.3)
    for start, end in turns:
        top.axvspan(start, end, color="tab:green", alpha=0.15, linewidth=0)
    top.set_ylabel("audio")
    top.set_title("Silero VAD over a synthesized dialogue with noise (espeak-ng voices, sox "
                  "noises); green: the spoken turns")
    bottom.plot(times, reference, color="black", linewidth=2.5, label="onnxruntime")
    bottom.plot(times, float32, color="tab:orange", linewidth=1.2, label="lstmlite float32")
    bottom.plot(times, int8, color="tab:blue", linewidth=0.8, linestyle="--",
                label="lstmlite int8")
    for start, end in segments:
        bottom.axvspan(start / 16000, end / 16000, color="tab:orange", alpha=0.12, linewidth=0)
    bottom.axhline(0.5, color="0.5", linewidth=0.6, linestyle=":")
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_ylabel("speech probability")
    bottom.set_xlabel(f"seconds (orange bands: the {len(segments)} segments lstmlite run "
                      f"prints; max |float32 - onnxruntime| "
                      f"{np.abs(float32 - reference).max():.1e})")
    bottom.legend(loc="upper right", fontsize=8, ncol=3)
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
