"""`lstmlite demo`: the bundled keyword spotter on the bundled synthesized sentence.

Also the seeded random model of a keyword spotter's shape (lstmlite/examples/demo.lstm), which
the benchmarks and tests use where weights need no meaning."""
from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np

from .layers import LSTM, Dense, Normalize
from .model import Model

LABELS = ["silence", "yes", "no", "unknown"]
FEATURES, HIDDEN = 40, 64


def bundled_model_path() -> str:
    """The example model shipped inside the package (written by examples/make_demo_model.py)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples", "demo.lstm")


def build_demo_model(seed: int = 2026) -> Model:
    """Seeded random weights of the shape a 40-band keyword spotter has; the same model on
    every machine, for benchmarks and tests (the trained keyword spotter is
    lstmlite.examples.path("kws"))."""
    rng = np.random.default_rng(seed)

    def weights(*shape):
        return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)

    return Model([
        Normalize(rng.standard_normal(FEATURES).astype(np.float32),
                  rng.uniform(0.5, 2.0, FEATURES).astype(np.float32)),
        LSTM(weights(4 * HIDDEN, FEATURES), weights(4 * HIDDEN, HIDDEN),
             weights(4 * HIDDEN), weights(4 * HIDDEN)),
        LSTM(weights(4 * HIDDEN, HIDDEN), weights(4 * HIDDEN, HIDDEN),
             weights(4 * HIDDEN), weights(4 * HIDDEN)),
        Dense(weights(len(LABELS), HIDDEN), weights(len(LABELS)), activation="softmax"),
    ], metadata={"labels": LABELS, "frame_ms": 10, "features": "40 log-mel bands (synthetic)"})


#: a keyword counts as found when detected from its start to this long after its end (the
#: label window and the detector's smoothing)
FOUND_WITHIN_SECONDS = 0.6


def keyword_marks(spoken, detected, labels) -> str:
    """Each spoken keyword marked found or MISSED, then any detection of a word not spoken
    there: spoken [{"word", "start", "end"}] in seconds, detected [(seconds, label)]."""
    marks, explained = [], set()
    for word in spoken:
        if word["word"] not in labels:
            continue
        hits = [k for k, (t, label) in enumerate(detected) if label == word["word"]
                and word["start"] <= t <= word["end"] + FOUND_WITHIN_SECONDS]
        explained.update(hits)
        marks.append(f"{word['word']} {'found' if hits else 'MISSED'}")
    marks += [f"{label} at {t:.2f} s not spoken" for k, (t, label) in enumerate(detected)
              if k not in explained]
    return ", ".join(marks) if marks else "(none spoken)"


def run_keyword_demo(model_path: Optional[str] = None, wav_path: Optional[str] = None,
                     out=print) -> dict:
    """What `lstmlite demo` prints: the bundled keyword spotter (or model_path, a model with a
    front end and detection config) streaming the bundled sentence (or wav_path) in 10 ms
    chunks as from a microphone: what was said, the detections, and the microseconds per frame
    of the front end and of the model (float32, and int8 for the bundled model). Returns the
    float32 run's summary."""
    from . import examples
    from .format import load
    from .runner import run_file
    bundled = model_path is None
    model_path = model_path or examples.path("kws")
    wav_path = wav_path or examples.path("kws-sentence.wav")
    model = load(model_path)
    out(f"model: {model_path}: {len(model.layers)} layers, {model.parameter_count} parameters, "
        f"{model.output_size} outputs")
    if model.metadata.get("task"):
        out(f"  {model.metadata['task']}")
    front = None
    if "frontend" in model.metadata:
        from .features import LogMel
        front = LogMel.from_model(model)
        out(f"  front end: {front}")
    out(f"audio: {wav_path}, streamed in 10 ms chunks as from a microphone")
    spoken = []
    if wav_path == examples.path("kws-sentence.wav"):
        with open(examples.path("kws-sentence.json"), encoding="utf-8") as handle:
            recording = json.load(handle)
        spoken = recording["words"]
        if recording.get("voice"):
            out(f"  voice: {recording['voice']}")
        out("  spoken: " + ", ".join(f"{w['word']} ({w['start']:.2f}-{w['end']:.2f} s)"
                                    for w in spoken))
    out("detections (seconds at the frame that decided, label, smoothed posterior):")
    detected = []

    def report(line: str) -> None:
        seconds, label = line.split("\t")[:2]
        detected.append((float(seconds), label))
        out("  " + line.replace("\t", "  "))

    summary = run_file(model, wav_path, out=report)
    if summary["lines"] == 0:
        out("  (none)")
    if spoken:
        out("keywords: " + keyword_marks(spoken, detected, model.metadata.get("labels", [])))
    weights = next((layer.weight_dtype for layer in model.layers if layer.matrix_names),
                   "float32")
    timings = [f"front end {summary['front_end_us']:.1f} us",
               f"model {summary['model_us']:.1f} us ({weights} weights)"]
    if bundled:
        quiet = run_file(load(examples.path("kws-int8")), wav_path, out=lambda line: None)
        timings.append(f"int8 model {quiet['model_us']:.1f} us ({quiet['lines']} detections)")
    out(f"per frame: {', '.join(timings)}"
        + (f"; a frame is {front.frame_seconds * 1000:g} ms of audio" if front else ""))
    return summary
