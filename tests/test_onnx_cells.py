"""An LSTM step written out as ops (converters/onnx_cells.py): torch's nn.LSTMCell through both
ONNX exporters, silero-vad's stacked state, any gate order, checked against onnxruntime on the
original graph (convert_onnx's verification, 1e-5) and against the LSTM formula on random
inputs; what only looks like one is left alone, and what cannot be told apart is refused
saying why."""
import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from lstmlite import ConversionError  # noqa: E402
from lstmlite.converters import convert_onnx, run_signature  # noqa: E402


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def cell_graph(rng, I=5, H=4, order="ifgo", stacked=True, activation="Tanh", peephole=False):
    """x (B, I) and a state -> y, the new state: gates = x W_ih^T + b_ih + h W_hh^T + b_hh
    split in `order`, silero-vad's way (state (2, B, H) gathered) or torch's (h, c inputs)."""
    w_ih = rng.standard_normal((4 * H, I)).astype(np.float32) * 0.5
    w_hh = rng.standard_normal((4 * H, H)).astype(np.float32) * 0.5
    b_ih = rng.standard_normal(4 * H).astype(np.float32) * 0.3
    b_hh = rng.standard_normal(4 * H).astype(np.float32) * 0.3
    nodes, inits = [], [numpy_helper.from_array(w_ih, "w_ih"),
                        numpy_helper.from_array(w_hh, "w_hh"),
                        numpy_helper.from_array(b_ih, "b_ih"),
                        numpy_helper.from_array(b_hh, "b_hh")]
    if stacked:
        inits += [numpy_helper.from_array(np.array(0, np.int64), "zero"),
                  numpy_helper.from_array(np.array(1, np.int64), "one")]
        nodes += [helper.make_node("Gather", ["state", "zero"], ["h"], axis=0),
                  helper.make_node("Gather", ["state", "one"], ["c"], axis=0)]
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", I]),
                  helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "B", H])]
    else:
        inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", d])
                  for n, d in (("x", I), ("h", H), ("c", H))]
    names = {gate: f"gate_{gate}" for gate in order}
    nodes += [helper.make_node("Gemm", ["h", "w_hh", "b_hh"], ["hp"], transB=1),
              helper.make_node("Gemm", ["x", "w_ih", "b_ih"], ["xp"], transB=1),
              helper.make_node("Add", ["hp", "xp"], ["gates"]),
              helper.make_node("Split", ["gates"], [names[g] for g in order], axis=1,
                               num_outputs=4, name="gate_split")]
    for gate in order:
        op = activation if gate == "g" else "Sigmoid"
        nodes.append(helper.make_node(op, [names[gate]], [f"act_{gate}"]))
    c_term = "c"
    if peephole:     # f also sees c: not an LSTM of ONNX's plain kind
        nodes.append(helper.make_node("Mul", ["c", "c"], ["cc"]))
        c_term = "cc"
    nodes += [helper.make_node("Mul", ["act_f", c_term], ["fc"]),
              helper.make_node("Mul", ["act_i", "act_g"], ["ig"]),
              helper.make_node("Add", ["fc", "ig"], ["c_new"]),
              helper.make_node("Tanh", ["c_new"], ["tc"]),
              helper.make_node("Mul", ["act_o", "tc"], ["h_new"]),
              helper.make_node("Relu", ["h_new"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", H])]
    if stacked:
        inits.append(numpy_helper.from_array(np.array([0], np.int64), "axis0"))
        nodes += [helper.make_node("Unsqueeze", ["h_new", "axis0"], ["h1"]),
                  helper.make_node("Unsqueeze", ["c_new", "axis0"], ["c1"]),
                  helper.make_node("Concat", ["h1", "c1"], ["stateN"], axis=0)]
        outputs.append(helper.make_tensor_value_info("stateN", TensorProto.FLOAT,
                                                     [2, "B", H]))
    else:
        nodes += [helper.make_node("Identity", ["h_new"], ["hn"]),
                  helper.make_node("Identity", ["c_new"], ["cn"])]
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", H])
                    for n in ("hn", "cn")]
    graph = helper.make_graph(nodes, "cell", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                             ir_version=8), (w_ih, w_hh, b_ih, b_hh)


@pytest.mark.parametrize("order", ["ifgo", "iofg", "gfoi"])
@pytest.mark.parametrize("stacked", [True, False])
def test_an_lstm_step_written_out_is_an_lstm(rng, order, stacked):
    model, (w_ih, w_hh, b_ih, b_hh) = cell_graph(rng, order=order, stacked=stacked)
    conversion = convert_onnx(model.SerializeToString(), tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()
    assert [type(l).__name__ for l in conversion.model.layers] == ["LSTM", "Elementwise"]
    assert any("compute one LSTM step with hidden size 4" in n for n in conversion.notes)
    # the steps, by the formula, with the state fed back as the graph's caller does
    x = rng.standard_normal((6, 2, 5)).astype(np.float32)
    h = np.zeros((2, 4)), np.zeros((2, 4))
    hs, (h, c) = [], h
    for t in range(6):
        gates = x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        block = dict(zip(order, np.split(gates, 4, axis=1)))
        c = _sigmoid(block["f"]) * c + _sigmoid(block["i"]) * np.tanh(block["g"])
        h = _sigmoid(block["o"]) * np.tanh(c)
        hs.append(np.maximum(h, 0))
    np.testing.assert_allclose(conversion.model.run(x.transpose(1, 0, 2)),
                               np.stack(hs, axis=1), atol=1e-5)


def test_what_only_looks_like_an_lstm_is_left_alone(rng):
    """A Relu for the candidate (the wiring differs): left alone, and refused as a cell
    written out; gates split 3, 5, 4, 4 (the wiring is an LSTM's, the numbers cannot be:
    the check on random inputs finds the ops do not even evaluate)."""
    model, _ = cell_graph(rng, activation="Relu")
    with pytest.raises(ConversionError, match="written out as"):
        convert_onnx(model.SerializeToString())
    model, _ = cell_graph(rng)
    split = next(n for n in model.graph.node if n.op_type == "Split")
    del split.attribute[:]
    split.attribute.append(helper.make_attribute("axis", 1))
    split.input.append("sizes")
    model.graph.initializer.append(numpy_helper.from_array(np.array([3, 5, 4, 4], np.int64),
                                                           "sizes"))
    with pytest.raises(ConversionError, match="look like an LSTM step written out, but they "
                                              "do not evaluate on their own"):
        convert_onnx(model.SerializeToString(), verify=False)


def test_a_cell_whose_state_is_computed_is_refused_where_it_is(rng):
    """c * c for c (a peephole-like term): the cell is an LSTM of that value, and the Mul of
    two computed values is what lstmlite refuses, naming it."""
    model, _ = cell_graph(rng, peephole=True)
    with pytest.raises(ConversionError, match="node 'cc' \\(Mul\\): Mul of two computed"):
        convert_onnx(model.SerializeToString())


def test_x_and_h_that_cannot_be_told_apart_are_refused_saying_so(rng):
    model, _ = cell_graph(rng, I=4, H=4, stacked=False)
    with pytest.raises(ConversionError, match="wired like an LSTM step, but both products' "
                                              "weights are \\(16, 4\\).*cannot be told"):
        convert_onnx(model.SerializeToString())


@pytest.mark.parametrize("dynamo", [False, True])
def test_torch_lstm_cell_exports_convert(rng, dynamo):
    torch = pytest.importorskip("torch")

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTMCell(12, 16)
            self.out = torch.nn.Linear(16, 3)

        def forward(self, x, h, c):
            h, c = self.rnn(x, (h, c))
            return torch.softmax(self.out(h), -1), h, c

    torch.manual_seed(0)
    module = Step().eval()
    args = (torch.zeros(2, 12), torch.zeros(2, 16), torch.zeros(2, 16))
    names = dict(input_names=["x", "h", "c"], output_names=["y", "hn", "cn"])
    buffer = io.BytesIO()
    if dynamo:
        program = torch.onnx.export(module, args, dynamo=True, **names)
        buffer.write(program.model_proto.SerializeToString())
    else:
        torch.onnx.export(module, args, buffer, dynamo=False, **names,
                          dynamic_axes={n: {0: "B"} for n in ("x", "h", "c")})
    conversion = convert_onnx(buffer.getvalue(), tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()
    x = rng.standard_normal((2, 12)).astype(np.float32)
    h0 = rng.standard_normal((2, 16)).astype(np.float32)
    c0 = rng.standard_normal((2, 16)).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in module(torch.from_numpy(x), torch.from_numpy(h0),
                                              torch.from_numpy(c0))]
    got = run_signature(conversion.model, conversion.signature, {"x": x, "h": h0, "c": c0})
    for name, value in zip(("y", "hn", "cn"), expected):
        np.testing.assert_allclose(got[name], value, atol=1e-5)
