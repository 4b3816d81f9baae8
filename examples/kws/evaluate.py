"""Evaluates the keyword spotter on audio its training pipeline never made, through the command
a user runs:

    each engine's own program writes a wav at its own rate (voices.write_wav: espeak-ng,
    flite, text2wave; Pico's PCM at its documented 16 kHz)  ->  sox resamples it to 16 kHz,
    adds reverberation (sox's reverb) and makes the noise (sox's synth)  ->  the noise is mixed
    in at a stated SNR  ->  `lstmlite run MODEL FILE...` reads the files and prints detections.

Voices are the test speakers of voices.SPEAKERS (never in training, from any engine), with
their own sentences (kws_data.sentences("test")). Writes results.md and results.json (the
README's tables), the suite's small evaluation set (tests/data/kws_eval.npz), the demo
recording (lstmlite/examples/kws-sentence.wav and .json) and the plot (kws.png).

    python examples/kws/evaluate.py          # after train.py (and train.py --without E)

Recall: one keyword per recording (0.4-0.8 s of noise, the word, 1.2 s of noise); a hit when
the detector fires that keyword; any other keyword fired counts as a confusion. Conditions:
20 dB and 10 dB SNR (white, pink or brown noise), and reverberation (sox reverb 40-90%, room
scale 50-100%) at 20 dB. False alarms: each engine's test voices reading sentences without
keywords, 0.2-0.8 s apart, at least 2.5 minutes per engine, at 20 and at 10 dB; every
detection is false.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Tuple

import numpy as np
import soundfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path[:0] = [HERE, ROOT]
import kws_data as D  # noqa: E402
import voices as V  # noqa: E402

import lstmlite  # noqa: E402

WORK = os.path.join(HERE, ".work", "eval")
RATE = 16000
TAKES = 12                      # test utterances per keyword per engine
CONDITIONS = {"20 dB": (20.0, False), "10 dB": (10.0, False), "reverb": (20.0, True)}
SPEECH_SECONDS = 150            # continuous non-keyword speech per engine
SPEECH_SNRS = (20.0, 10.0)
SENTENCE = ["yes", "marvin", "left", "house", "stop", "go", "happy", "off"]
SENTENCE_VOICE = V.Utterance("pico", "en-GB", "")


def sox(*args: str) -> None:
    subprocess.run(["sox", *args], check=True, capture_output=True)


def native_then_16k(utterance: V.Utterance, name: str) -> str:
    """The engine's own program writes the wav at its own rate; sox makes it 16 kHz mono
    16-bit. Returns the 16 kHz file (kept: reruns reuse it; the name holds a digest of the
    utterance, so a changed voice, rate or text is synthesized anew)."""
    digest = hashlib.sha1(repr(utterance).encode()).hexdigest()[:8]
    target = os.path.join(WORK, "16k", f"{name}-{digest}.wav")
    if not os.path.exists(target):
        native = os.path.join(WORK, "native", f"{name}-{digest}.wav")
        V.write_wav(utterance, native)
        sox(native, "-r", str(RATE), "-c", "1", "-b", "16", target + ".part.wav")
        os.replace(target + ".part.wav", target)
    return target


def read(path: str) -> np.ndarray:
    audio, rate = soundfile.read(path, dtype="float64")
    assert rate == RATE, (path, rate)
    return audio


def active_rms(audio: np.ndarray) -> float:
    """RMS over the 20 ms frames within 30 dB of the loudest: the speech, not its pauses."""
    frames = audio[:audio.size // 320 * 320].reshape(-1, 320)
    energy = (frames ** 2).mean(axis=1)
    return float(np.sqrt(energy[energy > energy.max() * 1e-3].mean()))


NOISE_SECONDS = 300


def sox_noise(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """`seconds` of white, pink or brown noise from sox: a random stretch of a 5-minute file
    sox made once per colour (sox -R: the same file on every run)."""
    kind = ["whitenoise", "pinknoise", "brownnoise"][rng.integers(3)]
    path = os.path.join(WORK, f"{kind}.wav")
    if not os.path.exists(path):
        sox("-R", "-n", "-r", str(RATE), "-b", "16", "-c", "1", path, "synth",
            str(NOISE_SECONDS), kind, "vol", "0.5")
    noise = read(path)
    samples = int(seconds * RATE)
    if samples >= noise.size:
        return np.tile(noise, samples // noise.size + 1)[:samples]
    start = rng.integers(noise.size - samples)
    return noise[start:start + samples]


def write_mix(rng: np.random.Generator, speech: np.ndarray, snr: float, path: str) -> None:
    """speech + sox noise at snr dB below the speech's active RMS, the noise at a random level
    of -60 to -30 dBFS, written as 16-bit 16 kHz."""
    noise = sox_noise(rng, speech.size / RATE + 0.01)[:speech.size]
    noise = noise / np.sqrt((noise ** 2).mean()) * 10 ** rng.uniform(-3, -1.5)
    mixed = speech / active_rms(speech) * np.sqrt((noise ** 2).mean()) * 10 ** (snr / 20) + noise
    peak = np.abs(mixed).max()
    soundfile.write(path, mixed * (0.95 / peak if peak > 0.95 else 1.0), RATE, subtype="PCM_16")


def keyword_recordings(seed: int) -> List[dict]:
    """Every engine's test voices speaking every keyword TAKES times, in every condition:
    [{engine, voice, word, condition, path}]."""
    rng = np.random.default_rng(seed)
    jobs = []
    for engine in V.ENGINES:
        for word in D.KEYWORDS:
            for take in range(TAKES):
                jobs.append((f"{engine}-{word}-{take}",
                             V.random_utterance(rng, engine, "test", word)))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        clean = list(pool.map(lambda job: native_then_16k(job[1], job[0]), jobs))
    records = []
    for (name, utterance), path in zip(jobs, clean):
        speech = read(path)
        for condition, (snr, reverb) in CONDITIONS.items():
            tag = condition.replace(" ", "")
            if reverb:
                wet = os.path.join(WORK, "16k", f"{name}-{tag}.wav")
                sox(path, wet, "pad", "0", "0.8", "reverb", f"{rng.uniform(40, 90):.0f}", "50",
                    f"{rng.uniform(50, 100):.0f}")
                speech_here = read(wet)
            else:
                speech_here = np.concatenate([speech, np.zeros(int(0.8 * RATE))])
            lead = np.zeros(int(rng.uniform(0.4, 0.8) * RATE))
            padded = np.concatenate([lead, speech_here, np.zeros(int(0.4 * RATE))])
            out = os.path.join(WORK, "mixed", f"{name}-{tag}.wav")
            write_mix(rng, padded, snr, out)
            records.append({"engine": engine_of(name), "voice": utterance.voice,
                            "word": utterance.text, "condition": condition, "path": out})
    return records


def engine_of(name: str) -> str:
    return next(e for e in V.ENGINES if name.startswith(e + "-"))


def speech_recordings(seed: int) -> List[dict]:
    """Per engine, its test voices reading test sentences 0.2-0.8 s apart for at least
    SPEECH_SECONDS, at each of SPEECH_SNRS: [{engine, snr, seconds, path}]."""
    rng = np.random.default_rng(seed)
    texts = D.sentences("test", 400, seed)
    records = []
    for engine in V.ENGINES:
        pieces, seconds, k = [], 0.0, 0
        while seconds < SPEECH_SECONDS:
            batch = [(f"{engine}-sentence-{k + j}",
                      V.random_utterance(rng, engine, "test", texts[(k + j) % len(texts)]))
                     for j in range(8)]
            k += len(batch)
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                paths = list(pool.map(lambda job: native_then_16k(job[1], job[0]), batch))
            for path in paths:
                pieces += [read(path), np.zeros(int(rng.uniform(0.2, 0.8) * RATE))]
                seconds += (pieces[-2].size + pieces[-1].size) / RATE
        speech = np.concatenate(pieces)
        for snr in SPEECH_SNRS:
            out = os.path.join(WORK, "mixed", f"{engine}-speech-{snr:.0f}dB.wav")
            write_mix(rng, speech, snr, out)
            records.append({"engine": engine, "snr": snr, "seconds": speech.size / RATE,
                            "path": out})
    return records


def lstmlite_run(model_path: str, paths: List[str]) -> Dict[str, List[Tuple[float, str]]]:
    """`lstmlite run MODEL FILE... -o DIR --jobs 2`, as a user runs it; path -> detections
    [(seconds, label)] parsed from what it prints."""
    out_dir = OUTPUTS
    shutil.rmtree(out_dir, ignore_errors=True)
    found: Dict[str, List[Tuple[float, str]]] = {path: [] for path in paths}
    chunk = 400                                 # command lines stay short
    for start in range(0, len(paths), chunk):
        result = subprocess.run([sys.executable, "-m", "lstmlite", "run", model_path,
                                 *paths[start:start + chunk], "-o", out_dir, "--jobs", "2"],
                                check=True, capture_output=True, text=True)
        for line in result.stdout.splitlines():
            if line.startswith("#"):
                continue
            name, seconds, label, _ = line.split("\t")
            found[name].append((float(seconds), label))     # lines start with the path given
    return found


OUTPUTS = os.path.join(WORK, "outputs")
THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.9]


def operating_points(model, records, speech) -> Dict[str, dict]:
    """The same scoring at other detection thresholds, from the posteriors the last
    `lstmlite run` wrote (-o OUTPUTS): what a user trades by changing the model's
    "detection.threshold"."""
    from lstmlite.detection import Detector
    config = dict(model.metadata["detection"])
    frame_seconds = D.front_end().frame_seconds
    posteriors = {p: np.load(os.path.join(OUTPUTS, os.path.basename(p)[:-4] + ".npy"))
                  for p in [r["path"] for r in records] + [s["path"] for s in speech]}
    points = {}
    for threshold in THRESHOLDS:
        config["threshold"] = threshold
        found = {}
        for path, p in posteriors.items():
            detector = Detector(model.metadata["labels"], frame_seconds, **config)
            found[path] = [(t * frame_seconds, model.metadata["labels"][hit[0]])
                           for t, hit in enumerate(map(detector.update, p)) if hit]
        scored = score(records, speech, found)
        points[f"{threshold:.1f}"] = {key: scored[key] for key in (
            "recall", "recall_by_condition", "false_alarms_per_hour",
            "false_alarms_per_hour_all")}
    return points


def score(records, speech, found) -> dict:
    """Recall per engine x condition, per keyword, confusions and false alarms per hour."""
    table: Dict[str, Dict[str, List[int]]] = {}
    per_word = {word: [0, 0] for word in D.KEYWORDS}
    confused = 0
    for r in records:
        labels = [label for _, label in found[r["path"]]]
        hit = r["word"] in labels
        cell = table.setdefault(r["engine"], {}).setdefault(r["condition"], [0, 0])
        cell[0] += hit
        cell[1] += 1
        per_word[r["word"]][0] += hit
        per_word[r["word"]][1] += 1
        confused += any(label != r["word"] for label in labels)
    alarms = {e: sum(len(found[s["path"]]) for s in speech if s["engine"] == e)
              for e in {s["engine"] for s in speech}}
    hours = {e: sum(s["seconds"] for s in speech if s["engine"] == e) / 3600 for e in alarms}
    recall = {e: {c: h / n for c, (h, n) in conds.items()} for e, conds in table.items()}
    by_condition = {c: sum(table[e][c][0] for e in table) / sum(table[e][c][1] for e in table)
                    for c in CONDITIONS}
    return {"recall": recall, "recall_by_condition": by_condition,
            "per_keyword": {w: h / n for w, (h, n) in per_word.items() if n},
            "confusions": confused / max(len(records), 1),
            "false_alarms": alarms,
            "false_alarms_per_hour": {e: alarms[e] / hours[e] for e in alarms},
            "false_alarms_per_hour_all": sum(alarms.values()) / sum(hours.values()),
            "speech_minutes": 60 * sum(hours.values())}


#: the leave-one-engine-out models are compared at one threshold: theirs was not validated
#: (each would need its own validation run), and their smaller training leaves them less
#: confident than the bundled model
WITHOUT_THRESHOLD = 0.5


def export_without(engine: str) -> str:
    """The leave-one-engine-out torch weights (train.py --without ENGINE) as an .lstm file,
    converted the way the bundled model is, detecting at WITHOUT_THRESHOLD."""
    import torch
    from train import KeywordSpotter, save_to
    module = KeywordSpotter(np.zeros(40), np.ones(40))
    module.load_state_dict(torch.load(os.path.join(HERE, ".work", f"without-{engine}.pt"),
                                      weights_only=True))
    path = os.path.join(HERE, ".work", f"without-{engine}.lstm")
    save_to(module.eval(), [(path, "float32")], threshold=WITHOUT_THRESHOLD)
    return path


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def tables(results: dict) -> str:
    lines = ["Recall of the bundled model on each engine's held-out voices (float32 / int8):",
             "", "| engine (test voices) | " + " | ".join(CONDITIONS) +
             " | false alarms per hour of read speech |", "|---" * (len(CONDITIONS) + 2) + "|"]
    f32, i8 = results["float32"], results["int8"]
    for engine in V.ENGINES:
        voices = ", ".join(V.SPEAKERS[engine]["test"]) if engine != "espeak-ng" else \
            f"{len(V.ESPEAK_ACCENTS)} accents x variants {', '.join(V.ESPEAK_VARIANTS['test'])}"
        lines.append(f"| {engine} ({voices}) | " + " | ".join(
            f"{percent(f32['recall'][engine][c])} / {percent(i8['recall'][engine][c])}"
            for c in CONDITIONS) + f" | {f32['false_alarms_per_hour'][engine]:.0f} / "
            f"{i8['false_alarms_per_hour'][engine]:.0f} |")
    lines.append("| **all engines** | " + " | ".join(
        f"**{percent(f32['recall_by_condition'][c])} / {percent(i8['recall_by_condition'][c])}**"
        for c in CONDITIONS) + f" | **{f32['false_alarms_per_hour_all']:.1f} / "
        f"{i8['false_alarms_per_hour_all']:.1f}** |")
    lines += ["", f"False alarms: {f32['speech_minutes']:.0f} minutes of read sentences "
              f"without keywords (half at 20 dB, half at 10 dB). Keywords fired on a "
              f"recording of another keyword: {percent(f32['confusions'])} (float32), "
              f"{percent(i8['confusions'])} (int8).", "",
              "Recall per keyword, all engines and conditions (float32 / int8):", "",
              "| " + " | ".join(D.KEYWORDS) + " |", "|---" * len(D.KEYWORDS) + "|",
              "| " + " | ".join(f"{percent(f32['per_keyword'][w])} / "
                                f"{percent(i8['per_keyword'][w])}" for w in D.KEYWORDS) + " |"]
    if results.get("operating_points"):
        threshold = lstmlite.load(lstmlite.examples.path("kws")).metadata["detection"][
            "threshold"]
        lines += ["", f"Other detection thresholds (the bundled model's is {threshold:g}, "
                      f"chosen on validation voices; float32, all engines):", "",
                  "| threshold | " + " | ".join(CONDITIONS) + " | false alarms per hour |",
                  "|---" * (len(CONDITIONS) + 2) + "|"]
        for name, point in results["operating_points"].items():
            lines.append(f"| {name} | " + " | ".join(
                percent(point["recall_by_condition"][c]) for c in CONDITIONS)
                + f" | {point['false_alarms_per_hour_all']:.1f} |")
    without = {e: r for e, r in results.get("without", {}).items() if e != "none"}
    if without:
        control = results["without"].get("none")
        reference = results.get("operating_points", {}).get(f"{WITHOUT_THRESHOLD:.1f}")
        lines += ["", "Leave one engine out: a model trained without the engine "
                  "(train.py --without E: the bundled model's recipe at 40% of its training), "
                  "tested on that engine's held-out voices (float32, threshold "
                  f"{WITHOUT_THRESHOLD:g}); in brackets the same voices heard by "
                  + ("the control, the same reduced training on all five engines "
                     "(train.py --without none)" if control else
                     "the bundled model at the same threshold (trained on every engine, with "
                     "2.5 times the training)") + ":", "",
                  "| engine never heard | " + " | ".join(CONDITIONS) +
                  " | false alarms per hour |", "|---" * (len(CONDITIONS) + 2) + "|"]
        compare = control or reference
        for engine, r in without.items():
            def cell(value, other):
                return value if compare is None else f"{value} ({other})"
            lines.append(f"| {engine} | " + " | ".join(
                cell(percent(r["recall"][engine][c]),
                     percent(compare["recall"][engine][c]) if compare else "")
                for c in CONDITIONS) + " | " + cell(
                f"{r['false_alarms_per_hour'][engine]:.0f}",
                f"{compare['false_alarms_per_hour'][engine]:.0f}" if compare else "") + " |")
    return "\n".join(lines)


def committed_set(records, speech, models: Dict[str, str]) -> Dict[str, dict]:
    """tests/data/kws_eval.npz: per keyword one recording per condition (engines in turn) and
    30 s of piper's read speech at 10 dB; returns the figures the suite checks, per weights
    dtype, measured through `lstmlite run`."""
    chosen = []
    for k, word in enumerate(D.KEYWORDS):
        for j, condition in enumerate(CONDITIONS):
            engine = V.ENGINES[(k + j) % len(V.ENGINES)]
            chosen.append(next(r for r in records if r["word"] == word and r["engine"] == engine
                               and r["condition"] == condition))
    clips = [soundfile.read(r["path"], dtype="int16")[0] for r in chosen]
    audio = np.zeros((len(chosen), max(map(len, clips))), dtype=np.int16)
    for row, pcm in enumerate(clips):
        audio[row, :pcm.size] = pcm
    background = soundfile.read(next(s["path"] for s in speech if s["snr"] == 10.0
                                     and s["engine"] == "piper"), dtype="int16")[0][:30 * RATE]
    np.savez_compressed(os.path.join(ROOT, "tests", "data", "kws_eval.npz"),
                        keywords=np.array([r["word"] for r in chosen]), audio=audio,
                        background=background)
    # the padded rows, as the suite reads them, and the background, as files for the CLI
    paths = []
    for row, r in enumerate(chosen):
        paths.append(os.path.join(WORK, "mixed", f"committed-{row}.wav"))
        soundfile.write(paths[-1], audio[row], RATE, subtype="PCM_16")
    bg = os.path.join(WORK, "mixed", "committed-background.wav")
    soundfile.write(bg, background, RATE, subtype="PCM_16")
    figures = {}
    for dtype, model_path in models.items():
        found = lstmlite_run(model_path, paths + [bg])
        hits = sum(r["word"] in [label for _, label in found[p]] for r, p in zip(chosen, paths))
        figures[dtype] = {"recall": hits / len(chosen), "false_alarms": len(found[bg])}
    return figures


def demo_recording(seed: int) -> None:
    """The bundled recording: SENTENCE's words by a held-out voice at its natural rate (the
    engine's own program, sox to 16 kHz), 0.35-0.8 s apart, at 20 dB over pink noise."""
    rng = np.random.default_rng(seed)
    pieces, placed, position = [], [], int(0.4 * RATE)
    pieces.append(np.zeros(position))
    for k, word in enumerate(SENTENCE):
        utterance = V.Utterance(SENTENCE_VOICE.engine, SENTENCE_VOICE.voice, word)
        clip = D.trim(read(native_then_16k(utterance, f"demo-{k}-{word}")))
        pieces.append(clip)
        placed.append((word, position / RATE, (position + clip.size) / RATE))
        gap = int(rng.uniform(0.35, 0.8) * RATE)
        pieces.append(np.zeros(gap))
        position += clip.size + gap
    pieces.append(np.zeros(int(0.6 * RATE)))
    path = lstmlite.examples.path("kws-sentence.wav")
    write_mix(rng, np.concatenate(pieces), 20.0, path)
    with open(lstmlite.examples.path("kws-sentence.json"), "w") as handle:
        json.dump({"voice": f"{SENTENCE_VOICE.engine} {SENTENCE_VOICE.voice} (held out of "
                            f"training), natural rate, 20 dB SNR",
                   "words": [{"word": w, "start": round(s, 3), "end": round(e, 3)}
                             for w, s, e in placed]}, handle, indent=1)
        handle.write("\n")


def main(argv: List[str]) -> None:
    for sub in ("native", "16k", "mixed"):
        os.makedirs(os.path.join(WORK, sub), exist_ok=True)
    start = time.time()
    records = keyword_recordings(seed=1000)
    speech = speech_recordings(seed=1001)
    print(f"{len(records)} keyword recordings, {len(speech)} read-speech recordings in "
          f"{time.time() - start:.0f} s", flush=True)
    paths = [r["path"] for r in records] + [s["path"] for s in speech]
    models = {"float32": lstmlite.examples.path("kws"), "int8": lstmlite.examples.path("kws-int8")}
    results = {}
    for dtype, path in models.items():
        results[dtype] = score(records, speech, lstmlite_run(path, paths))
        if dtype == "float32":      # while the run's per-frame posteriors are in OUTPUTS
            results["operating_points"] = operating_points(lstmlite.load(path), records, speech)
    results["without"] = {}
    if os.path.exists(os.path.join(HERE, ".work", "without-none.pt")):
        control = score(records, speech, lstmlite_run(export_without("none"), paths))
        results["without"]["none"] = control
    for engine in V.ENGINES:
        if os.path.exists(os.path.join(HERE, ".work", f"without-{engine}.pt")):
            own = [r for r in records if r["engine"] == engine]
            own_speech = [s for s in speech if s["engine"] == engine]
            found = lstmlite_run(export_without(engine), [r["path"] for r in own]
                                 + [s["path"] for s in own_speech])
            results["without"][engine] = score(own, own_speech, found)
    for dtype, figures in committed_set(records, speech, models).items():
        results[f"committed set (lstmlite {dtype})"] = figures
    with open(os.path.join(HERE, "results.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    text = tables(results)
    print(text)
    with open(os.path.join(HERE, "results.md"), "w") as handle:
        handle.write(text + "\n")
    if "--no-demo" not in argv:
        demo_recording(seed=1003)
        plot(lstmlite.load(models["float32"]))


def plot(model) -> None:
    """kws.png: the demo recording's waveform, log-mel and streamed posteriors, detections
    marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lstmlite.detection import Detector
    with open(lstmlite.examples.path("kws-sentence.json")) as handle:
        placed = json.load(handle)["words"]
    pcm, _ = soundfile.read(lstmlite.examples.path("kws-sentence.wav"), dtype="int16")
    front = D.front_end()
    logmel = front.transform(pcm)
    stream = model.stream()
    probabilities = np.array([stream.step(frame).copy() for frame in logmel])
    detector = Detector.from_model(model, front.frame_seconds)
    found = [(t, model.metadata["labels"][hit[0]], hit[1])
             for t, hit in enumerate(map(detector.update, probabilities)) if hit]
    frame_times = np.array([front.frame_end_seconds(t) for t in range(len(logmel))])
    figure, axes = plt.subplots(3, 1, figsize=(12, 7), sharex=True)
    axes[0].plot(np.arange(len(pcm)) / RATE, pcm / 32768.0, linewidth=0.4)
    for word in placed:
        axes[0].annotate(word["word"], ((word["start"] + word["end"]) / 2,
                                        0.9 * np.abs(pcm).max() / 32768), ha="center")
    axes[0].set_ylabel("audio")
    axes[1].imshow(logmel.T, origin="lower", aspect="auto",
                   extent=(frame_times[0], frame_times[-1], 0, logmel.shape[1]))
    axes[1].set_ylabel("log-mel band")
    for k, name in enumerate(model.metadata["labels"]):
        if name.startswith("_"):
            axes[2].plot(frame_times, probabilities[:, k], color="0.7", linewidth=0.8)
        else:
            axes[2].plot(frame_times, probabilities[:, k], label=name)
    for t, name, value in found:
        axes[2].axvline(frame_times[t], color="k", linestyle=":")
        axes[2].annotate(f"{name} {value:.2f}", (frame_times[t], 1.02), ha="center")
    axes[2].set_ylabel("posterior (streamed)")
    axes[2].set_xlabel("seconds")
    axes[2].set_ylim(0, 1.12)
    axes[2].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(HERE, "kws.png"), dpi=80)


if __name__ == "__main__":
    main(sys.argv[1:])
