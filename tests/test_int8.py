"""int8 inference: the quantizer and every kernel set's integer products (exact), every int8
layer and option against the float64 reference of the same scheme, streams against run(),
files, accuracy against the float model and against torch's dynamic int8, edge values, and
bad int8 data."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import factories as F
import lstmlite as ll
import reference as R
from conftest import assert_close
from lstmlite import _core

# One step of an int8 layer from the engine's own state against the reference of the same
# scheme: both quantize the same float32 vectors, so only float rounding differs (measured
# below 1e-6); the bound is the project's 1e-5.
ATOL = 1e-5


# ---- the quantizer and the integer products ------------------------------------------------

@pytest.mark.parametrize("scale", [1e-30, 1e-3, 1.0, 7.5, 1e6])
def test_quantizer_matches_its_numpy_statement_exactly(rng, scale, kernels):
    # every set's quantizer (int8.c compiled at its vector width): 16 values at a time and
    # a scalar tail, so lengths around 16 and its multiples
    for n in (1, 3, 15, 16, 17, 31, 33, 129, 1000):
        x = (rng.standard_normal(n) * scale).astype(np.float32)
        q, s = _core.quantize_s8(x)
        q_ref, s_ref = R.quantize_vector(x)
        assert np.array_equal(q.astype(np.int64), q_ref) and np.float32(s) == np.float32(s_ref)
        assert np.abs(q).max() == 127  # the peak maps onto the end of the range


def test_quantizer_ties_round_half_to_even():
    # peak 127 makes inv exactly 1, so x * inv is x itself: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2
    q, s = _core.quantize_s8(np.array([127, 0.5, 1.5, -2.5, 3.5], np.float32))
    assert q.tolist() == [127, 0, 2, -2, 4] and s == 1.0


@pytest.mark.parametrize("x,expected_scale", [
    ([0.0, 0.0, -0.0], 0.0),                 # all zero: scale 0, no division by zero
    ([1e-38, -2e-39], 0.0),                  # 127 / peak overflows: counts as zero
    ([1.0, np.nan, 2.0], "nan"),             # NaN propagates through the scale
    ([1.0, -np.inf], "nan"),
])
def test_quantizer_edges(x, expected_scale, kernels):
    q, s = _core.quantize_s8(np.array(x, np.float32))
    assert not q.any()
    assert np.isnan(s) if expected_scale == "nan" else s == expected_scale
    # the same values among 40 tiny ones, in the 16-wide part and in the tail
    for at in (0, 17, 40 - len(x)):
        long = np.full(40, 1e-39, np.float32)
        long[at:at + len(x)] = x
        q, s = _core.quantize_s8(long)
        assert not q.any(), at
        assert np.isnan(s) if expected_scale == "nan" else s == expected_scale, at


@pytest.mark.parametrize("panels", [False, True], ids=["row-major", "panels"])
def test_every_kernel_set_gives_exact_integer_products(kernels, rng, panels):
    # panels: W in VNNI panels for the sets that read them (16 rows, groups of 4 inputs:
    # M and K off those multiples below); the other sets take the row-major W either way
    shapes = [(1, 1), (4, 16), (5, 31), (7, 32), (9, 33), (13, 64), (40, 515), (3, 2049),
              (17, 3), (33, 41), (130, 6)]
    for M, K in shapes:
        W = rng.integers(-127, 128, (M, K)).astype(np.int8)
        x = rng.integers(-127, 128, K).astype(np.int8)
        exact = W.astype(np.int64) @ x.astype(np.int64)
        assert np.array_equal(_core.gemm_s8(W, x, panels), exact), (kernels, M, K)
        # several columns at once (batched streams, sequence chunks): each one exact, in
        # every tile width (8, 4, 2, 1 columns) and past a block of 64 columns
        for N in (5, 11, 15, 67):
            X = rng.integers(-127, 128, (N, K)).astype(np.int8)
            exact = X.astype(np.int64) @ W.T.astype(np.int64)
            assert np.array_equal(_core.gemm_s8(W, X, panels), exact), (kernels, M, K, N)
        # the largest sums the contract allows: every product +-127 * 127, all one sign
        # (on panels, the lanes hold (w + 128) x and wrap past 2^31 at large K; the
        # correction brings them back exactly)
        W = np.full((M, K), 127, np.int8)
        for value in (-127, 127):
            x = np.full(K, value, np.int8)
            assert np.array_equal(_core.gemm_s8(W, x, panels), np.full(M, value * 127 * K))


def test_products_refuse_minus_128():
    with pytest.raises(ValueError, match="-128"):
        _core.gemm_s8(np.full((2, 3), -128, np.int8), np.ones(3, np.int8))


# ---- layers against the reference ----------------------------------------------------------

def int8_layers(rng):
    return {
        "lstm": F.lstm(rng, 13, 21),
        "lstm-peepholes-clip": F.lstm(rng, 13, 21, peepholes=True, clip=2.5),
        "lstm-input-forget": F.lstm(rng, 40, 64, input_forget=True),
        "lstm-proj": F.lstm(rng, 17, 33, proj=12),
        "lstm-no-bias": F.lstm(rng, 5, 9, bias=False),
        "lstm-bidirectional": F.lstm(rng, 11, 19, direction="bidirectional"),
        "lstm-reverse": F.lstm(rng, 11, 19, direction="reverse"),
        "gru": F.gru(rng, 40, 64),
        "gru-linear-after-reset": F.gru(rng, 13, 21, linear_before_reset=False),
        "gru-bidirectional": F.gru(rng, 7, 10, direction="bidirectional"),
        "gru-activations": F.gru(rng, 7, 10, activations=["HardSigmoid", ("LeakyRelu", 0.1)]),
        "rnn-tanh": F.rnn(rng, 13, 21),
        "rnn-relu": F.rnn(rng, 13, 21, nonlinearity="relu"),
        "dense": F.dense(rng, 33, 10),
        "dense-softmax": F.dense(rng, 33, 10, "softmax"),
    }


def one_step_allowance(layer, state):
    """The slack one quantization step of an internally computed vector may cause: the
    projection input o * tanh(c) and GRU's r * h come from the engine's own activation
    approximations, so one element may round the other way at a tie (see
    tests/c/test_kernels.c). One step of element k moves a product row m by
    scale[m] * q[m, k] * peak / 127 <= scale[m] * peak (|q| <= 127). Zero where every
    quantized vector is an input or a state."""
    if layer.type_name == "LSTM" and layer.weight_hr is not None:
        return float(np.max(layer.weight_hr.scale))  # peak of o * tanh(c) < 1
    if layer.type_name == "GRU" and not layer.linear_before_reset:
        # the n rows; peak of r * h < max|h| as 0 < r < 1; h moves by (1 - z) of n's change,
        # and n = tanh(...) moves no more than its input
        H = layer.hidden_size
        return float(np.max(layer.weight_hh.scale[..., 2 * H:])) * float(np.abs(state[0]).max())
    return 0.0


@pytest.mark.parametrize("name", list(int8_layers(np.random.default_rng(0))))
def test_int8_layer_step_by_step_against_reference(name, rng):
    """Each step runs from the engine's own state (run() with T=1 and initial_state), so both
    sides quantize the same float32 vectors; saturating frames every fifth step."""
    layer = int8_layers(rng)[name].with_weight_dtype("int8")
    model = ll.Model([layer])
    assert layer.weight_dtype == "int8"
    B, T = 3, 12
    X = rng.standard_normal((B, T, layer.input_size)).astype(np.float32)
    X[:, 4::5] *= 20
    state = None
    for t in range(T):
        x = X[:, t:t + 1]
        if layer.recurrent:
            y, new_state = model.run(x, initial_state=state, return_state=True)
            start = state if state is not None else [[np.zeros(s) for s in
                                                      model.state_shapes(B)[0]]]
            expected, _ = R.run_model(model, x, initial_state=start)
            allowance = one_step_allowance(layer, start[0])
            state = new_state
        else:
            y = model.run(x)
            expected, _ = R.run_model(model, x)
            allowance = 0.0
        assert_close(y, expected, atol=ATOL + allowance, what=f"{name} step {t}")


def test_int8_and_float_differ_only_by_quantization(rng):
    """Sanity of the scheme: an int8 LSTM stays near its float twin over a long sequence."""
    model = ll.Model([F.lstm(rng, 40, 64), F.dense(rng, 64, 10, "softmax")])
    report = ll.compare(model, model.quantize(), rng.standard_normal((4, 200, 40)))
    assert report.max_abs < 0.05 and report.cosine > 0.999, report


# ---- streams, runs, files ------------------------------------------------------------------

def mixed_model(rng):
    """int8 recurrent layers with a float32 head and normalization: one model, two dtypes."""
    return ll.Model([F.normalize(rng, 7), F.lstm(rng, 7, 12, peepholes=True),
                     F.gru(rng, 12, 9), F.rnn(rng, 9, 5), F.dense(rng, 5, 3, "softmax")]
                    ).quantize(layers=[1, 2, 3])


def test_quantize_chooses_layers_and_keeps_the_rest(rng):
    model = mixed_model(rng)
    assert [layer.weight_dtype for layer in model.layers] == \
        ["float32", "int8", "int8", "int8", "float32"]
    assert "int8 products" in model.summary()
    back = model.dequantize()
    assert all(layer.weight_dtype == "float32" for layer in back.layers)
    assert np.array_equal(back.layers[1].weight_ih, model.layers[1].weight_ih.dequantize())


def test_int8_stream_equals_run_bit_for_bit(rng, kernels):
    model = mixed_model(rng)
    X = rng.standard_normal((30, 7)).astype(np.float32)
    stream = model.stream()
    stream._poison_scratch = True
    streamed = np.stack([stream.step(x).copy() for x in X])
    assert np.array_equal(streamed, model.run(X))
    for B in (3, 9):  # tiles of 2 + 1 and of 4 + 4 + 1 streams
        batched = model.stream(batch=B)
        XB = rng.standard_normal((B, 10, 7)).astype(np.float32)
        out = np.stack([batched.step(XB[:, t]).copy() for t in range(10)], axis=1)
        assert np.array_equal(out, model.run(XB)), B
        assert np.array_equal(out[B - 1], model.run(XB[B - 1])), B


@pytest.mark.parametrize("panel_set,row_major_set", [("avx512vnni", "avx512"),
                                                     ("avxvnni", "avx2")])
def test_panel_products_change_no_bit_of_a_model(rng, panel_set, row_major_set):
    """A set with int8 products on VNNI panels against its twin on row-major weights (the same
    float code): the products are exact either way, so every output bit must agree. GRU's W_hh
    is packed in two parts (2 H = 18 rows, not a whole panel), the projection and Dense have
    fewer rows than a panel, and 3 streams and 9 cover the tiles."""
    if not (_core.kernels_supported(panel_set) and _core.kernels_supported(row_major_set)):
        pytest.skip(f"this CPU does not run {panel_set}")
    model = ll.Model([F.lstm(rng, 7, 12, proj=5), F.gru(rng, 5, 9, linear_before_reset=0),
                      F.gru(rng, 9, 9), F.rnn(rng, 9, 5), F.dense(rng, 5, 3, "softmax")]
                     ).quantize()
    both_ways = ll.Model([F.lstm(rng, 7, 12, direction="bidirectional"),
                          F.gru(rng, 24, 9, direction="bidirectional")]).quantize()
    X = rng.standard_normal((9, 20, 7)).astype(np.float32)
    previous = _core.kernels_active()
    try:
        results = []
        for name in (panel_set, row_major_set):
            _core.select_kernels(name)
            assert _core.kernels_read_s8_panels() == (name == panel_set)
            stream = model.stream(batch=3)
            steps = np.stack([stream.step(X[:3, t]).copy() for t in range(20)], axis=1)
            results.append((model.run(X), model.run(X[4]), steps, both_ways.run(X)))
    finally:
        _core.select_kernels(previous)
    for panel_result, row_major_result in zip(*results):
        assert np.array_equal(panel_result, row_major_result)


def test_kernel_sets_agree_on_int8_models(rng):
    model = mixed_model(rng)
    X = rng.standard_normal((50, 7)).astype(np.float32)
    previous = _core.kernels_active()
    try:
        results = {}
        for name in _core.kernels_compiled():
            if _core.kernels_supported(name):
                _core.select_kernels(name)
                results[name] = model.run(X)
    finally:
        _core.select_kernels(previous)
    for name, result in results.items():
        assert_close(result, results["generic"], what=f"{name} against generic")


def test_nan_input_propagates_and_zero_input_is_exact(rng):
    float_model = ll.Model([F.lstm(rng, 6, 8)])
    model = float_model.quantize()
    stream = model.stream()
    zero = np.zeros(6, np.float32)
    # zero input and zero state: every int8 product is exactly zero (scale 0), only the
    # biases remain, as in float32
    assert np.array_equal(stream.step(zero), float_model.stream().step(zero))
    y = stream.step(np.array([1, np.nan, 0, 0, 0, 0], np.float32))
    assert np.isnan(y).all() and all(np.isnan(s).all() for s in stream.state[0])


def test_int8_file_keeps_int8_weights_and_loads_both_ways(tmp_path, rng):
    model = ll.Model([F.lstm(rng, 40, 64), F.dense(rng, 64, 10, "softmax")])
    path32, path8 = tmp_path / "f.lstm", tmp_path / "q.lstm"
    model.save(path32)
    model.save(path8, weights_dtype="int8")
    assert os.path.getsize(path8) <= 0.3 * os.path.getsize(path32)
    loaded = ll.load(path8)
    assert [layer.weight_dtype for layer in loaded.layers] == ["int8", "int8"]
    q = loaded.layers[0].weight_ih.q
    assert q.dtype == np.int8 and not q.flags.owndata and not q.flags.writeable  # the map
    assert loaded.weight_bytes <= 0.3 * model.weight_bytes
    X = rng.standard_normal((20, 40)).astype(np.float32)
    assert np.array_equal(loaded.run(X), model.quantize().run(X))
    dequantized = ll.load(path8, compute="float32")
    assert all(layer.weight_dtype == "float32" for layer in dequantized.layers)
    assert np.array_equal(dequantized.run(X), model.quantize().dequantize().run(X))
    with pytest.raises(ll.FormatError, match="compute"):
        ll.load(path8, compute="int4")
    # quantize() then save() writes the very bytes save(weights_dtype="int8") does
    model.quantize().save(tmp_path / "again.lstm")
    assert (tmp_path / "again.lstm").read_bytes() == path8.read_bytes()


def test_loaded_int8_model_holds_int8_memory(tmp_path):
    """Resident memory after load and one step, in fresh processes: int8 <= 0.4x float32."""
    rng = np.random.default_rng(1)
    model = ll.Model([F.lstm(rng, 64, 512), F.lstm(rng, 512, 256)])
    model.save(tmp_path / "f.lstm")
    model.save(tmp_path / "q.lstm", weights_dtype="int8")
    script = textwrap.dedent("""
        import resource, sys, numpy as np, lstmlite as ll
        def rss():
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * resource.getpagesize()
        before = rss()
        model = ll.load(sys.argv[1])
        model.stream().step(np.ones(64, np.float32))
        print(rss() - before)
    """)
    used = {}
    for name in ("f", "q"):
        result = subprocess.run([sys.executable, "-c", script, str(tmp_path / f"{name}.lstm")],
                                capture_output=True, text=True, check=True)
        used[name] = int(result.stdout)
    assert used["q"] <= 0.4 * used["f"], used


# ---- accuracy ------------------------------------------------------------------------------

def test_int8_error_no_worse_than_torch_dynamic_int8(rng):
    """The same LSTM and GRU weights, int8 in lstmlite (per-channel scales) and in torch's
    quantize_dynamic (per-tensor), both against float64: lstmlite's error is the smaller."""
    torch = pytest.importorskip("torch")
    from torch.ao.quantization import quantize_dynamic
    torch.manual_seed(0)
    X = rng.standard_normal((4, 100, 40)).astype(np.float32)
    for cls in (torch.nn.LSTM, torch.nn.GRU):
        net = cls(40, 128, batch_first=True)
        # quantize_dynamic swaps child modules only: the LSTM goes inside a container
        qnet = quantize_dynamic(torch.nn.Sequential(net), {cls}, dtype=torch.qint8)[0]
        assert type(qnet) is not cls, "torch did not quantize the layer"
        with torch.no_grad():
            torch_int8 = qnet(torch.from_numpy(X))[0].numpy()
            truth = net.double()(torch.from_numpy(X).double())[0].numpy()
        weights = [getattr(net, n).detach().float().numpy()
                   for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
        layer = (ll.LSTM if cls is torch.nn.LSTM else ll.GRU)(*weights)
        ours = ll.Model([layer]).quantize().run(X)
        ours_err = np.abs(ours - truth).max()
        torch_err = np.abs(torch_int8 - truth).max()
        assert ours_err <= torch_err, (cls.__name__, ours_err, torch_err)


def test_trained_classifier_keeps_its_decisions(rng):
    """A GRU classifier trained here (4 noisy tones, a decision at every step from the past
    only); its int8 twin must agree with it on >= 99.5% of the evaluation frames."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    gen = np.random.default_rng(0)

    def batch(n, T=60):
        labels = gen.integers(0, 4, n)
        t = np.arange(T)[None, :, None]
        freq = (0.05 + 0.07 * labels)[:, None, None]
        phase = gen.uniform(0, 2 * np.pi, (n, 1, 1))
        x = np.concatenate([np.sin(2 * np.pi * freq * t + phase * k) for k in (1, 2, 3)], -1)
        x = x + 0.3 * gen.standard_normal(x.shape)
        return x.astype(np.float32), labels

    gru = torch.nn.GRU(3, 32, batch_first=True)
    head = torch.nn.Linear(32, 4)
    optimizer = torch.optim.Adam(list(gru.parameters()) + list(head.parameters()), lr=1e-2)
    for _ in range(150):
        x, labels = batch(32)
        logits = head(gru(torch.from_numpy(x))[0])
        target = torch.from_numpy(labels).repeat_interleave(x.shape[1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 4), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model = ll.Model([ll.GRU(*[getattr(gru, n).detach().numpy() for n in
                               ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]),
                      ll.Dense(head.weight.detach().numpy(), head.bias.detach().numpy(),
                               "softmax")])
    x, labels = batch(200)
    accuracy = np.mean(model.run(x)[:, 20:].argmax(-1) == labels[:, None])
    assert accuracy > 0.9, accuracy  # it did learn: the agreement below means something
    report = ll.compare(model, model.quantize(), x)
    assert report.top1 >= 0.995, report


# ---- bad int8 data -------------------------------------------------------------------------

def test_quantize_refuses_layers_without_matrices(rng):
    model = ll.Model([F.normalize(rng, 5), F.lstm(rng, 5, 6)])
    with pytest.raises(ll.ModelError, match=r"layer 0: Normalize: has no weight matrices"):
        model.quantize(layers=[0])
    with pytest.raises(ll.ModelError, match="indices 0..1"):
        model.quantize(layers=[2])
    with pytest.raises(ll.ModelError, match="'int8'"):
        model.quantize("int4")


def test_quantized_weight_validation():
    q = np.ones((4, 3), np.int8)
    with pytest.raises(ll.ModelError, match="-128"):
        ll.QuantizedWeight(np.full((4, 3), -128, np.int8), np.ones(4, np.float32))
    for bad in (np.zeros(4), -np.ones(4), np.array([1, np.nan, 1, 1]), np.full(4, np.inf)):
        with pytest.raises(ll.ModelError, match="finite and positive"):
            ll.QuantizedWeight(q, bad)
    with pytest.raises(ll.ModelError, match=r"scale has shape \(3,\), expected \(4,\)"):
        ll.QuantizedWeight(q, np.ones(3))
    w = ll.QuantizedWeight(q, np.ones(4))
    with pytest.raises(ll.ModelError, match="only weight matrices can be int8"):
        ll.Dense(np.ones((4, 3)), bias=w)
    with pytest.raises(ll.ModelError, match="all be float32 or all be int8"):
        ll.GRU(ll.QuantizedWeight(np.ones((6, 3), np.int8), np.ones(6)), np.ones((6, 2)))


def _edit_int8_file(tmp_path, rng, edit_manifest=None, edit_data=None):
    from filetools import rewrite
    path = tmp_path / "q.lstm"
    ll.Model([F.dense(rng, 3, 4)]).save(path, weights_dtype="int8")
    rewrite(path, edit_manifest, edit_data)
    return path


@pytest.mark.parametrize("value,message", [
    (0.0, "finite and positive"), (-1.0, "finite and positive"),
    (float("nan"), "finite and positive"), (float("inf"), "finite and positive"),
])
def test_file_scales_must_be_finite_and_positive(tmp_path, rng, value, message):
    def edit(manifest, data):
        scale = next(t for t in manifest["tensors"] if t["name"].endswith(".scale"))
        data[scale["offset"]:scale["offset"] + 4] = np.float32(value).tobytes()
    path = _edit_int8_file(tmp_path, rng, edit_data=edit)
    with pytest.raises(ll.FormatError, match=rf"'layers.0.weight.scale'.*{message}"):
        ll.load(path)


def test_file_int8_holding_minus_128_is_refused(tmp_path, rng):
    def edit(manifest, data):
        weight = next(t for t in manifest["tensors"] if t["name"] == "layers.0.weight")
        data[weight["offset"]] = 0x80
    with pytest.raises(ll.FormatError, match=r"'layers.0.weight'.*-128"):
        ll.load(_edit_int8_file(tmp_path, rng, edit_data=edit))


def test_file_scale_of_wrong_length_or_dtype_is_refused(tmp_path, rng):
    def shorter(manifest, data):
        scale = next(t for t in manifest["tensors"] if t["name"].endswith(".scale"))
        scale["shape"], scale["size"] = [3], 12
    with pytest.raises(ll.FormatError, match=r"'layers.0.weight' scale: expected shape \(4,\)"):
        ll.load(_edit_int8_file(tmp_path, rng, edit_manifest=shorter))

    def self_scaled(manifest, data):  # an int8 tensor as its own scale: no recursion
        weight = next(t for t in manifest["tensors"] if t["name"] == "layers.0.weight")
        weight["scale"] = "layers.0.weight"
    with pytest.raises(ll.FormatError, match=r"tensor 'layers.0.weight': used 2 times "
                                             r"\(layers\[0\].weight, the scale of "
                                             r"'layers.0.weight'\)"):
        ll.load(_edit_int8_file(tmp_path, rng, edit_manifest=self_scaled))


def test_info_names_each_layers_weights_and_compute(tmp_path, rng):
    model = ll.Model([F.normalize(rng, 5), F.lstm(rng, 5, 6), F.dense(rng, 6, 3)])
    model.quantize(layers=[1]).save(tmp_path / "mixed.lstm", weights_dtype="float16")
    result = subprocess.run([sys.executable, "-m", "lstmlite", "info",
                             str(tmp_path / "mixed.lstm")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "0: Normalize: float32 (no weight matrices)" in result.stdout
    assert "1: LSTM: int8 weights; int8 x int8 -> int32 products" in result.stdout
    assert "2: Dense: float32 weights; float32 products (stored as float16, widened on load)" \
        in result.stdout
