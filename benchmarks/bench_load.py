"""What opening a model costs: lstmlite.load() (the file read once into a private aligned
buffer, then validated), the same load on a memory map (what load() did before issue 11; kept
here only as the reference for the copy's cost), and onnxruntime building a session for the
same model, in one process, one after the other. Medians of --repeats loads, and ratios.

    python benchmarks/bench_load.py [--repeats 21]
"""
from __future__ import annotations

import argparse
import mmap
import os
import statistics
import tempfile
import time
from unittest import mock

import numpy as np

import lstmlite
import lstmlite.format as lstm_format

# (input, hidden, layers): a keyword spotter, a larger speech model, a wide sensor model
SIZES = [(40, 64, 1), (40, 256, 2), (64, 512, 2)]


def _mapped(path: str):
    with open(path, "rb") as handle:
        return np.frombuffer(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ),
                             dtype=np.uint8)


def _median_us(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _model(input_size: int, hidden: int, layers: int) -> lstmlite.Model:
    rng = np.random.default_rng(0)
    stack, size = [], input_size
    for _ in range(layers):
        stack.append(lstmlite.LSTM(*(0.1 * rng.standard_normal(shape, dtype=np.float32)
                                     for shape in ((4 * hidden, size), (4 * hidden, hidden),
                                                   (4 * hidden,), (4 * hidden,)))))
        size = hidden
    stack.append(lstmlite.Dense(0.1 * rng.standard_normal((12, hidden), dtype=np.float32),
                                np.zeros(12, np.float32)))
    return lstmlite.Model(stack)


def _onnx_file(model: lstmlite.Model, path: str) -> bool:
    try:
        import torch
    except ImportError:
        return False
    layers = [layer for layer in model.layers if layer.recurrent]
    net = torch.nn.LSTM(layers[0].input_size, layers[0].hidden_size, len(layers),
                        batch_first=True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 5, layers[0].input_size),), path,
                          dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "b", 1: "t"}})
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=21, help="loads per figure (21)")
    args = parser.parse_args()
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    print(f"{'model (I, H, layers)':<22}{'file KB':>9}{'load':>10}{'load mmap':>11}"
          f"{'ort session':>13}{'  load / mmap':>14}{'  ort / load':>12}")
    with tempfile.TemporaryDirectory() as directory:
        for size in SIZES:
            path = os.path.join(directory, "m.lstm")
            model = _model(*size)
            model.save(path)
            copied = _median_us(lambda: lstmlite.load(path), args.repeats)
            with mock.patch.object(lstm_format, "_read_file", _mapped):
                mapped = _median_us(lambda: lstmlite.load(path), args.repeats)
            onnx_path = os.path.join(directory, "m.onnx")
            ort = float("nan")
            if onnxruntime is not None and _onnx_file(model, onnx_path):
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1
                ort = _median_us(lambda: onnxruntime.InferenceSession(
                    onnx_path, options, providers=["CPUExecutionProvider"]), args.repeats)
            print(f"{str(size):<22}{os.path.getsize(path) / 1024:>9.0f}{copied:>8.0f}us"
                  f"{mapped:>9.0f}us{ort:>11.0f}us{copied / mapped:>13.2f}x"
                  f"{ort / copied:>11.2f}x")


if __name__ == "__main__":
    main()
