"""Models and streams pickle and copy: a Model as the bytes of its .lstm file (rebuilt through
the same reader and checks as load()), a Stream as its model and its state. Each copy must
compute the same bits as the original, in this process and in worker processes."""
import copy
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import lstmlite as ll
import lstmlite.format as FORMAT
import factories as F
from test_format import every_layer_models


def _streamable_models(rng):
    """Every streamable layer case as a model, float32 and int8, plus a file's float16
    weights (widened to float32 on load)."""
    for name, model in every_layer_models(rng):
        if model.streamable:
            yield name, model
            if any(layer.matrix_names for layer in model.layers):
                yield name + "-int8", model.quantize("int8")


def test_model_pickles_and_copies_bit_for_bit_every_layer_and_dtype(rng):
    X = rng.standard_normal((2, 9, 5)).astype(np.float32)
    metadata = {"labels": ["a", "b", "c"], "nested": {"x": [1, 2]}}
    for name, model in every_layer_models(rng):
        for variant in (model, model.quantize("int8")) if any(
                layer.matrix_names for layer in model.layers) else (model,):
            variant.metadata.update(metadata)
            expected = variant.run(X)
            for copied in (pickle.loads(pickle.dumps(variant)), copy.copy(variant),
                           copy.deepcopy(variant)):
                assert copied is not variant
                assert copied.metadata == variant.metadata, name
                assert [l.weight_dtype for l in copied.layers] == \
                    [l.weight_dtype for l in variant.layers], name
                np.testing.assert_array_equal(copied.run(X), expected, err_msg=name)


def test_float16_file_model_pickles_with_its_loaded_values(rng, tmp_path):
    model = ll.Model([F.lstm(rng, 6, 8), F.dense(rng, 8, 3)])
    path = tmp_path / "half.lstm"
    model.save(path, weights_dtype="float16")
    loaded = ll.load(path)
    X = rng.standard_normal((12, 6)).astype(np.float32)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(loaded)).run(X), loaded.run(X))


def test_pickle_is_the_lstm_file_bytes(rng):
    model = ll.Model([F.gru(rng, 4, 6), F.dense(rng, 6, 2, "softmax")],
                     metadata={"labels": ["x", "y"]})
    function, (payload,) = model.__reduce__()
    assert function is FORMAT.loads
    assert payload == FORMAT.encode(model)
    assert payload[:8] == FORMAT.MAGIC


def test_unpickling_runs_the_readers_checks(rng):
    """A damaged payload is refused by the reader as load() refuses a damaged file."""
    model = ll.Model([F.gru(rng, 4, 6)])
    payload = bytearray(FORMAT.encode(model))
    payload[-1] ^= 0xFF
    with pytest.raises(ll.FormatError, match="checksum mismatch"):
        FORMAT.loads(bytes(payload))
    with pytest.raises(ll.FormatError, match="<bytes>"):
        FORMAT.loads(b"LSTMLITE")
    with pytest.raises(ll.FormatError, match="expected the bytes of a .lstm file"):
        FORMAT.loads(12)
    with pytest.raises(ll.FormatError, match="compute"):
        FORMAT.loads(bytes(payload), compute="int4")


def test_loads_compute_float32_dequantizes(rng):
    model = ll.Model([F.lstm(rng, 5, 7), F.dense(rng, 7, 3)]).quantize("int8")
    loaded = FORMAT.loads(FORMAT.encode(model), compute="float32")
    assert {layer.weight_dtype for layer in loaded.layers} == {"float32"}
    X = rng.standard_normal((10, 5)).astype(np.float32)
    np.testing.assert_allclose(loaded.run(X), model.dequantize().run(X), atol=0, rtol=0)


@pytest.mark.parametrize("batch", [None, 3])
def test_stream_resumed_from_a_pickle_continues_bit_for_bit(rng, batch):
    for name, model in _streamable_models(rng):
        shape = (batch, 5) if batch else (5,)
        frames = rng.standard_normal((14,) + shape).astype(np.float32)
        never_stopped = model.stream(batch)
        for frame in frames[:7]:
            never_stopped.step(frame)
        checkpoint = pickle.dumps(never_stopped)
        resumed = pickle.loads(checkpoint)
        assert resumed.batch == batch
        for state, other in zip(resumed.state, never_stopped.state):
            for a, b in zip(state, other):
                np.testing.assert_array_equal(a, b, err_msg=name)
        for frame in frames[7:]:
            np.testing.assert_array_equal(resumed.step(frame), never_stopped.step(frame),
                                          err_msg=name)


def test_stream_copies_share_or_copy_the_model_and_never_the_state(rng):
    model = ll.Model([F.lstm(rng, 5, 6), F.dense(rng, 6, 2)])
    frames = rng.standard_normal((4, 5)).astype(np.float32)
    stream = model.stream()
    stream.step(frames[0])
    shallow, deep = copy.copy(stream), copy.deepcopy(stream)
    assert shallow.model is model and deep.model is not model
    before = [array for entry in stream.state for array in entry]
    reference = stream.copy()
    expected = [reference.step(frame).copy() for frame in frames[1:]]
    for other in (shallow, deep):
        np.testing.assert_array_equal([other.step(f).copy() for f in frames[1:]], expected)
    after = [array for entry in stream.state for array in entry]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)  # stepping the copies left the original alone


def test_a_state_that_does_not_fit_is_refused(rng):
    from lstmlite.stream import _restore_stream
    model = ll.Model([F.lstm(rng, 5, 6)])
    with pytest.raises(ll.ShapeError, match="does not fit"):
        _restore_stream(model, None, np.zeros(3, np.float32))


def test_layers_and_activations_copy(rng):
    layer = F.lstm(rng, 4, 5, activations=[("HardSigmoid", 0.3, 0.4), "Tanh", "Softsign"])
    for copied in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert copied.attributes() == layer.attributes()
        assert copied.activations[0] == ll.Activation("HardSigmoid", 0.3, 0.4)


def _run_in_worker(model, stream, frames):
    """What a worker process computes: the model's outputs on frames, and the stream's next
    outputs continuing from the state it arrived with."""
    return model.run(frames), np.array([stream.step(frame).copy() for frame in frames])


def test_models_and_streams_travel_to_worker_processes(rng):
    model = ll.Model([F.gru(rng, 5, 8), F.dense(rng, 8, 3, "softmax")]).quantize("int8", [0])
    frames = rng.standard_normal((6, 5)).astype(np.float32)
    stream = model.stream()
    for frame in frames:
        stream.step(frame)
    local = stream.copy()
    expected_steps = np.array([local.step(frame).copy() for frame in frames])
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_run_in_worker, [model] * 2, [stream] * 2, [frames] * 2))
    for outputs, steps in results:
        np.testing.assert_array_equal(outputs, model.run(frames))
        np.testing.assert_array_equal(steps, expected_steps)
