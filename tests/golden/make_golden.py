"""Generates tests/golden/tiny.lstm: a tiny model of every layer type with weights from fixed
integer arithmetic (no random generator whose stream could change), stamped in its metadata
with the versions of the tools that made it. test_format.py rebuilds the same model, saves it
with the stamped metadata and compares the bytes: any change of the format shows up there.

    python tests/golden/make_golden.py
"""
import os
import platform

import numpy as np

import lstmlite as ll


def values(n, seed):
    """n float32 values in [-1, 1) from a fixed integer sequence."""
    k = (np.arange(n, dtype=np.int64) * 7919 + seed * 104729) % 2003
    return (k / 1001.5 - 1.0).astype(np.float32)


def tiny_model():
    I, H = 3, 2
    return ll.Model([
        ll.Normalize(values(I, 1), values(I, 2) + 2.0),
        ll.LSTM(values(4 * H * I, 3).reshape(4 * H, I), values(4 * H * H, 4).reshape(4 * H, H),
                values(4 * H, 5), values(4 * H, 6), peepholes=values(3 * H, 7).reshape(3, H),
                clip=3.0),
        ll.GRU(values(3 * H * H, 8).reshape(3 * H, H), values(3 * H * H, 9).reshape(3 * H, H),
               values(3 * H, 10), None, linear_before_reset=False,
               activations=[("HardSigmoid", 0.2, 0.5), "Tanh"]),
        ll.RNN(values(H * H, 11).reshape(H, H), values(H * H, 12).reshape(H, H),
               nonlinearity="relu"),
        ll.Dense(values(2 * H, 13).reshape(2, H), values(2, 14), "softmax"),
    ])


def stamp():
    return {"generator": "tests/golden/make_golden.py", "lstmlite": ll.__version__,
            "numpy": np.__version__, "python": platform.python_version(),
            "labels": ["left", "right"]}


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny.lstm")
    tiny_model().save(path, metadata=stamp())
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
