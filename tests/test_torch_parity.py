"""End to end against PyTorch: the builder API fed the weights of seeded torch modules (the
PyTorch importer arrives separately; this checks the engine's convention is PyTorch's)."""
import numpy as np
import pytest

import lstmlite as ll
from conftest import assert_close

torch = pytest.importorskip("torch")


def _layers_from(module, kind):
    layers = []
    suffixes = [""] + (["_reverse"] if module.bidirectional else [])
    for k in range(module.num_layers):
        def get(name):
            arrays = [getattr(module, f"{name}_l{k}{s}", None) for s in suffixes]
            if arrays[0] is None:
                return None
            arrays = [a.detach().numpy() for a in arrays]
            return np.stack(arrays) if module.bidirectional else arrays[0]
        direction = "bidirectional" if module.bidirectional else "forward"
        args = (get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"))
        if kind == "lstm":
            layers.append(ll.LSTM(*args, weight_hr=get("weight_hr"), direction=direction))
        elif kind == "gru":
            layers.append(ll.GRU(*args, direction=direction))
        else:
            layers.append(ll.RNN(*args, nonlinearity=module.nonlinearity, direction=direction))
    return layers


CASES = [
    ("lstm", dict(input_size=13, hidden_size=29, num_layers=2)),
    ("lstm", dict(input_size=13, hidden_size=29, num_layers=2, proj_size=11)),
    ("lstm", dict(input_size=7, hidden_size=10, bidirectional=True, num_layers=2)),
    ("lstm", dict(input_size=7, hidden_size=10, bidirectional=True, proj_size=4, bias=False)),
    ("gru", dict(input_size=13, hidden_size=21, num_layers=3)),
    ("gru", dict(input_size=5, hidden_size=9, bidirectional=True)),
    ("rnn", dict(input_size=5, hidden_size=9, nonlinearity="relu", num_layers=2)),
    ("rnn", dict(input_size=5, hidden_size=9, bidirectional=True)),
]


@pytest.mark.parametrize("kind,options", CASES, ids=lambda v: str(v))
def test_matches_torch(kernels, kind, options):
    torch.manual_seed(sum(map(ord, repr(options))))
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    module = cls(batch_first=True, **options).eval()
    width = options.get("proj_size") or options["hidden_size"]
    head = torch.nn.Linear(width * (2 if module.bidirectional else 1), 4)
    X = torch.randn(3, 40, options["input_size"]) * 3
    with torch.no_grad():
        seq, _ = module(X)
        expected = torch.log_softmax(head(seq), dim=-1).numpy()
    model = ll.Model(_layers_from(module, kind) + [
        ll.Dense(head.weight.detach().numpy(), head.bias.detach().numpy(), "log_softmax")])
    assert_close(model.run(X.numpy()), expected, what=f"{kind} {options}")
    if model.streamable:
        stream = model.stream(batch=3)
        stepped = np.stack([stream.step(np.ascontiguousarray(X[:, t].numpy())).copy()
                            for t in range(40)], axis=1)
        assert_close(stepped, expected, what="streamed")


def test_lstm_cell_and_state_layout_match_torch():
    torch.manual_seed(0)
    module = torch.nn.LSTM(6, 8, num_layers=2, batch_first=True)
    X = torch.randn(2, 12, 6)
    h0, c0 = torch.randn(2, 2, 8), torch.randn(2, 2, 8)
    with torch.no_grad():
        out, (hn, cn) = module(X, (h0, c0))
    model = ll.Model(_layers_from(module, "lstm"))
    initial = [(h0[k:k + 1].numpy(), c0[k:k + 1].numpy()) for k in range(2)]
    Y, state = model.run(X.numpy(), initial_state=initial, return_state=True)
    assert_close(Y, out.numpy())
    for k in range(2):
        assert_close(state[k][0], hn[k:k + 1].numpy())
        assert_close(state[k][1], cn[k:k + 1].numpy())
