"""Batched streams and whole sequences: lstmlite against onnxruntime and PyTorch, in one process,
one after the other, on the same weights. Prints medians and ratios.

    python benchmarks/bench_batch.py            # the sizes of the README tables
    python benchmarks/bench_batch.py --quick    # fewer repeats, for a smoke run

Batched streams (a gateway stepping B sensors or microphones together), microseconds per
stream-step (one call's time / B):
  lstmlite     model.stream(batch=B).step(X) with X (B, I), float32 and int8
  onnxruntime  sess.run on a one-step LSTM graph with batch B, state fed back each call
  torch        nn.LSTM on (1, B, I) with the state fed back, under inference_mode
and the ratio of lstmlite's figure to its own single stream's step (batch=None). Under each
batched table, the int8 products alone (benchmarks/int8_products.c, built here against src/
when a C compiler is found), per column for one column and for B = 8: the floor of the int8
ratio, since the rest of a step (quantization, activations) costs the same per stream batched
or not.

Whole sequences (offline scoring), microseconds per sequence-step (one call's time / (B T)),
for one sequence and for B = 8 at once:
  lstmlite     model.run(X) with X (T, I) or (B, T, I), float32 and int8
  onnxruntime  sess.run on the whole-sequence LSTM graph (T, B, I)
  torch        nn.LSTM on (T, B, I)
and the ratios to onnxruntime and to lstmlite's own single stream step.

All peers run on one thread. Each figure is the median over `repeats` runs of `calls` calls;
never asserted in tests: machines are shared and noisy.
"""
import argparse
import glob
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import lstmlite as ll
from lstmlite.bench import median_step_us as measure

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_int8 import SIZES, torch_lstm, weights as make_weights  # noqa: E402
from bench_step import onnx_weights, single_thread_session  # noqa: E402

BATCHES = [1, 2, 4, 8, 16, 32]
SEQUENCE_LENGTH = 100
SEQUENCE_BATCHES = [1, 8]


def onnx_lstm_graph(weights, T, B):
    """Stacked ONNX LSTM nodes over (T, B, I) -> (T, B, H); initial and final states of every
    layer as graph inputs and outputs (so a one-step graph can feed them back)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    I, H = weights[0][0].shape[1], weights[0][1].shape[1]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I])]
    outputs, nodes, initializers = [], [], []
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    initializers.append(axes)
    current = "X"
    for index, layer in enumerate(weights):
        names = [f"W{index}", f"R{index}", f"B{index}"]
        for name, value in zip(names, onnx_weights("LSTM", layer)):
            initializers.append(numpy_helper.from_array(value, name))
        for prefix in ("h", "c"):
            inputs.append(helper.make_tensor_value_info(f"{prefix}{index}", TensorProto.FLOAT,
                                                        [1, B, H]))
            outputs.append(helper.make_tensor_value_info(f"{prefix}{index}_out",
                                                         TensorProto.FLOAT, [1, B, H]))
        nodes.append(helper.make_node(
            "LSTM", [current, *names, "", f"h{index}", f"c{index}"],
            [f"Y{index}", f"h{index}_out", f"c{index}_out"], hidden_size=H))
        nodes.append(helper.make_node("Squeeze", [f"Y{index}", "axes"], [f"S{index}"]))
        current = f"S{index}"
    outputs.insert(0, helper.make_tensor_value_info(current, TensorProto.FLOAT, [T, B, H]))
    graph = helper.make_graph(nodes, "lstm", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString(), [o.name for o in outputs]


def ort_batched_step(weights, B):
    model, names = onnx_lstm_graph(weights, 1, B)
    session = single_thread_session(model)
    H = weights[0][1].shape[1]
    feed = {f"{p}{i}": np.zeros((1, B, H), np.float32)
            for i in range(len(weights)) for p in ("h", "c")}
    state_names = [f"{p}{i}" for i in range(len(weights)) for p in ("h", "c")]

    def step(x):
        feed["X"] = x[None]
        result = session.run(names, feed)
        for name, value in zip(state_names, result[1:]):
            feed[name] = value
        return result[0][0]

    return step


def ort_sequence(weights, T, B):
    """x (B, T, I) -> (B, T, H) through the (T, B, I) graph"""
    model, names = onnx_lstm_graph(weights, T, B)
    session = single_thread_session(model)
    H = weights[0][1].shape[1]
    zeros = {f"{p}{i}": np.zeros((1, B, H), np.float32)
             for i in range(len(weights)) for p in ("h", "c")}

    def run(x):
        time_major = np.ascontiguousarray(x.transpose(1, 0, 2))
        return session.run(names[:1], {"X": time_major, **zeros})[0].transpose(1, 0, 2)

    return run


def torch_batched_step(weights, B):
    import torch
    module = torch_lstm(weights)
    state = None

    def step(x):
        nonlocal state
        with torch.inference_mode():
            out, state = module(torch.from_numpy(x)[None], state)
        return out[0].numpy()

    return step


def torch_sequence(weights, B):
    """x (B, T, I) -> (B, T, H) through nn.LSTM on (T, B, I)"""
    import torch
    module = torch_lstm(weights)

    def run(x):
        with torch.inference_mode():
            time_major = torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2)))
            return module(time_major)[0].numpy().transpose(1, 0, 2)

    return run


def have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        print(f"# {module} not installed: its columns are skipped", file=sys.stderr)
        return False


def agree(name, got, expected, tolerance=1e-4):
    """Peers must compute the same thing before their times mean anything."""
    error = float(np.abs(np.asarray(got, np.float64) - expected).max())
    if error > tolerance:
        raise SystemExit(f"{name} disagrees with lstmlite: {error:.3g}")


def bench_batched(weights, models, args, peers):
    I = weights[0][0].shape[1]
    rng = np.random.default_rng(1)
    single = {dtype: measure(model.stream().step,
                             rng.standard_normal((256, I)).astype(np.float32),
                             args.calls, args.repeats)
              for dtype, model in models.items()}
    rows = []
    for B in BATCHES:
        frames = rng.standard_normal((256, B, I)).astype(np.float32)
        calls = max(20, args.calls // B)
        row = {"B": B}
        for dtype, model in models.items():
            row[dtype] = measure(model.stream(batch=B).step, frames, calls, args.repeats) / B
            row[f"{dtype}/single"] = row[dtype] / single[dtype]
        reference = models["float32"].stream(batch=B)
        expected = [reference.step(frame).copy() for frame in frames[:5]][-1]
        for name, build in peers.items():
            step = build(weights, B)
            agree(f"{name} batch {B}", [step(frame) for frame in frames[:5]][-1], expected)
            row[name] = measure(step, frames, calls, args.repeats) / B
        rows.append(row)
    return single, rows


def bench_sequence(weights, models, single, args, peers, B):
    I = weights[0][0].shape[1]
    T = SEQUENCE_LENGTH
    # 256 inputs of B sequences each, cycled (fewer distinct ones for B > 1: memory)
    distinct = 256 if B == 1 else 16
    inputs = np.random.default_rng(2).standard_normal((distinct, B, T, I)).astype(np.float32)
    inputs = [inputs[i % distinct] for i in range(256)]
    calls = max(5, args.calls // (T * B))
    row = {"B": B}
    for dtype, model in models.items():
        row[dtype] = measure(model.run, inputs, calls, args.repeats) / (T * B)
        row[f"{dtype}/single"] = row[dtype] / single[dtype]
    expected = models["float32"].run(inputs[0])
    for name, build in peers.items():
        run = build(weights, B)
        agree(f"{name} sequence B={B}", run(inputs[0]), expected)
        row[name] = measure(run, inputs, calls, args.repeats) / (T * B)
    if "onnxruntime" in row:
        for dtype in models:
            row[f"{dtype}/ort"] = row[dtype] / row["onnxruntime"]
    return row


def build_products_bench(directory):
    """benchmarks/int8_products.c built against the engine's C sources, or None without a C
    compiler."""
    compiler = shutil.which("cc")
    root = os.path.dirname(HERE)
    sources = [path for path in glob.glob(os.path.join(root, "src", "*.c"))
               if not path.endswith("_core.c")]
    if compiler is None or not sources:
        return None
    exe = os.path.join(directory, "int8_products")
    subprocess.run([compiler, "-O3", "-std=c11", "-ffp-contract=fast", "-fno-trapping-math",
                    "-I", os.path.join(root, "src"), os.path.join(HERE, "int8_products.c"),
                    *sources, "-lm", "-o", exe], check=True)
    return exe


def products_alone(exe, I, H, layers, B, repeats):
    """{layout: (us per column with one column, with B)} of the int8 products alone."""
    out = subprocess.run([exe, str(I), str(H), str(layers), str(B), str(repeats)],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: tuple(map(float, line.split()[1:])) for line in out.splitlines()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000,
                        help="stream steps per run (divided by B, or by T for sequences)")
    parser.add_argument("--repeats", type=int, default=15, help="runs per figure")
    parser.add_argument("--quick", action="store_true", help="calls=300, repeats=5")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.repeats = 300, 5

    batched_peers, sequence_peers = {}, {}
    if have("onnxruntime") and have("onnx"):
        batched_peers["onnxruntime"] = ort_batched_step
        sequence_peers["onnxruntime"] = lambda w, B: ort_sequence(w, SEQUENCE_LENGTH, B)
    if have("torch"):
        batched_peers["torch"] = torch_batched_step
        sequence_peers["torch"] = torch_sequence
    print(f"# lstmlite {ll.__version__}, kernels {ll.cpu_info()['kernels']}, "
          f"{platform.machine()}, Python {platform.python_version()}, one thread each; "
          f"medians of {args.repeats} runs")

    scratch = tempfile.mkdtemp(prefix="lstmlite-bench-")
    try:
        products_exe = build_products_bench(scratch)
        for I, H, layers in SIZES:
            bench_size(I, H, layers, args, batched_peers, sequence_peers, products_exe)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def bench_size(I, H, layers, args, batched_peers, sequence_peers, products_exe):
    """Both tables of one LSTM size, printed as they are measured."""
    weights = make_weights(I, H, layers, seed=0)
    model = ll.Model([ll.LSTM(*w) for w in weights])
    models = {"float32": model, "int8": model.quantize("int8")}
    single, rows = bench_batched(weights, models, args, batched_peers)
    print(f"\n## LSTM I={I} H={H} layers={layers}: batched streams, us per stream-step "
          f"(single stream: float32 {single['float32']:.2f}, int8 {single['int8']:.2f})")
    columns = ["float32", "float32/single", "int8", "int8/single", *batched_peers]
    print(f"{'B':>4}" + "".join(f"{c:>16}" for c in columns))
    for row in rows:
        print(f"{row['B']:>4}" + "".join(f"{row[c]:>16.2f}" for c in columns))
    if products_exe:
        # what bounds the int8 ratio: the products alone, in C, per column
        for layout, (one, many) in products_alone(products_exe, I, H, layers, 8,
                                                  args.repeats).items():
            print(f"     int8 products alone on {layout} (benchmarks/int8_products.c, "
                  f"best of {args.repeats}): {one:.2f} us per column alone, {many:.2f} "
                  f"with B=8, ratio {many / one:.2f}")

    print(f"\n## LSTM I={I} H={H} layers={layers}: run() over B sequences of "
          f"T={SEQUENCE_LENGTH}, us per sequence-step")
    columns = ["float32", "float32/single", "int8", "int8/single", *sequence_peers]
    if "onnxruntime" in sequence_peers:
        columns += ["float32/ort", "int8/ort"]
    print(f"{'B':>4}" + "".join(f"{c:>16}" for c in columns))
    for B in SEQUENCE_BATCHES:
        row = bench_sequence(weights, models, single, args, sequence_peers, B)
        print(f"{B:>4}" + "".join(f"{row[c]:>16.2f}" for c in columns), flush=True)


if __name__ == "__main__":
    main()
