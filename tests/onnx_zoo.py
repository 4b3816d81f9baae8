"""A zoo of PyTorch networks exported to ONNX with both exporters, covering the graph patterns
real exporters produce around LSTM/GRU/RNN nodes. Each entry builds a seeded module and an
example input; tests export it with dynamo=False and dynamo=True and compare the conversion
with onnxruntime on the same inputs."""
from __future__ import annotations

import io
import warnings
from typing import Dict, Tuple

import torch
from torch import nn

FEATURES = 6
HIDDEN = 10


class Recurrent(nn.Module):
    """x -> [normalize] -> rnn -> [last step] -> [head]."""

    def __init__(self, cell="LSTM", layers=1, bidirectional=False, batch_first=True,
                 last=None, head=None, activation=None, normalize=False, state_io=False,
                 pre_activation=None, **rnn_kwargs):
        super().__init__()
        self.rnn = getattr(nn, cell)(FEATURES, HIDDEN, num_layers=layers,
                                     bidirectional=bidirectional, batch_first=batch_first,
                                     **rnn_kwargs)
        width = HIDDEN * (2 if bidirectional else 1)
        self.head = None
        if head:
            self.head = nn.Linear(width, 4)
        self.cell, self.last, self.activation = cell, last, activation
        self.batch_first, self.state_io, self.pre_activation = batch_first, state_io, \
            pre_activation
        if normalize:
            self.register_buffer("mean", torch.linspace(-1, 1, FEATURES))
            self.register_buffer("std", torch.linspace(0.5, 2, FEATURES))
        self.normalize = normalize

    def forward(self, x, h0=None, c0=None):
        state = (h0, c0)
        if self.normalize:
            x = (x - self.mean) / self.std
        if self.state_io:
            state_in = (state[0], state[1]) if self.cell == "LSTM" else state[0]
            y, state_out = self.rnn(x, state_in)
        else:
            y, state_out = self.rnn(x)
        if self.last == "index":
            y = y[:, -1] if self.batch_first else y[-1]
        elif self.last == "h_n":
            h = state_out[0] if self.cell == "LSTM" else state_out
            y = h[-1]
        if self.pre_activation == "relu":
            y = torch.relu(y)
        if self.head is not None:
            y = self.head(y)
        if self.activation == "softmax":
            y = torch.softmax(y, dim=-1)
        elif self.activation == "log_softmax":
            y = torch.log_softmax(y, dim=-1)
        elif self.activation == "sigmoid":
            y = torch.sigmoid(y)
        elif self.activation == "tanh":
            y = torch.tanh(y)
        elif self.activation == "relu":
            y = torch.relu(y)
        if self.state_io:
            if self.cell == "LSTM":
                return (y,) + tuple(state_out)
            return y, state_out
        return y


class DartsRNN(nn.Module):
    """darts' RNNModel module (_RNNModule): an RNN over the input chunk, a Linear "V" at
    every step, the predictions viewed as (batch, time, target_size, nr_params)."""

    def __init__(self, cell="LSTM", layers=2, target_size=1, nr_params=1):
        super().__init__()
        self.rnn = getattr(nn, cell)(FEATURES, HIDDEN, layers, batch_first=True)
        self.V = nn.Linear(HIDDEN, target_size * nr_params)
        self.target_size, self.nr_params = target_size, nr_params

    def forward(self, x):
        batch_size, out_len = x.size(0), x.size(1)
        out, _ = self.rnn(x)
        return self.V(out).view(batch_size, out_len, self.target_size, self.nr_params)


class DartsBlockRNN(nn.Module):
    """darts' BlockRNNModel module (_BlockRNNModule): an RNN, the last layer's final hidden
    state, fully connected layers to output_chunk_length x target x params, viewed."""

    def __init__(self, cell="GRU", layers=2, out_len=3, hidden_fc_sizes=(8,)):
        super().__init__()
        self.cell = cell
        self.rnn = getattr(nn, cell)(FEATURES, HIDDEN, layers, batch_first=True)
        sizes = [HIDDEN, *hidden_fc_sizes, out_len]
        self.fc = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])])
        self.out_len = out_len

    def forward(self, x):
        _, hidden = self.rnn(x)
        if self.cell == "LSTM":
            hidden = hidden[0]
        predictions = self.fc(hidden[-1, :, :])
        return predictions.view(x.size(0), self.out_len, 1, 1)


class NeuralForecastRNN(nn.Module):
    """neuralforecast's LSTM/GRU/RNN with horizon h = 1: an encoder RNN, its last h steps,
    an MLP decoder (Linear, ReLU, Linear) at each of them."""

    def __init__(self, cell="LSTM", layers=2, decoder_hidden=12):
        super().__init__()
        self.hist_encoder = getattr(nn, cell)(FEATURES, HIDDEN, layers, batch_first=True)
        self.mlp_decoder = nn.Sequential(nn.Linear(HIDDEN, decoder_hidden), nn.ReLU(),
                                         nn.Linear(decoder_hidden, 1))
        self.h = 1

    def forward(self, x):
        hidden_state, _ = self.hist_encoder(x)
        hidden_state = hidden_state[:, -self.h:]
        return self.mlp_decoder(hidden_state)[:, -self.h:]


class DeepSpeechFullyConnected(nn.Module):
    """torchaudio.models.deepspeech.FullyConnected: Linear, ReLU, hardtanh(0, clip)."""

    def __init__(self, n_feature, n_hidden, relu_max_clip=20.0):
        super().__init__()
        self.fc = nn.Linear(n_feature, n_hidden, bias=True)
        self.relu_max_clip = relu_max_clip

    def forward(self, x):
        x = nn.functional.relu(self.fc(x))
        return nn.functional.hardtanh(x, 0, self.relu_max_clip)


class DeepSpeech(nn.Module):
    """torchaudio.models.DeepSpeech's forward (its source, with torch alone): input (batch,
    channel = 1, time, features), three fully connected layers with clipped ReLUs, a
    bidirectional relu RNN whose two directions are summed, a fourth fully connected layer,
    the class scores and log_softmax."""

    def __init__(self, n_hidden=HIDDEN, n_class=5, relu_max_clip=20.0):
        super().__init__()
        self.n_hidden = n_hidden
        self.fc1 = DeepSpeechFullyConnected(FEATURES, n_hidden, relu_max_clip)
        self.fc2 = DeepSpeechFullyConnected(n_hidden, n_hidden, relu_max_clip)
        self.fc3 = DeepSpeechFullyConnected(n_hidden, n_hidden, relu_max_clip)
        self.bi_rnn = nn.RNN(n_hidden, n_hidden, num_layers=1, nonlinearity="relu",
                             bidirectional=True)
        self.fc4 = DeepSpeechFullyConnected(n_hidden, n_hidden, relu_max_clip)
        self.out = nn.Linear(n_hidden, n_class)

    def forward(self, x):
        x = self.fc3(self.fc2(self.fc1(x)))      # (N, 1, T, H)
        x = x.squeeze(1).transpose(0, 1)         # (T, N, H)
        x, _ = self.bi_rnn(x)
        x = x[:, :, :self.n_hidden] + x[:, :, self.n_hidden:]
        x = self.out(self.fc4(x)).permute(1, 0, 2)
        return nn.functional.log_softmax(x, dim=2)


#: zoo entries built from a module class of their own (forecasting libraries' patterns,
#: with torch alone) instead of Recurrent
MODULES = {
    "darts_rnnmodel_lstm": (DartsRNN, dict(cell="LSTM")),
    "darts_rnnmodel_gru_params": (DartsRNN, dict(cell="GRU", target_size=2, nr_params=3)),
    "darts_blockrnn_gru": (DartsBlockRNN, dict(cell="GRU")),
    "darts_blockrnn_lstm": (DartsBlockRNN, dict(cell="LSTM", hidden_fc_sizes=())),
    "neuralforecast_lstm": (NeuralForecastRNN, dict(cell="LSTM")),
    "neuralforecast_gru": (NeuralForecastRNN, dict(cell="GRU")),
    "torchaudio_deepspeech": (DeepSpeech, dict()),
    # a small clip, so that the clip is reached by many values, not just in principle
    "deepspeech_clip_reached": (DeepSpeech, dict(relu_max_clip=0.3)),
}
#: modules that take (batch, 1, time, features): DeepSpeech's channel axis
CHANNEL_INPUT = {"torchaudio_deepspeech", "deepspeech_clip_reached"}

ZOO: Dict[str, dict] = {
    "lstm_batch_first": dict(cell="LSTM"),
    "lstm_time_major": dict(cell="LSTM", batch_first=False),
    "lstm_2layer_last_softmax": dict(cell="LSTM", layers=2, last="index", head=True,
                                     activation="softmax"),
    "lstm_bidirectional_head": dict(cell="LSTM", bidirectional=True, head=True,
                                    activation="log_softmax"),
    "lstm_bidir_2layer_last": dict(cell="LSTM", layers=2, bidirectional=True, last="index",
                                   head=True, activation="sigmoid"),
    "lstm_state_io": dict(cell="LSTM", layers=2, state_io=True, head=True,
                          activation="tanh"),
    "lstm_h_n_head": dict(cell="LSTM", layers=2, last="h_n", head=True, activation="relu"),
    "lstm_normalize_relu_head": dict(cell="LSTM", normalize=True, pre_activation="relu",
                                     head=True),
    "gru": dict(cell="GRU", head=True),
    "gru_bidirectional_time_major": dict(cell="GRU", bidirectional=True, batch_first=False,
                                         last="index", head=True, activation="softmax"),
    "gru_state_io": dict(cell="GRU", layers=2, state_io=True),
    "gru_h_n_head": dict(cell="GRU", last="h_n", head=True),
    "rnn_tanh": dict(cell="RNN", layers=2, head=True),
    "rnn_relu_bidirectional": dict(cell="RNN", nonlinearity="relu", bidirectional=True,
                                   last="index", head=True),
    "lstm_no_bias": dict(cell="LSTM", bias=False, head=True),
}
ZOO.update({name: {"module": name} for name in MODULES})


def build(name: str, seed: int = 0) -> Tuple[nn.Module, tuple, list, list]:
    """The module (eval mode), example inputs, input names and output names."""
    spec = ZOO[name]
    torch.manual_seed(seed)
    if "module" in spec:
        cls, kwargs = MODULES[name]
        shape = (2, 1, 5, FEATURES) if name in CHANNEL_INPUT else (2, 5, FEATURES)
        return cls(**kwargs).eval(), (torch.randn(*shape),), ["x"], ["y"]
    module = Recurrent(**spec).eval()
    batch_first = spec.get("batch_first", True)
    x = torch.randn(2, 5, FEATURES) if batch_first else torch.randn(5, 2, FEATURES)
    inputs, names = (x,), ["x"]
    if spec.get("state_io"):
        rows = spec.get("layers", 1) * (2 if spec.get("bidirectional") else 1)
        inputs += (torch.randn(rows, 2, HIDDEN),)
        names.append("h0")
        if spec["cell"] == "LSTM":
            inputs += (torch.randn(rows, 2, HIDDEN),)
            names.append("c0")
    outputs = ["y"] + (["hn", "cn"] if spec.get("state_io") and spec["cell"] == "LSTM" else
                       ["hn"] if spec.get("state_io") else [])
    return module, inputs, names, outputs


def export(name: str, dynamo: bool) -> bytes:
    """The ONNX bytes of zoo entry `name`, with dynamic batch and time axes."""
    module, inputs, names, outputs = build(name)
    batch_first = ZOO[name].get("batch_first", True)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            B, T = torch.export.Dim("batch", min=2), torch.export.Dim("time", min=2)
            shapes = {"x": {0: B, 2: T} if name in CHANNEL_INPUT else
                      {0: B, 1: T} if batch_first else {0: T, 1: B}}
            for state in names[1:]:
                shapes[state] = {1: B}
            program = torch.onnx.export(module, inputs, dynamo=True, input_names=names,
                                        output_names=outputs,
                                        dynamic_shapes={k: shapes[k] for k in names},
                                        verbose=False)
            return program.model_proto.SerializeToString()
        axes = {"x": {0: "batch", 2: "time"} if name in CHANNEL_INPUT else
                {0: "batch", 1: "time"} if batch_first else {0: "time", 1: "batch"}}
        for state in names[1:]:
            axes[state] = {1: "batch"}
        torch.onnx.export(module, inputs, buffer, dynamo=False, input_names=names,
                          output_names=outputs, dynamic_axes=axes)
    return buffer.getvalue()
