"""The bundled example models reach the accuracy the README reports on the small evaluation
sets committed beside them (tests/data; deterministic: models and data are committed), in
float32 and int8; the detector behaves as documented; the one-step ONNX export that
`lstmlite bench` times onnxruntime on computes what lstmlite computes."""
import json
import os

import numpy as np
import pytest

from conftest import traced_allocations

import lstmlite as ll
import factories as F
from lstmlite.detection import Detector
from lstmlite.features import LogMel

DATA = os.path.join(os.path.dirname(__file__), "data")
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def reported(example: str) -> dict:
    with open(os.path.join(EXAMPLES, example, "results.json")) as handle:
        return json.load(handle)


@pytest.mark.parametrize("name", ["kws", "kws-int8"])
def test_keyword_spotter_reaches_its_reported_accuracy(name):
    """The committed set (examples/kws/evaluate.py): held-out voices of every engine, made by
    the engines' own programs and sox, one keyword per recording at 20 dB, 10 dB and in
    reverberation, and 30 s of read sentences without keywords at 10 dB. The figures were
    measured through `lstmlite run`; here the Python API must reach them."""
    model = ll.load(ll.examples.path(name))
    assert model.metadata["labels"][2:] == ["yes", "no", "up", "down", "left", "right", "on",
                                            "off", "stop", "go"]
    front = LogMel.from_model(model)
    data = np.load(os.path.join(DATA, "kws_eval.npz"))
    assert len(data["keywords"]) == 30 and data["background"].size == 30 * 16000
    hits = 0
    for word, audio in zip(data["keywords"], data["audio"]):
        detector = Detector.from_model(model, front.frame_seconds)
        found = [model.metadata["labels"][hit[0]]
                 for hit in map(detector.update, model.run(front.transform(audio))) if hit]
        hits += word in found
    detector = Detector.from_model(model, front.frame_seconds)
    alarms = sum(detector.update(p) is not None
                 for p in model.run(front.transform(data["background"])))
    dtype = "int8" if name.endswith("int8") else "float32"
    expected = reported("kws")[f"committed set (lstmlite {dtype})"]
    assert hits / len(data["keywords"]) >= expected["recall"]
    assert alarms <= expected["false_alarms"]


@pytest.mark.parametrize("name", ["activity", "activity-int8"])
def test_activity_classifier_reaches_its_reported_accuracy(name):
    model = ll.load(ll.examples.path(name))
    assert model.metadata["labels"] == ["Standing", "Walking", "Running", "Badminton"]
    data = np.load(os.path.join(DATA, "basic_motions_test.npz"))
    probabilities = model.run(data["X"])                      # (40, 100, 4), per step
    expected = reported("sensors")[f"lstmlite {'int8' if 'int8' in name else 'float32'}"]
    for step, accuracy in expected.items():
        decided = probabilities[:, int(step) - 1].argmax(axis=-1)
        assert (decided == data["y"]).mean() >= accuracy, step


@pytest.mark.parametrize("name", ["gait", "gait-int8"])
def test_gait_predictor_reaches_its_reported_error(name):
    """RMSE of the next step on the held-out walking, in channel standard deviations (of the
    training part, stored as the model's Normalize layer)."""
    model = ll.load(ll.examples.path(name))
    X = np.load(os.path.join(DATA, "daphnet_test.npz"))["X"]
    predicted = model.run(X)
    std = model.layers[0].std
    rmse = float(np.sqrt((((predicted[:-1] - X[1:]) / std) ** 2).mean()))
    expected = reported_gait()["rmse"][f"lstmlite {'int8' if 'int8' in name else 'float32'}"]
    assert rmse <= expected + 1e-6          # the same on this machine; ulps on other kernel sets
    persistence = float(np.sqrt((((X[:-1] - X[1:]) / std) ** 2).mean()))
    assert rmse < 0.8 * persistence        # it predicts, rather than echoing its input


def reported_gait() -> dict:
    with open(os.path.join(EXAMPLES, "sensors", "gait_results.json")) as handle:
        return json.load(handle)


def test_examples_path_names_the_models():
    assert {"kws", "kws-int8", "activity", "activity-int8", "gait", "gait-int8",
            "demo"} <= set(ll.examples.names())
    assert ll.examples.path("kws").endswith("kws.lstm")
    with pytest.raises(ll.LstmliteError, match="no bundled example 'nope'; the models are"):
        ll.examples.path("nope")
    with pytest.raises(ll.LstmliteError, match="no bundled example"):
        ll.examples.path("../__init__.py")


# ---- the detector ---------------------------------------------------------------------------

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def posteriors(classes_by_frame):
    """One-hot posteriors: a class index per frame."""
    return np.eye(len(LABELS), dtype=np.float32)[classes_by_frame]


def test_detector_smooths_thresholds_and_waits_out_its_refractory_time():
    detector = Detector(LABELS, frame_seconds=0.01, smoothing_seconds=0.05, threshold=0.6,
                        refractory_seconds=0.2, ignore=["_silence_", "_unknown_"])
    assert detector.window == 5 and detector.refractory_frames == 20
    frames = [0] * 10 + [2] * 10 + [0] * 10 + [2] * 10 + [0] * 30 + [3] * 10
    hits = [(t, hit) for t, hit in enumerate(map(detector.update, posteriors(frames))) if hit]
    # "yes" reaches 3/5 of the window at its 3rd frame, t=12; its second burst reaches it at
    # t=32, exactly the 20 refractory frames later, so it is reported too; "no" at t=72
    assert [(t, LABELS[i]) for t, (i, _) in hits] == [(12, "yes"), (32, "yes"), (72, "no")]
    assert all(score == pytest.approx(0.6) for _, (_, score) in hits)


def test_detector_never_reports_ignored_classes_and_starts_with_a_short_window():
    detector = Detector(LABELS, 0.01, smoothing_seconds=0.1, threshold=0.9,
                        ignore=["_silence_", "_unknown_"])
    assert all(detector.update(p) is None for p in posteriors([0] * 50 + [1] * 50))
    detector.reset()
    # right after a reset the mean is over the frames seen: one confident frame suffices
    assert detector.update(posteriors([3])[0]) == (3, 1.0)


def test_detector_config_round_trip_and_refusals():
    detector = Detector(LABELS, 0.01, 0.2, 0.5, 1.0, ["_silence_"])
    assert Detector.from_config(detector.config(), LABELS, 0.01).config() == detector.config()
    for config, message in [({"threshold": 1.5}, "threshold must be in (0, 1]"),
                            ({"threshold": float("nan")}, "threshold must be a finite"),
                            ({"ignore": ["maybe"]}, "ignore names ['maybe']"),
                            ({"ignore": "yes"}, "ignore must be a list"),
                            ({"window": 3}, "unknown key(s) window"),
                            ({"smoothing_seconds": 1e9}, "at most 360000 frames")]:
        with pytest.raises(ll.ModelError, match=None) as caught:
            Detector.from_config(config, LABELS, 0.01)
        assert message in str(caught.value)
    with pytest.raises(ll.ShapeError, match="expected 4 posteriors"):
        detector.update(np.zeros(3))


def test_detector_update_allocates_no_arrays():
    detector = Detector(LABELS, 0.01, ignore=["_silence_"])
    frame = posteriors([2])[0]
    for _ in range(1000):  # numpy's one-time caches
        detector.update(frame)
    def loop():
        for _ in range(10_000):
            detector.update(frame)

    def ok(net, peak):
        return net < 256 and peak < 1000

    seen = traced_allocations(loop, ok)
    assert ok(*seen[-1]), seen


# ---- the one-step ONNX graph behind `lstmlite bench` -------------------------------------

def test_step_graph_computes_what_lstmlite_computes(rng):
    from lstmlite.converters.onnx_export import onnxruntime_stepper
    models = [
        ll.Model([F.normalize(rng, 7), F.lstm(rng, 7, 12, peepholes=True), F.gru(rng, 12, 9),
                  F.rnn(rng, 9, 5), F.dense(rng, 5, 3, "softmax")]),
        ll.Model([F.gru(rng, 4, 6, linear_before_reset=False), F.dense(rng, 6, 2, "sigmoid")]),
        ll.Model([F.rnn(rng, 3, 5, nonlinearity="relu"), F.dense(rng, 5, 4, "log_softmax")]),
        ll.load(ll.examples.path("kws")),
    ]
    for model in models:
        step, stream = onnxruntime_stepper(model), model.stream()
        X = rng.standard_normal((40, model.input_size)).astype(np.float32)
        worst = max(float(np.abs(step(x) - stream.step(x)).max()) for x in X)
        assert worst <= 1e-5, (model.summary(), worst)


def test_step_graph_refuses_what_onnx_cannot_step(rng):
    from lstmlite.converters.onnx_export import step_graph
    for model, message in [
        (ll.Model([F.lstm(rng, 4, 6, proj=3)]), "ONNX's LSTM has no projection"),
        (ll.Model([F.gru(rng, 4, 6, direction="bidirectional")]), "cannot be stepped"),
        (ll.Model([F.dense(rng, 4, 3, ("ScaledTanh", 1.0, 2.0))]),
         "activation ScaledTanh is not an ONNX operator"),
    ]:
        with pytest.raises(ll.ConversionError, match=None) as caught:
            step_graph(model)
        assert message in str(caught.value)
