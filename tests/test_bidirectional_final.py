"""Bidirectional layers with output="final": one vector per sequence, [forward h at its last
step, reverse h at its first], as Keras' Bidirectional(return_sequences=False) and torch's
torch.cat([h_n[0], h_n[1]], -1) give it; against torch (packed sequences for lengths), the
float64 reference, through a Dense head, int8, and the file format."""
import numpy as np
import pytest

import lstmlite as ll
import lstmlite.format as FORMAT
import factories as F
import filetools as FT
import reference as R
from conftest import assert_close

torch = pytest.importorskip("torch")

I, H = 6, 9


def _from_torch(module, kind):
    def get(name):
        return np.stack([getattr(module, f"{name}_l0{s}").detach().numpy()
                         for s in ("", "_reverse")])
    args = (get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"))
    layer = {"lstm": ll.LSTM, "gru": ll.GRU}.get(kind)
    if layer is not None:
        return layer(*args, direction="bidirectional", output="final")
    return ll.RNN(*args, nonlinearity=module.nonlinearity, direction="bidirectional",
                  output="final")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_final_equals_torchs_final_states_with_lengths(kind):
    torch.manual_seed(7)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](
        I, H, batch_first=True, bidirectional=True)
    head = torch.nn.Linear(2 * H, 4)
    model = ll.Model([_from_torch(module, kind),
                      ll.Dense(head.weight.detach().numpy(), head.bias.detach().numpy())])
    X = np.random.default_rng(1).standard_normal((4, 10, I)).astype(np.float32)
    lengths = np.array([10, 3, 7, 1])
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(X), lengths,
                                                         batch_first=True,
                                                         enforce_sorted=False)
        _, state = module(packed)
        h_n = state[0] if kind == "lstm" else state
        expected = head(torch.cat([h_n[0], h_n[1]], -1)).numpy()
        _, state = module(torch.from_numpy(X))
        h_n = state[0] if kind == "lstm" else state
        whole = head(torch.cat([h_n[0], h_n[1]], -1)).numpy()
    assert_close(model.run(X, sequence_lengths=lengths)[:, 0], expected, atol=1e-5, rtol=1e-5)
    Y = model.run(X)
    assert Y.shape == (4, 1, 4)
    assert_close(Y[:, 0], whole, atol=1e-5, rtol=1e-5)
    assert model.run(X[0]).shape == (1, 4)  # unbatched: (T, I) -> (1, O)


def test_final_against_the_float64_reference_and_in_int8(rng):
    layer = F.gru(rng, I, H, direction="bidirectional")
    final = ll.GRU(*(layer.arrays()[k] for k in ("weight_ih", "weight_hh", "bias_ih",
                                                 "bias_hh")),
                   direction="bidirectional", output="final")
    X = rng.standard_normal((3, 8, I)).astype(np.float32)
    lengths = np.array([8, 5, 2])
    head = F.dense(rng, 2 * H, 3, "tanh")
    expected, _ = R.run_model(ll.Model([final, head]), X, lengths=lengths)
    assert expected.shape == (3, 1, 3)
    assert_close(ll.Model([final, head]).run(X, sequence_lengths=lengths), expected)
    q = ll.Model([final]).quantize("int8")
    sequence8 = ll.Model([layer]).quantize("int8").run(X, sequence_lengths=lengths)
    expected8 = np.stack([np.concatenate([sequence8[b, n - 1, :H], sequence8[b, 0, H:]])
                          for b, n in enumerate(lengths)])
    np.testing.assert_array_equal(q.run(X, sequence_lengths=lengths)[:, 0], expected8)


def test_final_round_trips_through_the_file_and_old_files_are_unchanged(rng, tmp_path):
    layer = F.lstm(rng, I, H, direction="bidirectional")
    arrays = [layer.arrays()[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    final = ll.Model([ll.LSTM(*arrays, direction="bidirectional", output="final"),
                      F.dense(rng, 2 * H, 3, "softmax")])
    final.save(tmp_path / "f.lstm")
    loaded = ll.load(tmp_path / "f.lstm")
    assert loaded.layers[0].output == "final"
    X = rng.standard_normal((2, 6, I)).astype(np.float32)
    np.testing.assert_array_equal(loaded.run(X), final.run(X))
    assert "output=final" in loaded.summary()
    # a layer with the default output writes no "output" key: files stay as they were
    plain = ll.Model([ll.LSTM(*arrays, direction="bidirectional")])
    assert b'"output"' not in FORMAT.encode(plain)
    assert b'"output":1' in FORMAT.encode(final)


def test_bad_values_are_refused(rng, tmp_path):
    layer = F.gru(rng, I, H)
    arrays = [layer.arrays()[k] for k in ("weight_ih", "weight_hh")]
    with pytest.raises(ll.ModelError, match="output='final' is for bidirectional layers"):
        ll.GRU(*arrays, output="final")
    with pytest.raises(ll.ModelError, match="output must be one of"):
        ll.GRU(*arrays, output="last")
    fields, manifest, data = FT.split(FORMAT.encode(ll.Model([
        F.gru(rng, I, H, direction="bidirectional")])))
    manifest["layers"][0]["output"] = 7
    with pytest.raises(ll.FormatError, match=r"layers\[0\].output: expected 0 \(sequence\) "
                                             r"or 1 \(final\), found 7"):
        FORMAT.loads(FT.join(fields, manifest, data))
    manifest["layers"][0]["output"] = 1
    manifest["layers"][0]["direction"] = 0
    with pytest.raises(ll.FormatError, match="output='final' is for bidirectional layers"):
        FORMAT.loads(FT.join(fields, manifest, data))
