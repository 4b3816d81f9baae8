"""from_torch and the PyTorch files through `lstmlite convert`: a zoo of modules, parity
with torch within 1e-5 in float32 and against the module in float64, each file kind, and
each error class."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import lstmlite  # noqa: E402
from lstmlite import ConversionError  # noqa: E402
from lstmlite.converters import convert_torch, from_state_dict, from_torch  # noqa: E402
from lstmlite.converters.signature import run_signature  # noqa: E402

TOLERANCE = 1e-5
F, H = 6, 8


class Stack(nn.Module):
    """rnn -> [last step | h_n[-1]] -> [head], with options."""

    def __init__(self, rnn, head=None, last=None, normalize=False, state_io=False):
        super().__init__()
        self.rnn, self.head, self.last, self.state_io = rnn, head, last, state_io
        if normalize:
            self.register_buffer("mean", torch.linspace(-1, 1, F))
            self.register_buffer("std", torch.linspace(0.5, 2, F))
        self.normalize = normalize

    def forward(self, x, h0=None, c0=None):
        if self.normalize:
            x = (x - self.mean) / self.std
        if self.state_io:
            y, state = self.rnn(x, (h0, c0) if c0 is not None else h0)
        else:
            y, state = self.rnn(x)
        if self.last == "index":
            y = y[:, -1] if self.rnn.batch_first else y[-1]
        elif self.last == "h_n":
            y = (state[0] if isinstance(state, tuple) else state)[-1]
        if self.head is not None:
            y = self.head(y)
        if self.state_io:
            return (y,) + (state if isinstance(state, tuple) else (state,))
        return y


class CellLoop(nn.Module):
    """A cell stepped over the sequence in Python, outputs stacked or the last one."""

    def __init__(self, kind, last=False):
        super().__init__()
        self.kind, self.last = kind, last
        self.cell = {"LSTM": nn.LSTMCell, "GRU": nn.GRUCell, "RNN": nn.RNNCell}[kind](F, H)
        self.fc = nn.Linear(H, 3)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], H)
        c = x.new_zeros(x.shape[0], H)
        outputs = []
        for t in range(x.shape[1]):
            if self.kind == "LSTM":
                h, c = self.cell(x[:, t], (h, c))
            else:
                h = self.cell(x[:, t], h)
            outputs.append(h)
        y = h if self.last else torch.stack(outputs, dim=1)
        return torch.softmax(self.fc(y), dim=-1)


def head(width, *extra):
    return nn.Sequential(nn.Linear(width, 4), nn.Dropout(0.2), *extra)


ZOO = {
    "lstm_proj_stacked": lambda: Stack(nn.LSTM(F, H, 2, batch_first=True, proj_size=3),
                                       head(3, nn.Softmax(-1)), last="index"),
    "lstm_proj_bidirectional": lambda: Stack(nn.LSTM(F, H, batch_first=True, proj_size=5,
                                                     bidirectional=True)),
    "lstm_time_major": lambda: Stack(nn.LSTM(F, H), head(H, nn.Tanh()), last="index"),
    "lstm_no_bias_h_n": lambda: Stack(nn.LSTM(F, H, 2, bias=False, batch_first=True),
                                      head(H, nn.Sigmoid()), last="h_n"),
    "lstm_state_io": lambda: Stack(nn.LSTM(F, H, 2, batch_first=True), state_io=True),
    "gru_bidirectional_stacked": lambda: Stack(nn.GRU(F, H, 2, batch_first=True,
                                                      bidirectional=True),
                                               head(2 * H, nn.LogSoftmax(-1)), last="index"),
    "gru_state_io": lambda: Stack(nn.GRU(F, H, batch_first=True), head(H), state_io=True),
    "rnn_relu": lambda: Stack(nn.RNN(F, H, nonlinearity="relu", batch_first=True),
                              head(H, nn.ReLU())),
    "rnn_tanh_normalized": lambda: Stack(nn.RNN(F, H, 2, batch_first=True),
                                         nn.Sequential(nn.Identity(), nn.Linear(H, 2)),
                                         normalize=True),
    "lstm_cell_loop": lambda: CellLoop("LSTM"),
    "gru_cell_loop_last": lambda: CellLoop("GRU", last=True),
    "rnn_cell_loop": lambda: CellLoop("RNN"),
}


def example_inputs(name, module):
    x = torch.randn(5, 2, F) if name == "lstm_time_major" else torch.randn(2, 5, F)
    if getattr(module, "state_io", False):
        rows = module.rnn.num_layers * (2 if module.rnn.bidirectional else 1)
        size = module.rnn.proj_size or H if isinstance(module.rnn, nn.LSTM) else H
        h0 = torch.randn(rows, 2, size) * 0.5
        if isinstance(module.rnn, nn.LSTM):
            return (x, h0, torch.randn(rows, 2, H) * 0.5)
        return (x, h0)
    return (x,)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_matches_torch(name):
    torch.manual_seed(0)
    module = ZOO[name]().eval()
    inputs = example_inputs(name, module)
    conversion = convert_torch(module, inputs, tolerance=TOLERANCE)
    assert conversion.report.passed, conversion.report.lines()
    # float64: torch in double precision against the float32 engine
    double = module.double()
    feeds = {n: t.double().numpy() for n, t in zip(conversion.signature["input_order"],
                                                   inputs)}
    ours = run_signature(conversion.model, conversion.signature, feeds)
    with torch.no_grad():
        theirs = double(*[t.double() for t in inputs])
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    for number, value in enumerate(theirs):
        np.testing.assert_allclose(ours[f"output{number}"], value.numpy(), atol=TOLERANCE,
                                   rtol=TOLERANCE)


def test_the_stream_continues_where_run_stops():
    torch.manual_seed(1)
    module = ZOO["lstm_proj_stacked"]().eval()
    model = from_torch(module, torch.randn(1, 7, F))
    X = np.random.default_rng(0).standard_normal((12, F)).astype(np.float32)
    stream = model.stream()
    steps = np.stack([stream.step(x).copy() for x in X])
    with torch.no_grad():
        last = module(torch.from_numpy(X[None]))[0].numpy()
    np.testing.assert_allclose(steps[-1], last, atol=TOLERANCE)


def test_proj_size_saved_and_loaded(tmp_path):
    torch.manual_seed(2)
    model = from_torch(ZOO["lstm_proj_bidirectional"]().eval(), torch.randn(1, 4, F))
    model.save(tmp_path / "p.lstm")
    loaded = lstmlite.load(tmp_path / "p.lstm")
    assert loaded.layers[0].proj_size == 5
    X = np.random.default_rng(0).standard_normal((6, F)).astype(np.float32)
    np.testing.assert_array_equal(loaded.run(X), model.run(X))


# ---- errors ---------------------------------------------------------------------------------

class AfterGRU(nn.Module):
    """A GRU (F -> F) whose output goes through `tail(y, x)`."""

    def __init__(self, tail):
        super().__init__()
        self.rnn = nn.GRU(F, F, batch_first=True)
        self.fc = nn.Linear(F, 2)
        self.tail = tail

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.tail(self, y, x)


REFUSED = {
    "unsupported operation": (lambda m, y, x: torch.cumsum(y, dim=1),
                              r"cumsum.*is not supported; lstmlite converts nn.LSTM"),
    "residual": (lambda m, y, x: y + x, "add of two computed values"),
    "a step other than the last": (lambda m, y, x: m.fc(y[:, 0]),
                                   "reads time step 0 of the sequence outside a cell loop"),
    "a view that merges time into features": (lambda m, y, x: y.reshape(y.shape[0], -1, 2 * F),
                               "changes more than unit axes"),
    "a constant that broadcasts": (lambda m, y, x: y * torch.ones(F, 1),
                                   r"a constant of shape \(6, 1\) is not one value per"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_forward(case):
    tail, message = REFUSED[case]
    with pytest.raises(ConversionError, match=message):
        from_torch(AfterGRU(tail), torch.randn(2, F, F))  # time = features: (F, 1) broadcasts


def test_error_no_example_input_and_no_module():
    with pytest.raises(ConversionError, match="needs example_input"):
        from_torch(AfterGRU(REFUSED["residual"][0]))
    with pytest.raises(ConversionError, match="expected a torch.nn.Module"):
        from_torch(lambda x: x, torch.randn(1, 2, F))


def test_error_cell_loop_skipping_steps():
    class Skipping(CellLoop):
        def forward(self, x):
            h = x.new_zeros(x.shape[0], H)
            for t in range(0, x.shape[1], 2):
                h = self.cell(x[:, t], h)
            return self.fc(h)
    with pytest.raises(ConversionError, match="step 2 of the cell does not continue step 0"):
        from_torch(Skipping("GRU"), torch.randn(1, 5, F))


# ---- state_dicts --------------------------------------------------------------------------

def test_state_dict_infers_the_stack_and_says_what_it_cannot_know():
    torch.manual_seed(3)
    module = ZOO["gru_bidirectional_stacked"]()
    model = from_state_dict(module.state_dict(), head_activation="log_softmax")
    assert [l.type_name for l in model.layers] == ["GRU", "GRU", "Dense"]
    assert model.layers[-1].activation.name == "LogSoftmax"
    X = torch.randn(1, 7, F)
    with torch.no_grad():
        expected = module.eval()(X)[0].numpy()
    np.testing.assert_allclose(model.run(X[0].numpy())[-1], expected, atol=TOLERANCE)


def test_state_dict_errors():
    torch.manual_seed(4)
    two_linears = Stack(nn.LSTM(F, H, batch_first=True),
                        nn.Sequential(nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 2)))
    with pytest.raises(ConversionError, match="has Linear layers before the last layer.*Keys: "
                                              "rnn.weight_ih_l0 \\(32, 6\\)"):
        from_state_dict(two_linears.state_dict())
    unknown = dict(ZOO["rnn_relu"]().state_dict(), **{"norm.running_mean": torch.zeros(3)})
    with pytest.raises(ConversionError, match="key 'norm.running_mean' \\(3,\\) matches no "
                                              "layer"):
        from_state_dict(unknown)
    with pytest.raises(ConversionError, match="head activation 'gelu'"):
        from_state_dict(ZOO["rnn_relu"]().state_dict(), head_activation="gelu")


def test_a_state_dict_head_needs_its_activation_named():
    """GRU + Linear + sigmoid: the state_dict holds no trace of the sigmoid, and verification
    rebuilds the module from the same state_dict, so it would pass on logits. Refused unless
    the user says what the head ends with; with it, the conversion matches the module."""
    class Sigmoided(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(F, H, batch_first=True)
            self.fc = nn.Linear(H, 2)

        def forward(self, x):
            return torch.sigmoid(self.fc(self.rnn(x)[0]))
    torch.manual_seed(6)
    module = Sigmoided().eval()
    with pytest.raises(ConversionError, match="does not record the activation after its last "
                                              "Linear \\(fc\\).*--head-activation"):
        from_state_dict(module.state_dict())
    model = from_state_dict(module.state_dict(), head_activation="sigmoid")
    X = torch.randn(1, 7, F)
    with torch.no_grad():
        expected = module(X)[0].numpy()
    np.testing.assert_allclose(model.run(X[0].numpy()), expected, atol=TOLERANCE)
    logits = from_state_dict(module.state_dict(), head_activation="none")
    assert np.abs(logits.run(X[0].numpy()) - expected).max() > 0.1   # what a guess would give


# ---- files through the CLI -------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lstmlite", *map(str, args)],
                          capture_output=True, text=True)


class Scriptable(nn.Module):
    """What a user scripts: a stacked bidirectional GRU, the last step, a Linear, logits."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(F, H, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * H, 3)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("torch_files")
    torch.manual_seed(5)
    module = Scriptable().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(module.state_dict(), directory / "weights.pt")
        torch.save(module, directory / "whole.pt")
        torch.jit.script(module).save(str(directory / "scripted.pt"))
        torch.export.save(torch.export.export(ZOO["lstm_proj_stacked"]().eval(),
                                              (torch.randn(1, 5, F),)),
                          str(directory / "program.pt2"))
    return directory


@pytest.mark.parametrize("kind", ["weights.pt", "scripted.pt", "program.pt2"])
def test_cli_converts_each_file_kind(files, kind, tmp_path):
    out = tmp_path / "m.lstm"
    trust = {"scripted.pt": ["--trust-code"], "weights.pt": ["--head-activation", "none"]}.get(
        kind, [])
    result = _cli("convert", files / kind, "-o", out, *trust)
    assert result.returncode == 0, result.stderr
    assert "verification against torch" in result.stdout and " ok" in result.stdout
    assert lstmlite.load(out).metadata["verification"]["max_abs_difference"]["output0"] \
        <= TOLERANCE


@pytest.mark.parametrize("kind,fragments", [
    ("scripted.pt", ("a TorchScript archive is a program", "--trust-code")),
    ("whole.pt", ("holds a pickled Python object", "torch.save(model.state_dict()")),
])
def test_cli_refuses_code_in_one_line(files, tmp_path, kind, fragments):
    """A TorchScript archive without --trust-code, a pickled module always."""
    result = _cli("convert", files / kind, "-o", tmp_path / "m.lstm")
    assert result.returncode == 1
    assert all(fragment in result.stderr for fragment in fragments), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.lstm").exists()


def test_runtime_never_imports_torch_or_onnx(tmp_path):
    code = ("import sys, numpy as np, lstmlite\n"
            "m = lstmlite.load(sys.argv[1]); s = m.stream(); s.step(np.zeros(m.input_size,"
            " np.float32))\n"
            "assert 'torch' not in sys.modules and 'onnx' not in sys.modules, "
            "[k for k in sys.modules if k.startswith(('torch', 'onnx'))]\n")
    from lstmlite.demo import bundled_model_path
    result = subprocess.run([sys.executable, "-c", code, bundled_model_path()],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


class TwoInputs(nn.Module):
    """A forward that takes the state too: lstmlite keeps the state in the stream."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(F, H, batch_first=True)

    def forward(self, x, h):
        return self.rnn(x, h)[0]


def test_torchscript_with_more_inputs_names_them_instead_of_asking_for_the_size(tmp_path):
    path = tmp_path / "two.pt"
    torch.jit.script(TwoInputs()).save(str(path))
    result = _cli("convert", path, "--trust-code", "--input-size", str(F), "-o",
                  tmp_path / "m.lstm")
    assert result.returncode == 1 and "its forward takes 2 inputs (x, h)" in result.stderr, \
        result.stderr
    assert "--input-size" not in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("name", ["darts_rnnmodel_lstm", "darts_rnnmodel_gru_params",
                                  "darts_blockrnn_gru", "darts_blockrnn_lstm",
                                  "neuralforecast_lstm", "neuralforecast_gru",
                                  "torchaudio_deepspeech", "deepspeech_clip_reached"])
def test_library_modules_convert_from_torch(name):
    """darts' RNNModel/BlockRNNModel, neuralforecast's LSTM/GRU and torchaudio's DeepSpeech
    module patterns (built with torch alone in tests/onnx_zoo.py), through torch.export rather
    than ONNX: darts' view of 2 targets x 3 parameters splits the features into two output
    axes; DeepSpeech takes (batch, 1, time, features), clips its ReLUs (hardtanh) and sums the
    two halves of its bidirectional RNN's features."""
    import onnx_zoo
    module, inputs, _, _ = onnx_zoo.build(name)
    conversion = convert_torch(module, inputs, tolerance=TOLERANCE)
    assert conversion.report.passed, conversion.report.lines()
    shape = (3, 1, 9, onnx_zoo.FEATURES) if name in onnx_zoo.CHANNEL_INPUT else \
        (3, 9, onnx_zoo.FEATURES)
    X = torch.randn(*shape)
    ours = run_signature(conversion.model, conversion.signature, {"x": X.numpy()})
    with torch.no_grad():
        expected = module(X).numpy()
    np.testing.assert_allclose(next(iter(ours.values())), expected, atol=TOLERANCE,
                               rtol=TOLERANCE)


class Clamped(nn.Module):
    """Linear -> [ReLU] -> a clamp -> GRU: the fully connected front of DeepSpeech, small."""

    def __init__(self, clamp, relu):
        super().__init__()
        self.fc, self.rnn = nn.Linear(F, 5), nn.GRU(5, H, batch_first=True)
        self.clamp, self.relu = clamp, relu
        with torch.no_grad():
            self.fc.weight.mul_(4)   # so that the bounds are reached

    def forward(self, x):
        y = self.fc(x)
        y = torch.relu(y) if self.relu else y
        return self.rnn(self.clamp(y))[0]


@pytest.mark.parametrize("clamp,relu,scaled", [
    (lambda y: nn.functional.hardtanh(y, 0.0, 0.5), True, True),
    (lambda y: nn.functional.hardtanh(y), False, True),
    (lambda y: nn.functional.relu6(y), False, True),
    (lambda y: torch.clamp(y, -0.3, 0.7), False, True),
    (lambda y: torch.clamp(y, -0.3, 0.7), True, True),
    (lambda y: torch.clamp(y, min=0.0), False, False),      # a ReLU
], ids=["relu-hardtanh", "hardtanh", "relu6", "clamp", "relu-clamp", "clamp-min-0"])
def test_clamps_are_a_hard_sigmoid_and_a_scale(clamp, relu, scaled):
    module = Clamped(clamp, relu).eval()
    conversion = convert_torch(module, torch.randn(2, 7, F), tolerance=TOLERANCE)
    assert conversion.report.passed, conversion.report.lines()
    kinds = [layer.type_name for layer in conversion.model.layers]
    # the clamp rides on the Linear (a HardSigmoid), with a Scale layer after it
    assert kinds == (["Dense", "Scale", "GRU"] if scaled else ["Dense", "GRU"]), kinds


@pytest.mark.parametrize("tail,message", [
    (lambda y: torch.clamp(y, min=-1.0), "clamps with both bounds finite"),
    (lambda y: y[..., :3], "selects features; lstmlite follows only the two halves"),
])
def test_clamps_and_feature_selections_lstmlite_cannot_follow_are_refused(tail, message):
    class Tail(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(F, H, batch_first=True)

        def forward(self, x):
            return tail(self.rnn(x)[0])
    with pytest.raises(ConversionError, match=message):
        convert_torch(Tail().eval(), torch.randn(2, 5, F))
