"""The .wav reader (lstmlite.wavfile) against files written by other programs: libsndfile
(through soundfile) for every encoding it writes in WAV and WAVE_FORMAT_EXTENSIBLE, and sox
(what `lstmlite run`'s refusals tell users to run) where it is installed. Each flavour of the
same recording must give the 16-bit file's samples within its own quantization, and through
`lstmlite run` the same outputs; everything else is refused in one line naming the format."""
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstmlite as ll
from lstmlite.features import LogMel
from lstmlite.runner import RunError, read_wav

KWS = ll.examples.path("kws")
SENTENCE = ll.examples.path("kws-sentence.wav")
#: every subtype libsndfile writes that this reader takes, and the largest difference from the
#: 16-bit samples it may show: none where the encoding holds 16 bits exactly, one 8-bit step
#: for unsigned 8-bit (libsndfile drops the low byte)
READABLE = {"PCM_16": 0.0, "PCM_24": 0.0, "PCM_32": 0.0, "FLOAT": 0.0, "DOUBLE": 0.0,
            "PCM_U8": 1 / 128}
REFUSED = {"ULAW": "mu-law", "ALAW": "A-law", "IMA_ADPCM": "IMA ADPCM",
           "MS_ADPCM": "Microsoft ADPCM", "GSM610": "GSM 6.10"}


def lstmlite(*args):
    return subprocess.run([sys.executable, "-m", "lstmlite", *map(str, args)],
                          capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def pcm16():
    samples, rate = soundfile.read(SENTENCE, dtype="int16")
    assert rate == 16000 and samples.ndim == 1
    return samples


def _write(path, pcm16, subtype, container="WAV"):
    """pcm16 written by libsndfile: as int16 for integer encodings, which it widens by shifts,
    and as pcm16 / 32768 for float ones (it stores int16 given to a float file unscaled)."""
    float_coded = subtype in ("FLOAT", "DOUBLE")
    soundfile.write(path, pcm16 / 32768 if float_coded else pcm16, 16000, subtype=subtype,
                    format=container)


def _format_code(path) -> int:
    """The format code in a wav file's 'fmt ' chunk (0xFFFE for WAVE_FORMAT_EXTENSIBLE)."""
    data = open(path, "rb").read()
    return struct.unpack_from("<H", data, data.index(b"fmt ") + 8)[0]


@pytest.mark.parametrize("container", ["WAV", "WAVEX"])
@pytest.mark.parametrize("subtype", sorted(READABLE))
def test_every_encoding_libsndfile_writes_reads_as_the_16_bit_samples(tmp_path, pcm16,
                                                                      container, subtype):
    path = tmp_path / f"{subtype}.wav"
    _write(path, pcm16, subtype, container)
    assert (_format_code(path) == 0xFFFE) == (container == "WAVEX")
    samples = read_wav(str(path), 16000)
    reference = pcm16.astype(np.float64) / 32768
    if subtype == "PCM_16":
        assert samples.dtype == np.int16
        np.testing.assert_array_equal(samples, pcm16)
        return
    assert samples.dtype == np.float32 and samples.shape == pcm16.shape
    assert np.abs(samples - reference).max() <= READABLE[subtype]
    # libsndfile's own reading of its file agrees with ours to float32 rounding
    theirs, _ = soundfile.read(path, dtype="float64")
    np.testing.assert_allclose(samples, theirs, rtol=0, atol=1e-7)


@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT"])
def test_run_gives_the_16_bit_files_outputs_bit_for_bit(tmp_path, pcm16, subtype):
    """A 16-bit recording stored with more bits holds the same values (v / 32768 exactly), so
    the front end's frames and the model's outputs are the same bits as from the 16-bit file."""
    _write(tmp_path / "wide.wav", pcm16, subtype, "WAVEX")
    narrow, wide = lstmlite("run", KWS, SENTENCE, "-o", tmp_path / "a.npy"), \
        lstmlite("run", KWS, tmp_path / "wide.wav", "-o", tmp_path / "b.npy")
    assert narrow.returncode == 0 and wide.returncode == 0, wide.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.load(tmp_path / "a.npy"))
    assert wide.stdout == narrow.stdout and wide.stdout


SOX_FLAVOURS = {"24-bit": ["-b", "24"], "32-bit": ["-b", "32"],
                "float": ["-e", "floating-point", "-b", "32"],
                "double": ["-e", "floating-point", "-b", "64"],
                "8-bit": ["-b", "8", "-D"]}


@pytest.mark.skipif(shutil.which("sox") is None and not os.environ.get("LSTMLITE_REQUIRE_SOX"),
                    reason="sox is not installed (apt-get install sox; CI installs it and "
                           "sets LSTMLITE_REQUIRE_SOX, so there these tests fail instead)")
@pytest.mark.parametrize("flavour", sorted(SOX_FLAVOURS))
def test_what_sox_writes_gives_the_same_frames(tmp_path, pcm16, flavour):
    path = tmp_path / "sox.wav"
    subprocess.run(["sox", SENTENCE, *SOX_FLAVOURS[flavour], str(path)], check=True)
    if flavour == "24-bit":
        assert _format_code(path) == 0xFFFE  # sox writes 24-bit as WAVE_FORMAT_EXTENSIBLE
    samples = read_wav(str(path), 16000)
    step = 1 / 128 if flavour == "8-bit" else 0.0
    assert np.abs(samples - pcm16 / 32768).max() <= step + 1e-9
    if flavour != "8-bit":
        model = ll.load(KWS)
        front = LogMel.from_model(model)
        np.testing.assert_array_equal(front.transform(samples), front.transform(pcm16))


@pytest.mark.parametrize("subtype", sorted(REFUSED))
def test_compressed_encodings_are_refused_naming_the_format_and_sox(tmp_path, pcm16, subtype):
    path = tmp_path / "coded.wav"
    soundfile.write(path, pcm16, 16000, subtype=subtype)
    result = lstmlite("run", KWS, path)
    stderr = result.stderr.decode()
    assert result.returncode == 1 and len(stderr.splitlines()) == 1, stderr
    assert f"({REFUSED[subtype]})" in stderr and "-b 16 -e signed-integer" in stderr, stderr


def test_multichannel_is_refused_with_the_mix_down(tmp_path, pcm16):
    soundfile.write(tmp_path / "stereo.wav", np.stack([pcm16, pcm16], 1), 16000,
                    subtype="PCM_24")
    with pytest.raises(RunError, match=r"has 2 channels.*sox .*stereo.wav -c 1 mono.wav"):
        read_wav(str(tmp_path / "stereo.wav"), 16000)


def _pcm16_file(samples: np.ndarray, rate: int = 16000, extra: bytes = b"") -> bytes:
    data = samples.astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, 2 * rate, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + extra + b"data" + \
        struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("edit,message", [
    (lambda b: b"RIFX" + b[4:], "not a RIFF/WAVE file"),
    (lambda b: b"RF64" + b[4:], "an RF64 file"),
    (lambda b: b[:12] + b"junk" + b[16:], "the 'data' chunk comes before any 'fmt ' chunk"),
    (lambda b: b[:36], "no data chunk"),
    (lambda b: b[:12], "no fmt  chunk"),
    (lambda b: b[:30], "the 'fmt ' chunk declares 16 bytes, the file holds 10"),
    (lambda b: b[:16] + struct.pack("<I", 8) + b[20:], "the 'fmt ' chunk has 8 bytes"),
    (lambda b: b[:20] + struct.pack("<H", 0xFFFE) + b[22:], "a WAVE_FORMAT_EXTENSIBLE 'fmt ' "
                                                            "chunk of 16 bytes"),
    (lambda b: b[:22] + struct.pack("<H", 0) + b[24:], "declares 0 channels"),
    (lambda b: b[:32] + struct.pack("<H", 3) + b[34:], "declares 3 bytes per sample frame"),
    (lambda b: b[:34] + struct.pack("<H", 12) + b[36:], "has 12-bit samples in PCM"),
    (lambda b: b[:20] + struct.pack("<H", 3) + b[22:], "has 16-bit samples in float"),
    (lambda b: b[:20] + struct.pack("<H", 0x55) + b[22:], "is format 0x0055 (MP3)"),
    (lambda b: b[:40] + struct.pack("<I", 10 ** 9) + b[44:], "more than the 268435456"),
    (lambda b: b[:40] + struct.pack("<I", 4000) + b[44:], "truncated: the header declares "
                                                          "2000 samples, the file holds 100"),
])
def test_malformed_headers_are_refused_in_one_line(tmp_path, edit, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(edit(_pcm16_file(np.arange(100))))
    with pytest.raises(RunError, match="bad.wav: ") as caught:
        read_wav(str(path), 16000)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_extensible_subformat_and_other_chunks(tmp_path):
    path = tmp_path / "x.wav"
    soundfile.write(path, np.zeros(10, np.int16), 16000, subtype="PCM_16", format="WAVEX")
    data = bytearray(path.read_bytes())
    data[data.index(b"fmt ") + 8 + 26] ^= 0x01       # the GUID's fixed tail
    path.write_bytes(bytes(data))
    with pytest.raises(RunError, match="unknown sub-format"):
        read_wav(str(path), 16000)
    # a LIST chunk of odd size between fmt and data is skipped with its padding byte
    path.write_bytes(_pcm16_file(np.arange(7), extra=b"LIST" + struct.pack("<I", 3) + b"abc\0"))
    np.testing.assert_array_equal(read_wav(str(path), 16000), np.arange(7))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=6),
       st.integers(0, 120))
def test_fuzzed_headers_never_crash(tmp_path_factory, edits, cut):
    blob = bytearray(_pcm16_file(np.arange(30)))
    for offset, value in edits:
        blob[offset] = value
    path = tmp_path_factory.mktemp("fuzz") / "f.wav"
    path.write_bytes(bytes(blob[:len(blob) - cut]))
    try:
        samples = read_wav(str(path), 16000)
    except RunError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
    else:
        assert samples.ndim == 1 and 0 < samples.size <= 30 * 8
