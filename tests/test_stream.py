"""The Stream contract: state across steps, reset, state get/set, copy, batches, out=,
input conversion, failed steps, NaN-poisoned scratch, threads, and no allocation per step."""
import threading
import tracemalloc

import numpy as np
import pytest

import lstmlite as ll
import factories as F


@pytest.fixture(params=["float32", "int8"])
def model(rng, request):
    """Every contract below holds for float32 layers and for int8 ones."""
    model = ll.Model([F.normalize(rng, 7), F.lstm(rng, 7, 12, peepholes=True),
                      F.gru(rng, 12, 9), F.rnn(rng, 9, 5), F.dense(rng, 5, 3, "softmax")])
    return model if request.param == "float32" else model.quantize()


def frames(rng, T=20, I=7):
    return rng.standard_normal((T, I)).astype(np.float32)


def test_step_returns_the_same_buffer_and_state_persists(model, rng):
    stream = model.stream()
    X = frames(rng)
    first = stream.step(X[0])
    second = stream.step(X[1])
    assert first is second and first.shape == (3,) and first.dtype == np.float32
    expected = model.run(X[:2])[1]
    np.testing.assert_array_equal(second, expected)


def test_reset_starts_a_new_sequence(model, rng):
    stream = model.stream()
    X = frames(rng)
    a = np.array([stream.step(x).copy() for x in X])
    stream.reset()
    assert all(np.all(s == 0) for entry in stream.state for s in entry)
    b = np.array([stream.step(x).copy() for x in X])
    np.testing.assert_array_equal(a, b)


def test_state_snapshot_restore_and_copy(model, rng):
    stream = model.stream()
    X = frames(rng)
    for x in X[:10]:
        stream.step(x)
    snapshot = stream.state
    assert [tuple(s.shape for s in e) for e in snapshot] == [((1, 12), (1, 12)), ((1, 9),),
                                                             ((1, 5),)]
    twin = stream.copy()
    rest = np.array([stream.step(x).copy() for x in X[10:]])
    np.testing.assert_array_equal(rest, [twin.step(x).copy() for x in X[10:]])
    stream.state = snapshot
    np.testing.assert_array_equal(rest, [stream.step(x).copy() for x in X[10:]])
    # the snapshot is a copy: stepping did not change it
    stream.state = snapshot
    np.testing.assert_array_equal(stream.state[0][0], snapshot[0][0])


def test_state_matches_run_final_state(model, rng):
    X = frames(rng)
    stream = model.stream()
    for x in X:
        stream.step(x)
    _, final = model.run(X, return_state=True)
    for got, want in zip(stream.state, final):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_bad_state_assignment_changes_nothing(model, rng):
    stream = model.stream()
    stream.step(frames(rng)[0])
    before = stream.state
    good = [tuple(s + 1 for s in e) for e in before]
    bad = list(good)
    bad[2] = (np.zeros((1, 4), dtype=np.float32),)  # wrong size in the last entry
    with pytest.raises(ll.ShapeError, match=r"state\[2\] h \(RNN\): expected shape \(1, 5\)"):
        stream.state = bad
    for got, want in zip(stream.state, before):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    with pytest.raises(ll.ShapeError, match="3 entries"):
        stream.state = good[:2]
    with pytest.raises(ll.InputTypeError):
        stream.state = [(np.array(["a"] * 12).reshape(1, 12), before[0][1])] + good[1:]


def test_batched_streams_equal_single_streams(model, rng):
    B = 5
    X = rng.standard_normal((B, 20, 7)).astype(np.float32)
    many = model.stream(batch=B)
    out = np.array([many.step(np.ascontiguousarray(X[:, t])).copy() for t in range(20)])
    assert out.shape == (20, B, 3)
    for b in range(B):
        single = model.stream()
        np.testing.assert_array_equal(out[:, b], [single.step(x).copy() for x in X[b]])
    assert many.state[0][0].shape == (1, B, 12)
    np.testing.assert_array_equal(out.transpose(1, 0, 2), model.run(X))


def test_out_argument(model, rng):
    stream = model.stream()
    buf = np.empty(3, dtype=np.float32)
    X = frames(rng)
    result = stream.step(X[0], out=buf)
    assert result is buf
    np.testing.assert_array_equal(buf, model.run(X[:1])[0])
    for bad, error in [(np.empty(4, np.float32), ll.ShapeError),
                       (np.empty(3, np.float64), ll.InputTypeError),
                       (np.empty(6, np.float32)[::2], ll.InputTypeError),
                       ([0.0, 0.0, 0.0], ll.InputTypeError)]:
        with pytest.raises(error):
            stream.step(X[1], out=bad)
    readonly = np.empty(3, np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ll.InputTypeError, match="writeable"):
        stream.step(X[1], out=readonly)


def test_inputs_are_converted_or_refused(model, rng):
    X = frames(rng)
    reference = model.run(X[:1])[0]
    for converted in (X[0].astype(np.float64), X[0].tolist(),
                      np.repeat(X[0], 2)[::2],                 # non-contiguous
                      np.asfortranarray(X[:1]).reshape(7)):
        stream = model.stream()
        np.testing.assert_array_equal(stream.step(converted), reference)
    integers = model.stream().step(np.arange(7))
    np.testing.assert_array_equal(integers, model.run(np.arange(7, dtype=np.float32)[None])[0])
    stream = model.stream()
    for bad in (np.array(["1"] * 7), np.ones(7, dtype=bool), np.ones(7, dtype=complex),
                np.array([object()] * 7), "1234567"):
        with pytest.raises(ll.InputTypeError, match="expected float32"):
            stream.step(bad)
    for bad in (np.zeros(6, np.float32), np.zeros((1, 7), np.float32), np.zeros((), np.float32)):
        with pytest.raises(ll.ShapeError, match=r"expected \(7,\)"):
            stream.step(bad)
    with pytest.raises(ll.ShapeError, match=r"expected \(2, 7\)"):
        model.stream(batch=2).step(np.zeros(7, np.float32))


def test_failed_step_leaves_state_unchanged(model, rng):
    stream = model.stream()
    X = frames(rng)
    stream.step(X[0])
    before = stream._state_buffer.copy()
    output_before = stream._output_buffer.copy()
    for bad_call in (lambda: stream.step(np.zeros(5, np.float32)),
                     lambda: stream.step(np.array(["x"] * 7)),
                     lambda: stream.step(X[1], out=np.zeros(2, np.float32))):
        with pytest.raises(ll.LstmliteError):
            bad_call()
        np.testing.assert_array_equal(stream._state_buffer, before)
        np.testing.assert_array_equal(stream._output_buffer, output_before)


def test_nan_input_propagates_without_crashing(model):
    stream = model.stream()
    y = stream.step(np.full(7, np.nan, dtype=np.float32))
    assert np.isnan(y).all()
    stream.reset()
    assert np.isfinite(stream.step(np.ones(7, np.float32))).all()


def test_poisoned_scratch_is_never_read_before_written(model, rng):
    """Scratch is filled with NaN before every step: a stale read would show up as NaN."""
    X = frames(rng)
    stream = model.stream()
    stream._poison_scratch = True
    stepped = np.array([stream.step(x).copy() for x in X])
    np.testing.assert_array_equal(stepped, model.run(X))


@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
def test_stream_on_a_whole_sequence_model_is_refused(rng, direction):
    model = ll.Model([F.lstm(rng, 3, 4), F.gru(rng, 4, 4, direction=direction)])
    with pytest.raises(ll.StreamingError, match=rf"layer 1 \(GRU, direction='{direction}'\).*"
                                                r"Model.run"):
        model.stream()
    assert not model.streamable
    model.run(np.zeros((5, 3), np.float32))  # whole sequences still work


@pytest.mark.parametrize("batch", [0, -1, 1.5, True, "2"])
def test_bad_batch(model, batch):
    with pytest.raises(ll.ModelError, match="batch"):
        model.stream(batch=batch)


def test_two_threads_two_streams(model, rng):
    X = rng.standard_normal((2, 3000, 7)).astype(np.float32)
    expected = model.run(X)
    results = [None, None]

    def work(i):
        stream = model.stream()
        results[i] = np.array([stream.step(x).copy() for x in X[i]])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        np.testing.assert_array_equal(results[i], expected[i])


@pytest.mark.parametrize("batch", [None, 4, 32])
def test_step_allocates_nothing(model, rng, batch):
    """10,000 steps under tracemalloc: no growth, and the same output buffer every time."""
    stream = model.stream(batch=batch)
    frame = rng.standard_normal(stream.input_shape).astype(np.float32)
    out = np.empty(stream.output_shape, dtype=np.float32)
    first = stream.step(frame)
    stream.step(frame, out=out)

    def traced_loop(step):
        """Net and peak bytes traced over 10,000 iterations of two calls of `step`."""
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            same = True
            for _ in range(10_000):
                same &= step(frame) is first
                step(frame, out)
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert same
        return after - before, peak - before

    def no_op(x, out=None):
        return first

    # tracemalloc sees every thread of the process: a thread or finalizer left by an earlier
    # test may allocate a few hundred bytes during a measurement. A step that allocated would
    # do so in every one of its 20,000 calls, in every measurement, so one clean measurement
    # out of three proves the step allocates nothing; all three are reported otherwise.
    attempts = []
    for _ in range(3):
        control = traced_loop(no_op)  # the loop's own counter and bookkeeping
        measured = traced_loop(lambda x, out=None: stream.step(x) if out is None
                               else stream.step(x, out=out))
        attempts.append((measured, control))
        # a step that allocated even a 3-float output array would add >= 100 bytes to the peak
        if measured[0] <= control[0] and measured[1] <= control[1]:
            break
    else:
        pytest.fail(f"allocations (net, peak) of steps against the bare loop: {attempts}")


def test_out_of_the_right_size_but_wrong_shape_is_refused(model):
    stream = model.stream()
    with pytest.raises(ll.ShapeError, match=r"out has shape \(3, 1\), expected \(3,\)"):
        stream.step(np.zeros(7, np.float32), out=np.empty((3, 1), np.float32))
