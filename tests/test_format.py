"""The .lstm file: round trips of every layer and option, zero-copy loading, determinism, a
golden file, atomic saves, size, versions, a catalogue of malformed files (one test per error
class) and a fuzzer over load()."""
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstmlite as ll
import lstmlite.format as FORMAT
import factories as F
import filetools as FT
from test_exactness import LAYER_CASES

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "golden")
sys.path.insert(0, GOLDEN_DIR)
import make_golden  # noqa: E402


def every_layer_models(rng):
    """One model per layer case (with a head that consumes its output), plus the position-wise
    layers."""
    for name in sorted(LAYER_CASES):
        layer = LAYER_CASES[name](rng, 5, 6)
        yield name, ll.Model([layer, F.dense(rng, layer.output_size, 3, "log_softmax")])
    yield "positionwise", ll.Model([F.normalize(rng, 5), F.scale(rng, 5),
                                    F.dense(rng, 5, 4, ("ScaledTanh", 1.5, 0.5))])


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.lstm"
    make_golden.tiny_model().save(path, metadata={"labels": ["a", "b"]})
    return path


def test_round_trip_every_layer_and_option_bit_identical(rng, tmp_path):
    X = rng.standard_normal((2, 7, 5)).astype(np.float32)
    metadata = {"labels": ["yes", "no", "ünïcode"], "sample_rate": 16000, "nested": {"a": [1]}}
    for name, model in every_layer_models(rng):
        path = tmp_path / f"{name}.lstm"
        model.save(path, metadata=metadata)
        loaded = ll.load(path)
        assert loaded.metadata == metadata, name
        assert [l.attributes() for l in loaded.layers] == \
            [l.attributes() for l in model.layers], name
        np.testing.assert_array_equal(loaded.run(X), model.run(X), err_msg=name)
        for original, copy in zip(model.layers, loaded.layers):
            for key, array in original.arrays().items():
                other = copy.arrays()[key]
                assert (array is None) == (other is None), (name, key)
                if array is not None:
                    np.testing.assert_array_equal(array, other, err_msg=f"{name} {key}")


def test_float32_tensors_are_aligned_views_of_one_private_copy(tiny_file):
    """No copy per tensor and no memory map: read-only views into one buffer of the file's
    bytes that load() read, with the weights 64-byte aligned."""
    model = ll.load(tiny_file)
    lstm = model.layers[1]
    roots = set()
    for array in (lstm.weight_ih, lstm.weight_hh, lstm.peepholes):
        assert not array.flags.writeable and not array.flags.owndata
        assert array.ctypes.data % 64 == 0
        base = array
        while isinstance(base.base, np.ndarray):
            base = base.base
        assert base.base is None and base.flags.owndata  # our own storage, not an mmap
        roots.add(id(base))
    assert len(roots) == 1
    info = model.source
    offsets = [t.offset for t in info.tensors.values()]
    assert info.data_offset % 64 == 0 and all(o % 64 == 0 for o in offsets)


def test_save_is_deterministic(rng, tmp_path):
    for name, model in every_layer_models(rng):
        a, b = tmp_path / "a.lstm", tmp_path / "b.lstm"
        model.save(a, metadata={"k": 1})
        model.save(b, metadata={"k": 1})
        assert a.read_bytes() == b.read_bytes(), name
        ll.load(a).save(b)  # a loaded model saves to the same bytes
        assert a.read_bytes() == b.read_bytes(), name


def test_golden_file(tmp_path):
    golden = os.path.join(GOLDEN_DIR, "tiny.lstm")
    stamped = ll.load(golden).metadata
    assert stamped["generator"] == "tests/golden/make_golden.py" and "numpy" in stamped
    path = tmp_path / "tiny.lstm"
    make_golden.tiny_model().save(path, metadata=stamped)
    assert path.read_bytes() == open(golden, "rb").read(), \
        "the format's bytes changed: if intended, bump docs/FORMAT.md and regenerate"
    X = np.linspace(-2, 2, 30, dtype=np.float32).reshape(10, 3)
    np.testing.assert_array_equal(ll.load(golden).run(X), make_golden.tiny_model().run(X))


def test_overwriting_a_loaded_file_is_atomic(rng, tmp_path):
    path = tmp_path / "model.lstm"
    first = ll.Model([F.lstm(rng, 4, 5), F.dense(rng, 5, 2)])
    second = ll.Model([F.gru(rng, 4, 3), F.dense(rng, 3, 2)])
    first.save(path)
    loaded = ll.load(path)
    X = rng.standard_normal((6, 4)).astype(np.float32)
    expected = first.run(X)
    second.save(path)  # over the file `loaded` has mapped
    np.testing.assert_array_equal(loaded.run(X), expected)
    np.testing.assert_array_equal(ll.load(path).run(X), second.run(X))
    stream = loaded.stream()
    np.testing.assert_array_equal([stream.step(x).copy() for x in X], expected)
    assert sorted(os.listdir(tmp_path)) == ["model.lstm"]  # no temporary file left


def test_failed_save_leaves_the_old_file_and_no_temporary(tiny_file):
    before = tiny_file.read_bytes()
    model = ll.load(tiny_file)
    with pytest.raises(ll.FormatError, match="JSON-serialisable"):
        model.save(tiny_file, metadata={"bad": object()})
    with pytest.raises(ll.FormatError, match="finite"):
        model.save(tiny_file, metadata={"bad": float("nan")})
    with pytest.raises(ll.FormatError, match="weights_dtype"):
        model.save(tiny_file, weights_dtype="bfloat16")
    assert tiny_file.read_bytes() == before
    assert os.listdir(tiny_file.parent) == [tiny_file.name]


def test_file_size_is_tensor_bytes_plus_a_little(rng, tmp_path):
    models = list(every_layer_models(rng)) + [("demo", __import__(
        "lstmlite.demo", fromlist=["x"]).build_demo_model())]
    for name, model in models:
        path = tmp_path / "m.lstm"
        model.save(path)
        info = ll.load(path).source
        tensor_bytes = sum(t.size for t in info.tensors.values())
        padding = sum(-t.size % 64 for t in info.tensors.values()) + \
            (info.data_offset - 64 - info.manifest_size)
        overhead = info.file_size - tensor_bytes - padding
        assert overhead <= 4096, (name, overhead)


# measured over 20 seeds: float16 at most 8.0e-5, int8 at most 3.4e-3
@pytest.mark.parametrize("dtype,tolerance", [("float16", 3e-4), ("int8", 1e-2)])
def test_smaller_weight_dtypes(rng, tmp_path, dtype, tolerance):
    model = ll.Model([F.lstm(rng, 20, 32, peepholes=True), F.gru(rng, 32, 16),
                      F.dense(rng, 16, 4, "softmax")])
    path32, path = tmp_path / "f32.lstm", tmp_path / f"{dtype}.lstm"
    model.save(path32)
    model.save(path, weights_dtype=dtype)
    loaded = ll.load(path)
    kinds = {t.dtype for t in loaded.source.tensors.values()}
    assert dtype in kinds and "float32" in kinds  # biases and scales stay float32
    assert os.path.getsize(path) < os.path.getsize(path32) * (0.6 if dtype == "float16" else 0.4)
    X = rng.standard_normal((3, 20, 20)).astype(np.float32)
    assert np.abs(loaded.run(X) - model.run(X)).max() < tolerance


# ---- a catalogue of malformed files: one test per error class ------------------------------

def _write(tmp_path, blob, name="bad.lstm"):
    path = tmp_path / name
    path.write_bytes(blob)
    return path


def _manifest_edit(blob, edit):
    fields, manifest, data = FT.split(blob)
    edit(manifest)
    return FT.join(fields, manifest, data)


def _tensor(manifest, role_suffix):
    return next(t for t in manifest["tensors"] if t["name"].endswith(role_suffix))


def _overflow(m):
    t = _tensor(m, "1.weight_ih")
    t["shape"] = [2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1]


def _drop_gru(m):
    """Removes layer 2 (a GRU 2 -> 2) and its tensors, then widens the RNN after it to take 3
    inputs: a file whose layers no longer chain."""
    gone = set(m["layers"].pop(2)["tensors"].values())
    m["tensors"] = [t for t in m["tensors"] if t["name"] not in gone]
    rnn_ih = next(t for t in m["tensors"] if t["name"] == m["layers"][2]["tensors"]["weight_ih"])
    rnn_ih.update(shape=[2, 3], size=24)
    m["layers"][2]["input_size"] = 3


def _future_version(blob):
    return FT.set_header(blob, version=2)


def _nan_tensor(blob):
    fields, manifest, data = FT.split(blob)
    t = _tensor(manifest, "1.weight_ih")
    data = bytearray(data)
    data[t["offset"]:t["offset"] + 4] = struct.pack("<f", float("nan"))
    return FT.join(fields, manifest, bytes(data))


CATALOGUE = {
    "empty file": (lambda b: b"", r"header: truncated: the file has 0 bytes"),
    "truncated header": (lambda b: b[:40], r"header: truncated"),
    "bad magic": (lambda b: b"GGUF\0\0\0\0" + b[8:], r"offset 0 \(magic\): expected b'LSTMLITE'"),
    "future version": (_future_version,
                       r"format version 2; this reader reads version 1; upgrade lstmlite"),
    "version zero": (lambda b: FT.set_header(b, version=0), r"format version 0"),
    "bad header size": (lambda b: FT.set_header(b, header_size=80), r"header_size"),
    "bad alignment": (lambda b: FT.set_header(b, alignment=32), r"alignment"),
    "reserved bytes": (lambda b: FT.with_crc(b[:50] + b"\1" + b[51:]), r"reserved"),
    "truncated manifest": (lambda b: b[:100], r"manifest_size\): \d+ bytes declared"),
    "truncated data": (lambda b: b[:-10], r"truncated: the data section should end"),
    "trailing bytes": (lambda b: FT.with_crc(b + b"\0" * 64), r"trailing bytes"),
    "manifest larger than file": (lambda b: FT.set_header(b, manifest_size=2 ** 63),
                                  r"manifest_size\): 9223372036854775808 bytes declared"),
    "data size larger than file": (lambda b: FT.set_header(b, data_size=2 ** 64 - 1),
                                   r"truncated: the data section"),
    "misaligned data offset": (lambda b: FT.set_header(b, data_offset=FT.split(b)[0][
        "data_offset"] + 4), r"not a multiple of 64"),
    "data offset past manifest padding": (lambda b: FT.set_header(b, data_offset=FT.split(b)[0][
        "data_offset"] + 64), r"first multiple of 64"),
    "non-zero padding": (lambda b: FT.with_crc(b[:FT.split(b)[0]["data_offset"] - 1] + b"\7"
                                               + b[FT.split(b)[0]["data_offset"]:]),
                         r"\(padding\): expected zero bytes"),
    "checksum mismatch": (lambda b: b[:-1] + bytes([b[-1] ^ 1]), r"checksum mismatch"),
    "invalid utf-8": (lambda b: FT.join(FT.split(b)[0], None, FT.split(b)[2],
                                        raw_manifest=b'{"layers":"\xff"}'), r"invalid UTF-8"),
    "invalid json": (lambda b: FT.join(FT.split(b)[0], None, FT.split(b)[2],
                                       raw_manifest=b'{"layers":[}'), r"invalid JSON"),
    "json nested too deeply": (lambda b: FT.join(FT.split(b)[0], None, FT.split(b)[2],
                                                 raw_manifest=b"[" * 100000 + b"]" * 100000),
                               r"manifest: JSON nested too deeply"),
    "NaN in manifest": (lambda b: FT.join(FT.split(b)[0], None, FT.split(b)[2],
                                          raw_manifest=b'{"layers":NaN}'), r"NaN is not allowed"),
    "manifest not an object": (lambda b: FT.join(FT.split(b)[0], None, FT.split(b)[2],
                                                 raw_manifest=b"[]"), r"expected a JSON object"),
    "missing manifest key": (lambda b: _manifest_edit(b, lambda m: m.pop("metadata")),
                             r"expected the keys \['layers', 'metadata', 'tensors'\]"),
    "dimension product overflows 64 bits": (lambda b: _manifest_edit(b, _overflow),
                                            r"needs \d{30,} bytes, the table says"),
    "too many dimensions": (lambda b: _manifest_edit(b, lambda m: _tensor(
        m, "1.weight_ih").update(shape=[1, 1, 1, 1, 24])), r"up to 4 dimensions"),
    "negative dimension": (lambda b: _manifest_edit(b, lambda m: _tensor(
        m, "1.weight_ih").update(shape=[-8, -3])), r"up to 4 dimensions"),
    "boolean as integer": (lambda b: _manifest_edit(b, lambda m: _tensor(
        m, "1.weight_ih").update(offset=True)), r"offset: expected a non-negative integer"),
    "size disagrees with shape": (lambda b: _manifest_edit(b, lambda m: _tensor(
        m, "1.weight_ih").update(size=4)), r"needs 96 bytes, the table says 4"),
    "misaligned tensor": (lambda b: _manifest_edit(b, lambda m: _tensor(
        m, "1.bias_hh").update(offset=_tensor(m, "1.bias_hh")["offset"] + 4)),
        r"not aligned to 64"),
    "overlapping tensors": (lambda b: _manifest_edit(b, lambda m: _tensor(
        m, "1.bias_hh").update(offset=_tensor(m, "1.bias_ih")["offset"])),
        r"overlaps or precedes"),
    "out-of-order tensors": (lambda b: _manifest_edit(b, lambda m: m["tensors"].reverse()),
                             r"overlaps or precedes"),
    "tensor past the data": (lambda b: _manifest_edit(b, lambda m: m["tensors"][-1].update(
        offset=m["tensors"][-1]["offset"] + 6400)), r"lie past the data section"),
    "duplicate names": (lambda b: _manifest_edit(b, lambda m: m["tensors"][1].update(
        name=m["tensors"][0]["name"])), r"duplicate tensor name"),
    "unknown dtype id": (lambda b: _manifest_edit(b, lambda m: _tensor(
        m, "1.weight_ih").update(dtype=7)), r"unknown dtype id 7"),
    "int8 without scale": (lambda b: _manifest_edit(b, lambda m: _tensor(
        m, "1.bias_ih").update(dtype=2, size=_tensor(m, "1.bias_ih")["size"] // 4)),
        r"int8 tensors need a scale"),
    "unknown layer type id": (lambda b: _manifest_edit(b, lambda m: m["layers"][2].update(
        type=99)), r"layers\[2\].type: unknown layer type id 99"),
    "unknown activation id": (lambda b: _manifest_edit(b, lambda m: m["layers"][1].update(
        activations=[[1, 0, 0], [40, 0, 0], [2, 0, 0]])), r"unknown activation id 40"),
    "unknown layer attribute": (lambda b: _manifest_edit(b, lambda m: m["layers"][1].update(
        zoneout=0.1)), r"expected the attributes"),
    "attribute contradicts shapes": (lambda b: _manifest_edit(b, lambda m: m["layers"][1].update(
        hidden_size=5)), r"layers\[1\].hidden_size: the layer table says 5, the tensor shapes "
                         r"say 2"),
    "shapes contradict each other": (lambda b: _manifest_edit(b, lambda m: m["layers"][1][
        "tensors"].update(weight_hh=m["layers"][1]["tensors"]["weight_ih"],
                          weight_ih=m["layers"][1]["tensors"]["weight_hh"])),
        r"layers\[1\]: LSTM: weight_hh has shape \(8, 3\), expected \(8, 2\)"),
    "tensor used twice": (lambda b: _manifest_edit(b, lambda m: m["layers"][1][
        "tensors"].update(bias_hh=m["layers"][1]["tensors"]["bias_ih"])),
        r"tensor 'layers.1.bias_ih': used 2 times \(layers\[1\].bias_hh, "
        r"layers\[1\].bias_ih\); each tensor must have exactly one user"),
    "size as a float": (lambda b: _manifest_edit(b, lambda m: m["layers"][1].update(
        hidden_size=2.0)), r"layers\[1\].hidden_size: the layer table says 2.0"),
    "alpha beyond float32": (lambda b: _manifest_edit(b, lambda m: m["layers"][1].update(
        activations=[[5, 1e300, 0], [2, 0, 0], [2, 0, 0]])),
        r"LeakyRelu alpha must be a number finite in float32"),
    "manifest over the bound": (lambda b: FT.join(FT.split(b)[0], None, FT.split(b)[2],
                                                  raw_manifest=b" " * (FORMAT.MAX_MANIFEST_BYTES
                                                                       + 1)),
                                r"manifest_size\): 4194305 bytes; this reader accepts manifests "
                                r"of at most 4194304"),
    "too many tensor records": (lambda b: FT.join(FT.split(b)[0], None, FT.split(b)[2],
                                                  raw_manifest=b'{"layers":[],"metadata":{},'
                                                  b'"tensors":[' + b",".join([b"{}"] * 40000)
                                                  + b"]}"),
                                r"manifest.tensors: 40000 records; this reader accepts at most "
                                r"32768"),
    "missing tensor": (lambda b: _manifest_edit(b, lambda m: m["layers"][1]["tensors"].update(
        weight_ih="nowhere")), r"names tensor 'nowhere'"),
    "unused tensor": (lambda b: _manifest_edit(b, lambda m: m["layers"][1]["tensors"].pop(
        "bias_hh")), r"tensors no layer uses: \['layers.1.bias_hh'\]"),
    "layers do not chain": (lambda b: _manifest_edit(b, _drop_gru),
                            r"manifest.layers: Model: layer 2 \(RNN\) takes 3 input features, but "
                            r"layer 1 \(LSTM\) outputs 2"),
    "no layers": (lambda b: _manifest_edit(b, lambda m: (m["layers"].clear(),
                                                         m["tensors"].clear())),
                  r"at least one layer"),
    "bad direction": (lambda b: _manifest_edit(b, lambda m: m["layers"][1].update(direction=5)),
                      r"direction: expected 0 \(forward\)"),
    "bad flag": (lambda b: _manifest_edit(b, lambda m: m["layers"][1].update(input_forget=2)),
                 r"input_forget: expected 0 or 1"),
    "NaN in a tensor": (_nan_tensor, r"tensor 'layers.1.weight_ih': contains NaN"),
}


@pytest.mark.parametrize("case", sorted(CATALOGUE))
def test_malformed_file(tiny_file, tmp_path, case):
    damage, message = CATALOGUE[case]
    path = _write(tmp_path, damage(tiny_file.read_bytes()))
    with pytest.raises(ll.FormatError, match=message) as caught:
        ll.load(path)
    assert str(path) in str(caught.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ll.FormatError, match="cannot read"):
        ll.load(tmp_path / "nope.lstm")
    with pytest.raises(ll.FormatError, match="the .lstm file is a directory, expected a "
                                             "regular file"):
        ll.load(tmp_path)


def test_format_error_is_a_value_error():
    assert issubclass(ll.FormatError, ValueError)


# ---- fuzzing -------------------------------------------------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("LSTMLITE_FUZZ_EXAMPLES", "2500"))
_SEED_FILE = None


def _seed_blob():
    global _SEED_FILE
    if _SEED_FILE is None:
        with open(os.path.join(GOLDEN_DIR, "tiny.lstm"), "rb") as fh:
            _SEED_FILE = fh.read()
    return _SEED_FILE


@st.composite
def mutated_files(draw):
    blob = bytearray(_seed_blob())
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite_field", "splice_manifest",
                                 "bytes"]))
    if kind == "truncate":
        blob = blob[:draw(st.integers(0, len(blob)))]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(blob) - 1))
            blob[position] ^= 1 << draw(st.integers(0, 7))
    elif kind == "overwrite_field":
        offset = draw(st.sampled_from([8, 12, 16, 24, 32, 44]))
        width = 8 if offset in (16, 24, 32) else 4
        value = draw(st.one_of(st.integers(0, 2 ** (8 * width) - 1),
                               st.sampled_from([0, 1, 63, 64, 65, 2 ** (8 * width) - 1])))
        blob[offset:offset + width] = value.to_bytes(width, "little")
    elif kind == "splice_manifest":
        # change a digit or character inside the JSON so that deeper checks run
        manifest_size = int.from_bytes(blob[16:24], "little")
        position = 64 + draw(st.integers(0, manifest_size - 1))
        blob[position] = draw(st.sampled_from(b'0123456789-.,:[]{}"aetn '))
    else:
        blob = bytearray(draw(st.binary(max_size=256)))
    if draw(st.booleans()):
        blob = bytearray(FT.with_crc(bytes(blob))) if len(blob) >= 64 else blob
    return bytes(blob)


@pytest.fixture(scope="module")
def fuzz_path(tmp_path_factory):
    # one file, overwritten by every example (a directory per example grows quadratically)
    return tmp_path_factory.mktemp("fuzz") / "f.lstm"


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(blob=mutated_files())
def test_fuzz_load(fuzz_path, blob):
    """Any bytes: a valid model that steps, or FormatError; never another exception."""
    path = fuzz_path
    path.write_bytes(blob)
    try:
        model = ll.load(path)
    except ll.FormatError:
        return
    X = np.ones((3, model.input_size), np.float32)
    model.run(X)
    if model.streamable:
        model.stream().step(X[0])


def test_info_cli(tiny_file, tmp_path):
    run = [sys.executable, "-m", "lstmlite", "info"]
    ok = subprocess.run(run + [str(tiny_file)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    for expected in ("format version: 1", "checksum (CRC32): ok", "LSTM", "parameters",
                     "layers.1.weight_ih", '"labels"', f"({tiny_file.stat().st_size} bytes)"):
        assert expected in ok.stdout, (expected, ok.stdout)
    blob = tiny_file.read_bytes()
    damaged = _write(tmp_path, blob[:-1] + bytes([blob[-1] ^ 1]), "damaged.lstm")
    bad = subprocess.run(run + [str(damaged)], capture_output=True, text=True)
    assert bad.returncode == 1 and "MISMATCH" in bad.stdout and "Traceback" not in bad.stderr
    truncated = _write(tmp_path, blob[:30], "short.lstm")
    bad = subprocess.run(run + [str(truncated)], capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert f"lstmlite info: error: {truncated}: header: truncated" in bad.stderr
