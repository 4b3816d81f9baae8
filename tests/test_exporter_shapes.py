"""Every shape torch's two ONNX exporters write for a stacked or bidirectional recurrent
network, as users call them: static or dynamic axes, a one-frame or a multi-frame example,
batch 1 or several. Each conversion is verified against onnxruntime on the exported graph's
own shapes, then the converted model is compared with the PyTorch module on a longer sequence
(the converted model runs at any length and batch, whatever the example baked in)."""
import contextlib
import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from lstmlite.converters import convert_onnx  # noqa: E402

FEATURES, HIDDEN, CLASSES = 5, 8, 3


class Stacked(torch.nn.Module):
    """A 2-layer recurrent network, batch first, with a linear head at every step."""

    def __init__(self, cell: str, bidirectional: bool):
        super().__init__()
        kind = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[cell]
        self.rnn = kind(FEATURES, HIDDEN, num_layers=2, batch_first=True,
                        bidirectional=bidirectional)
        self.head = torch.nn.Linear(HIDDEN * (2 if bidirectional else 1), CLASSES)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y)


AXES = {"static": None, "time": {"x": {1: "time"}}, "batch+time": {"x": {0: "b", 1: "time"}}}


def export(module, example, dynamo: bool, axes) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(module, (example,), dynamo=True, input_names=["x"],
                                        dynamic_axes=axes, optimize=True)
            return program.model_proto.SerializeToString()
        torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["x"],
                          dynamic_axes=axes)
    return buffer.getvalue()


def setups():
    """(dynamo, example (B, T), axes) as users call the exporters. torch.export itself refuses
    a dynamic time axis on a multi-frame example of nn.LSTM/GRU (it infers the length as a
    constant: "conflicts between user-specified ranges and inferred ranges"), so those are
    not setups a user can reach; on a one-frame example it specialises the size-1 axes
    instead, and the graph runs only at that size (verification says so and runs there)."""
    for dynamo in (False, True):
        for example in ((1, 1), (1, 6), (3, 1), (3, 6)):
            for axes in sorted(AXES):
                if dynamo and example[1] > 1 and axes != "static":
                    continue
                yield pytest.param(dynamo, example, axes, id=f"{'dynamo' if dynamo else 'ts'}"
                                                             f"-B{example[0]}T{example[1]}-{axes}")


@pytest.mark.parametrize("dynamo,example,axes", list(setups()))
@pytest.mark.parametrize("cell,bidirectional", [("LSTM", False), ("GRU", False),
                                                ("LSTM", True)],
                         ids=["lstm", "gru", "bilstm"])
def test_exporter_shape_converts_and_matches_torch(cell, bidirectional, dynamo, example, axes):
    torch.manual_seed(0)
    module = Stacked(cell, bidirectional).eval()
    data = export(module, torch.randn(*example, FEATURES), dynamo, AXES[axes])
    conversion = convert_onnx(data, tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()
    X = np.random.default_rng(1).standard_normal((2, 9, FEATURES)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(conversion.model.run(X), expected, atol=1e-5, rtol=1e-5)


class Packed(torch.nn.Module):
    """pack_padded_sequence -> LSTM -> pad_packed_sequence, batch first."""

    def __init__(self, enforce_sorted: bool):
        super().__init__()
        self.rnn = torch.nn.LSTM(FEATURES, HIDDEN, batch_first=True)
        self.enforce_sorted = enforce_sorted

    def forward(self, x, lengths):
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
        packed = pack_padded_sequence(x, lengths, batch_first=True,
                                      enforce_sorted=self.enforce_sorted)
        y, _ = self.rnn(packed)
        return pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])[0]


def _export_packed(enforce_sorted: bool) -> bytes:
    torch.manual_seed(0)
    module = Packed(enforce_sorted).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(3, 7, FEATURES), torch.tensor([7, 5, 2])),
                          buffer, dynamo=False, input_names=["x", "lengths"],
                          dynamic_axes={"x": {0: "b", 1: "t"}, "lengths": {0: "b"}})
    return module, buffer.getvalue()


def test_packed_sequences_convert_and_take_lengths_in_any_order():
    from lstmlite.converters import run_signature
    module, data = _export_packed(True)
    conversion = convert_onnx(data, tolerance=1e-5)
    X = np.random.default_rng(2).standard_normal((3, 9, FEATURES)).astype(np.float32)
    lengths = np.array([4, 9, 6])                   # unsorted: torch needs enforce_sorted=False
    ours = run_signature(conversion.model, conversion.signature, {"x": X, "lengths": lengths})
    reference = Packed(False)
    reference.load_state_dict(module.state_dict())
    with torch.no_grad():
        expected = reference.eval()(torch.from_numpy(X), torch.from_numpy(lengths)).numpy()
    np.testing.assert_allclose(next(iter(ours.values())), expected, atol=1e-5, rtol=1e-5)


class PackedUnsorted(torch.nn.Module):
    """pack_padded_sequence(enforce_sorted=False) -> a recurrent layer -> pad_packed_sequence,
    optionally returning h_n too (which torch unsorts as well)."""

    def __init__(self, kind: str, batch_first: bool, bidirectional: bool, num_layers: int,
                 return_state: bool):
        super().__init__()
        self.rnn = getattr(torch.nn, kind)(FEATURES, HIDDEN, batch_first=batch_first,
                                           bidirectional=bidirectional, num_layers=num_layers)
        self.batch_first, self.return_state = batch_first, return_state

    def forward(self, x, lengths):
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
        packed = pack_padded_sequence(x, lengths, batch_first=self.batch_first,
                                      enforce_sorted=False)
        y, state = self.rnn(packed)
        total = x.shape[1] if self.batch_first else x.shape[0]
        y = pad_packed_sequence(y, batch_first=self.batch_first, total_length=total)[0]
        if self.return_state:
            return y, (state[0] if isinstance(state, tuple) else state)
        return y


@pytest.mark.parametrize("kind,batch_first,bidirectional,num_layers,return_state", [
    ("LSTM", True, False, 1, False), ("LSTM", False, False, 1, True),
    ("GRU", True, True, 1, False), ("RNN", True, False, 2, True),
    ("LSTM", True, True, 2, True)])
def test_packed_sequences_sorted_in_the_graph_convert(kind, batch_first, bidirectional,
                                                       num_layers, return_state):
    """The sort and unsort of enforce_sorted=False are inverse permutations of the batch: the
    conversion drops them and matches torch on lengths in an order torch must sort."""
    from lstmlite.converters import run_signature
    torch.manual_seed(3)
    module = PackedUnsorted(kind, batch_first, bidirectional, num_layers, return_state).eval()
    example = torch.randn(3, 7, FEATURES) if batch_first else torch.randn(7, 3, FEATURES)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = ["y", "h_n"] if return_state else ["y"]
        axes = {"x": {0: "b", 1: "t"} if batch_first else {0: "t", 1: "b"}, "lengths": {0: "b"}}
        torch.onnx.export(module, (example, torch.tensor([7, 5, 2])), buffer, dynamo=False,
                          input_names=["x", "lengths"], output_names=names, dynamic_axes=axes)
    conversion = convert_onnx(buffer.getvalue(), tolerance=1e-5)
    assert conversion.report.passed and any("enforce_sorted=False" in note
                                            for note in conversion.notes)
    X = np.random.default_rng(2).standard_normal((4, 9, FEATURES)).astype(np.float32)
    if not batch_first:
        X = np.ascontiguousarray(X.transpose(1, 0, 2))
    lengths = np.array([4, 9, 6, 1])
    ours = run_signature(conversion.model, conversion.signature, {"x": X, "lengths": lengths})
    with torch.no_grad():
        expected = module(torch.from_numpy(X), torch.from_numpy(lengths))
    expected = expected if isinstance(expected, tuple) else (expected,)
    for name, want in zip(names, expected):
        np.testing.assert_allclose(ours[name], want.numpy(), atol=1e-5, rtol=1e-5,
                                   err_msg=name)


def test_a_sort_of_part_of_the_batch_is_not_undone():
    """TopK with a k other than the lengths' own count orders only part of the batch: not a
    permutation, so the rewrite leaves it and the converter refuses the reordering."""
    import onnx
    from lstmlite import ConversionError
    _, data = _export_packed(False)
    model = onnx.load_from_string(data)
    topk = next(node for node in model.graph.node if node.op_type == "TopK")
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([2], np.int64),
                                                                "two"))
    topk.input[1] = "two"
    with pytest.raises(ConversionError, match="reorders the sequence by indices computed from "
                                              "graph input 'lengths'"):
        convert_onnx(model)


def test_a_sort_used_for_anything_else_is_still_refused():
    """The rewrite needs the whole pattern; sorted lengths that the graph also outputs leave
    the sort in place, and the converter refuses it saying how to export instead."""
    import onnx
    from lstmlite import ConversionError
    _, data = _export_packed(False)
    model = onnx.load_from_string(data)
    topk = next(node for node in model.graph.node if node.op_type == "TopK")
    model.graph.output.append(onnx.helper.make_tensor_value_info(topk.output[0],
                                                                 onnx.TensorProto.INT64, ["b"]))
    with pytest.raises(ConversionError, match="reorders the sequence by indices computed from "
                                              "graph input 'lengths'.*export with "
                                              "enforce_sorted=True"):
        convert_onnx(model)


class FlatHead(torch.nn.Module):
    """A recurrent layer whose output is flattened to (batch x time, hidden) before the head,
    as many training scripts write it for a per-frame loss."""

    def __init__(self, batch_first: bool):
        super().__init__()
        self.rnn = torch.nn.GRU(FEATURES, HIDDEN, batch_first=batch_first)
        self.head = torch.nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y.reshape(-1, y.shape[-1]))


@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.parametrize("batch_first", [True, False])
def test_time_and_batch_flattened_in_the_output_with_a_static_batch_of_one(dynamo,
                                                                            batch_first):
    """(1, T, H) flattened to (T, H) is the time axis itself: it converts, and runs at another
    length as the module does."""
    torch.manual_seed(4)
    module = FlatHead(batch_first).eval()
    example = torch.randn(1, 6, FEATURES) if batch_first else torch.randn(6, 1, FEATURES)
    time_axis = 1 if batch_first else 0
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (example,), buffer, dynamo=True, input_names=["x"],
                              dynamic_shapes=({time_axis: torch.export.Dim("t")},))
        else:
            torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {time_axis: "t"},
                                                                "y": {0: "t"}})
    conversion = convert_onnx(buffer.getvalue(), tolerance=1e-5)
    assert conversion.report.passed
    X = np.random.default_rng(5).standard_normal((1, 11, FEATURES)).astype(np.float32)
    if not batch_first:
        X = np.ascontiguousarray(X.transpose(1, 0, 2))
    from lstmlite.converters import run_signature
    ours = run_signature(conversion.model, conversion.signature, {"x": X})
    with torch.no_grad():
        expected = module(torch.from_numpy(X)).numpy()
    (name, value), = ours.items()
    assert value.shape == expected.shape == (11, CLASSES)
    np.testing.assert_allclose(value, expected, atol=1e-5, rtol=1e-5)


def test_time_and_batch_flattened_with_a_dynamic_batch_is_refused():
    from lstmlite import ConversionError
    module = FlatHead(True).eval()
    data = export(module, torch.randn(2, 6, FEATURES), False, {"x": {0: "b", 1: "t"}})
    with pytest.raises(ConversionError, match="has its time and batch axes flattened into one "
                                              ".* unless one of them has a static size of 1"):
        convert_onnx(data)
