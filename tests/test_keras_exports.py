"""Real Keras exports: Keras 3 (tests/keras/) and tf_keras 2 (tests/keras/tf_keras2/) models
converted to ONNX by tf2onnx, written by tests/keras/make_fixtures.py (run by hand: TensorFlow
is not a test dependency). Each fixture either converts, matching onnxruntime on the graph and
Keras's own outputs on the saved input within 1e-5, or is refused with a message that says
what the graph does. The two Keras versions export the same layers differently (tf_keras 2
writes GRU reset_after and hard-sigmoid LSTMs as ONNX nodes where Keras 3 writes Loops)."""
import os

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from lstmlite import ConversionError  # noqa: E402
from lstmlite.converters import convert_onnx, run_signature  # noqa: E402

HERE = os.path.join(os.path.dirname(__file__), "keras")
FLAVORS = {"keras3": HERE, "tf_keras2": os.path.join(HERE, "tf_keras2")}
TOLERANCE = 1e-5
MASK = "reads 2 tensors step by step .* a mask \\(Keras' Masking or mask_zero\\)"

#: fixture -> None (converts) or the refusal's pattern
EXPECTED = {
    "lstm_sequence_dense_softmax": None,    # Dense over the sequence: Reshape(-1, F) and back
    "lstm_last_dense": None,                # the last step: Slice [-1:INT32_MAX]
    "lstm_stacked_sigmoid": None,
    "normalization_lstm": None,
    "gru_reset_after": None,                # tf2onnx writes these cells as Loops, whose
    "gru_reset_before": None,               # bodies converters/onnx_loops.py recognises
    "simple_rnn": None,
    "lstm_no_bias_hard_sigmoid": None,      # Keras 3's hard sigmoid: HardSigmoid(1/6, 0.5)
    "masking_lstm": MASK,                   # the mask is a second per-step Gather
    "bidirectional_lstm_concat": None,      # direction-axis Slices joined by Concat
    "bidirectional_lstm_sum": None,         # ... and by Add: a Dense [I | I] after the layer
    "lstm_go_backwards": None,              # ReverseSequence, then a forward LSTM
    "lstm_go_backwards_sequence_dense": None,  # ... and a Dense over the reversed sequence
    "bidirectional_gru_last": None,         # the final states: output="final" (Keras 3: two
    "bidirectional_gru_sequence": None,     # GRU Loops, the second reversed, merged into one
    "bidirectional_lstm_last": None,        # bidirectional layer, converters/onnx_directions)
}

#: fixture -> what the note says the Loop was recognised as (Keras 3; tf_keras 2 below)
LOOP_NOTES = {
    "gru_reset_after": "steps a Keras GRU cell (Sigmoid gates, Tanh, reset_after, with bias)",
    "gru_reset_before": "steps a Keras GRU cell (Sigmoid gates, Tanh, reset_before, with bias)",
    "simple_rnn": "steps a Keras RNN cell (Tanh, with bias)",
    "lstm_no_bias_hard_sigmoid": "steps a Keras LSTM cell (HardSigmoid(0.1667, 0.5) gates, "
                                 "Tanh, no bias)",
}


#: tf_keras 2 writes these two as ONNX nodes; the other cells as Loops, like Keras 3
LOOP_NOTES_TF_KERAS2 = {name: note for name, note in LOOP_NOTES.items()
                        if name in ("gru_reset_before", "simple_rnn")}


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_every_fixture_has_an_expectation(flavor):
    fixtures = {name[:-5] for name in os.listdir(FLAVORS[flavor]) if name.endswith(".onnx")}
    assert fixtures == set(EXPECTED)


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_keras_export(name, flavor):
    directory = FLAVORS[flavor]
    with open(os.path.join(directory, f"{name}.onnx"), "rb") as handle:
        data = handle.read()
    if EXPECTED[name] is not None:
        with pytest.raises(ConversionError, match=EXPECTED[name]):
            convert_onnx(data)
        return
    conversion = convert_onnx(data, tolerance=TOLERANCE)          # against onnxruntime
    assert conversion.report.passed, conversion.report.lines()
    loops = (LOOP_NOTES if flavor == "keras3" else LOOP_NOTES_TF_KERAS2).get(name)
    if loops:  # the loop is named as what it was recognised as
        assert any(loops in note for note in conversion.notes), conversion.notes
    if name.startswith("bidirectional") and name.endswith("_last"):
        assert [layer.output for layer in conversion.model.layers if layer.recurrent] == \
            ["final"]
    saved = np.load(os.path.join(directory, f"{name}.npz"))
    outputs = run_signature(conversion.model, conversion.signature, {"x": saved["x"]})
    np.testing.assert_allclose(next(iter(outputs.values())), saved["y"], atol=TOLERANCE,
                               rtol=TOLERANCE)                   # against Keras itself


def test_two_directions_that_differ_are_not_merged():
    """The forward/reversed pair (Keras 3's Bidirectional(GRU): two Loops, two GRU nodes once
    onnx_loops rewrote them) becomes one bidirectional layer only when the two nodes match
    exactly; a backward node with a clip of its own stays apart, and the converter then
    refuses the branch as before."""
    import onnx
    from lstmlite.converters.onnx_directions import merge_direction_pairs
    from lstmlite.converters.onnx_graph import OnnxGraphConverter
    from lstmlite.converters.onnx_loops import rewrite_recurrent_loops
    model = onnx.load(os.path.join(HERE, "bidirectional_gru_last.onnx"))
    rewritten, _, _ = rewrite_recurrent_loops(model, "m")
    merged, notes = merge_direction_pairs(rewritten)
    assert len(notes) == 1 and "one bidirectional GRU layer" in notes[0]
    assert [n.op_type for n in merged.graph.node].count("GRU") == 1
    backward = [n for n in rewritten.graph.node if n.op_type == "GRU"][1]
    backward.attribute.append(onnx.helper.make_attribute("clip", 3.0))
    unchanged, notes = merge_direction_pairs(rewritten)
    assert notes == [] and unchanged is rewritten
    with pytest.raises(ConversionError, match="the graph branches"):
        OnnxGraphConverter(unchanged, "m").convert()
