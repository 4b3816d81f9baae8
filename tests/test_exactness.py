"""Every layer and option against the float64 NumPy reference (tests/reference.py), through
run() and through step-by-step streaming, with every kernel set this CPU runs. Sizes are not
multiples of the SIMD width; inputs at unit scale and saturating (x20, x100)."""
import numpy as np
import pytest

import lstmlite as ll
import factories as F
import reference as ref
from conftest import KERNEL_SETS, assert_close

SIZES = [(1, 1), (3, 5), (17, 13), (40, 33)]
SCALES = [1, 20, 100]
ALL_CELL_ACTIVATIONS = ["Relu", "Tanh", "Sigmoid", ("Affine", 0.5, 0.1), ("LeakyRelu", 0.1),
                        ("ThresholdedRelu", 0.3), ("ScaledTanh", 1.5, 0.7),
                        ("HardSigmoid", 0.3, 0.4), ("Elu", 0.9), "Softsign", "Softplus"]

LAYER_CASES = {
    "lstm": lambda r, I, H: F.lstm(r, I, H),
    "lstm_nobias": lambda r, I, H: F.lstm(r, I, H, bias=False),
    "lstm_peepholes": lambda r, I, H: F.lstm(r, I, H, peepholes=True),
    "lstm_input_forget": lambda r, I, H: F.lstm(r, I, H, input_forget=True),
    "lstm_clip": lambda r, I, H: F.lstm(r, I, H, clip=0.8),
    "lstm_proj": lambda r, I, H: F.lstm(r, I, H + 2, proj=max(1, H // 2)),
    "lstm_activations": lambda r, I, H: F.lstm(
        r, I, H, activations=[("HardSigmoid", 0.25, 0.5), ("ScaledTanh", 1.2, 0.8), "Softsign"]),
    "lstm_all": lambda r, I, H: F.lstm(r, I, H + 2, peepholes=True, proj=max(1, H // 2),
                                       clip=2.5, input_forget=True),
    "lstm_reverse": lambda r, I, H: F.lstm(r, I, H, direction="reverse", peepholes=True),
    "lstm_bidirectional": lambda r, I, H: F.lstm(
        r, I, H, direction="bidirectional", peepholes=True, proj=max(1, H // 2) if H > 1 else 0,
        activations=["Sigmoid", "Tanh", "Tanh", ("HardSigmoid", 0.2, 0.5), "Softsign",
                     ("ScaledTanh", 1.1, 0.9)]),
    "gru": lambda r, I, H: F.gru(r, I, H),
    "gru_before_reset": lambda r, I, H: F.gru(r, I, H, linear_before_reset=False),
    "gru_nobias": lambda r, I, H: F.gru(r, I, H, bias=False, linear_before_reset=False),
    "gru_clip": lambda r, I, H: F.gru(r, I, H, clip=0.5),
    "gru_activations": lambda r, I, H: F.gru(r, I, H, activations=[("HardSigmoid", 0.2, 0.5),
                                                                   ("Elu", 0.7)]),
    "gru_reverse": lambda r, I, H: F.gru(r, I, H, direction="reverse"),
    "gru_bidirectional": lambda r, I, H: F.gru(r, I, H, direction="bidirectional",
                                               linear_before_reset=False),
    "rnn": lambda r, I, H: F.rnn(r, I, H),
    "rnn_relu": lambda r, I, H: F.rnn(r, I, H, nonlinearity="relu"),
    "rnn_clip": lambda r, I, H: F.rnn(r, I, H, clip=0.3, bias=False),
    "rnn_reverse": lambda r, I, H: F.rnn(r, I, H, direction="reverse"),
    "rnn_bidirectional": lambda r, I, H: F.rnn(r, I, H, direction="bidirectional",
                                               activations=["Tanh", "Softplus"]),
}


def _check(model, X, lengths=None, initial_state=None):
    Y, state = model.run(X, initial_state=initial_state, sequence_lengths=lengths,
                         return_state=True)
    R, ref_state = ref.run_model(model, X, initial_state, lengths)
    assert_close(Y, R, what="output")
    for got, want in zip(state, ref_state):
        for g, w in zip(got, want):
            assert_close(g, w, what="final state")
    if model.streamable and lengths is None:
        # stepping through the sequence equals run() on it, bit for bit
        for b in range(X.shape[0]):
            stream = model.stream()
            if initial_state is not None:
                stream.state = [tuple(s[:, b] for s in entry) for entry in initial_state]
            stepped = np.array([stream.step(x).copy() for x in X[b]])
            np.testing.assert_array_equal(stepped, Y[b])


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
@pytest.mark.parametrize("I,H", SIZES)
def test_recurrent_layer_matches_reference(kernels, rng, case, I, H):
    model = ll.Model([LAYER_CASES[case](rng, I, H)])
    X = rng.standard_normal((2, 9, I)).astype(np.float32)
    _check(model, X)


# Saturation is a property of bounded activations: with an unbounded one (Relu, Elu,
# Softplus) at x100 the pre-activations reach hundreds, float32 accumulation alone is off by
# ~1e-4 there, and no float32 engine meets 1e-5. Those cases are checked at unit scale above.
UNBOUNDED = {"rnn_relu", "gru_activations", "rnn_bidirectional"}


@pytest.mark.parametrize("case", sorted(set(LAYER_CASES) - UNBOUNDED))
@pytest.mark.parametrize("scale", [20, 100])
def test_saturating_inputs(kernels, rng, case, scale):
    model = ll.Model([LAYER_CASES[case](rng, 11, 13)])
    X = (rng.standard_normal((2, 12, 11)) * scale).astype(np.float32)
    _check(model, X)


# Every activation in the candidate/output roles (LSTM g and h, GRU g, RNN f); in the gate
# role (f: LSTM i, f, o and GRU r, z) only those bounded to about [0, 1], since an unbounded
# gate makes the state grow exponentially and measures float32 overflow, not the engine.
GATE_ACTIVATIONS = ["Sigmoid", ("HardSigmoid", 0.3, 0.4), "Softsign", ("Affine", 0.1, 0.5)]


@pytest.mark.parametrize("act", ALL_CELL_ACTIVATIONS, ids=str)
@pytest.mark.parametrize("layer", ["lstm", "gru", "rnn"])
def test_every_activation_as_candidate(kernels, rng, act, layer):
    make = {"lstm": F.lstm, "gru": F.gru, "rnn": F.rnn}[layer]
    activations = {"lstm": ["Sigmoid", act, act], "gru": ["Sigmoid", act], "rnn": [act]}[layer]
    model = ll.Model([make(rng, 6, 9, activations=activations)])
    _check(model, rng.standard_normal((1, 7, 6)).astype(np.float32) * 2)


@pytest.mark.parametrize("act", GATE_ACTIVATIONS, ids=str)
@pytest.mark.parametrize("layer", ["lstm", "gru"])
def test_gate_activations(kernels, rng, act, layer):
    make = {"lstm": F.lstm, "gru": F.gru}[layer]
    activations = {"lstm": [act, "Tanh", "Tanh"], "gru": [act, "Tanh"]}[layer]
    model = ll.Model([make(rng, 6, 9, activations=activations)])
    _check(model, rng.standard_normal((1, 7, 6)).astype(np.float32) * 2)


@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid", "softmax",
                                        "log_softmax", ("LeakyRelu", 0.2), "Softplus"])
def test_dense_head(kernels, rng, activation):
    model = ll.Model([F.dense(rng, 19, 7, activation)])
    for scale in SCALES:
        _check(model, rng.standard_normal((3, 4, 19)).astype(np.float32) * scale)


def test_normalize_and_scale(kernels, rng):
    model = ll.Model([F.normalize(rng, 10), F.scale(rng, 10), F.dense(rng, 10, 3)])
    _check(model, rng.standard_normal((2, 5, 10)).astype(np.float32))


def test_stacked_model_with_initial_state(kernels, rng):
    model = ll.Model([F.normalize(rng, 12), F.lstm(rng, 12, 21, peepholes=True),
                      F.gru(rng, 21, 10), F.rnn(rng, 10, 9),
                      F.dense(rng, 9, 4, "softmax")])
    B = 3
    initial = [tuple(rng.standard_normal(shape).astype(np.float32) for shape in entry)
               for entry in model.state_shapes(B)]
    _check(model, rng.standard_normal((B, 15, 12)).astype(np.float32), initial_state=initial)


@pytest.mark.parametrize("case", ["lstm", "lstm_bidirectional", "gru_reverse",
                                  "rnn_bidirectional", "lstm_proj"])
def test_sequence_lengths(kernels, rng, case):
    layer = LAYER_CASES[case](rng, 5, 6)
    model = ll.Model([layer, F.dense(rng, layer.output_size, 3)])
    lengths = np.array([7, 0, 3, 1])
    X = rng.standard_normal((4, 7, 5)).astype(np.float32)
    _check(model, X, lengths=lengths)
    # past a sequence's end a recurrent layer outputs zeros, so the head sees only its bias
    Y = model.run(X, sequence_lengths=lengths)
    np.testing.assert_array_equal(Y[1], np.broadcast_to(Y[1][0], Y[1].shape))


def test_two_dimensional_run_equals_batched(rng):
    model = ll.Model([F.lstm(rng, 4, 5, direction="bidirectional"), F.dense(rng, 10, 2)])
    X = rng.standard_normal((6, 4)).astype(np.float32)
    Y2, s2 = model.run(X, return_state=True)
    Y3, s3 = model.run(X[None], return_state=True)
    np.testing.assert_array_equal(Y2, Y3[0])
    assert s2[0][0].shape == (2, 5) and s3[0][0].shape == (2, 1, 5)
    np.testing.assert_array_equal(s2[0][1], s3[0][1][:, 0])


@pytest.mark.parametrize("name", [name for name in KERNEL_SETS if name != "generic"])
def test_kernel_sets_agree(rng, name):
    """Each SIMD set against the portable one, which it is tested against."""
    from lstmlite import _core
    model = ll.Model([F.lstm(rng, 37, 70, peepholes=True), F.gru(rng, 70, 29),
                      F.dense(rng, 29, 5, "softmax")])
    X = rng.standard_normal((2, 30, 37)).astype(np.float32) * 3
    previous = _core.kernels_active()
    try:
        _core.select_kernels("generic")
        generic = model.run(X)
        _core.select_kernels(name)
        simd = model.run(X)
    finally:
        _core.select_kernels(previous)
    assert_close(simd, generic, atol=2e-6, rtol=0, what=f"{name} vs generic")


# run() computes the input part of the gates 16 columns at a time (LL_SEQUENCE_COLUMNS in
# model.c) before the recurrence: sequences longer than a chunk, lengths that end inside, at
# and just past a chunk edge, and zero, in both directions.
@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_sequences_longer_than_a_chunk(kernels, rng, case):
    model = ll.Model([LAYER_CASES[case](rng, 10, 12)])
    X = rng.standard_normal((4, 41, 10)).astype(np.float32)
    _check(model, X)  # against the reference, and stepping it bit for bit when streamable
    _check(model, X, lengths=np.array([41, 17, 16, 0]))


# Consecutive sequences of one length step their recurrence together in run(), up to 8 at a
# time (LL_SEQUENCE_GROUP): groups of 3, 2, 8 and 1 here, of one length or with lengths, in
# both directions, float32 and int8, each sequence with exactly the bits it gets alone.
@pytest.mark.parametrize("case", sorted(LAYER_CASES))
@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_run_groups_equal_each_sequence_alone(kernels, rng, case, dtype):
    model = ll.Model([LAYER_CASES[case](rng, 10, 12)])
    if dtype == "int8":
        model = model.quantize("int8")
    lengths = np.array([23, 23, 23, 5, 5] + [19] * 9 + [0, 23])
    X = rng.standard_normal((len(lengths), 23, 10)).astype(np.float32)
    for given in (None, lengths):
        Y = model.run(X, sequence_lengths=given)
        for b in range(len(lengths)):
            alone = model.run(X[b:b + 1], sequence_lengths=None if given is None
                              else given[b:b + 1])
            np.testing.assert_array_equal(Y[b], alone[0], err_msg=f"sequence {b}")


@pytest.mark.parametrize("case", ["lstm", "lstm_all", "gru", "gru_before_reset", "rnn"])
@pytest.mark.parametrize("batch", [3, 16])
def test_int8_batched_streams_and_long_runs_equal_single_steps(kernels, rng, case, batch):
    """int8: a batch of streams, and run() over 41 steps, give each stream's single-step bits."""
    model = ll.Model([LAYER_CASES[case](rng, 10, 12)]).quantize("int8")
    X = rng.standard_normal((batch, 41, 10)).astype(np.float32)
    many = model.stream(batch=batch)
    together = np.array([many.step(np.ascontiguousarray(X[:, t])).copy() for t in range(41)])
    Y = model.run(X)
    for b in range(batch):
        single = model.stream()
        alone = np.array([single.step(x).copy() for x in X[b]])
        np.testing.assert_array_equal(together[:, b], alone)
        np.testing.assert_array_equal(Y[b], alone)
