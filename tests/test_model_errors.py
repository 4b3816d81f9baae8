"""Bad layer specs and bad run() arguments: a clear lstmlite exception naming what was expected
and what was given, never a crash."""
import numpy as np
import pytest

import lstmlite as ll
import factories as F


def w(*shape):
    return np.zeros(shape, dtype=np.float32)


@pytest.mark.parametrize("build,message", [
    (lambda: ll.LSTM(w(10, 3), w(10, 2)), r"weight_ih has shape \(10, 3\), expected \(4\*hidden"),
    (lambda: ll.LSTM(w(8, 3), w(8, 3)), r"weight_hh has shape \(8, 3\), expected \(8, 2\)"),
    (lambda: ll.LSTM(w(8, 3), w(8, 2), w(7)), r"bias_ih has shape \(7,\), expected \(8,\)"),
    (lambda: ll.LSTM(w(8, 3), w(8, 2), peepholes=w(2, 2)), r"peepholes has shape \(2, 2\)"),
    (lambda: ll.LSTM(w(8, 3), w(8, 1), weight_hr=w(1, 2), direction="bidirectional"),
     r"weight_hr has shape \(1, 2\), expected \(2, 1, 2\)"),
    (lambda: ll.LSTM(w(16, 3), w(16, 4), weight_hr=w(4, 4)), "1 <= proj_size < hidden_size"),
    (lambda: ll.LSTM(w(8, 3), w(8, 2), direction="sideways"), "direction must be one of"),
    (lambda: ll.LSTM(w(8, 3), w(8, 2), clip=-1), "clip must be a positive"),
    (lambda: ll.LSTM(w(8, 3), w(8, 2), clip=float("nan")), "clip must be a positive"),
    (lambda: ll.LSTM(w(8, 3), w(8, 2), activations=["Sigmoid", "Tanh"]),
     r"expected 3 activations \(f/g/h per direction\), got 2"),
    (lambda: ll.LSTM(w(8, 3), w(8, 2), activations=["Sigmoid", "Swish", "Tanh"]),
     "unknown activation 'Swish'"),
    (lambda: ll.LSTM(w(8, 3), w(8, 2), activations=["Sigmoid", "Softmax", "Tanh"]),
     "'Softmax' is not allowed here"),
    (lambda: ll.LSTM(w(8, 3), w(8, 2), activations=["Sigmoid", ("LeakyRelu", "x"), "Tanh"]),
     "alpha must be a number finite in float32"),
    (lambda: ll.LSTM(w(8, 3), w(8, 2), input_forget=2), "input_forget must be True or False"),
    (lambda: ll.GRU(w(7, 3), w(7, 2)), r"weight_ih has shape \(7, 3\), expected \(3\*hidden"),
    (lambda: ll.GRU(w(6, 3), w(6, 2), w(6), w(5)), r"bias_hh has shape \(5,\)"),
    (lambda: ll.GRU(w(6, 3), w(6, 2), direction="bidirectional"), r"expected \(2, 6, 3\)"),
    (lambda: ll.RNN(w(2, 3), w(2, 2), nonlinearity="sigmoid"), "nonlinearity must be"),
    (lambda: ll.RNN(w(2, 3), w(2, 2), nonlinearity="relu", activations=["Relu"]),
     "not both"),
    (lambda: ll.Dense(w(3)), r"weight has shape \(3,\), expected \(out_features, in_features\)"),
    (lambda: ll.Dense(w(3, 2), w(2)), r"bias has shape \(2,\), expected \(3,\)"),
    (lambda: ll.Dense(w(3, 2), activation="gelu"), "unknown activation 'gelu'"),
    (lambda: ll.Normalize(w(3), np.array([1, 0, 1], np.float32)), "std has 1 zero value"),
    (lambda: ll.Normalize(w(3), w(4) + 1), r"std has shape \(4,\)"),
    (lambda: ll.Scale(w(3, 1)), r"scale has shape \(3, 1\)"),
    (lambda: ll.LSTM(np.array([["a"] * 3] * 8), w(8, 2)), "weight_ih must be numeric"),
    (lambda: ll.LSTM([[1, 2], [3]], w(8, 2)), "weight_ih is not an array"),
    (lambda: ll.LSTM(w(0, 3), w(0, 0)), "hidden_size, input_size >= 1"),
])
def test_bad_layers(build, message):
    with pytest.raises(ll.ModelError, match=message):
        build()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(bad):
    weight = w(8, 3)
    weight[5, 1] = bad
    with pytest.raises(ll.ModelError, match=r"LSTM: weight_ih contains 1 NaN or infinite"):
        ll.LSTM(weight, w(8, 2))
    with pytest.raises(ll.ModelError, match=r"Dense: bias contains 1 NaN"):
        ll.Dense(w(2, 2), np.array([0, bad], np.float32))


def test_layers_must_chain(rng):
    with pytest.raises(ll.ModelError, match=r"layer 1 \(Dense\) takes 5 input features, but "
                                            r"layer 0 \(LSTM\) outputs 4"):
        ll.Model([F.lstm(rng, 3, 4), F.dense(rng, 5, 2)])
    with pytest.raises(ll.ModelError, match="at least one layer"):
        ll.Model([])
    with pytest.raises(ll.ModelError, match="layer 0 is a ndarray"):
        ll.Model([np.zeros(3)])


def test_weights_are_used_in_place_not_copied(rng):
    weight = rng.standard_normal((8, 3)).astype(np.float32)
    layer = ll.LSTM(weight, np.zeros((8, 2), np.float32))
    assert layer.weight_ih is weight
    # float64 is converted once, at construction
    assert ll.LSTM(weight.astype(np.float64), np.zeros((8, 2))).weight_ih.dtype == np.float32


def test_bad_run_arguments(rng):
    model = ll.Model([F.lstm(rng, 3, 4), F.gru(rng, 4, 2)])
    X = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ll.ShapeError, match=r"X has shape \(2, 5, 4\), expected \(T, 3\)"):
        model.run(np.zeros((2, 5, 4)))
    with pytest.raises(ll.ShapeError, match=r"expected \(T, 3\) or \(B, T, 3\)"):
        model.run(np.zeros(3))
    with pytest.raises(ll.InputTypeError):
        model.run(np.array([["a", "b", "c"]]))
    with pytest.raises(ll.ShapeError, match=r"sequence_lengths must lie in 0..5"):
        model.run(X, sequence_lengths=[6, 1])
    with pytest.raises(ll.ShapeError, match=r"sequence_lengths has shape \(3,\), expected \(2,\)"):
        model.run(X, sequence_lengths=[1, 1, 1])
    with pytest.raises(ll.InputTypeError, match="must be integers"):
        model.run(X, sequence_lengths=[1.5, 2])
    with pytest.raises(ll.ShapeError, match="expected a list of 2 entries"):
        model.run(X, initial_state=[None])
    with pytest.raises(ll.ShapeError, match=r"initial_state\[0\] c \(LSTM\): expected shape "
                                            r"\(1, 2, 4\)"):
        model.run(X, initial_state=[(np.zeros((1, 2, 4)), np.zeros((1, 4))), None])
    with pytest.raises(ll.ShapeError, match=r"initial_state\[1\] \(GRU\): expected \(h,\)"):
        model.run(X, initial_state=[None, (np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))])
    # a bare array is accepted for the single-array state of a GRU
    model.run(X, initial_state=[None, np.zeros((1, 2, 2))])


def test_initial_state_is_not_modified(rng):
    model = ll.Model([F.lstm(rng, 3, 4)])
    h0 = np.ones((1, 4), np.float32)
    c0 = np.ones((1, 4), np.float32)
    model.run(np.ones((5, 3), np.float32), initial_state=[(h0, c0)])
    assert (h0 == 1).all() and (c0 == 1).all()


def test_core_rejects_inconsistent_specs():
    """The binding re-checks sizes, so a wrong spec can never reach C as a bad pointer."""
    from lstmlite import _core
    spec = {"kind": 4, "input_size": 3, "hidden_size": 2, "activation": (0, 0.0, 0.0),
            "arrays": {"weight": np.zeros(5, np.float32), "bias": None}}
    with pytest.raises(ValueError, match="weight: expected 6 elements, got 5"):
        _core.CoreModel([spec])
    spec["arrays"]["weight"] = np.zeros(6, np.float64)
    with pytest.raises(TypeError, match="expected C-contiguous float32"):
        _core.CoreModel([spec])
    spec["arrays"]["weight"] = np.zeros(6, np.float32)
    spec["activation"] = (99, 0.0, 0.0)
    with pytest.raises(ValueError, match="activation id 99"):
        _core.CoreModel([spec])
