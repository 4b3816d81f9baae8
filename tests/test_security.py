"""Hostile files, as an attacker would make them: no code runs, no file outside the model's
directory is read, nothing crashes, nothing allocates without bound.

Every hostile file is generated here; every payload only touches the test's temporary
directory (a marker file it would create), so a failure is visible and harmless. Memory
bounds are asserted in a child process under an address-space limit (RLIMIT_AS) set above
what the child has mapped once its imports are done.
"""
import io
import json
import os
import pathlib
import stat
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import lstmlite as ll
import factories as F

HERE = os.path.dirname(os.path.abspath(__file__))


def refusals_within(headroom_mb: int, imports: str, *calls: str) -> list:
    """Runs each call (a Python expression) in one child process whose address space may grow
    by `headroom_mb` beyond what it has mapped once `imports` are done: an allocation beyond
    that raises MemoryError there. Returns, per call, the message of the LstmliteError it
    raised; a call that raises nothing, or raises anything else, fails the test."""
    lines = ["import resource, sys", f"sys.path.insert(0, {HERE!r})", imports,
             "from lstmlite.errors import LstmliteError",
             "size = int(next(l for l in open('/proc/self/status') if l.startswith('VmSize'))"
             ".split()[1]) * 1024",
             f"limit = size + {headroom_mb} * 2 ** 20",
             "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))"]
    for call in calls:
        lines += ["try:", f"    {call}", "    print('no error')",
                  "except LstmliteError as exc:", "    print(str(exc).replace(chr(10), ' '))"]
    result = subprocess.run([sys.executable, "-c", "\n".join(lines)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    messages = result.stdout.splitlines()[-len(calls):]
    assert len(messages) == len(calls) and "no error" not in messages, result.stdout
    return messages


def one_line_error(result, *fragments, status=1):
    assert result.returncode == status, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "lstmlite", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


# ---- .lstm files --------------------------------------------------------------------------

@pytest.fixture
def model_file(tmp_path):
    rng = np.random.default_rng(3)
    model = ll.Model([F.lstm(rng, 4, 16), F.dense(rng, 16, 3)])
    path = tmp_path / "m.lstm"
    model.save(path)
    return model, path


def test_a_loaded_model_survives_truncation_and_rewrites_of_its_file(model_file):
    """Truncating a mapped file killed the process with SIGBUS; writing into it changed the
    validated weights. load() now reads the file once into its own buffer."""
    model, path = model_file
    code = f"""
        import numpy as np, lstmlite as ll
        path = {str(path)!r}
        model = ll.load(path)
        x = np.linspace(-1, 1, 4 * 6, dtype=np.float32).reshape(6, 4)
        before = model.run(x)
        stream = model.stream()
        with open(path, "r+b") as f:   # rewrite in place, then truncate
            f.seek(200); f.write(b"\\x7f" * 2000); f.truncate(100)
        after = model.run(x)
        steps = np.array([stream.step(row).copy() for row in x])
        assert np.array_equal(before, after) and np.array_equal(before, steps)
        print("ok")
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def _shared_int8_bomb(path, layers=400, size=256):
    """A small file whose `layers` Dense layers all name one int8 tensor (and its scale):
    dequantized per reference it took 878 MB to load."""
    import filetools as FT
    rng = np.random.default_rng(0)
    seed = ll.Model([F.dense(rng, size, size)]).quantize()
    seed.save(path)
    fields, manifest, data = FT.split(path.read_bytes())
    record = manifest["layers"][0]
    manifest["layers"] = [record] * layers
    path.write_bytes(FT.join(fields, manifest, data))


def test_a_tensor_shared_by_many_layers_is_refused_within_a_memory_bound(tmp_path):
    path = tmp_path / "bomb.lstm"
    _shared_int8_bomb(path)
    assert path.stat().st_size < 400_000
    messages = refusals_within(200, "import lstmlite as ll",
                               f"ll.load({str(path)!r})",
                               f"ll.load({str(path)!r}, compute='float32')")
    assert all("used 400 times" in message for message in messages), messages


def test_a_manifest_of_a_million_records_is_refused_before_parsing(model_file):
    import filetools as FT
    _, path = model_file
    fields, _, data = FT.split(path.read_bytes())
    raw = b'{"layers":[],"metadata":{},"tensors":[' + b",".join(
        [b'{"name":"t","dtype":0,"shape":[1],"offset":0,"size":4}'] * 10 ** 6) + b"]}"
    path.write_bytes(FT.join(fields, None, data, raw_manifest=raw))
    with pytest.raises(ll.FormatError, match=r"manifest_size\): \d+ bytes; this reader "
                                             r"accepts manifests of at most 4194304"):
        ll.load(path)


def test_a_sparse_terabyte_file_is_refused_before_allocating(tmp_path):
    path = tmp_path / "sparse.lstm"
    with open(path, "wb") as handle:
        handle.truncate(1 << 40)  # no disk space used
    with pytest.raises(ll.FormatError, match=r"has 1099511627776 bytes; this reader loads "
                                             r"files of at most 4294967296"):
        ll.load(path)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_only_regular_files_are_read(tmp_path, kind):
    """A FIFO blocked open() forever; a device or directory is refused at once too."""
    if kind == "fifo":
        path = tmp_path / "pipe.lstm"
        os.mkfifo(path)
        what = "a FIFO (named pipe)"
    elif kind == "directory":
        path = tmp_path / "dir.lstm"
        path.mkdir()
        what = "a directory"
    else:
        path, what = pathlib.Path(os.devnull), "a character device"
    with pytest.raises(ll.FormatError) as caught:
        ll.load(path)
    assert f"{path}: the .lstm file is {what}, expected a regular file" == str(caught.value)
    one_line_error(cli("info", path), what)
    one_line_error(cli("demo", "--model", path), what)
    one_line_error(cli("bench", path), what)


def test_sources_and_labels_must_be_regular_files(tmp_path):
    pytest.importorskip("onnx")
    from onnx_graphs import keras_style_lstm
    import onnx
    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)
    one_line_error(cli("convert", fifo, "-o", tmp_path / "out.lstm"),
                   "m.onnx: the model file is a FIFO (named pipe)")
    source = tmp_path / "k.onnx"
    onnx.save(keras_style_lstm("LSTM"), str(source))
    labels = tmp_path / "labels.txt"
    os.mkfifo(labels)
    one_line_error(cli("convert", source, "--labels", labels, "-o", tmp_path / "out.lstm"),
                   "labels.txt: the labels file is a FIFO")
    assert not (tmp_path / "out.lstm").exists()


def test_save_refuses_symlinks_and_special_files(model_file, tmp_path):
    model, path = model_file
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link.lstm"
    link.symlink_to(victim)
    with pytest.raises(ll.FormatError, match="exists and is a symbolic link"):
        model.save(link)
    assert link.is_symlink() and victim.read_text() == "keep me"
    fifo = tmp_path / "pipe.lstm"
    os.mkfifo(fifo)
    with pytest.raises(ll.FormatError, match="exists and is a FIFO"):
        model.save(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.lstm", "m.lstm", "pipe.lstm",
                                                          "victim.txt"]


def test_convert_output_must_be_a_regular_file_or_new(tmp_path):
    pytest.importorskip("onnx")
    import onnx
    from onnx_graphs import keras_style_lstm
    source = tmp_path / "k.onnx"
    onnx.save(keras_style_lstm("LSTM"), str(source))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "out.lstm"
    link.symlink_to(victim)
    one_line_error(cli("convert", source, "-o", link), "out.lstm: exists and is a symbolic link")
    one_line_error(cli("convert", source, "-o", os.devnull), "exists and is a character device")
    assert victim.read_text() == "keep me" and link.is_symlink()


def test_saved_files_get_the_mode_open_would_give(model_file, tmp_path):
    model, _ = model_file
    old = os.umask(0o027)
    try:
        fresh = tmp_path / "fresh.lstm"
        model.save(fresh)
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
        os.umask(0o022)
        model.save(tmp_path / "other.lstm")
        assert stat.S_IMODE((tmp_path / "other.lstm").stat().st_mode) == 0o644
        existing = tmp_path / "existing.lstm"
        existing.write_bytes(b"old")
        existing.chmod(0o604)
        model.save(existing)  # open(path, "w") keeps an existing file's mode
        assert stat.S_IMODE(existing.stat().st_mode) == 0o604
        assert ll.load(existing).layers[0].hidden_size == 16
    finally:
        os.umask(old)


def test_stream_batch_is_bounded(model_file):
    model, _ = model_file
    for batch in (2 ** 31, 2 ** 63, 0, -1, 1.0, True):
        with pytest.raises(ll.ModelError, match="batch must be an integer from 1 to 1048576"):
            model.stream(batch=batch)


# ---- PyTorch files ------------------------------------------------------------------------

torch = pytest.importorskip("torch")


class _Touch:
    """Unpickling this creates the marker file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


class _Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(3, 4, batch_first=True)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


@pytest.fixture(scope="module")
def program_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("pt2") / "program.pt2"
    torch.manual_seed(0)
    torch.export.save(torch.export.export(_Small().eval(), (torch.randn(1, 5, 3),)), str(path))
    return path.read_bytes()


def _rewrite(data: bytes, edit) -> bytes:
    """A copy of a zip archive with edit(records) applied to its {name: bytes}."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        records = {name: archive.read(name) for name in archive.namelist()}
    edit(records)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, payload in records.items():
            archive.writestr(name, payload)
    return out.getvalue()


def _record(records, suffix):
    return next(name for name in records if name.endswith(suffix))


def _pickled_weight(marker):
    def edit(records):
        config_name = _record(records, "data/weights/model_weights_config.json")
        config = json.loads(records[config_name])
        fqn, entry = next(iter(config["config"].items()))
        entry["use_pickle"] = True
        records[config_name] = json.dumps(config).encode()
        buffer = io.BytesIO()
        torch.save(_Touch(marker), buffer)
        records[_record(records, "data/weights/" + entry["path_name"])] = buffer.getvalue()
    return edit


def _pickled_sample_inputs(marker):
    def edit(records):
        buffer = io.BytesIO()
        torch.save(_Touch(marker), buffer)
        records[_record(records, "data/sample_inputs/model.pt")] = buffer.getvalue()
    return edit


def _program_edit(change):
    def edit(records):
        name = _record(records, "models/model.json")
        program = json.loads(records[name])
        change(program)
        records[name] = json.dumps(program).encode()
    return edit


def _target(program, marker):
    node = program["graph_module"]["graph"]["nodes"][0]
    node["target"] = "torch.os.system"


def _expression(program, marker):
    for node in program["graph_module"]["graph"]["tensor_values"].values():
        node["sizes"][0] = {"as_expr": {"expr_str": f"__import__('pathlib').Path("
                                                    f"{str(marker)!r}).touch()",
                                        "hint": {"as_int": 1}}}


def _extra_library(records):
    prefix = next(iter(records)).split("/")[0]
    records[f"{prefix}/data/aotinductor/model/model.so"] = b"\x7fELF"


HOSTILE_PT2 = {
    "use_pickle weight": (_pickled_weight, "is stored as a pickle (use_pickle)"),
    "pickled sample inputs": (_pickled_sample_inputs, "sample inputs are not plain tensors"),
    "node target outside aten": (lambda m: _program_edit(lambda p: _target(p, m)),
                                 "a node calls 'torch.os.system'"),
    "eval in a shape expression": (lambda m: _program_edit(lambda p: _expression(p, m)),
                                   "which is not arithmetic on shape symbols"),
    "AOTInductor library": (lambda m: _extra_library, "data/aotinductor/model/model.so"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PT2))
@pytest.mark.parametrize("extension", [".pt2", ".pt"])
def test_hostile_pt2_is_refused_and_runs_nothing(program_bytes, tmp_path, case, extension):
    make, message = HOSTILE_PT2[case]
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{extension}"
    path.write_bytes(_rewrite(program_bytes, make(marker)))
    result = cli("convert", path, "-o", tmp_path / "out.lstm", timeout=300)
    one_line_error(result, message)
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "out.lstm").exists()


def test_symbolic_shapes_of_a_real_dynamic_export_pass_the_check():
    """torch writes symbolic sizes in srepr form (Symbol('s77', positive=True, integer=True),
    Mul(Integer(30), ...)): the expression check accepts them and nothing that builds code."""
    from lstmlite.converters.torch_files import _check_expression, archive_names, \
        check_export_archive
    buffer = io.BytesIO()
    batch = torch.export.Dim("B", min=2, max=64)
    torch.export.save(torch.export.export(_Small().eval(), (torch.randn(2, 5, 3),),
                                          dynamic_shapes=({0: batch},)), buffer)
    data = buffer.getvalue()
    assert b"Symbol('s" in data
    check_export_archive(data, archive_names(data, "dyn.pt2"), "dyn.pt2")
    for hostile in ("Symbol('__import__')", "Symbol('os').system", "getattr(s0, s1)",
                    "Symbol(chr(95))", "Integer(\"1\")", "exec(s0)", "s0.__class__",
                    "Float('1e5'+'x')"):
        with pytest.raises(ll.ConversionError, match="refused \\(torch would eval it\\)"):
            _check_expression(hostile, "dyn.pt2")


def test_the_pickle_payloads_are_real(program_bytes, tmp_path):
    """What the checks stand between: torch.export.load itself runs these payloads."""
    for make in (_pickled_weight, _pickled_sample_inputs):
        marker = tmp_path / "pwned"
        path = tmp_path / "evil.pt2"
        path.write_bytes(_rewrite(program_bytes, make(marker)))
        try:
            torch.export.load(str(path))
        except Exception:
            pass
        assert marker.exists(), make.__name__
        marker.unlink()


def test_guard_code_in_a_program_is_never_run(program_bytes, tmp_path):
    """torch compiles a program's guard strings into the module: lstmlite never asks for it."""
    marker = tmp_path / "pwned"

    def guards(program):
        program["guards_code"] = [f"__import__('pathlib').Path({str(marker)!r}).touch()"]
    path = tmp_path / "guarded.pt2"
    path.write_bytes(_rewrite(program_bytes, _program_edit(guards)))
    result = cli("convert", path, "-o", tmp_path / "out.lstm", timeout=300)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert ll.load(tmp_path / "out.lstm").layers[0].type_name == "GRU"
    try:  # the payload is real: torch's own module() runs it at the first call
        torch.export.load(str(path)).module()(torch.randn(1, 5, 3))
    except Exception:
        pass
    assert marker.exists()


def test_torchscript_is_refused_without_trust_code_and_never_loaded(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.script(_Small().eval()).save(str(path))
    from lstmlite.converters import convert_source
    with pytest.raises(ll.ConversionError, match="a TorchScript archive is a program"):
        convert_source(str(path))
    conversion = convert_source(str(path), trust_code=True)
    assert conversion.report.passed and conversion.report.differences["output0"] <= 1e-5


def test_a_deflate_bomb_state_dict_is_refused_within_a_memory_bound(tmp_path):
    """torch writes records uncompressed; a 1 MB DEFLATE record of 1 GB of zeros took
    1.27 GB to load. It is refused from the zip's directory, before inflating."""
    path = tmp_path / "bomb.pt"
    buffer = io.BytesIO()
    torch.save({"rnn.weight_ih_l0": torch.zeros(12, 3)}, buffer)
    with zipfile.ZipFile(buffer) as archive:
        records = {name: archive.read(name) for name in archive.namelist()}
    storage = next(name for name in records if "/data/" in name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in records.items():
            if name != storage:
                archive.writestr(name, payload)
        with archive.open(storage, "w", force_zip64=True) as handle:
            zeros = bytes(1 << 20)
            for _ in range(600):
                handle.write(zeros)
    assert path.stat().st_size < 2 << 20
    message, = refusals_within(300, "import torch\nfrom lstmlite.converters.files import "
                                    "convert_source", f"convert_source({str(path)!r})")
    assert "refused as a decompression bomb" in message, message


# ---- ONNX files ---------------------------------------------------------------------------

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper, TensorProto  # noqa: E402


def _lstm_with_constant_weight(location=None, offset=0):
    """The tests' keras-style LSTM with its bias B moved from an initializer into a Constant
    node, whose tensor is external data at `location` when given."""
    from onnx_graphs import keras_style_lstm
    model = keras_style_lstm("LSTM")
    graph = model.graph
    bias = next(init for init in graph.initializer if init.name == "B")
    value = numpy_helper.to_array(bias)
    tensor = numpy_helper.from_array(value, "B_value")
    if location is not None:
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, item in (("location", location), ("offset", str(offset)),
                          ("length", str(value.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, item
    graph.initializer.remove(bias)
    graph.node.insert(0, helper.make_node("Constant", [], ["B"], value=tensor))
    return model, value


def test_constant_external_data_is_read_from_the_models_directory_only(tmp_path,
                                                                       monkeypatch):
    """A Constant node's external data was resolved against the cwd: a secret file's bytes
    became weights in the written .lstm."""
    from lstmlite.converters import from_onnx
    secret = b"-----BEGIN OPENSSH PRIVATE KEY-----" + bytes(64)
    cwd, models, outside = tmp_path / "cwd", tmp_path / "models", tmp_path / "outside"
    for directory in (cwd, models, outside):
        directory.mkdir()
    (cwd / "id_rsa").write_bytes(secret)
    (outside / "id_rsa").write_bytes(secret)
    (models / "escape").symlink_to(outside / "id_rsa")
    monkeypatch.chdir(cwd)
    cases = {"id_rsa": "cannot read the external data file",  # in the cwd, not next to it
             "../outside/id_rsa": "must be a relative path inside the model's directory",
             str(outside / "id_rsa"): "must be a relative path inside the model's directory",
             "escape": "leads outside the model's directory"}
    for location, message in cases.items():
        model, _ = _lstm_with_constant_weight(location)
        path = models / "m.onnx"
        onnx.save(model, str(path))
        with pytest.raises(ll.ConversionError, match=message):
            from_onnx(str(path))
        with pytest.raises(ll.ConversionError, match="stored in an external file"):
            from_onnx(path.read_bytes())
    # the legitimate case: the data next to the model converts, with those exact values
    model, value = _lstm_with_constant_weight("weights.bin", offset=64)
    (models / "weights.bin").write_bytes(bytes(64) + value.tobytes())
    onnx.save(model, str(models / "good.onnx"))
    converted = from_onnx(str(models / "good.onnx"))
    inline = from_onnx(_lstm_with_constant_weight()[0].SerializeToString())
    X = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    np.testing.assert_array_equal(converted.run(X), inline.run(X))


def test_constant_folding_is_bounded(tmp_path):
    """Unused ConstantOfShape([2**28]) nodes in a 1 KB file took 1.1 GB each."""
    from onnx_graphs import keras_style_lstm
    model = keras_style_lstm("LSTM")
    shape = numpy_helper.from_array(np.array([2 ** 28], np.int64), "huge_shape")
    model.graph.initializer.append(shape)
    model.graph.node.append(helper.make_node("ConstantOfShape", ["huge_shape"], ["huge"],
                                             name="bomb"))
    path = tmp_path / "bomb.onnx"
    onnx.save(model, str(path))
    assert path.stat().st_size < 100_000
    message, = refusals_within(400, "import onnx.reference, onnxruntime\n"
                                    "from lstmlite.converters import from_onnx",
                               f"from_onnx({str(path)!r})")
    assert "node 'bomb' (ConstantOfShape): folding this constant would allocate 268435456 " \
           "elements" in message, message


def test_static_input_shapes_are_bounded():
    from onnx_graphs import recurrent_model
    from lstmlite.converters import from_onnx
    model = recurrent_model("GRU")
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    dim.ClearField("dim_param")
    dim.dim_value = 2 ** 40
    with pytest.raises(ll.ConversionError, match=r"graph input 'X' has static shape "
                                                 r"\(1099511627776, X:1, 5\)"):
        from_onnx(model.SerializeToString())


# ---- fuzzing the importers ----------------------------------------------------------------
# Any bytes: a conversion, or ConversionError; never another exception, never a crash. The
# CI runs a bounded number of examples; a long run: LSTMLITE_FUZZ_SOURCES=5000 pytest -k fuzz

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SOURCE_EXAMPLES = int(os.environ.get("LSTMLITE_FUZZ_SOURCES", "120"))


@st.composite
def _mutated(draw, seed: bytes):
    blob = bytearray(seed)
    kind = draw(st.sampled_from(["truncate", "flip", "splice", "bytes"]))
    if kind == "truncate":
        blob = blob[:draw(st.integers(0, len(blob)))]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 6))):
            blob[draw(st.integers(0, len(blob) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "splice":
        position = draw(st.integers(0, len(blob) - 1))
        blob[position:position + 4] = draw(st.binary(min_size=1, max_size=4))
    else:
        blob = bytearray(draw(st.binary(max_size=200)))
    return bytes(blob)


def _onnx_seed() -> bytes:
    from onnx_graphs import keras_style_lstm
    return keras_style_lstm("GRU").SerializeToString()


@settings(max_examples=SOURCE_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(blob=_mutated(_onnx_seed()))
def test_fuzz_onnx(blob):
    from lstmlite.converters import from_onnx
    try:
        model = from_onnx(blob, verify=False)
    except ll.ConversionError:
        return
    model.run(np.ones((2, model.input_size), np.float32))


def _program_seed() -> bytes:
    buffer = io.BytesIO()
    torch.manual_seed(0)
    torch.export.save(torch.export.export(_Small().eval(), (torch.randn(1, 5, 3),)), buffer)
    return buffer.getvalue()


@st.composite
def _mutated_program(draw):
    """A .pt2 whose program JSON has one value changed (names, targets, numbers, strings),
    or whose archive bytes are damaged."""
    seed = _PROGRAM_SEED
    if draw(st.booleans()):
        return draw(_mutated(seed))

    def edit(records):
        name = _record(records, "models/model.json")
        text = records[name].decode()
        strings = [s for s in set(__import__("re").findall(r'"([^"\\]{1,60})"', text))]
        old = draw(st.sampled_from(sorted(strings)))
        new = draw(st.sampled_from(["torch.os.system", "__import__('os')", "s0 + 1", "",
                                    "torch.ops.aten.mul.Tensor", "as_int", "99999999999",
                                    "-1", "model", "weight_0", "x"]))
        records[name] = text.replace(f'"{old}"', f'"{new}"', 1).encode()
    return _rewrite(seed, edit)


_PROGRAM_SEED = _program_seed()


@settings(max_examples=max(SOURCE_EXAMPLES // 3, 10), deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(blob=_mutated_program())
def test_fuzz_pt2_and_state_dict(tmp_path_factory, blob):
    from lstmlite.converters import convert_source
    directory = tmp_path_factory.mktemp("fuzz")
    for name in ("m.pt2", "m.pt"):
        path = directory / name
        path.write_bytes(blob)
        try:
            convert_source(str(path), verify=False)
        except ll.ConversionError:
            pass


def test_packing_a_float32_model_costs_its_weights_once_more(rng):
    """The float kernels' packed copy (src/pack.c) is the size of the float32 matrices: a
    matrix of few rows and many inputs (an LSTM of one unit over 60,000 inputs) is not padded
    to whole 16-row panels, which would make a small file ask for 4 to 16 times its weights."""
    import tracemalloc
    layers = [F.lstm(rng, 60_000, 1), F.dense(rng, 1, 1)]
    weights = 4 * sum(layer.parameter_count for layer in layers)
    tracemalloc.start()
    try:
        ll.Model(layers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert weights > 900_000
    assert peak < 1.05 * weights + 16_384, (peak, weights)  # measured: 1.002x
