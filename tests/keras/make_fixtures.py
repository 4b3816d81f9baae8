"""Writes tests/keras/*.onnx and *.npz (Keras 3) and tests/keras/tf_keras2/*.onnx and *.npz
(tf_keras, Keras 2): small Keras models exported by tf2onnx, with Keras's own outputs on a
seeded input, for tests/test_keras_exports.py.

Run by hand, not in CI (TensorFlow is heavy), in a venv of its own:

    python -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu tf_keras tf2onnx
    /tmp/tfvenv/bin/python tests/keras/make_fixtures.py             # Keras 3
    /tmp/tfvenv/bin/python tests/keras/make_fixtures.py tf_keras2   # Keras 2 (tf_keras)
    /tmp/tfvenv/bin/python tests/keras/make_fixtures.py keras3 NAME...  # only these models

Versions used for the committed files: see versions.json beside them. Every model gets
random weights (biases too: tf2onnx folds away an Add of zeros) from a fixed seed.
"""
import json
import os
import sys
import zlib

FLAVOR = sys.argv[1] if len(sys.argv) > 1 else "keras3"
ONLY = set(sys.argv[2:])
if FLAVOR not in ("keras3", "tf_keras2"):
    sys.exit(f"usage: make_fixtures.py [keras3|tf_keras2] [NAME...], got {FLAVOR!r}")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if FLAVOR == "tf_keras2":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"   # tf.keras and tf2onnx then use tf_keras

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

if FLAVOR == "tf_keras2":
    import tf_keras as keras  # noqa: E402
else:
    import keras  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = HERE if FLAVOR == "keras3" else os.path.join(HERE, "tf_keras2")
FEATURES, STEPS, BATCH = 5, 7, 2
L = keras.layers


def models():
    """name -> the Keras layers after Input((None, FEATURES))."""
    normalization = L.Normalization()
    normalization.adapt(np.random.default_rng(1).normal(2.0, 3.0, (64, STEPS, FEATURES)))
    return {
        "lstm_sequence_dense_softmax": [L.LSTM(8, return_sequences=True),
                                        L.Dense(3, activation="softmax")],
        "lstm_last_dense": [L.LSTM(8), L.Dense(3)],
        "lstm_stacked_sigmoid": [L.LSTM(8, return_sequences=True), L.LSTM(6),
                                 L.Dense(2, activation="sigmoid")],
        "gru_reset_after": [L.GRU(8, return_sequences=True, reset_after=True), L.Dense(3)],
        "gru_reset_before": [L.GRU(8, return_sequences=True, reset_after=False)],
        "simple_rnn": [L.SimpleRNN(8, return_sequences=True)],
        "bidirectional_lstm_concat": [L.Bidirectional(L.LSTM(6, return_sequences=True)),
                                      L.Dense(3)],
        "bidirectional_lstm_sum": [L.Bidirectional(L.LSTM(6, return_sequences=True),
                                                   merge_mode="sum")],
        "normalization_lstm": [normalization, L.LSTM(8, return_sequences=True), L.Dense(2)],
        "lstm_go_backwards": [L.LSTM(8, go_backwards=True)],
        "lstm_go_backwards_sequence_dense": [L.LSTM(8, go_backwards=True,
                                                    return_sequences=True), L.Dense(3)],
        "bidirectional_gru_last": [L.Bidirectional(L.GRU(6)), L.Dense(3)],
        "bidirectional_gru_sequence": [L.Bidirectional(L.GRU(6, return_sequences=True)),
                                       L.Dense(3)],
        "bidirectional_lstm_last": [L.Bidirectional(L.LSTM(5)),
                                    L.Dense(2, activation="softmax")],
        "lstm_no_bias_hard_sigmoid": [L.LSTM(8, return_sequences=True, use_bias=False,
                                             recurrent_activation="hard_sigmoid")],
        "masking_lstm": [L.Masking(0.0), L.LSTM(8, return_sequences=True)],
    }


def randomize(model, rng):
    for weight in model.weights:
        dtype = getattr(weight.dtype, "as_numpy_dtype", weight.dtype)  # tf_keras: a tf.DType
        weight.assign(rng.uniform(-0.6, 0.6, tuple(weight.shape)).astype(dtype))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    for name, layers in models().items():
        if ONLY and name not in ONLY:
            continue
        inputs = keras.Input((None, FEATURES))
        y = inputs
        for layer in layers:
            y = layer(y)
        model = keras.Model(inputs, y)
        randomize(model, np.random.default_rng(zlib.crc32(name.encode())))
        if name == "normalization_lstm":   # keep the adapted statistics
            layers[0].adapt(np.random.default_rng(1).normal(2.0, 3.0, (64, STEPS, FEATURES)))
        spec = (tf.TensorSpec((None, None, FEATURES), tf.float32, name="x"),)
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
        onnx.save(proto, os.path.join(OUT, f"{name}.onnx"))
        np.savez(os.path.join(OUT, f"{name}.npz"), x=x, y=np.asarray(model(x)))
        print(name, "ops:", sorted({n.op_type for n in proto.graph.node}))
    with open(os.path.join(OUT, "versions.json"), "w") as handle:
        json.dump({"tensorflow": tf.__version__, "keras": keras.__version__,
                   "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__}, handle,
                  indent=1)


if __name__ == "__main__":
    main()
