"""Evaluates the bundled keyword spotter on voices and speeds held out from training, in torch,
lstmlite float32 and lstmlite int8, with the detector stored in the model's metadata; writes
results.md (the README's table), the suite's small evaluation set (tests/data/kws_eval.npz),
the demo sentence (lstmlite/examples/kws-sentence.wav) and the plot (kws.png).

    python examples/kws/evaluate.py          # after train.py; a few minutes

Accuracy per keyword: 1.5 s recordings of one held-out keyword utterance in noise (SNR 5, 10
and 20 dB, in turn); right when the detector fires exactly once, with that keyword.
False alarms: 10 minutes of held-out non-keyword words and noise at SNRs from 0 to 30 dB; every
detection is false.
"""
from __future__ import annotations

import json
import os
import sys
import wave

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path[:0] = [HERE, ROOT]
import kws_data as D  # noqa: E402
from train import KeywordSpotter  # noqa: E402

import lstmlite  # noqa: E402
from lstmlite.detection import Detector  # noqa: E402

SNRS = [5, 10, 20]
FALSE_ALARM_MINUTES = 10
SENTENCE = ["yes", "marvin", "left", "house", "stop", "go", "happy", "off"]


def detections(probabilities: np.ndarray, model: lstmlite.Model) -> list:
    detector = Detector.from_model(model, D.front_end().frame_seconds)
    found = []
    for t, p in enumerate(probabilities):
        hit = detector.update(p)
        if hit is not None:
            found.append((t, model.metadata["labels"][hit[0]], hit[1]))
    return found


def runtimes(module: KeywordSpotter):
    """name -> function (T, 40) log-mel -> (T, 12) posteriors."""
    float_model = lstmlite.load(lstmlite.examples.path("kws"))
    int8_model = lstmlite.load(lstmlite.examples.path("kws-int8"))

    def torch_run(features):
        with torch.no_grad():
            return module(torch.from_numpy(features)[None])[0].numpy()

    def streamed(model):
        def run(features):
            stream = model.stream()
            return np.array([stream.step(frame).copy() for frame in features])
        return run

    return float_model, {"torch": torch_run, "lstmlite float32": streamed(float_model),
                         "lstmlite int8": streamed(int8_model)}


def keyword_recordings(bank, seed: int):
    """(keyword, snr, audio) for every held-out keyword utterance at each SNR in turn."""
    rng = np.random.default_rng(seed)
    recordings = []
    for word in D.KEYWORDS:
        for i, clip in enumerate(bank[word]):
            snr = SNRS[i % len(SNRS)]
            audio, _ = D.mix(rng, 1.5, [(word, clip)], snr, 10 ** rng.uniform(-3, -1.5))
            recordings.append((word, snr, audio))
    return recordings


def background(bank, seed: int, minutes: float) -> np.ndarray:
    """Non-keyword speech (held-out voices) and noise, 10 s recordings end to end."""
    rng = np.random.default_rng(seed)
    pieces = []
    unknown = {word: clips for word, clips in bank.items() if word in D.UNKNOWN_WORDS}
    for _ in range(int(minutes * 6)):
        words = D.random_words(rng, unknown, int(rng.integers(0, 12)), keyword_share=0.0)
        audio, _ = D.mix(rng, 10.0, words, rng.uniform(0, 30), 10 ** rng.uniform(-3, -1.5))
        pieces.append(audio)
    return np.concatenate(pieces)


def to_pcm(audio: np.ndarray) -> np.ndarray:
    return np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)


def evaluate(model, run, recordings, noise_pcm):
    front = D.front_end()
    per_word = {word: [0, 0] for word in D.KEYWORDS}
    per_snr = {snr: [0, 0] for snr in SNRS}
    for word, snr, pcm in recordings:
        found = detections(run(front.transform(pcm)), model)
        right = len(found) == 1 and found[0][1] == word
        per_word[word][0] += right
        per_word[word][1] += 1
        per_snr[snr][0] += right
        per_snr[snr][1] += 1
    alarms = len(detections(run(front.transform(noise_pcm)), model))
    minutes = len(noise_pcm) / D.SAMPLE_RATE / 60
    return {"per_keyword": {w: r / n for w, (r, n) in per_word.items()},
            "per_snr": {str(s): r / n for s, (r, n) in per_snr.items() if n},
            "accuracy": sum(r for r, _ in per_word.values()) / len(recordings),
            "false_alarms": alarms, "minutes": minutes,
            "false_alarms_per_minute": alarms / minutes}


def write_wav(path: str, pcm: np.ndarray) -> None:
    with wave.open(path, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(D.SAMPLE_RATE)
        handle.writeframes(pcm.astype("<i2").tobytes())


def sentence(bank, seed: int):
    """The demo recording: SENTENCE by held-out voices, 20 dB over pink-ish noise."""
    rng = np.random.default_rng(seed)
    words = [(word, bank[word][int(rng.integers(len(bank[word])))]) for word in SENTENCE]
    audio, placed = D.mix(rng, 9.0, words, 20.0, 0.003)
    return to_pcm(audio), [(word, start / D.SAMPLE_RATE, end / D.SAMPLE_RATE)
                           for word, start, end in placed]


def main():
    module = KeywordSpotter(np.zeros(40), np.ones(40))
    module.load_state_dict(torch.load(os.path.join(HERE, ".work", "kws_torch.pt"),
                                      weights_only=True))
    module.probabilities = True
    module.eval()
    bank = D.utterance_bank("test", per_keyword=30, per_unknown=10, seed=1000)
    recordings = [(w, s, to_pcm(a)) for w, s, a in keyword_recordings(bank, seed=1001)]
    noise_pcm = to_pcm(background(bank, seed=1002, minutes=FALSE_ALARM_MINUTES))
    model, runs = runtimes(module)
    results = {name: evaluate(model, run, recordings, noise_pcm) for name, run in runs.items()}

    # the suite's small set: two recordings per keyword at 10 dB and 20 s of background
    picked = [r for r in recordings if r[1] != 5]
    small = [next(r for r in picked if r[0] == w and r[1] == s) for w in D.KEYWORDS
             for s in (10, 20)]
    small_noise = noise_pcm[:20 * D.SAMPLE_RATE]
    np.savez_compressed(os.path.join(ROOT, "tests", "data", "kws_eval.npz"),
                        keywords=np.array([w for w, _, _ in small]),
                        audio=np.stack([a for _, _, a in small]), background=small_noise)
    results["committed set (lstmlite float32)"] = evaluate(
        model, runs["lstmlite float32"], small, small_noise)
    results["committed set (lstmlite int8)"] = evaluate(
        model, runs["lstmlite int8"], small, small_noise)

    with open(os.path.join(HERE, "results.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    names = list(runs)
    lines = ["| keyword | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for word in D.KEYWORDS:
        lines.append(f"| {word} | " + " | ".join(f"{results[n]['per_keyword'][word]:.0%}"
                                                 for n in names) + " |")
    for snr in SNRS:
        lines.append(f"| all, at {snr} dB SNR | " + " | ".join(
            f"{results[n]['per_snr'][str(snr)]:.1%}" for n in names) + " |")
    lines.append("| **all keywords** | " + " | ".join(f"**{results[n]['accuracy']:.1%}**"
                                                      for n in names) + " |")
    lines.append(f"| false alarms per minute ({FALSE_ALARM_MINUTES} min of other words and "
                 f"noise) | " + " | ".join(f"{results[n]['false_alarms_per_minute']:.2f}"
                                          for n in names) + " |")
    table = "\n".join(lines)
    print(table)
    for name in ("committed set (lstmlite float32)", "committed set (lstmlite int8)"):
        print(f"{name}: accuracy {results[name]['accuracy']:.1%}, "
              f"{results[name]['false_alarms']} false alarms in 20 s")
    with open(os.path.join(HERE, "results.md"), "w") as handle:
        handle.write(f"Held-out voices and speeds: {len(recordings)} keyword recordings, "
                     f"{FALSE_ALARM_MINUTES} minutes of other words and noise.\n\n"
                     + table + "\n")

    pcm, placed = sentence(bank, seed=1003)
    write_wav(os.path.join(ROOT, "lstmlite", "examples", "kws-sentence.wav"), pcm)
    with open(os.path.join(ROOT, "lstmlite", "examples", "kws-sentence.json"), "w") as handle:
        json.dump({"words": [{"word": w, "start": round(s, 3), "end": round(e, 3)}
                             for w, s, e in placed]}, handle, indent=1)
    plot(model, pcm, placed)


def plot(model, pcm: np.ndarray, placed) -> None:
    """kws.png: the demo sentence's waveform, log-mel and streamed posteriors, detections
    marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    front = D.front_end()
    logmel = front.transform(pcm)
    stream = model.stream()
    probabilities = np.array([stream.step(frame).copy() for frame in logmel])
    found = detections(probabilities, model)
    frame_times = np.array([front.frame_end_seconds(t) for t in range(len(logmel))])
    figure, axes = plt.subplots(3, 1, figsize=(12, 7), sharex=True)
    axes[0].plot(np.arange(len(pcm)) / D.SAMPLE_RATE, pcm / 32768.0, linewidth=0.4)
    for word, start, end in placed:
        axes[0].annotate(word, ((start + end) / 2, 0.9 * np.abs(pcm).max() / 32768),
                         ha="center")
    axes[0].set_ylabel("audio")
    axes[1].imshow(logmel.T, origin="lower", aspect="auto",
                   extent=(frame_times[0], frame_times[-1], 0, logmel.shape[1]))
    axes[1].set_ylabel("log-mel band")
    labels = model.metadata["labels"]
    for k, name in enumerate(labels):
        if name.startswith("_"):
            axes[2].plot(frame_times, probabilities[:, k], color="0.7", linewidth=0.8)
        else:
            axes[2].plot(frame_times, probabilities[:, k], label=name)
    for t, name, score in found:
        axes[2].axvline(frame_times[t], color="k", linestyle=":")
        axes[2].annotate(f"{name} {score:.2f}", (frame_times[t], 1.02), ha="center")
    axes[2].set_ylabel("posterior (streamed)")
    axes[2].set_xlabel("seconds")
    axes[2].set_ylim(0, 1.12)
    axes[2].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(HERE, "kws.png"), dpi=80)


if __name__ == "__main__":
    main()
