"""Trains the bundled activity classifier on aeon's BasicMotions and writes
lstmlite/examples/activity.lstm and activity-int8.lstm, then evaluates it on aeon's test split.

    pip install torch onnx onnxruntime matplotlib
    python examples/sensors/train_activity.py        # about a minute on 2 cores

Input: the 6 raw channels of one 10 Hz time step in aeon's order (accelerometer x, y, z,
gyroscope x, y, z); the normalization is the model's first layer. Output at every step: the
probabilities of standing, walking, running, badminton from the steps so far (an LSTM: the
decision at step t uses steps 0..t only). Also writes tests/data/basic_motions_test.npz (the
test split, for the suite) and the figures in README.md (results.md, activity.png).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path[:0] = [HERE, os.path.join(HERE, ".."), ROOT]
import sensor_data as D  # noqa: E402
from export_convert import export_and_convert  # noqa: E402

import lstmlite  # noqa: E402

HIDDEN = 32
SKIP_STEPS = 3           # the first steps are not scored in training: too little to go on
REPORT_STEPS = [10, 20, 50, 100]


class ActivityClassifier(torch.nn.Module):
    """(B, T, 6) raw channels -> (B, T, 4): normalize, LSTM(6, 32), linear head (softmax
    probabilities when `probabilities`)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.lstm = torch.nn.LSTM(len(mean), HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, len(D.ACTIVITIES))
        self.probabilities = False

    def forward(self, x):
        y, _ = self.lstm((x - self.mean) / self.std)
        logits = self.head(y)
        return torch.softmax(logits, dim=-1) if self.probabilities else logits


def train(X: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = 400) -> ActivityClassifier:
    """Per-step cross entropy on random crops (start 0-40 steps in, so no decision leans on
    the recording's first sample), random gain and noise."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    flat = X.reshape(-1, X.shape[-1])
    model = ActivityClassifier(flat.mean(axis=0), flat.std(axis=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    std = flat.std(axis=0)
    for epoch in range(epochs):
        start = int(rng.integers(0, 41))
        crop = X[:, start:] * rng.uniform(0.9, 1.1, (len(X), 1, X.shape[-1]))
        crop = crop + 0.05 * std * rng.standard_normal(crop.shape)
        logits = model(torch.tensor(crop, dtype=torch.float32))[:, SKIP_STEPS:]
        targets = torch.tensor(y).repeat_interleave(logits.shape[1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (epoch + 1) % 100 == 0:
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}", flush=True)
    return model.eval()


def accuracy_by_step(probabilities: np.ndarray, y: np.ndarray) -> dict:
    """Top-1 accuracy of the decision after each of REPORT_STEPS steps."""
    return {step: float((probabilities[:, step - 1].argmax(-1) == y).mean())
            for step in REPORT_STEPS}


def streamed(model: lstmlite.Model, X: np.ndarray) -> np.ndarray:
    """Each recording through a fresh stream, step by step, as on the device."""
    out = np.empty(X.shape[:2] + (model.output_size,), dtype=np.float32)
    for i, recording in enumerate(X):
        stream = model.stream()
        for t, frame in enumerate(recording):
            stream.step(frame, out=out[i, t])
    return out


def main():
    X_train, y_train = D.basic_motions("train")
    X_test, y_test = D.basic_motions("test")
    module = train(X_train, y_train)
    module.probabilities = True
    paths = {"float32": os.path.join(ROOT, "lstmlite", "examples", "activity.lstm"),
             "int8": os.path.join(ROOT, "lstmlite", "examples", "activity-int8.lstm")}
    export_and_convert(
        module, X_train.shape[-1], "motion", "probabilities", D.ACTIVITIES,
        {"task": "activity recognition from a smart watch: aeon's BasicMotions "
                 "(examples/sensors)", "input_channels": D.CHANNELS, "step_seconds": 0.1},
        [(paths["float32"], "float32"), (paths["int8"], "int8")])
    np.savez_compressed(os.path.join(ROOT, "tests", "data", "basic_motions_test.npz"),
                        X=X_test, y=y_test)

    with torch.no_grad():
        results = {"torch": accuracy_by_step(module(torch.tensor(X_test)).numpy(), y_test)}
    for dtype, path in paths.items():
        results[f"lstmlite {dtype}"] = accuracy_by_step(streamed(lstmlite.load(path), X_test),
                                                        y_test)
    lines = ["| runtime | " + " | ".join(f"after {s} steps ({s / 10:g} s)" for s in REPORT_STEPS)
             + " |", "|---" * (len(REPORT_STEPS) + 1) + "|"]
    for name, by_step in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{by_step[s]:.1%}" for s in REPORT_STEPS)
                     + " |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(HERE, "results.md"), "w") as handle:
        handle.write("BasicMotions test split (40 recordings, aeon's split), top-1 accuracy of "
                     "the streamed decision:\n\n" + table + "\n")
    with open(os.path.join(HERE, "results.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    plot(lstmlite.load(paths["float32"]), X_test, y_test)


def plot(model: lstmlite.Model, X: np.ndarray, y: np.ndarray) -> None:
    """activity.png: one test recording per activity, streamed: the raw channels and the
    running class probabilities."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(2, 4, figsize=(14, 5), sharex=True)
    seconds = np.arange(X.shape[1]) * 0.1
    for column, activity in enumerate(D.ACTIVITIES):
        index = int(np.flatnonzero(y == column)[0])
        probabilities = streamed(model, X[index:index + 1])[0]
        axes[0, column].plot(seconds, X[index], linewidth=0.8)
        axes[0, column].set_title(f"test recording {index}: {activity}")
        for k, name in enumerate(D.ACTIVITIES):
            axes[1, column].plot(seconds, probabilities[:, k], label=name)
        axes[1, column].set_xlabel("seconds")
        axes[1, column].set_ylim(-0.02, 1.02)
    axes[0, 0].set_ylabel("raw channels")
    axes[1, 0].set_ylabel("P(activity), streamed")
    axes[1, 3].legend(loc="center right", fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(HERE, "activity.png"), dpi=80)


if __name__ == "__main__":
    main()
