"""One runtime stepping an LSTM stack from Python, for bench_arm.py's instruction counts in the
emulated arm64 system (run there twice, with T and 2T steps; the difference is T steps).

    python python_step.py RUNTIME DTYPE I H L STEPS
        RUNTIME: lstmlite | onnxruntime | litert     DTYPE: float32 | int8

The weights are lstm_weights.py's; each runtime is built and called as bench_step.py and
bench_int8.py call it (a stream's step; an onnxruntime session on one thread with the state
fed back; onnxruntime's quantize_dynamic for int8; LiteRT's interpreter on one thread with
the state fed back, on make_tflite.py's models in ../tflite, its dynamic-range int8 for int8). Before the timed steps, the runtime's
outputs on 8 frames are checked against lstmlite's float32 (1e-4 for float32, 0.05 for int8),
the same work in both runs. Exit status 3: the runtime is not installed here; 4: it does not
agree.
"""
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))


def main() -> int:
    runtime, dtype = sys.argv[1], sys.argv[2]
    I, H, L, steps = (int(v) for v in sys.argv[3:7])
    import lstmlite as ll
    from bench_int8 import build_lstmlite, build_ort
    from lstm_weights import weights
    stack = weights(I, H, L, 0)
    try:
        if runtime == "lstmlite":
            step = build_lstmlite(stack, dtype)
        elif runtime == "onnxruntime":
            import onnxruntime  # noqa: F401
            directory = tempfile.mkdtemp()
            step = build_ort(stack, directory, dtype)
        else:
            path = os.path.join(os.path.dirname(HERE), "tflite",
                                f"lstm_{I}_{H}_{L}_{dtype}.tflite")
            if not os.path.exists(path):
                return 3
            step = build_litert(path, L)
    except ImportError:
        return 3
    frames = np.random.default_rng(1).standard_normal((16, I)).astype(np.float32)
    reference = ll.Model([ll.LSTM(*w) for w in stack]).stream()
    tolerance = 1e-4 if dtype == "float32" else 0.05
    for frame in frames[:8]:
        expected = reference.step(frame)
        got = np.asarray(step(frame)).reshape(-1)
        if not np.abs(got - expected).max() <= tolerance:
            print(f"{runtime} {dtype} disagrees with lstmlite float32 by "
                  f"{np.abs(got - expected).max():.3g}", file=sys.stderr)
            return 4
    mark()
    for t in range(steps):
        step(frames[t % 16])
    mark()
    return 0


#: insn_count.c counts only between two system calls with these arguments
MARK = 0x4C53544D


def mark() -> None:
    """A system call that fails harmlessly (lseek on no file) and marks the counted region."""
    try:
        os.lseek(-1, MARK, 0)
    except OSError:
        pass


def build_litert(path, L):
    """LiteRT's interpreter on make_tflite.py's step model, one thread (XNNPACK, as it
    comes), the state fed back: inputs x, h0, c0, ...; outputs y, h0', c0', ... in order."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(path, num_threads=1)
    interpreter.allocate_tensors()
    inputs = [d["index"] for d in interpreter.get_input_details()]
    outputs = [d["index"] for d in interpreter.get_output_details()]
    state = [np.zeros(d["shape"], np.float32) for d in interpreter.get_input_details()[1:]]

    def step(x):
        interpreter.set_tensor(inputs[0], x.reshape(1, -1))
        for index, value in zip(inputs[1:], state):
            interpreter.set_tensor(index, value)
        interpreter.invoke()
        for k in range(2 * L):
            state[k] = interpreter.get_tensor(outputs[1 + k])
        return interpreter.get_tensor(outputs[0])

    return step


if __name__ == "__main__":
    sys.exit(main())
