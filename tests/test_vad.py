"""Silero VAD end to end: silero-vad's six ONNX files from its wheel on the package index
(converted, or refused saying why), its chunks as lstmlite's Chunks front end, its segment
rule as lstmlite's Segmenter, and `lstmlite run` on a synthesized noisy dialogue against
silero-vad's own code (OnnxWrapper over onnxruntime, get_speech_timestamps) on the same
audio."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lstmlite as ll
from lstmlite import features
from lstmlite.detection import Segmenter
from conftest import debian_tool, traced_allocations

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "vad"))
import silero  # noqa: E402


# ---- the front end -------------------------------------------------------------------------

def test_chunks_are_silero_wrappers_frames(rng):
    """Frame i = the 64 samples before chunk i (zeros before the first) + chunk i; the last
    partial chunk zero-padded (silero-vad's get_speech_timestamps pads it so)."""
    audio = rng.standard_normal(5000).astype(np.float32)
    frames = features.Chunks().transform(audio)
    padded = np.concatenate([np.zeros(64, np.float32), audio,
                             np.zeros((-len(audio)) % 512, np.float32)])
    expected = np.stack([padded[i * 512:i * 512 + 576] for i in range(len(frames))])
    assert frames.shape == (10, 576)
    np.testing.assert_array_equal(frames, expected)


def test_chunks_stream_in_pieces_as_they_do_whole(rng):
    front = features.Chunks(sample_rate=8000, chunk=256, context=32)
    audio = (rng.standard_normal(3001) * 8000).astype(np.int16)
    whole = front.transform(audio)
    pieces = [np.array(front.push(audio[i:i + 77])) for i in range(0, len(audio), 77)]
    pieces.append(np.array(front.flush()))
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    assert whole.dtype == np.float32 and np.abs(whole).max() <= 1.0   # int16 scaled by 1/32768
    assert front.frame_count(len(audio)) == len(whole)
    # a chunk at a time (the steady state's own path), then odd pieces again
    steady = [np.array(front.push(audio[i:i + 256])) for i in range(0, 2048, 256)]
    steady += [np.array(front.push(audio[i:i + 333])) for i in range(2048, len(audio), 333)]
    steady.append(np.array(front.flush()))
    np.testing.assert_array_equal(np.concatenate(steady), whole)


def test_a_push_allocates_nothing_after_the_first(rng):
    """2,000 chunks under tracemalloc after a first push: no growth, and a peak below one
    frame (576 float32 = 2,304 bytes): only transient views of the front end's buffers."""
    front = features.Chunks()
    chunk = (rng.standard_normal(512) * 1000).astype(np.int16)
    first = front.push(chunk)
    same_buffer = True

    def loop():
        nonlocal same_buffer
        for _ in range(2000):
            frames = front.push(chunk)
            same_buffer &= frames.base is first.base and frames.shape == (1, 576)

    def ok(net, peak):
        return net < 256 and peak < 1000
    seen = traced_allocations(loop, ok)
    assert same_buffer and ok(*seen[-1]), seen


@pytest.mark.parametrize("config,message", [
    ({"type": "chunks", "chunk": 0}, "chunk"),
    ({"type": "chunks", "hop": 3}, "unknown key"),
    ({"type": "mystery"}, "type must be one of"),
])
def test_bad_front_end_configs_are_refused(config, message):
    with pytest.raises(ll.ModelError, match=message):
        features.from_config(config)


# ---- the segments -------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(levels=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 40)), min_size=1,
                       max_size=25),
       short=st.integers(0, 511), threshold=st.sampled_from([0.5, 0.3, 0.8]),
       speech=st.sampled_from([250, 0, 100]), silence=st.sampled_from([100, 0, 20, 300]),
       pad=st.sampled_from([30, 0, 100]))
def test_segments_are_silero_vads_own(silero_utils, levels, short, threshold, speech,
                                      silence, pad):
    """Streamed, the Segmenter gives what get_speech_timestamps_from_probs gives on the whole
    list, for any probabilities and settings (pads wider than half the silence included)."""
    probabilities = [level for level, count in levels for _ in range(count)]
    total = len(probabilities) * 512 - short
    settings_ = dict(threshold=threshold, min_speech_duration_ms=speech,
                     min_silence_duration_ms=silence, speech_pad_ms=pad)
    expected = silero_utils.get_speech_timestamps_from_probs(
        probabilities, audio_length_samples=total, **settings_)
    segmenter = Segmenter(**settings_)
    got = [segment for p in probabilities for segment in segmenter.update(p)]
    got += segmenter.finish(total)
    assert got == [(s["start"], s["end"]) for s in expected]


# ---- silero's files -----------------------------------------------------------------------

@pytest.mark.parametrize("name", silero.ONNX_FILES)
def test_silero_files_convert_and_verify(silero_dir, name):
    """All six: silero_vad_op18_ifless.onnx's LSTM step, written out as Gemm, Split, Sigmoid,
    Tanh, Mul and Add, is recognised as an LSTM (converters/onnx_cells.py)."""
    conversion = silero.convert(os.path.join(silero_dir, "data", name))
    assert conversion.report.passed, conversion.report.lines()
    kinds = [type(layer).__name__ for layer in conversion.model.layers]
    assert kinds[:3] == ["Conv1d", "Magnitude", "Conv1d"] and "LSTM" in kinds
    assert conversion.model.input_size == 576 and conversion.model.output_size == 1
    assert conversion.model.layers[0].fft is not None           # its STFT as an FFT
    if name == "silero_vad_op18_ifless.onnx":
        assert any("compute one LSTM step with hidden size 128" in note
                   for note in conversion.notes)


# ---- end to end ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dialogue_wav(tmp_path_factory):
    debian_tool("espeak-ng", "espeak-ng", "LSTMLITE_REQUIRE_SPEECH")
    debian_tool("sox", "sox", "LSTMLITE_REQUIRE_SOX")
    import dialogue
    path = str(tmp_path_factory.mktemp("vad") / "dialogue.wav")
    turns = dialogue.make_dialogue(path, minutes=1.5, seed=3)
    return path, turns


@pytest.fixture(scope="module")
def vad_file(silero_dir, tmp_path_factory):
    """silero_vad.onnx converted by the documented command."""
    path = str(tmp_path_factory.mktemp("vad") / "vad.lstm")
    result = subprocess.run(
        [sys.executable, "-m", "lstmlite", "convert",
         os.path.join(silero_dir, "data", "silero_vad.onnx"), "--input", "sr=16000",
         "--input-shape", "input=?,576", "--metadata",
         os.path.join(ROOT, "examples", "vad", "metadata.json"), "-o", path],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return path


def _silero_reference(silero_utils, silero_dir, samples):
    """(per-chunk probabilities, segments in samples) by silero-vad's own code over
    onnxruntime, exactly as its users call it."""
    import torch
    model = silero_utils.OnnxWrapper(os.path.join(silero_dir, "data", "silero_vad.onnx"),
                                     force_onnx_cpu=True)
    audio = torch.from_numpy(samples)
    segments = silero_utils.get_speech_timestamps(audio, model)
    model.reset_states()
    padded = np.concatenate([samples, np.zeros((-len(samples)) % 512, np.float32)])
    probabilities = np.array([model(torch.from_numpy(padded[i:i + 512]), 16000).item()
                              for i in range(0, len(padded), 512)])
    return probabilities, [(s["start"], s["end"]) for s in segments]


def test_lstmlite_run_is_silero_vad(silero_utils, silero_dir, vad_file, dialogue_wav,
                                    tmp_path):
    """`lstmlite run vad.lstm dialogue.wav -o probs.npy`: one probability per chunk within
    2e-5 of silero-vad's own code over onnxruntime on 1.5 minutes of noisy dialogue (the issue
    asked 1e-4; measured 5.5e-6 here, 1.0e-5 on bench_vad.py's 125 s), the same
    segments it finds, and the same from Stream.step on 576-sample frames and from --stdin."""
    wav, turns = dialogue_wav
    from lstmlite.wavfile import read_wav
    samples = read_wav(wav, 16000).astype(np.float32) / 32768.0
    expected, segments = _silero_reference(silero_utils, silero_dir, samples)
    probs = tmp_path / "probs.npy"
    result = subprocess.run([sys.executable, "-m", "lstmlite", "run", vad_file, wav, "-o",
                             str(probs)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    got = np.load(probs)[:, 0]
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 2e-5
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    shown = [(s / 16000, e / 16000) for s, e in segments]
    assert len(lines) == len(shown) >= len(turns) // 2, (lines, shown)
    for (start, end, label), (s, e) in zip(lines, shown):
        assert label == "speech" and float(start) == pytest.approx(s, abs=5e-4) and \
            float(end) == pytest.approx(e, abs=5e-4)
    # against the dialogue's own timing: most of the spoken time is inside segments, little
    # of the time between turns
    spoken, marked = np.zeros(len(samples), bool), np.zeros(len(samples), bool)
    for a, b in turns:
        spoken[int(a * 16000):int(b * 16000)] = True
    for s, e in segments:
        marked[s:e] = True
    assert marked[spoken].mean() >= 0.8 and marked[~spoken].mean() <= 0.3, \
        (marked[spoken].mean(), marked[~spoken].mean())

    model = ll.load(vad_file)
    stream = model.stream()
    frames = features.from_model(model).transform(samples)
    stepped = np.array([float(stream.step(frame)[0]) for frame in frames])
    assert np.abs(stepped - expected).max() <= 2e-5

    with open(wav, "rb") as handle:
        live = subprocess.run([sys.executable, "-m", "lstmlite", "run", vad_file, "--stdin"],
                              stdin=handle, capture_output=True, text=True)
    assert live.returncode == 0, live.stderr
    assert live.stdout == result.stdout


def test_int8_keeps_the_decisions(vad_file, dialogue_wav, silero_utils, silero_dir):
    """int8 weights (every Conv1d, the LSTM, the head): the speech/non-speech decision at 0.5
    of at least 99% of the chunks equals onnxruntime's."""
    wav, _ = dialogue_wav
    from lstmlite.wavfile import read_wav
    samples = read_wav(wav, 16000).astype(np.float32) / 32768.0
    expected, _ = _silero_reference(silero_utils, silero_dir, samples)
    model = ll.load(vad_file)
    quantized = model.quantize()
    assert all(layer.weight_dtype == "int8" for layer in quantized.layers
               if layer.matrix_names)
    got = quantized.run(features.from_model(model).transform(samples)[None])[0, :, 0]
    assert np.mean((got >= 0.5) == (expected >= 0.5)) >= 0.99


def test_the_8khz_network_converts_too(silero_dir):
    """silero_vad.onnx's other branch: sr fixed at 8000, chunks of 256 + 32 samples."""
    from lstmlite.converters import convert_onnx
    conversion = convert_onnx(os.path.join(silero_dir, "data", "silero_vad.onnx"),
                              input_values={"sr": 8000}, input_shapes={"input": [None, 288]},
                              tolerance=1e-5)
    assert conversion.report.passed, conversion.report.lines()
    assert conversion.model.input_size == 288 and conversion.model.layers[0].fft == (65, -1)
    model = conversion.model
    model.metadata["frontend"] = features.Chunks(8000, chunk=256, context=32).config()
    assert features.from_model(model).n_features == 288
