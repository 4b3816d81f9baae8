"""LiteRT (TFLite) models of one LSTM stack step, for bench_arm.py's LiteRT rows; run with a
Python that has TensorFlow (bench_arm.py makes a venv for it under LSTMLITE_ARM_ROOT):

    python make_tflite.py OUTDIR I:H:L ...

For each stack, lstm_weights.py's weights (bench_int8.py's) as one step with the state as inputs and outputs
(x, h0, c0, h1, c1, ... -> y, h0', c0', ...; the gates as PyTorch orders them, i, f, g, o),
as a frame-by-frame caller feeds it back, written twice: float32 (lstm_I_H_L_float32.tflite)
and with TFLite's dynamic-range quantization (int8 weights, activations quantized per call:
lstm_I_H_L_int8.tflite), LiteRT's int8 for such a model.
"""
import os
import sys

import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lstm_weights import weights  # noqa: E402


def step_function(stack):
    H = stack[0][1].shape[1]
    specs = [tf.TensorSpec((1, stack[0][0].shape[1]), tf.float32, name="x")]
    for k in range(len(stack)):
        specs += [tf.TensorSpec((1, H), tf.float32, name=f"h{k}"),
                  tf.TensorSpec((1, H), tf.float32, name=f"c{k}")]
    constants = [(tf.constant(w_ih.T), tf.constant(w_hh.T), tf.constant(b_ih + b_hh))
                 for w_ih, w_hh, b_ih, b_hh in stack]

    @tf.function(input_signature=specs)
    def step(x, *state):
        outputs = []
        current = x
        for k, (w_ih, w_hh, bias) in enumerate(constants):
            h, c = state[2 * k], state[2 * k + 1]
            gates = tf.matmul(current, w_ih) + tf.matmul(h, w_hh) + bias
            i, f, g, o = tf.split(gates, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            outputs += [h, c]
            current = h
        return [current] + outputs

    return step


def main():
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    for config in sys.argv[2:]:
        I, H, L = (int(v) for v in config.split(":"))
        function = step_function(weights(I, H, L, 0))
        for dtype in ("float32", "int8"):
            converter = tf.lite.TFLiteConverter.from_concrete_functions(
                [function.get_concrete_function()], function)
            if dtype == "int8":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            path = os.path.join(directory, f"lstm_{I}_{H}_{L}_{dtype}.tflite")
            with open(path, "wb") as handle:
                handle.write(converter.convert())
            print(path)


if __name__ == "__main__":
    main()
