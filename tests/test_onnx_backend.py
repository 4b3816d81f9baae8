"""ONNX's own backend node tests for LSTM, GRU and RNN, converted and run by lstmlite.

Each case's graph takes W, R, B and P as graph inputs; they become initializers (a converter
needs weights as constants), X, sequence_lens and the initial states stay graph inputs and
map onto run() through the signature. Outputs must match ONNX's expected values within
1e-5 (absolute and relative)."""
import os
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

from lstmlite.converters import convert_onnx, run_signature  # noqa: E402

HERE = os.path.dirname(__file__)
CHECKED_IN = [line.strip() for line in
              open(os.path.join(HERE, "data", "onnx_backend_recurrent_cases.txt"))
              if line.strip() and not line.startswith("#")]
WEIGHT_INPUTS = ("W", "R", "B", "P")
TOLERANCE = 1e-5


def _collect():
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    return {case.name: case for case in cases
            if any(node.op_type in ("LSTM", "GRU", "RNN") for node in case.model.graph.node)}


CASES = _collect()


def test_the_checked_in_list_is_onnx_s_list():
    assert sorted(CASES) == sorted(CHECKED_IN)


def _with_weights_as_initializers(case):
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    inputs, expected = case.data_sets[0]
    names = [i.name for i in model.graph.input]
    feeds = {}
    kept = []
    for value_info, array in zip(list(model.graph.input), inputs):
        if value_info.name in WEIGHT_INPUTS:
            model.graph.initializer.append(numpy_helper.from_array(array, value_info.name))
        else:
            kept.append(value_info)
            feeds[value_info.name] = array
    del model.graph.input[:]
    model.graph.input.extend(kept)
    outputs = {o.name: e for o, e in zip(model.graph.output, expected)}
    assert len(names) == len(inputs)
    return model, feeds, outputs


@pytest.mark.parametrize("name", CHECKED_IN)
def test_backend_case(name):
    model, feeds, expected = _with_weights_as_initializers(CASES[name])
    conversion = convert_onnx(model, verify=False)
    actual = run_signature(conversion.model, conversion.signature, feeds)
    assert set(actual) == set(expected)
    for output, want in expected.items():
        got = actual[output]
        assert got.shape == want.shape, output
        np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE,
                                   err_msg=f"{name}: output {output}")


@pytest.mark.parametrize("name", CHECKED_IN)
def test_backend_case_verifies_against_a_reference(name):
    """The converter's own verification (onnxruntime, or onnx's reference evaluator for
    layout=1) agrees on the same graphs."""
    model, _, _ = _with_weights_as_initializers(CASES[name])
    report = convert_onnx(model, verify=True).report
    assert report.skipped is None and report.passed, report.lines()
