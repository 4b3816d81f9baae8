"""Trains the bundled gait predictor on the Daphnet recording in aeon's wheel and writes
lstmlite/examples/gait.lstm and gait-int8.lstm; evaluates it on the recording's last 30 %.

    pip install torch onnx onnxruntime matplotlib
    python examples/sensors/train_gait.py          # about a minute on 2 cores

A sensor predictor: input the 9 raw acceleration channels (mg) of one 64 Hz step, output the
prediction of the next step's 9 channels (mg); normalization in and out are layers of the
model (Normalize, then Scale back to mg). Its use on a device is anomaly detection: the
prediction error jumps when the gait stops looking like the walking it learned.

The recording's is_anomaly column marks no freezing episode, so there is no labelled event to
detect: the evaluation reports the prediction error against the naive predictors on held-out
walking, and, as an illustration only, how the error responds to a freezing-like 3-8 Hz
trembling (the band freezing of gait shows in, Moore et al. 2008) added to the held-out part.
(It responds, but held-out walking alone also passes a threshold set on the training walk for
seconds at a time: one 110 s recording is too little to calibrate a detector on.)
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

RATE = 64
HIDDEN = 48
TRAIN_SHARE = 0.7
SCORE_SECONDS = 0.5


class GaitPredictor(torch.nn.Module):
    """(B, T, 9) mg -> (B, T, 9) mg: the next step's prediction at every step."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.gru = torch.nn.GRU(len(mean), HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, len(mean))

    def forward(self, x):
        y, _ = self.gru((x - self.mean) / self.std)
        return self.head(y) * self.std + self.mean


def train(X: np.ndarray, seed: int = 0, steps: int = 1500) -> GaitPredictor:
    """Mean squared error of the normalized next step, on random 4 s windows."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = GaitPredictor(X.mean(axis=0), X.std(axis=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    std = torch.tensor(X.std(axis=0))
    window = 4 * RATE
    for step in range(steps):
        starts = rng.integers(0, len(X) - window - 1, 32)
        batch = torch.tensor(np.stack([X[s:s + window + 1] for s in starts]))
        predicted = model(batch[:, :-1])
        loss = (((predicted - batch[:, 1:]) / std) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % 500 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f}", flush=True)
    return model.eval()


def rmse(predicted: np.ndarray, actual: np.ndarray, std: np.ndarray) -> float:
    """Root mean square error per step, in units of each channel's standard deviation."""
    return float(np.sqrt((((predicted - actual) / std) ** 2).mean()))


def error_score(predicted: np.ndarray, actual: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The anomaly score at each step: the squared normalized prediction error averaged over
    channels and over the last SCORE_SECONDS (a causal moving average)."""
    error = (((predicted[:-1] - actual[1:]) / std) ** 2).mean(axis=1)
    width = int(SCORE_SECONDS * RATE)
    cumulative = np.concatenate([[0.0], np.cumsum(error)])
    counts = np.minimum(np.arange(1, len(error) + 1), width)
    return (cumulative[1:] - cumulative[np.maximum(0, np.arange(1, len(error) + 1) - width)]) \
        / counts


def with_trembling(X: np.ndarray, seed: int):
    """X with four 2 s stretches of 3-8 Hz trembling added to the ankle and thigh channels
    (100-200 mg); returns the signal and the (start, end) steps of each stretch."""
    rng = np.random.default_rng(seed)
    Y = X.copy()
    events = []
    for k in range(4):
        start = int((k + 0.5) * len(X) / 4.5)
        t = np.arange(2 * RATE) / RATE
        frequency = rng.uniform(3, 8)
        for channel in range(6):
            Y[start:start + len(t), channel] += rng.uniform(100, 200) * np.sin(
                2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi))
        events.append((start, start + len(t)))
    return Y, events


def main():
    X, anomalies = D.daphnet()
    split = int(TRAIN_SHARE * len(X))
    train_part, test_part = X[:split], X[split:]
    module = train(train_part)
    paths = {"float32": os.path.join(ROOT, "lstmlite", "examples", "gait.lstm"),
             "int8": os.path.join(ROOT, "lstmlite", "examples", "gait-int8.lstm")}
    # outputs in mg (hundreds): float32 verified at 1e-3 mg; int8 at the default quantized
    # tolerance on the converter's random inputs, far outside the walking it learned (the
    # held-out RMSE below is the figure that matters)
    export_and_convert(
        module, X.shape[1], "acceleration_mg", "next_step_mg", None,
        {"task": "gait predictor: the next 64 Hz step of 9 acceleration channels (mg), "
                 "Daphnet S06R02E0 from aeon's wheel (examples/sensors)",
         "input_channels": D.DAPHNET_CHANNELS, "output_channels": D.DAPHNET_CHANNELS,
         "step_seconds": 1 / RATE},
        [(paths["float32"], "float32"), (paths["int8"], "int8")], tolerance="1e-3")
    np.savez_compressed(os.path.join(ROOT, "tests", "data", "daphnet_test.npz"), X=test_part)

    std = train_part.std(axis=0)
    with torch.no_grad():
        predictions = {"torch": module(torch.tensor(test_part)[None])[0].numpy()}
    for dtype, path in paths.items():
        predictions[f"lstmlite {dtype}"] = lstmlite.load(path).run(test_part)
    results = {"persistence (next = this step)": rmse(test_part[:-1], test_part[1:], std),
               "training mean": rmse(np.broadcast_to(train_part.mean(axis=0), test_part[1:].shape),
                                     test_part[1:], std)}
    for name, predicted in predictions.items():
        results[name] = rmse(predicted[:-1], test_part[1:], std)

    clean_train = error_score(lstmlite.load(paths["float32"]).run(train_part), train_part, std)
    threshold = float(np.quantile(clean_train, 0.999))
    trembling, events = with_trembling(test_part, seed=1)
    score = error_score(lstmlite.load(paths["float32"]).run(trembling), trembling, std)
    flagged = score > threshold
    inside = np.zeros(len(score), bool)
    for start, end in events:
        inside[start:end + int(SCORE_SECONDS * RATE)] = True
    found = [bool(flagged[start:end].any()) for start, end in events]
    delays = [float(np.argmax(flagged[start:end]) / RATE) for (start, end), hit
              in zip(events, found) if hit]
    illustration = {"threshold (99.9th percentile of the training walk)": threshold,
                    "stretches flagged": f"{sum(found)} of {len(events)}",
                    "median delay (s)": float(np.median(delays)) if delays else None,
                    "flagged seconds outside the stretches":
                        float((flagged & ~inside).sum() / RATE),
                    "flagged seconds of the clean held-out walking": float(
                        (error_score(lstmlite.load(paths["float32"]).run(test_part), test_part,
                                     std) > threshold).sum() / RATE),
                    "training RMSE (float32)": rmse(lstmlite.load(paths["float32"]).run(
                        train_part)[:-1], train_part[1:], std),
                    "held-out seconds": len(test_part) / RATE}
    lines = ["| predictor | RMSE of the next step (in channel standard deviations) |",
             "|---|---|"] + [f"| {name} | {value:.3f} |" for name, value in results.items()]
    table = "\n".join(lines)
    print(table)
    print(json.dumps(illustration, indent=1))
    with open(os.path.join(HERE, "gait_results.md"), "w") as handle:
        handle.write(f"Daphnet S06R02E0, the last {1 - TRAIN_SHARE:.0%} of the recording "
                     f"({len(test_part) / RATE:.0f} s of walking) held out:\n\n{table}\n")
    with open(os.path.join(HERE, "gait_results.json"), "w") as handle:
        json.dump({"rmse": results, "trembling_illustration": illustration,
                   "recording_is_anomaly_steps": int(anomalies.sum())}, handle, indent=1)
    plot(trembling, lstmlite.load(paths["float32"]).run(trembling), score, threshold, events)


def plot(X, predicted, score, threshold, events) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    seconds = np.arange(len(X)) / RATE
    figure, axes = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    axes[0].plot(seconds, X[:, 1], label="ankle vertical (mg)", linewidth=0.7)
    axes[0].plot(seconds[1:], predicted[:-1, 1], label="predicted one step ahead",
                 linewidth=0.7)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].plot(seconds[1:], score, linewidth=0.8, label="prediction error score")
    axes[1].axhline(threshold, color="k", linestyle=":", label="threshold")
    for start, end in events:
        for axis in axes:
            axis.axvspan(start / RATE, end / RATE, color="orange", alpha=0.2)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("seconds (held-out walking; shaded: added 3-8 Hz trembling)")
    axes[1].legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(HERE, "gait.png"), dpi=80)


if __name__ == "__main__":
    main()
