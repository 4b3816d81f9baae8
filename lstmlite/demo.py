"""The bundled example: a small keyword-spotter-shaped model (input normalization, two LSTM
layers, a softmax head over 4 labels) built from a fixed seed, streamed frame by frame."""
from __future__ import annotations

import os
import time

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
    every machine. (A trained model replaces it in the examples later.)"""
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


def run_demo(model: Model, frames: int = 200, seed: int = 7, out=print) -> np.ndarray:
    """Streams `frames` synthetic frames through the model and reports what a user sees:
    the top label every 50 frames, that streaming equals whole-sequence run(), and the time
    per step. Returns the per-step outputs."""
    labels = model.metadata.get("labels") or [str(i) for i in range(model.output_size)]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((frames, model.input_size)).astype(np.float32)
    out(f"model: {len(model.layers)} layers, {model.parameter_count} parameters, "
        f"input {model.input_size}, output {model.output_size}")
    out(model.summary())
    stream = model.stream()
    outputs = np.empty((frames, model.output_size), dtype=np.float32)
    start = time.perf_counter()
    for t in range(frames):
        stream.step(X[t], out=outputs[t])
    elapsed = time.perf_counter() - start
    for t in range(49, frames, 50):
        best = int(np.argmax(outputs[t]))
        out(f"frame {t + 1:4d}: {labels[best]:<8} p={outputs[t, best]:.3f}  "
            + " ".join(f"{p:.3f}" for p in outputs[t]))
    difference = float(np.abs(model.run(X) - outputs).max())
    out(f"streamed {frames} frames in {elapsed * 1e3:.2f} ms "
        f"({elapsed / frames * 1e6:.2f} us per step); max |stream - run()| = {difference:.1e}")
    return outputs
