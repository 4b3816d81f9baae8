"""int8 against float32 and the peers' int8, in one process, one after the other, on the same
weights: microseconds per LSTM step from Python, memory after load and one step, file sizes.

    python benchmarks/bench_int8.py            # the sizes of the README table
    python benchmarks/bench_int8.py --quick    # fewer repeats, for a smoke run

Runtimes, each stepping a stack of L LSTM layers frame by frame with the state kept:
  lstmlite f32   stream.step on the float32 model
  lstmlite int8  stream.step on model.quantize(): int8 weights, per-step int8 activations
  ort int8       onnxruntime's quantize_dynamic (DynamicQuantizeLSTM, reduce_range=True: the
                 default is wrong on AVX2 CPUs without VNNI), state fed back each call,
                 one thread
  torch int8     torch.ao.quantization.quantize_dynamic (per-tensor qint8), one thread
  C ceiling      benchmarks/int8_ceiling.c: a hand-written int8 step timed in C (no Python),
                 built here with cc -O3 -march=native -ffast-math
Then, in fresh processes, resident memory after load() and one step of the float32 and the
int8 file of each size, and the files' sizes. Medians; never asserted in tests.
"""
import argparse
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy as np

import lstmlite as ll

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import measure, single_thread_session, torch_stepper  # noqa: E402
from lstm_weights import weights  # noqa: E402

SIZES = [(40, 64, 1), (40, 256, 2), (64, 512, 1)]
HERE = os.path.dirname(os.path.abspath(__file__))


def build_lstmlite(stack, dtype):
    model = ll.Model([ll.LSTM(*w) for w in stack])
    if dtype == "int8":
        model = model.quantize()
    return model.stream().step


def torch_lstm(stack):
    """A float torch.nn.LSTM holding the stack's weights, on one thread."""
    import torch
    torch.set_num_threads(1)
    I, H = stack[0][0].shape[1], stack[0][1].shape[1]
    net = torch.nn.LSTM(I, H, num_layers=len(stack)).eval()
    with torch.no_grad():
        for k, w in enumerate(stack):
            for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), w):
                getattr(net, f"{name}_l{k}").copy_(torch.from_numpy(value))
    return net


def build_torch_int8(stack):
    import torch
    from torch.ao.quantization import quantize_dynamic
    I = stack[0][0].shape[1]
    net = torch_lstm(stack)
    # quantize_dynamic swaps child modules only
    qnet = quantize_dynamic(torch.nn.Sequential(net), {torch.nn.LSTM}, dtype=torch.qint8)[0]
    return torch_stepper(qnet, I)


def build_ort_int8(stack, directory):
    return build_ort(stack, directory, "int8")


def build_ort(stack, directory, dtype):
    """A step of the stack in onnxruntime (one thread, the state fed back): the float32
    graph, or for int8 its quantize_dynamic (DynamicQuantizeLSTM, reduce_range=True)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic
    I, H, L = stack[0][0].shape[1], stack[0][1].shape[1], len(stack)
    order = [0, 3, 1, 2]  # PyTorch i, f, g, o -> ONNX i, o, f, c

    def reorder(a):
        return np.concatenate([a[g * H:(g + 1) * H] for g in order])

    nodes, inits = [], []
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, I])]
    outputs = []
    current = "X"
    for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(stack):
        inits += [numpy_helper.from_array(reorder(w_ih)[None], f"W{k}"),
                  numpy_helper.from_array(reorder(w_hh)[None], f"R{k}"),
                  numpy_helper.from_array(np.concatenate([reorder(b_ih), reorder(b_hh)])[None],
                                          f"B{k}")]
        for name in (f"h{k}", f"c{k}"):
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1, H]))
            outputs.append(helper.make_tensor_value_info(name + "n", TensorProto.FLOAT,
                                                         [1, 1, H]))
        nodes.append(helper.make_node("LSTM", [current, f"W{k}", f"R{k}", f"B{k}", "", f"h{k}",
                                               f"c{k}"], [f"Y{k}", f"h{k}n", f"c{k}n"],
                                      hidden_size=H))
        nodes.append(helper.make_node("Squeeze", [f"Y{k}", "axis1"], [f"S{k}"]))
        current = f"S{k}"
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    outputs.insert(0, helper.make_tensor_value_info(current, TensorProto.FLOAT, [1, 1, H]))
    graph = helper.make_graph(nodes, "step", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    float_path = os.path.join(directory, f"lstm_{I}_{H}_{L}.onnx")
    int8_path = float_path.replace(".onnx", "_int8.onnx")
    onnx.save(model, float_path)
    if dtype == "int8":
        quantize_dynamic(float_path, int8_path, weight_type=QuantType.QInt8, reduce_range=True)
        ops = {node.op_type for node in onnx.load(int8_path).graph.node}
        assert "DynamicQuantizeLSTM" in ops, ops
    session = single_thread_session(int8_path if dtype == "int8" else float_path)
    feed = {f"{n}{k}": np.zeros((1, 1, H), np.float32) for k in range(L) for n in "hc"}
    names = [o.name for o in outputs]

    def step(x):
        feed["X"] = x.reshape(1, 1, I)
        result = session.run(names, feed)
        for k in range(L):
            feed[f"h{k}"], feed[f"c{k}"] = result[1 + 2 * k], result[2 + 2 * k]
        return result[0]

    return step


def ceiling(I, H, L, steps, repeats, directory):
    compiler = shutil.which("cc")
    if compiler is None:
        return None
    exe = os.path.join(directory, "int8_ceiling")
    if not os.path.exists(exe):
        subprocess.run([compiler, "-O3", "-march=native", "-ffast-math",
                        os.path.join(HERE, "int8_ceiling.c"), "-lm", "-o", exe], check=True)
    out = subprocess.run([exe, str(I), str(H), str(L), str(steps), str(repeats)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, numpy as np, lstmlite as ll
    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    before = rss()
    model = ll.load(sys.argv[1])
    model.stream().step(np.ones(model.input_size, np.float32))
    print(rss() - before)
""")


def memory_after_load(path):
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, path], capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


def agreement(steps_by_name, frames):
    """The int8 runtimes must stay near the float32 one before their times mean anything."""
    outputs = {}
    for name, step in steps_by_name.items():
        for frame in frames[:30]:
            y = step(frame)
        outputs[name] = np.asarray(y, dtype=np.float64).reshape(-1)
    return {name: float(np.abs(y - outputs["lstmlite f32"]).max())
            for name, y in outputs.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="steps=300, repeats=5")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 300, 5
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's "consider pre-processing"
    warnings.filterwarnings("ignore")  # torch.ao's deprecation notices
    print(f"# lstmlite {ll.__version__}, kernels {ll.cpu_info()['kernels']}, "
          f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}")
    print(f"# median of {args.repeats} runs of {args.steps} steps, microseconds per step; "
          f"ratios against lstmlite int8")
    names = ["lstmlite f32", "lstmlite int8", "ort int8", "torch int8"]
    print(f"{'(I, H, L)':<14}" + "".join(f"{n:>14}" for n in names) + f"{'C ceiling':>11}"
          f"{'int8/ceiling':>14}  max |y - f32| of each int8")
    with tempfile.TemporaryDirectory() as directory:
        memory_rows = []
        for I, H, L in SIZES:
            stack = weights(I, H, L, seed=I * 1000 + H)
            frames = np.random.default_rng(0).standard_normal((256, I)).astype(np.float32)
            builders = {"lstmlite f32": lambda: build_lstmlite(stack, "float32"),
                        "lstmlite int8": lambda: build_lstmlite(stack, "int8"),
                        "ort int8": lambda: build_ort_int8(stack, directory),
                        "torch int8": lambda: build_torch_int8(stack)}
            errors = agreement({n: b() for n, b in builders.items()}, frames)
            times = {n: measure(b(), frames, args.steps, args.repeats)
                     for n, b in builders.items()}
            top = ceiling(I, H, L, args.steps, args.repeats, directory)
            base = times["lstmlite int8"]
            cells = "".join(f"{times[n]:>8.2f}" + (f" {times[n] / base:>4.1f}x"
                                                    if n != "lstmlite int8" else " " * 6)
                            for n in names)
            print(f"{str((I, H, L)):<14}{cells}{top if top else float('nan'):>11.2f}"
                  f"{base / top if top else float('nan'):>13.2f}x  "
                  + ", ".join(f"{n.split()[0]} {errors[n]:.1e}" for n in names[1:]), flush=True)
            model = ll.Model([ll.LSTM(*w) for w in stack])
            paths = {dtype: os.path.join(directory, f"{I}_{H}_{L}_{dtype}.lstm")
                     for dtype in ("float32", "int8")}
            for dtype, path in paths.items():
                model.save(path, weights_dtype=dtype)
            memory_rows.append(((I, H, L), {d: memory_after_load(p) for d, p in paths.items()},
                                {d: os.path.getsize(p) for d, p in paths.items()}))
        print("\n# resident memory after load() and one step (fresh process), and file size")
        print(f"{'(I, H, L)':<14}{'f32 memory':>12}{'int8 memory':>13}{'ratio':>7}"
              f"{'f32 file':>11}{'int8 file':>11}{'ratio':>7}")
        for size, memory, files in memory_rows:
            print(f"{str(size):<14}{memory['float32'] / 1024:>9.0f} KiB"
                  f"{memory['int8'] / 1024:>10.0f} KiB{memory['int8'] / memory['float32']:>7.2f}"
                  f"{files['float32'] / 1024:>8.0f} KiB{files['int8'] / 1024:>8.0f} KiB"
                  f"{files['int8'] / files['float32']:>7.2f}")


if __name__ == "__main__":
    main()
