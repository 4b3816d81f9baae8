"""Microseconds per step from Python: lstmlite against onnxruntime, PyTorch eager and a NumPy
step, in one process, one after the other, on the same weights. Prints medians and ratios.

    python benchmarks/bench_step.py                 # the sizes of the README table
    python benchmarks/bench_step.py --quick         # fewer repeats, for a smoke run

Each peer does what a user would do to run a recurrent model frame by frame from Python:
  lstmlite     stream.step(frame)                        state kept by the stream
  onnxruntime  sess.run on a single-step LSTM/GRU model,  state fed back each call,
               intra_op_num_threads=1 and sequential execution
  torch        module(x, state) for one step under torch.inference_mode(), 1 thread
  numpy        a float32 step: two matrix-vector products and the gate arithmetic
A run measures `steps` consecutive steps; the figure is the median over `repeats` runs of
the per-step time. Never asserted in tests: machines are shared and noisy.
"""
import argparse
import json
import os
import platform
import sys

import numpy as np

import lstmlite as ll
from lstmlite.bench import median_step_us as measure

SIZES = [(40, 64), (40, 128), (64, 256)]


def single_thread_session(model):
    """An onnxruntime session (model bytes or a path) on one thread, executed sequentially."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def torch_weights(cell, I, H, seed):
    rng = np.random.default_rng(seed)
    G = 4 if cell == "LSTM" else 3
    scale = 1 / np.sqrt(H)
    return [(rng.uniform(-scale, scale, shape)).astype(np.float32)
            for shape in ((G * H, I), (G * H, H), (G * H,), (G * H,))]


def build_lstmlite(cell, weights):
    layer = ll.LSTM(*weights) if cell == "LSTM" else ll.GRU(*weights)
    stream = ll.Model([layer]).stream()
    return stream.step


def build_numpy(cell, weights):
    w_ih, w_hh, b_ih, b_hh = weights
    H = w_hh.shape[1]
    h = np.zeros(H, np.float32)
    c = np.zeros(H, np.float32)
    if cell == "LSTM":
        bias = b_ih + b_hh

        def step(x):
            nonlocal h, c
            gates = w_ih @ x + w_hh @ h + bias
            i, f, g, o = np.split(gates, 4)
            i = 1 / (1 + np.exp(-i))
            f = 1 / (1 + np.exp(-f))
            o = 1 / (1 + np.exp(-o))
            c = f * c + i * np.tanh(g)
            h = o * np.tanh(c)
            return h
    else:
        def step(x):
            nonlocal h
            gx = w_ih @ x + b_ih
            gh = w_hh @ h + b_hh
            r = 1 / (1 + np.exp(-(gx[:H] + gh[:H])))
            z = 1 / (1 + np.exp(-(gx[H:2 * H] + gh[H:2 * H])))
            n = np.tanh(gx[2 * H:] + r * gh[2 * H:])
            h = (1 - z) * n + z * h
            return h
    return step


def build_torch(cell, weights):
    import torch
    torch.set_num_threads(1)
    w_ih, w_hh, b_ih, b_hh = weights
    H, I = w_hh.shape[1], w_ih.shape[1]
    module = (torch.nn.LSTM if cell == "LSTM" else torch.nn.GRU)(I, H).eval()
    with torch.no_grad():
        for name, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                               weights):
            getattr(module, name).copy_(torch.from_numpy(value))
    return torch_stepper(module, I)


def torch_stepper(module, input_size):
    """A step function running a torch recurrent module one frame at a time, its state
    carried from call to call, as a Python edge app would."""
    import torch
    state = None

    def step(x):
        nonlocal state
        with torch.inference_mode():
            out, state = module(torch.from_numpy(x).view(1, 1, input_size), state)
        return out

    return step


def onnx_weights(cell, weights):
    """PyTorch gate order -> ONNX's (LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h)."""
    w_ih, w_hh, b_ih, b_hh = weights
    H = w_hh.shape[1]
    order = [0, 3, 1, 2] if cell == "LSTM" else [1, 0, 2]

    def reorder(a):
        return np.concatenate([a[g * H:(g + 1) * H] for g in order])

    return (reorder(w_ih)[None], reorder(w_hh)[None],
            np.concatenate([reorder(b_ih), reorder(b_hh)])[None])


def build_onnxruntime(cell, weights):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    W, R, B = onnx_weights(cell, weights)
    H, I = weights[1].shape[1], weights[0].shape[1]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, I]),
              helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 1, H])]
    outputs = [helper.make_tensor_value_info("hn", TensorProto.FLOAT, [1, 1, H])]
    node_inputs = ["X", "W", "R", "B", "", "h0"]
    node_outputs = ["", "hn"]
    attrs = {"hidden_size": H}
    if cell == "LSTM":
        inputs.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, [1, 1, H]))
        outputs.append(helper.make_tensor_value_info("cn", TensorProto.FLOAT, [1, 1, H]))
        node_inputs.append("c0")
        node_outputs.append("cn")
    else:
        attrs["linear_before_reset"] = 1
    node = helper.make_node(cell, node_inputs, node_outputs, **attrs)
    graph = helper.make_graph([node], "step", inputs, outputs,
                              [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"),
                               numpy_helper.from_array(B, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    onnx.checker.check_model(model)
    session = single_thread_session(model.SerializeToString())
    feed = {"h0": np.zeros((1, 1, H), np.float32)}
    if cell == "LSTM":
        feed["c0"] = np.zeros((1, 1, H), np.float32)
    names = [o.name for o in outputs]

    def step(x):
        feed["X"] = x.reshape(1, 1, I)
        result = session.run(names, feed)
        feed["h0"] = result[0]
        if cell == "LSTM":
            feed["c0"] = result[1]
        return result[0]

    return step


def check_agreement(cell, weights, builders, frames):
    """All peers must compute the same thing before their times mean anything."""
    outputs = {}
    for name, build in builders.items():
        step = build(cell, weights)
        for frame in frames[:20]:
            y = step(frame)
        outputs[name] = np.asarray(y, dtype=np.float64).reshape(-1)
    base = outputs["lstmlite"]
    for name, y in outputs.items():
        if np.abs(y - base).max() > 1e-4:
            raise SystemExit(f"{name} disagrees with lstmlite on {cell}: "
                             f"{np.abs(y - base).max():.3g}")


def available_builders():
    builders = {"lstmlite": build_lstmlite}
    for name, module, build in (("onnxruntime", "onnxruntime", build_onnxruntime),
                                ("torch", "torch", build_torch)):
        try:
            __import__(module)
            builders[name] = build
        except ImportError:
            print(f"# {name} not installed: skipped", file=sys.stderr)
    builders["numpy"] = build_numpy
    return builders


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per run")
    parser.add_argument("--repeats", type=int, default=15, help="runs per figure")
    parser.add_argument("--quick", action="store_true", help="steps=300, repeats=5")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 300, 5

    builders = available_builders()
    print(f"# lstmlite {ll.__version__}, kernels {ll.cpu_info()['kernels']}, "
          f"{platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"# median of {args.repeats} runs of {args.steps} steps; microseconds per step; "
          f"ratio = peer / lstmlite")
    peers = [name for name in builders if name != "lstmlite"]
    header = f"{'cell':<5} {'(I, H)':<10} {'lstmlite':>9}" + "".join(
        f" {name:>12} {'ratio':>6}" for name in peers)
    print(header)
    rows = []
    for cell in ("LSTM", "GRU"):
        for I, H in SIZES:
            weights = torch_weights(cell, I, H, seed=I * 1000 + H)
            frames = np.random.default_rng(0).standard_normal((256, I)).astype(np.float32)
            check_agreement(cell, weights, builders, frames)
            row = {"cell": cell, "input": I, "hidden": H}
            for name, build in builders.items():
                row[name] = measure(build(cell, weights), frames, args.steps, args.repeats)
            rows.append(row)
            print(f"{cell:<5} {str((I, H)):<10} {row['lstmlite']:>9.2f}" + "".join(
                f" {row[name]:>12.2f} {row[name] / row['lstmlite']:>5.1f}x" for name in peers),
                flush=True)

    tiny = ll.Model([ll.LSTM(np.ones((4, 1), np.float32), np.ones((4, 1), np.float32))])
    frames = np.ones((256, 1), np.float32)
    one_unit = measure(tiny.stream().step, frames, args.steps * 5, args.repeats)
    noop = measure(lambda x: x, frames, args.steps * 5, args.repeats)
    print(f"1-unit LSTM step: {one_unit:.3f} us (a Python call of an identity lambda: "
          f"{noop:.3f} us)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "one_unit_step_us": one_unit, "noop_call_us": noop,
                       "kernels": ll.cpu_info()["kernels"]}, fh, indent=1)


if __name__ == "__main__":
    main()
