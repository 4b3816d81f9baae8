"""Layers that encode one step's frame: Conv1d (every padding mode, stride, dilation,
groups), Magnitude and Mean, float32 and int8 on every kernel set, against a float64 NumPy
reference written here from the layers' docstrings, against torch's nn.Conv1d, through the
file format, and allocation-free per step."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lstmlite as ll
from lstmlite import _core
from conftest import assert_close, traced_allocations


def pad_positions(n, begin, end, mode):
    """The source index of every padded position (-1: a zero), from the modes' definitions."""
    index = np.arange(-begin, n + end)
    if mode == "zeros":
        return np.where((index >= 0) & (index < n), index, -1)
    if mode == "reflect":
        index = np.abs(index)
        return np.where(index > n - 1, 2 * (n - 1) - index, index)
    if mode == "replicate":
        return np.clip(index, 0, n - 1)
    return index % n  # circular


def conv1d_reference(x, weight, bias, length, stride=1, dilation=1, groups=1, padding=(0, 0),
                     padding_mode="zeros", activation=None):
    """float64: x (..., C * L) channel major -> (..., M * L_out) channel major."""
    x = np.asarray(x, np.float64)
    M, Cg, K = weight.shape
    C = Cg * groups
    x = x.reshape(x.shape[:-1] + (C, length))
    source = pad_positions(length, padding[0], padding[1], padding_mode)
    padded = np.where(source >= 0, x[..., np.maximum(source, 0)], 0.0)
    span = dilation * (K - 1) + 1
    out_length = (padded.shape[-1] - span) // stride + 1
    taps = np.arange(out_length)[:, None] * stride + np.arange(K)[None, :] * dilation
    patches = padded[..., taps]                      # (..., C, L_out, K)
    Mg = M // groups
    out = np.empty(x.shape[:-2] + (M, out_length))
    for g in range(groups):
        part = patches[..., g * Cg:(g + 1) * Cg, :, :]
        out[..., g * Mg:(g + 1) * Mg, :] = np.einsum("...clk,mck->...ml", part,
                                                     weight[g * Mg:(g + 1) * Mg].astype(np.float64))
    if bias is not None:
        out += np.asarray(bias, np.float64)[:, None]
    if activation == "relu":
        out = np.maximum(out, 0)
    return out.reshape(out.shape[:-2] + (-1,))


SHAPES = [  # C, L, M, K, stride, dilation, groups, padding, mode
    (1, 640, 258, 256, 128, 1, 1, (0, 0), "zeros"),       # silero's STFT
    (129, 4, 128, 3, 1, 1, 1, (1, 1), "zeros"),            # silero's first encoder conv
    (128, 4, 64, 3, 2, 1, 1, (1, 1), "zeros"),
    (1, 576, 4, 16, 8, 1, 1, (0, 64), "reflect"),
    (6, 11, 4, 3, 2, 2, 2, (2, 2), "reflect"),
    (4, 9, 6, 2, 5, 1, 2, (3, 1), "replicate"),             # stride > kernel
    (9, 5, 33, 5, 3, 1, 3, (4, 5), "circular"),
    (8, 13, 8, 3, 1, 3, 8, (0, 0), "zeros"),                # depthwise
    (3, 1, 7, 1, 1, 1, 1, (0, 0), "zeros"),                 # a 1x1 over one position: a Dense
]


def _layer(rng, C, L, M, K, S, D, G, P, mode, activation="relu"):
    weight = (rng.standard_normal((M, C // G, K)) / np.sqrt(C // G * K)).astype(np.float32)
    bias = rng.standard_normal(M).astype(np.float32)
    layer = ll.Conv1d(weight, bias, length=L, stride=S, dilation=D, groups=G, padding=P,
                      padding_mode=mode, activation=activation)
    return layer, weight, bias


@pytest.mark.parametrize("shape", SHAPES, ids=[f"C{s[0]}L{s[1]}M{s[2]}K{s[3]}S{s[4]}D{s[5]}"
                                                f"G{s[6]}{s[8]}" for s in SHAPES])
def test_conv1d_equals_the_reference_on_every_kernel_set(kernels, rng, shape):
    C, L, M, K, S, D, G, P, mode = shape
    layer, weight, bias = _layer(rng, C, L, M, K, S, D, G, P, mode)
    model = ll.Model([layer])
    x = rng.standard_normal((2, 5, C * L)).astype(np.float32)
    expected = conv1d_reference(x, weight, bias, L, S, D, G, P, mode, "relu")
    assert model.output_size == expected.shape[-1] == M * layer.out_length
    run = model.run(x)
    assert_close(run, expected, what="run")
    stream = model.stream()
    stepped = np.stack([stream.step(frame).copy() for frame in x[0]])
    assert_close(stepped, expected[0], what="step")
    batched = model.stream(batch=2)
    assert_close(batched.step(x[:, 3]), expected[:, 3], what="batched step")
    # run() puts a sequence's steps, and a batch its streams, through one product: each
    # column still gets the bits it gets alone, in float32 and in int8
    np.testing.assert_array_equal(run[0], stepped)
    quantized = model.quantize() if layer.fft is None else model
    stream = quantized.stream()
    np.testing.assert_array_equal(quantized.run(x)[1],
                                  np.stack([stream.step(frame).copy() for frame in x[1]]))


@pytest.mark.parametrize("shape", SHAPES[:4] + SHAPES[5:7])
def test_int8_conv1d_quantizes_each_patch_on_its_own(kernels, rng, shape):
    """int8: weights per output channel, every patch quantized with its own scale; the result
    equals that arithmetic done in NumPy (exact integer sums) to float32 rounding."""
    C, L, M, K, S, D, G, P, mode = shape
    layer, weight, bias = _layer(rng, C, L, M, K, S, D, G, P, mode, activation=None)
    quantized = ll.Model([layer]).quantize()
    q = quantized.layers[0].weight
    x = rng.standard_normal((3, C * L)).astype(np.float32)
    got = quantized.run(x[None])[0]
    # the patches as the float reference gathers them, each quantized by the engine's rule
    source = pad_positions(L, P[0], P[1], mode)
    Cg, Mg = C // G, M // G
    out_length = layer.out_length
    taps = np.arange(out_length)[:, None] * S + np.arange(K)[None, :] * D
    expected = np.empty((3, M, out_length))
    for n in range(3):
        frame = x[n].reshape(C, L)
        padded = np.where(source >= 0, frame[:, np.maximum(source, 0)], 0.0).astype(np.float32)
        for g in range(G):
            for p in range(out_length):
                patch = padded[g * Cg:(g + 1) * Cg][:, taps[p]].reshape(-1)
                qx, sx = _core.quantize_s8(patch)
                acc = q.q[g * Mg:(g + 1) * Mg].astype(np.int64) @ qx.astype(np.int64)
                expected[n, g * Mg:(g + 1) * Mg, p] = bias[g * Mg:(g + 1) * Mg] + \
                    q.scale[g * Mg:(g + 1) * Mg].astype(np.float64) * (float(sx) * acc)
    assert_close(got, expected.reshape(3, -1), what="int8")
    float_out = conv1d_reference(x, weight, bias, L, S, D, G, P, mode)
    assert np.abs(got - float_out).max() <= 0.02 * np.abs(float_out).max()


@settings(max_examples=60, deadline=None)
@given(C=st.integers(1, 6), L=st.integers(1, 24), groups=st.sampled_from([1, 2, 3]),
       M_per_group=st.integers(1, 5), K=st.integers(1, 7), S=st.integers(1, 6),
       D=st.integers(1, 3), P0=st.integers(0, 6), P1=st.integers(0, 6),
       mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_conv1d_over_random_shapes(C, L, groups, M_per_group, K, S, D, P0, P1, mode, seed):
    """Any geometry the layer accepts equals the reference; any it refuses is refused with a
    ModelError naming why, never a crash."""
    rng = np.random.default_rng(seed)
    C, M = C * groups, M_per_group * groups
    weight = rng.standard_normal((M, C // groups, K)).astype(np.float32)
    try:
        layer = ll.Conv1d(weight, None, length=L, stride=S, dilation=D, groups=groups,
                          padding=(P0, P1), padding_mode=mode)
    except ll.ModelError as exc:
        span = D * (K - 1) + 1
        wide = (mode == "reflect" and max(P0, P1) >= L) or (mode == "circular" and
                                                             max(P0, P1) > L)
        assert wide or L + P0 + P1 < span, exc
        return
    x = rng.standard_normal((1, 2, C * L)).astype(np.float32)
    assert_close(ll.Model([layer]).run(x),
                 conv1d_reference(x, weight, None, L, S, D, groups, (P0, P1), mode))


def test_conv1d_equals_torch_in_every_padding_mode(rng):
    torch = pytest.importorskip("torch")
    for mode in ("zeros", "reflect", "replicate", "circular"):
        conv = torch.nn.Conv1d(6, 8, 5, stride=2, padding=2, dilation=1, groups=2,
                               padding_mode=mode)
        layer = ll.Conv1d(conv.weight.detach().numpy(), conv.bias.detach().numpy(), length=17,
                          stride=2, padding=2, groups=2, padding_mode=mode)
        x = rng.standard_normal((4, 6 * 17)).astype(np.float32)
        with torch.no_grad():
            expected = conv(torch.from_numpy(x).reshape(4, 6, 17)).reshape(4, -1).numpy()
        assert_close(ll.Model([layer]).run(x[:, None])[:, 0], expected, what=mode)


def test_magnitude_and_mean_equal_the_reference(rng):
    x = rng.standard_normal((2, 3, 40)).astype(np.float32)
    model = ll.Model([ll.Magnitude(40, 15, real=2, imag=21), ll.Mean(5, 3)])
    magnitude = np.hypot(x[..., 2:17].astype(np.float64), x[..., 21:36])
    assert_close(model.run(x), magnitude.reshape(2, 3, 5, 3).mean(axis=-1))


def test_frame_encoder_round_trips_through_the_file_format(rng, tmp_path):
    layer, _, _ = _layer(rng, *SHAPES[4])
    out = layer.output_size
    model = ll.Model([layer, ll.Magnitude(out, out // 2, 0, out // 2),
                      ll.Mean(layer.out_channels // 2, layer.out_length),
                      ll.LSTM(rng.standard_normal((8, 2)), rng.standard_normal((8, 2)))])
    x = rng.standard_normal((1, 6, layer.input_size)).astype(np.float32)
    for variant in (model, model.quantize()):
        variant.save(tmp_path / "m.lstm")
        loaded = ll.load(tmp_path / "m.lstm")
        assert [type(l).__name__ for l in loaded.layers] == ["Conv1d", "Magnitude", "Mean",
                                                              "LSTM"]
        assert loaded.layers[0].attributes() == variant.layers[0].attributes()
        assert loaded.layers[0].weight_dtype == variant.layers[0].weight_dtype
        np.testing.assert_array_equal(loaded.run(x), variant.run(x))


def test_a_step_through_a_frame_encoder_allocates_nothing(rng):
    layer, _, _ = _layer(rng, *SHAPES[3])
    model = ll.Model([layer, ll.Mean(layer.out_channels, layer.out_length),
                      ll.LSTM(rng.standard_normal((16, 4)), rng.standard_normal((16, 4)))])
    for variant in (model, model.quantize()):
        stream = variant.stream()
        frame = rng.standard_normal(variant.input_size).astype(np.float32)
        stream.step(frame)

        def loop(step):
            for _ in range(3000):
                step(frame)
        # the bare loop's own bookkeeping (a frame, the range) is the control
        control = traced_allocations(lambda: loop(lambda x: x), lambda net, peak: True)[0]
        seen = traced_allocations(lambda: loop(stream.step),
                                  lambda net, peak: net <= control[0] and peak <= control[1])
        assert seen[-1][0] <= control[0] and seen[-1][1] <= control[1], (seen, control)


@pytest.mark.parametrize("kwargs,message", [
    (dict(length=4, padding=4, padding_mode="reflect"), "reflect padding of 4 needs a longer"),
    (dict(length=3, kernel_size=None), "kernel spans 5 positions, the padded input has 3"),
    (dict(length=8, groups=3), "3 groups do not divide 4 out channels"),
    (dict(length=8, in_channels=5), "in_channels 5 is not 2 per group x 1 groups"),
    (dict(length=8, padding_mode="mirror"), "padding_mode must be one of"),
    (dict(length=0), "length must be an integer from 1 to 4194304, got 0"),
    (dict(length=2 ** 40), "length must be an integer from 1"),
    (dict(length=4000, padding=(0, 2 ** 22)), "output is 16793200 features per step"),
    (dict(length=8, activation="softmax"), "Conv1d activation"),
])
def test_bad_conv1d_arguments_are_refused_naming_them(rng, kwargs, message):
    kwargs = dict(kwargs)
    kwargs.pop("kernel_size", None)
    weight = rng.standard_normal((4, 2, 5)).astype(np.float32)
    with pytest.raises(ll.ModelError, match=message):
        ll.Conv1d(weight, **kwargs)


def dft_basis(N, bins, sign=-1, window=None):
    n = np.arange(N)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / N) if window is None else window
    angle = 2 * np.pi * np.outer(np.arange(bins), n) / N
    return np.concatenate([window * np.cos(angle), sign * window * np.sin(angle)])[:, None, :] \
        .astype(np.float32)


@pytest.mark.parametrize("N,bins,sign,stride,padding", [
    (256, 129, -1, 128, (0, 64)), (64, 33, 1, 16, (8, 8)), (8, 2, -1, 3, (0, 0))])
def test_a_windowed_dft_basis_is_computed_as_an_fft(kernels, rng, N, bins, sign, stride,
                                                    padding):
    """An STFT written as a Conv1d (silero-vad's) is recognised and computed as an FFT: the
    reference's values to float32 rounding of the spectrum."""
    weight = dft_basis(N, bins, sign)
    layer = ll.Conv1d(weight, None, length=3 * N, stride=stride, padding=padding,
                      padding_mode="reflect")
    assert layer.fft == (bins, sign) and layer.attributes()["computed_as"] == "fft"
    x = rng.standard_normal((1, 4, 3 * N)).astype(np.float32)
    expected = conv1d_reference(x, weight, None, 3 * N, stride, 1, 1, padding, "reflect")
    assert_close(ll.Model([layer]).run(x), expected, atol=1e-5 * np.abs(expected).max())


def test_what_is_not_a_dft_basis_stays_a_product(rng):
    weight = dft_basis(64, 33)
    weight[5, 0, 7] += 1e-3
    assert ll.Conv1d(weight, length=64).fft is None
    assert ll.Conv1d(dft_basis(48, 25), length=48).fft is None          # not a power of two
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(64) / 64)
    assert ll.Conv1d(dft_basis(64, 33, window=hann * 0.5), length=64).fft == (33, -1)


def test_an_fft_layer_stays_float32_and_round_trips(rng, tmp_path):
    layer = ll.Conv1d(dft_basis(32, 17), length=96, stride=16)
    model = ll.Model([layer, ll.Magnitude(34 * 5, 17 * 5, 0, 17 * 5)])
    assert model.quantize().layers[0].weight_dtype == "float32"      # quantize() leaves it
    with pytest.raises(ll.ModelError, match="windowed DFT basis"):
        model.quantize(layers=[0])
    model.save(tmp_path / "stft.lstm")
    loaded = ll.load(tmp_path / "stft.lstm")
    assert loaded.layers[0].fft == (17, -1)
    x = rng.standard_normal((1, 3, 96)).astype(np.float32)
    np.testing.assert_array_equal(loaded.run(x), model.run(x))


def test_an_elementwise_layer_applies_its_activation(rng, tmp_path):
    x = rng.standard_normal((2, 5, 6)).astype(np.float32)
    model = ll.Model([ll.Elementwise(6, "relu"), ll.Elementwise(6, ("LeakyRelu", 0.2)),
                      ll.Elementwise(6, "softmax")])
    leaky = np.maximum(x, 0.0)
    expected = np.exp(leaky) / np.exp(leaky).sum(-1, keepdims=True)
    assert_close(model.run(x), expected)
    model.save(tmp_path / "e.lstm")
    np.testing.assert_array_equal(ll.load(tmp_path / "e.lstm").run(x), model.run(x))
    with pytest.raises(ll.ModelError, match="features must be an integer"):
        ll.Elementwise(0, "relu")


@pytest.mark.parametrize("layer,edit,message", [
    (0, {"length": 2 ** 31}, r"layers\[0\]: Conv1d: length must be an integer from 1 to "),
    (0, {"padding": [0, 2 ** 22]}, r"layers\[0\]: Conv1d: output is \d+ features per step"),
    (1, {"channels": 2 ** 16, "length": 2 ** 16}, r"layers\[1\]: Mean: input is 4294967296"),
    (2, {"features": 2 ** 40}, r"layers\[2\]: Elementwise: features must be an integer"),
    (3, {"rows": 2 ** 31}, r"layers\[3\]: Magnitude: rows must be an integer"),
])
def test_a_file_cannot_ask_a_frame_encoder_for_unbounded_memory(rng, layer, edit, message):
    """These layers' sizes are attributes, not arrays the file must hold: a hostile file's
    sizes are refused naming the record, before any buffer is sized from them."""
    import tracemalloc
    import filetools
    model = ll.Model([ll.Conv1d(rng.standard_normal((4, 1, 3)).astype(np.float32), length=10),
                      ll.Mean(4, 8), ll.Elementwise(4, "relu"), ll.Magnitude(4, 2, 0, 2)])
    fields, manifest, data = filetools.split(ll.format.encode(model))
    manifest["layers"][layer].update(edit)
    blob = filetools.join(fields, manifest, data)
    tracemalloc.start()
    try:
        with pytest.raises(ll.FormatError, match=message):
            ll.loads(blob)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{s[8]}-G{s[6]}-S{s[4]}" for s in SHAPES])
def test_onnxruntime_computes_what_the_frame_encoders_compute(rng, shape):
    """The one-step ONNX graph `lstmlite bench` times onnxruntime on: onnxruntime's own Pad
    (reflect, edge, wrap) and Conv, Gather/Sqrt and ReduceMean equal lstmlite's layers."""
    pytest.importorskip("onnxruntime")
    from lstmlite.converters.onnx_export import onnxruntime_stepper
    C, L, M, K, S, D, G, P, mode = shape
    conv, _, _ = _layer(rng, C, L, M, K, S, D, G, P, mode)
    layers = [conv]
    n = conv.out_length
    if M % 2 == 0 and n > 1:   # rows of positions 1.. (silero's sequence file's slice)
        layers += [ll.Magnitude(conv.output_size, M // 2 * (n - 1), 1, M // 2 * n + 1,
                                rows=M // 2, row_stride=n), ll.Mean(M // 2, n - 1)]
    elif M % 2 == 0:
        layers += [ll.Magnitude(conv.output_size, M // 2, 0, M // 2), ll.Mean(M // 2, 1)]
    layers.append(ll.Elementwise(layers[-1].output_size, ("LeakyRelu", 0.1)))
    model = ll.Model(layers)
    step, stream = onnxruntime_stepper(model), model.stream()
    X = rng.standard_normal((5, model.input_size)).astype(np.float32)
    for x in X:
        assert_close(step(x), stream.step(x))
