"""`lstmlite run` and `lstmlite demo` as a user runs them: .wav, .npy, .csv and stdin, the
outputs equal to the model's own run() on the same features, and bad inputs refused in one
line."""
import json
import os
import subprocess
import sys
import wave

import numpy as np
import pytest
import soundfile

import lstmlite as ll
from lstmlite.detection import Detector
from lstmlite.features import LogMel

KWS = ll.examples.path("kws")
ACTIVITY = ll.examples.path("activity")
SENTENCE = ll.examples.path("kws-sentence.wav")


def lstmlite(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "lstmlite", *map(str, args)],
                          capture_output=True, input=stdin, timeout=300)


def sentence_pcm() -> np.ndarray:
    with wave.open(SENTENCE) as handle:
        return np.frombuffer(handle.readframes(handle.getnframes()), "<i2")


def write_wav(path, samples, rate=16000, channels=1, width=2):
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(np.asarray(samples).tobytes())


def detection_lines(stdout: bytes):
    lines = [line.split("\t") for line in stdout.decode().splitlines()]
    assert all(len(fields) == 3 for fields in lines), lines
    return [(float(seconds), label, float(score)) for seconds, label, score in lines]


def test_wav_gives_the_model_outputs_and_the_spoken_keywords(tmp_path):
    result = lstmlite("run", KWS, SENTENCE, "-o", tmp_path / "out.npy")
    assert result.returncode == 0, result.stderr
    model = ll.load(KWS)
    expected = model.run(LogMel.from_model(model).transform(sentence_pcm()))
    # streamed in 10 ms chunks through the front end and a Stream: the same bits as run()
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)
    # the printed detections are the Detector's over those outputs (the model's accuracy is
    # test_examples.py's business)
    front, detector = LogMel.from_model(model), Detector.from_model(model, 0.01)
    hits = [(t, detector.update(p)) for t, p in enumerate(expected)]
    assert detection_lines(result.stdout) == [
        (round(front.frame_end_seconds(t), 2), model.metadata["labels"][hit[0]],
         round(hit[1], 3)) for t, hit in hits if hit is not None]
    assert detection_lines(result.stdout), "the bundled sentence has keywords"
    assert b"steps, " in result.stderr and b"front end" in result.stderr


def test_stdin_pcm_gives_the_same_detections_as_the_file(tmp_path):
    from_file = lstmlite("run", KWS, SENTENCE)
    piped = lstmlite("run", KWS, "--stdin", "-o", tmp_path / "out.csv",
                     stdin=sentence_pcm().astype("<i2").tobytes())
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == from_file.stdout
    model = ll.load(KWS)
    outputs = np.loadtxt(tmp_path / "out.csv", delimiter=",", dtype=np.float32, skiprows=1)
    assert (tmp_path / "out.csv").read_text().split("\n")[0].split(",") == \
        model.metadata["labels"]
    expected = model.run(LogMel.from_model(model).transform(sentence_pcm()))
    np.testing.assert_allclose(outputs, expected, rtol=1e-6, atol=1e-7)  # %.7g in the CSV


def test_stdin_with_a_wav_header_as_arecord_writes_it(tmp_path):
    """arecord without -t raw streams a wav header whose sizes are placeholders (it does not
    know the length): the samples after it give the file's detections; a header of another
    rate or format is refused naming what it is and the arecord command that fits."""
    import struct
    pcm = sentence_pcm().astype("<i2").tobytes()

    def header(rate=16000, bits=16, channels=1, size=0x7FFFFFFF):
        block = channels * bits // 8
        return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " +
                struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits) +
                b"data" + struct.pack("<I", size))

    from_file = lstmlite("run", KWS, SENTENCE)
    for size in (0x7FFFFFFF, 0):
        piped = lstmlite("run", KWS, "--stdin", stdin=header(size=size) + pcm)
        assert piped.returncode == 0, piped.stderr
        assert piped.stdout == from_file.stdout
    with open(SENTENCE, "rb") as handle:                    # a whole file piped in
        assert lstmlite("run", KWS, "--stdin", stdin=handle.read()).stdout == from_file.stdout
    refused = lstmlite("run", KWS, "--stdin", stdin=header(rate=8000) + pcm)
    assert refused.returncode == 1 and refused.stderr.count(b"\n") == 1, refused.stderr
    assert b"stdin: a wav stream of 16-bit integer PCM, 1 channel(s) at 8000 Hz" in \
        refused.stderr and b"arecord -t raw -f S16_LE -r 16000 -c 1" in refused.stderr
    assert lstmlite("run", KWS, "--stdin", stdin=header(channels=2) + pcm).returncode == 1


def test_a_wav_header_arriving_a_byte_at_a_time_is_still_found():
    """A pipe may hand over fewer bytes than asked; the header check waits for four."""
    import io
    import struct
    from lstmlite.runner import _pcm_chunks

    class OneByteAtATime(io.RawIOBase):
        def __init__(self, data):
            self.data, self.position = data, 0

        def readable(self):
            return True

        def read1(self, size=-1):
            chunk = self.data[self.position:self.position + 1]
            self.position += len(chunk)
            return chunk

    pcm = np.arange(-50, 50, dtype="<i2")
    header = (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " +
              struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" +
              struct.pack("<I", 0))
    for data in (header + pcm.tobytes(), pcm.tobytes()):
        samples = np.concatenate(list(_pcm_chunks(OneByteAtATime(data), 16000)))
        np.testing.assert_array_equal(samples, pcm)


def activity_recording():
    """The first recording of BasicMotions' test split: (100, 6) raw channels, its class."""
    data = np.load(os.path.join(os.path.dirname(__file__), "data", "basic_motions_test.npz"))
    return data["X"][0], data["y"][0]


@pytest.mark.parametrize("extension", [".npy", ".csv"])
def test_rows_from_npy_and_csv_equal_run(tmp_path, extension):
    X, _ = activity_recording()
    source = tmp_path / f"motion{extension}"
    if extension == ".npy":
        np.save(source, X)
    else:
        np.savetxt(source, X, delimiter=",", fmt="%.9g",
                   header="accel_x,accel_y,accel_z,gyro_x,gyro_y,gyro_z", comments="")
    result = lstmlite("run", ACTIVITY, source, "-o", tmp_path / f"out{extension}")
    assert result.returncode == 0, result.stderr
    model = ll.load(ACTIVITY)
    expected = model.run(X)
    if extension == ".npy":
        assert np.array_equal(np.load(tmp_path / "out.npy"), expected)
    else:
        header = (tmp_path / "out.csv").read_text().splitlines()[0]
        assert header.split(",") == model.metadata["labels"]
        np.testing.assert_allclose(np.loadtxt(tmp_path / "out.csv", delimiter=",",
                                              skiprows=1), expected, rtol=1e-6, atol=1e-7)
    # one line per change of the top label: <seconds> <label> <score>
    changes = detection_lines(result.stdout)
    top = expected.argmax(axis=1)
    assert len(changes) == 1 + int((np.diff(top) != 0).sum())
    assert changes[-1][1] == model.metadata["labels"][top[-1]]


def test_stdin_csv_rows_one_decision_per_row(tmp_path):
    X, _ = activity_recording()
    rows = "\n".join(",".join(f"{v:.9g}" for v in row) for row in X).encode()
    result = lstmlite("run", ACTIVITY, "--stdin", "-o", tmp_path / "out.csv", stdin=rows)
    assert result.returncode == 0, result.stderr
    outputs = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(outputs, ll.load(ACTIVITY).run(X), rtol=1e-6, atol=1e-7)


def bad_inputs(tmp_path):
    pcm = sentence_pcm()[:16000]
    cases = {}
    write_wav(tmp_path / "stereo.wav", np.repeat(pcm, 2), channels=2)
    cases["stereo"] = (KWS, tmp_path / "stereo.wav", "has 2 channels; the model takes one")
    write_wav(tmp_path / "8k.wav", pcm[::2], rate=8000)
    cases["8 kHz"] = (KWS, tmp_path / "8k.wav", "is 8000 Hz; the model's front end takes "
                                                 "16000 Hz (not resampled here")
    soundfile.write(tmp_path / "mulaw.wav", pcm, 16000, subtype="ULAW")
    cases["mu-law"] = (KWS, tmp_path / "mulaw.wav", "is format 0x0007 (mu-law); this reader "
                                                    "takes integer PCM and float wav files")
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = (KWS, tmp_path / "empty.wav", "not a readable .wav file")
    write_wav(tmp_path / "whole.wav", pcm)
    (tmp_path / "truncated.wav").write_bytes((tmp_path / "whole.wav").read_bytes()[:5000])
    cases["truncated"] = (KWS, tmp_path / "truncated.wav", "truncated: the header declares "
                                                           "16000 samples, the file holds 2478")
    write_wav(tmp_path / "silence-header.wav", pcm[:0])
    cases["no samples"] = (KWS, tmp_path / "silence-header.wav", "has no samples")
    np.save(tmp_path / "five.npy", np.zeros((10, 5), np.float32))
    cases["npy width"] = (ACTIVITY, tmp_path / "five.npy", "expected shape (steps, 6), got "
                                                           "(10, 5)")
    np.save(tmp_path / "objects.npy", np.array([None, 1], dtype=object))
    cases["npy objects"] = (ACTIVITY, tmp_path / "objects.npy", "holds Python objects")
    (tmp_path / "rows.csv").write_text("1,2,3,4,5,6\n1,2,3\n")
    cases["csv width"] = (ACTIVITY, tmp_path / "rows.csv", "rows.csv: line 2: has 3 values; "
                                                           "the model takes 6")
    (tmp_path / "nan.csv").write_text("1,2,3,4,5,6\n1,2,nan,4,5,6\n")
    cases["csv nan"] = (ACTIVITY, tmp_path / "nan.csv", "nan.csv: line 2 holds NaN or "
                                                        "infinity")
    np.save(tmp_path / "nan.npy", np.array([[0.0] * 6, [np.inf] + [0.0] * 5], np.float32))
    cases["npy nan"] = (ACTIVITY, tmp_path / "nan.npy", "nan.npy: row 1 holds NaN or "
                                                        "infinity")
    (tmp_path / "words.csv").write_text("a,b,c,d,e,f\n1,2,x,4,5,6\n")
    cases["csv words"] = (ACTIVITY, tmp_path / "words.csv", "line 2: expected 6 numbers")
    (tmp_path / "x.txt").write_text("1")
    cases["extension"] = (ACTIVITY, tmp_path / "x.txt", "expected a .wav, .npy or .csv file")
    cases["wav to a sensor model"] = (ACTIVITY, tmp_path / "whole.wav", "has no audio front "
                                                                        "end")
    cases["rows to an audio model"] = (KWS, tmp_path / "rows.csv", "takes audio through its "
                                                                   "front end")
    cases["missing"] = (KWS, tmp_path / "missing.wav", "cannot read the wav file")
    (tmp_path / "folder.wav").mkdir()
    cases["directory"] = (KWS, tmp_path / "folder.wav", "the wav file is a directory")
    return cases


def test_bad_inputs_get_one_line_errors(tmp_path):
    for name, (model, source, message) in bad_inputs(tmp_path).items():
        result = lstmlite("run", model, source, "-o", tmp_path / "never.npy")
        stderr = result.stderr.decode()
        assert result.returncode == 1, (name, stderr)
        assert stderr.startswith("lstmlite run: error: ") and message in stderr, (name, stderr)
        assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr, (name, stderr)
    assert not (tmp_path / "never.npy").exists()


@pytest.mark.parametrize("args,stdin,message", [
    (["run", KWS], None, "give an INPUT file (.wav, .npy, .csv) or --stdin"),
    (["run", KWS, SENTENCE, "--stdin"], None, "give INPUT files or --stdin, not both"),
    (["run", KWS, "--stdin"], b"\x01\x02\x03", "ended in the middle of a sample"),
    (["run", ACTIVITY, "--stdin"], b"1,2,3\n", "stdin: line 1: has 3 values"),
    (["run", ACTIVITY, "--stdin"], b"\xff\xfe,1\n", "not UTF-8 text"),
    (["run", ACTIVITY, "--stdin"], b"1,2,3,4,5,nan\n", "stdin: line 1 holds NaN or infinity"),
    (["run", KWS, SENTENCE, "-o", "out.txt"], None, "the output must be a .npy or .csv file"),
    (["run", KWS, "--stdin", "-o", "."], b"", "the output must be a .npy or .csv file"),
])
def test_bad_invocations_get_one_line_errors(tmp_path, args, stdin, message):
    result = subprocess.run([sys.executable, "-m", "lstmlite", *map(str, args)],
                            capture_output=True, input=stdin or b"", cwd=tmp_path, timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 1 and message in stderr, stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr


def test_an_output_symlink_is_refused_before_the_run(tmp_path):
    target = tmp_path / "elsewhere.npy"
    target.write_bytes(b"keep")
    (tmp_path / "out.npy").symlink_to(target)
    result = lstmlite("run", KWS, SENTENCE, "-o", tmp_path / "out.npy")
    assert result.returncode == 1 and b"symbolic link" in result.stderr, result.stderr
    assert result.stdout == b"" and target.read_bytes() == b"keep"


def test_demo_runs_the_keyword_spotter_on_the_bundled_sentence():
    result = lstmlite("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "kws.lstm" in out and "spoken: " in out and "front end: LogMel(" in out
    detections = out.split("detections")[1].split("keywords: ")[0].splitlines()[1:]
    assert detections and all(len(line.split()) == 3 for line in detections), out
    # every keyword of the recording is marked found or MISSED, in the order spoken
    with open(ll.examples.path("kws-sentence.json")) as handle:
        spoken = [w["word"] for w in json.load(handle)["words"]]
    marks = out.split("keywords: ")[1].split("\n")[0].split(", ")
    keywords = [w for w in spoken if w in ll.load(KWS).metadata["labels"]]
    assert [m.split()[0] for m in marks[:len(keywords)]] == keywords, out
    assert all(m.split()[1] in ("found", "MISSED") for m in marks[:len(keywords)]), out
    timing = out.split("per frame: ")[1]
    assert "front end" in timing and "model" in timing and "int8 model" in timing


def test_demo_marks_keywords_found_missed_and_not_spoken():
    from lstmlite.demo import keyword_marks
    spoken = [{"word": "yes", "start": 0.4, "end": 0.6}, {"word": "house", "start": 1.0,
                                                            "end": 1.3},
              {"word": "stop", "start": 2.0, "end": 2.2}, {"word": "go", "start": 3.0,
                                                            "end": 3.2}]
    labels = ["_silence_", "_unknown_", "yes", "stop", "go"]
    detected = [(0.7, "yes"), (1.4, "go"), (2.3, "stop"), (4.5, "go")]
    assert keyword_marks(spoken, detected, labels) == (
        "yes found, stop found, go MISSED, go at 1.40 s not spoken, go at 4.50 s not spoken")
    assert keyword_marks(spoken[1:2], [], labels) == "(none spoken)"


def test_long_inputs_show_progress_when_asked(tmp_path, capsys):
    """The CLI asks for it when stdout is a terminal; here the runner is called directly."""
    from lstmlite.runner import run_file
    X = np.tile(activity_recording()[0], (12, 1))                 # 1,200 steps
    np.save(tmp_path / "long.npy", X)
    summary = run_file(ll.load(ACTIVITY), str(tmp_path / "long.npy"), out=lambda line: None,
                       progress=True)
    assert summary["steps"] == 1200
    err = capsys.readouterr().err
    assert err.count("\r") == 101 and err.endswith("100% (1200/1200 steps)\n"), err[-200:]


# ---- many inputs ------------------------------------------------------------------------

def _recordings(tmp_path):
    """Three good recordings (one of them 24-bit, one shorter) and two bad ones."""
    import soundfile
    pcm = sentence_pcm()
    folder = tmp_path / "in"
    folder.mkdir()
    write_wav(folder / "a.wav", pcm)
    soundfile.write(folder / "b.wav", pcm, 16000, subtype="PCM_24")
    write_wav(folder / "c.wav", pcm[: len(pcm) // 2])
    write_wav(folder / "stereo.wav", np.repeat(pcm[:1600], 2), channels=2)
    (folder / "junk.wav").write_bytes(b"not audio")
    return folder, ["a.wav", "b.wav", "junk.wav", "c.wav", "stereo.wav"]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_many_inputs_each_through_its_own_stream(tmp_path, jobs):
    folder, names = _recordings(tmp_path)
    inputs = [folder / name for name in names]
    result = lstmlite("run", KWS, *inputs, "-o", tmp_path / "out", "--jobs", jobs)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr          # the number of inputs that failed
    errors = [line for line in stderr.splitlines() if line.startswith("lstmlite run: error:")]
    assert len(errors) == 2 and "junk.wav: not a readable .wav file" in errors[0] and \
        "stereo.wav: has 2 channels" in errors[1], stderr
    assert "# 5 files: 3 done, 2 failed" in stderr and "Traceback" not in stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["a.npy", "b.npy", "c.npy"]
    # every file's outputs and detections are what it gives alone, in input order
    lines = result.stdout.decode().splitlines()
    prefixes = [line.split("\t", 1)[0] for line in lines]
    assert prefixes == sorted(prefixes, key=lambda p: names.index(os.path.basename(p)))
    for name in ("a.wav", "b.wav", "c.wav"):
        alone = lstmlite("run", KWS, folder / name, "-o", tmp_path / "alone.npy")
        np.testing.assert_array_equal(np.load(tmp_path / "out" / name.replace(".wav", ".npy")),
                                      np.load(tmp_path / "alone.npy"))
        mine = [line.split("\t", 1)[1] for line in lines if line.startswith(str(folder / name))]
        assert mine == alone.stdout.decode().splitlines() and mine, name


def test_many_inputs_csv_outputs_and_no_output_directory(tmp_path):
    X, _ = activity_recording()
    np.save(tmp_path / "one.npy", X)
    np.save(tmp_path / "two.npy", X[:40])
    result = lstmlite("run", ACTIVITY, tmp_path / "one.npy", tmp_path / "two.npy",
                      "-o", tmp_path / "csv", "--output-format", "csv", "-j", "0")
    assert result.returncode == 0, result.stderr
    expected = ll.load(ACTIVITY).run(X)
    np.testing.assert_allclose(np.loadtxt(tmp_path / "csv" / "two.csv", delimiter=",",
                                          skiprows=1), expected[:40], rtol=1e-6, atol=1e-7)
    plain = lstmlite("run", ACTIVITY, tmp_path / "one.npy", tmp_path / "two.npy")
    assert plain.returncode == 0 and plain.stdout.decode().startswith(f"{tmp_path}/one.npy\t")


def test_many_inputs_refusals_before_any_work(tmp_path):
    X, _ = activity_recording()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "a" / "x.npy", X)
    np.save(tmp_path / "b" / "x.npy", X)
    cases = [
        ([tmp_path / "a" / "x.npy", tmp_path / "b" / "x.npy", "-o", tmp_path / "out"],
         "would both write"),
        ([tmp_path / "a" / "x.npy", tmp_path / "b" / "x.npy", "-o", tmp_path / "out.npy"],
         "with several inputs -o names a directory"),
        ([tmp_path / "a" / "x.npy", tmp_path / "b" / "x.npy", "-o",
          tmp_path / "missing" / "out"], "does not exist"),
    ]
    for args, message in cases:
        result = lstmlite("run", ACTIVITY, *args)
        stderr = result.stderr.decode()
        assert result.returncode == 1 and message in stderr, stderr
        assert len(stderr.splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_file_progress_bar(tmp_path, capsys):
    from lstmlite.runner import run_many
    X, _ = activity_recording()
    paths = []
    for index in range(4):
        np.save(tmp_path / f"{index}.npy", X)
        paths.append(str(tmp_path / f"{index}.npy"))
    paths.append(str(tmp_path / "missing.npy"))
    printed, errors = [], []
    results = run_many(ll.load(ACTIVITY), paths, [None] * 5, 1, out=printed.append,
                       error=errors.append, progress=True)
    err = capsys.readouterr().err
    assert "5/5 files, 1 failed" in err and err.endswith("\r\033[K")
    assert [r["error"] is None for r in results] == [True] * 4 + [False]
    assert len(errors) == 1 and "missing.npy" in errors[0]


# ---- lstmlite compare --------------------------------------------------------------------

def test_compare_reports_int8_against_float32_on_a_recording(tmp_path):
    from lstmlite.quantize import compare
    result = lstmlite("compare", KWS, ll.examples.path("kws-int8"), SENTENCE)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode().splitlines()
    model, model8 = ll.load(KWS), ll.load(ll.examples.path("kws-int8"))
    report = compare(model, model8, LogMel.from_model(model).transform(sentence_pcm()))
    assert out[1].strip() == str(report)
    assert out[2].startswith("  detections: ") and "the same (label, within 0.1 s)" in out[2]
    # a model against itself: no difference, every detection the same
    same = lstmlite("compare", KWS, KWS, SENTENCE).stdout.decode().splitlines()
    assert "max abs 0 (0% of the largest output" in same[1] and "cosine 1.000000" in same[1]
    count = int(same[2].split("detections: ")[1].split()[0])
    assert count > 0 and f"{count} the same" in same[2] and len(same) == 3


def test_compare_lists_the_detections_that_differ(tmp_path):
    """A candidate whose head is blind to 'yes' misses the reference's 'yes' detections."""
    model = ll.load(KWS)
    head = model.layers[-1]
    yes = model.metadata["labels"].index("yes")
    bias = head.arrays()["bias"].copy()
    bias[yes] -= 50.0
    blind = ll.Model(list(model.layers[:-1]) + [ll.Dense(head.arrays()["weight"], bias,
                                                         activation="softmax")],
                     metadata=model.metadata)
    blind.save(tmp_path / "blind.lstm")
    out = lstmlite("compare", KWS, tmp_path / "blind.lstm", SENTENCE).stdout.decode()
    missed = [line for line in out.splitlines() if line.startswith(f"  only {KWS}:")]
    assert missed and all(line.split("\t")[2] == "yes" for line in missed), out


def test_compare_refusals(tmp_path):
    for args, message in [
        ((KWS, ACTIVITY, SENTENCE), "takes 6 and gives 4 values per step"),
        ((ACTIVITY, ACTIVITY, SENTENCE), "has no audio front end"),
        ((KWS, KWS, tmp_path / "missing.wav"), "cannot read the wav file"),
    ]:
        result = lstmlite("compare", *args)
        stderr = result.stderr.decode()
        assert result.returncode == 1 and message in stderr, stderr
        assert len(stderr.splitlines()) == 1
