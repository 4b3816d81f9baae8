"""A converted model against its source, per streamed frame, in the same process.

A keyword-spotter-shaped PyTorch network (2-layer LSTM 40 -> 64, Linear 64 -> 12, softmax),
exported to ONNX with h0/c0 as inputs and hn/cn as outputs: the way onnxruntime users stream
today, feeding the state back on every call. The same .onnx file is converted with
`lstmlite convert`'s importer and stepped with Stream.step. Also torch eager, stepping the
module with its state. Prints medians of µs per frame and ratios (peer / lstmlite).

    python benchmarks/bench_converted.py [--frames 2000] [--repeats 15]
"""
import argparse
import io
import statistics
import time
import warnings

import numpy as np


def build(features=40, hidden=64, classes=12):
    import torch
    from torch import nn

    class KWS(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(features, hidden, num_layers=2, batch_first=True)
            self.fc = nn.Linear(hidden, classes)

        def forward(self, x, h0, c0):
            y, (h, c) = self.rnn(x, (h0, c0))
            return torch.softmax(self.fc(y), dim=-1), h, c

    torch.manual_seed(0)
    module = KWS().eval()
    x = torch.randn(1, 1, features)
    h0 = torch.zeros(2, 1, hidden)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x, h0, h0), buffer, dynamo=False,
                          input_names=["x", "h0", "c0"], output_names=["y", "hn", "cn"],
                          dynamic_axes={"x": {1: "time"}})
    return module, buffer.getvalue(), features, hidden


def median_us(run, frames, repeats):
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(frames)
        samples.append((time.perf_counter() - start) / frames * 1e6)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    import onnxruntime
    import torch
    from lstmlite.converters import convert_onnx

    module, onnx_bytes, F, H = build()
    conversion = convert_onnx(onnx_bytes, tolerance=1e-5)
    stream = conversion.model.stream()
    frames = np.random.default_rng(0).standard_normal((args.frames, F)).astype(np.float32)

    def run_lstmlite(n):
        step = stream.step
        for i in range(n):
            step(frames[i])

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx_bytes, options,
                                           providers=["CPUExecutionProvider"])
    ort_frames = frames.reshape(args.frames, 1, 1, F)

    def run_onnxruntime(n):
        h = c = np.zeros((2, 1, H), np.float32)
        for i in range(n):
            _, h, c = session.run(None, {"x": ort_frames[i], "h0": h, "c0": c})

    torch.set_num_threads(1)
    torch_frames = torch.from_numpy(ort_frames)

    def run_torch(n):
        h = c = torch.zeros(2, 1, H)
        with torch.no_grad():
            for i in range(n):
                _, h, c = module(torch_frames[i], h, c)

    figures = {}
    for name, run in (("lstmlite", run_lstmlite), ("onnxruntime", run_onnxruntime),
                      ("torch eager", run_torch)):
        run(50)
        figures[name] = median_us(run, args.frames, args.repeats)
    print(f"converted from ONNX: {conversion.report.lines()[1].strip()}")
    print(f"2-layer LSTM ({F} -> {H}) + softmax head, one frame per call, state fed back:")
    base = figures["lstmlite"]
    for name, value in figures.items():
        ratio = "" if name == "lstmlite" else f"  ({value / base:.1f}x lstmlite)"
        print(f"  {name:<12} {value:8.2f} µs/frame{ratio}")


if __name__ == "__main__":
    main()
