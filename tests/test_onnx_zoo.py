"""The zoo (tests/onnx_zoo.py): PyTorch networks exported with both of torch's ONNX exporters,
converted and compared with onnxruntime on the same inputs within 1e-5, and the converted
model compared with the PyTorch module itself."""
import contextlib
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from lstmlite import ConversionError  # noqa: E402
from lstmlite.converters import convert_onnx  # noqa: E402

import onnx_zoo  # noqa: E402

TOLERANCE = 1e-5
#: torch's dynamo exporter decomposes nn.RNN into per-step MatMuls (and fixes the length):
#: the converter must refuse those graphs, naming the cause.
UNROLLED_BY_DYNAMO = {"rnn_tanh", "rnn_relu_bidirectional", "torchaudio_deepspeech",
                      "deepspeech_clip_reached"}


def _export(name, dynamo):
    with contextlib.redirect_stdout(io.StringIO()):
        return onnx_zoo.export(name, dynamo)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", sorted(onnx_zoo.ZOO))
def test_zoo(name, dynamo):
    data = _export(name, dynamo)
    if dynamo and name in UNROLLED_BY_DYNAMO:
        with pytest.raises(ConversionError, match="unrolled the recurrence"):
            convert_onnx(data)
        return
    conversion = convert_onnx(data, tolerance=TOLERANCE)
    assert conversion.report.passed, conversion.report.lines()
    # and against the PyTorch module itself, every output
    module, inputs, names, outputs = onnx_zoo.build(name)
    from lstmlite.converters import run_signature
    feeds = {n: t.numpy() for n, t in zip(names, inputs)}
    ours = run_signature(conversion.model, conversion.signature, feeds)
    with torch.no_grad():
        theirs = module(*inputs)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    for output, value in zip(outputs, theirs):
        np.testing.assert_allclose(ours[output], value.numpy(), atol=TOLERANCE,
                                   rtol=TOLERANCE, err_msg=output)


def test_last_step_model_streams_the_head_at_every_step():
    data = _export("lstm_2layer_last_softmax", False)
    conversion = convert_onnx(data, tolerance=TOLERANCE)
    model = conversion.model
    X = np.random.default_rng(0).standard_normal((9, onnx_zoo.FEATURES)).astype(np.float32)
    Y = model.run(X)
    stream = model.stream()
    steps = np.stack([stream.step(x).copy() for x in X])
    np.testing.assert_array_equal(steps, Y)
    module, *_ = onnx_zoo.build("lstm_2layer_last_softmax")
    with torch.no_grad():
        last = module(torch.from_numpy(X[None]))[0].numpy()
    np.testing.assert_allclose(Y[-1], last, atol=TOLERANCE)
