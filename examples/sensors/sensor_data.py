"""Real accelerometer and gyroscope recordings that ship inside the `aeon` wheel, read straight
from the wheel file (aeon itself is not installed: it needs numba, which caps numpy).

    BasicMotions   a smart watch, 6 channels (accelerometer x, y, z then gyroscope x, y, z,
                   aeon's order) at 10 Hz, 10 s recordings of four activities by four
                   students; aeon's own split: 40 train, 40 test.
    Daphnet        one recording (S06R02E0) of the Daphnet freezing-of-gait study: 9
                   acceleration channels (ankle, thigh, trunk; forward, vertical, lateral, in
                   mg) at 64 Hz, 110 s of walking. Its `is_anomaly` column has no freezing
                   episode in this recording.
"""
from __future__ import annotations

import glob
import io
import os
import subprocess
import sys
import zipfile
from typing import Tuple

import numpy as np

AEON_VERSION = "1.6.0"
CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".aeon")
ACTIVITIES = ["Standing", "Walking", "Running", "Badminton"]
CHANNELS = ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z"]
DAPHNET_CHANNELS = ["ankle_horiz_fwd", "ankle_vert", "ankle_horiz_lateral", "leg_horiz_fwd",
                    "leg_vert", "leg_horiz_lateral", "trunk_horiz_fwd", "trunk_vert",
                    "trunk_horiz_lateral"]


def aeon_wheel() -> str:
    """The aeon wheel, downloaded once with pip (no dependencies, nothing installed)."""
    wheels = glob.glob(os.path.join(CACHE, f"aeon-{AEON_VERSION}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", CACHE,
                        f"aeon=={AEON_VERSION}"], check=True)
        wheels = glob.glob(os.path.join(CACHE, f"aeon-{AEON_VERSION}-*.whl"))
    return wheels[0]


def _read(member: str) -> str:
    with zipfile.ZipFile(aeon_wheel()) as wheel:
        return wheel.read(f"aeon/datasets/data/{member}").decode("utf-8")


def basic_motions(split: str) -> Tuple[np.ndarray, np.ndarray]:
    """(recordings, 100, 6) float32 and (recordings,) int64 class indices into ACTIVITIES.
    The .ts format: one recording per line, the channels separated by ':', then the label."""
    series, labels = [], []
    for line in _read(f"BasicMotions/BasicMotions_{split.upper()}.ts").splitlines():
        if not line or line[0] in "#@":
            continue
        *channels, label = line.split(":")
        series.append(np.array([[float(v) for v in c.split(",")] for c in channels]).T)
        labels.append(ACTIVITIES.index(label))
    return np.array(series, dtype=np.float32), np.array(labels)


def daphnet() -> Tuple[np.ndarray, np.ndarray]:
    """(steps, 9) float32 acceleration in mg at 64 Hz, and (steps,) the is_anomaly column."""
    text = _read("Daphnet_S06R02E0/S06R02E0.csv")
    table = np.genfromtxt(io.StringIO(text), delimiter=",", skip_header=1,
                          usecols=range(1, 11))
    return table[:, :9].astype(np.float32), table[:, 9].astype(np.int64)
