"""Real Keras exports: Keras 3 models converted to ONNX by tf2onnx (tests/keras/, written by
tests/keras/make_fixtures.py, run by hand: TensorFlow is not a test dependency). Each fixture
either converts, matching onnxruntime on the graph and Keras's own outputs on the saved input
within 1e-5, or is refused with a message that says what the graph does."""
import os

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from lstmlite import ConversionError  # noqa: E402
from lstmlite.converters import convert_onnx, run_signature  # noqa: E402

HERE = os.path.join(os.path.dirname(__file__), "keras")
TOLERANCE = 1e-5
LOOP = "the recurrence is the Loop node .* a loop over the time steps whose body computes"

#: fixture -> None (converts) or the refusal's pattern
EXPECTED = {
    "lstm_sequence_dense_softmax": None,    # Dense over the sequence: Reshape(-1, F) and back
    "lstm_last_dense": None,                # the last step: Slice [-1:INT32_MAX]
    "lstm_stacked_sigmoid": None,
    "normalization_lstm": None,
    "gru_reset_after": LOOP,                # tf2onnx writes these cells as Loops
    "gru_reset_before": LOOP,
    "simple_rnn": LOOP,
    "lstm_no_bias_hard_sigmoid": LOOP,
    "masking_lstm": LOOP,
    "bidirectional_lstm_concat": None,      # direction-axis Slices joined by Concat
    "bidirectional_lstm_sum": None,         # ... and by Add: a Dense [I | I] after the layer
    "lstm_go_backwards": "cannot apply Expand to a shape",
}


def test_every_fixture_has_an_expectation():
    fixtures = {name[:-5] for name in os.listdir(HERE) if name.endswith(".onnx")}
    assert fixtures == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_keras_export(name):
    with open(os.path.join(HERE, f"{name}.onnx"), "rb") as handle:
        data = handle.read()
    if EXPECTED[name] is not None:
        with pytest.raises(ConversionError, match=EXPECTED[name]):
            convert_onnx(data)
        return
    conversion = convert_onnx(data, tolerance=TOLERANCE)          # against onnxruntime
    assert conversion.report.passed, conversion.report.lines()
    saved = np.load(os.path.join(HERE, f"{name}.npz"))
    outputs = run_signature(conversion.model, conversion.signature, {"x": saved["x"]})
    np.testing.assert_allclose(next(iter(outputs.values())), saved["y"], atol=TOLERANCE,
                               rtol=TOLERANCE)                   # against Keras itself
