"""The streaming front end (lstmlite.features) against librosa, an independent whole-signal
reference: streamed in chunks of any length, its frames equal librosa's within 1e-6 relative
(measured: about 1e-7, float32 rounding of the output). Also: no allocation per hop, the
configuration round trip through a .lstm file, and bad audio refused without changing state."""

import librosa
import numpy as np
import pytest

from conftest import traced_allocations

import lstmlite as ll
from lstmlite.features import LogMel, mel_filters

RELATIVE = 1e-6


def librosa_logmel(signal, front: LogMel) -> np.ndarray:
    """(T, n_features) float64 from librosa on the whole signal, center=False framing."""
    power = librosa.feature.melspectrogram(
        y=np.asarray(signal, dtype=np.float64), sr=front.sample_rate, n_fft=front.n_fft,
        hop_length=front.hop_length, win_length=front.win_length, window="hann",
        center=False, power=2.0, n_mels=front.n_mels, fmin=front.fmin, fmax=front.fmax,
        htk=front.mel_scale == "htk", norm=front.mel_norm)
    features = np.log(power + front.log_offset)
    if front.n_mfcc:
        features = librosa.feature.mfcc(S=features, n_mfcc=front.n_mfcc, dct_type=2,
                                        norm="ortho")
    features = features.T
    if front.mean is not None:
        features = features - front.mean
    if front.std is not None:
        features = features / front.std
    return features


def streamed(front: LogMel, signal, rng, largest_chunk: int) -> np.ndarray:
    front.reset()
    frames, position = [], 0
    while position < len(signal):
        size = int(rng.integers(0, largest_chunk + 1))
        frames.append(np.array(front.push(signal[position:position + size])))
        position += size
    return np.concatenate(frames)


def assert_close(ours, reference):
    assert ours.dtype == np.float32 and ours.shape == reference.shape
    error = np.abs(ours - reference) / np.maximum(np.abs(reference), 1.0)
    assert error.max() <= RELATIVE, error.max()


def speech_like(rng, seconds=1.3, rate=16000):
    """Chirps and harmonics under noise, with a quiet stretch: a wide range of band energies."""
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.3 * np.sin(2 * np.pi * (200 + 1500 * t) * t) * (1 + np.sin(2 * np.pi * 3 * t))
    signal += sum(0.05 / k * np.sin(2 * np.pi * 180 * k * t) for k in range(1, 12))
    signal += 0.01 * rng.standard_normal(t.size)
    signal[len(t) // 3: len(t) // 2] *= 1e-3
    return signal


CONFIGS = [
    dict(),                                                             # 40 bands, 25/10 ms
    dict(n_fft=400, win_length=400, hop_length=160, n_mels=64, fmin=0.0, mel_scale="htk",
         mel_norm=None),
    dict(n_fft=1024, win_length=640, hop_length=320, n_mels=80, fmin=50.0, fmax=7000.0,
         log_offset=1e-3),
    dict(n_fft=512, win_length=512, hop_length=128, n_mels=40, n_mfcc=13),
    dict(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=32, fmax=3800.0,
         mel_scale="htk"),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}"
                                                                   for k, v in c.items()) or "defaults")
@pytest.mark.parametrize("largest_chunk", [1, 37, 160, 5000])
def test_streamed_frames_equal_librosa_on_the_whole_signal(rng, config, largest_chunk):
    front = LogMel(**config)
    signal = speech_like(rng, rate=front.sample_rate)
    reference = librosa_logmel(signal, front)
    assert reference.shape[0] == (len(signal) - front.n_fft) // front.hop_length + 1
    assert_close(streamed(front, signal, rng, largest_chunk), reference)


def test_normalization_and_int16_audio(rng):
    signal = speech_like(rng)
    pcm = np.round(signal * 20000).astype(np.int16)
    mean = rng.standard_normal(13)
    std = rng.uniform(0.5, 3.0, 13)
    front = LogMel(n_mfcc=13, mean=mean, std=std)
    reference = librosa_logmel(pcm / 32768.0, front)
    assert_close(streamed(front, pcm, rng, 400), reference)


@pytest.mark.parametrize("scale,norm", [("slaney", "slaney"), ("htk", None), ("htk", "slaney"),
                                        ("slaney", None)])
def test_filters_equal_librosa(scale, norm):
    for sample_rate, n_fft, n_mels, fmin, fmax in [(16000, 512, 40, 20.0, 7600.0),
                                                   (16000, 1024, 128, 0.0, 8000.0),
                                                   (22050, 2048, 64, 30.0, 11025.0)]:
        ours = mel_filters(sample_rate, n_fft, n_mels, fmin, fmax, scale, norm)
        theirs = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                     fmax=fmax, htk=scale == "htk", norm=norm,
                                     dtype=np.float64)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_frames_arrive_when_their_last_sample_does():
    front = LogMel()
    assert front.push(np.zeros(511)).shape == (0, 40)
    assert front.push(np.zeros(1)).shape == (1, 40)           # samples 0..511
    assert front.push(np.zeros(159)).shape == (0, 40)
    assert front.push(np.zeros(1)).shape == (1, 40)           # samples 160..671
    assert front.push(np.zeros(0)).shape == (0, 40)
    assert front.push(np.zeros(1600)).shape == (10, 40)
    assert front.frame_end_seconds(0) == 512 / 16000
    front.reset()
    assert front.push(np.zeros(512)).shape == (1, 40)


def test_a_push_allocates_no_arrays(rng):
    """10,000 hops under tracemalloc after a first push: the traced memory does not grow, the
    peak stays below one frame buffer (only transient views), and the
    frames come back in the same buffer."""
    front = LogMel()
    chunk = (0.1 * rng.standard_normal(160)).astype(np.float32)
    first = front.push(np.zeros(1024, dtype=np.float32))
    first_base = first.base
    same_buffer = True

    def loop():
        nonlocal same_buffer
        for _ in range(10_000):
            frames = front.push(chunk)
            same_buffer &= frames.base is first_base and frames.shape == (1, 40)

    # net: a few bytes of the loop's own bookkeeping; a leak of even one byte per hop would
    # show as 10 kB. Peak: a (1, 40) float32 result array alone would be 160 bytes of data
    # plus its header; views of existing buffers cost only their ~100-byte object, freed at once
    def ok(net, peak):
        return net < 256 and peak < 1000

    seen = traced_allocations(loop, ok)
    assert same_buffer
    assert ok(*seen[-1]), seen


def test_config_round_trips_through_a_model_file(tmp_path, rng):
    front = LogMel(n_mfcc=20, fmin=30.0, fmax=7000.0, mean=rng.standard_normal(20),
                   std=rng.uniform(1, 2, 20), mel_scale="htk", mel_norm=None)
    model = ll.Model([ll.Dense(rng.standard_normal((3, 20)).astype(np.float32),
                               np.zeros(3, np.float32))])
    model.save(tmp_path / "m.lstm", metadata={"frontend": front.config()})
    loaded = LogMel.from_model(ll.load(tmp_path / "m.lstm"))
    signal = speech_like(rng)
    assert np.array_equal(loaded.transform(signal), front.transform(signal))
    assert loaded.config() == front.config()


@pytest.mark.parametrize("config,message", [
    ({"type": "log_mel", "n_fft": 1 << 20}, "n_fft must be from 2 to 4096"),
    ({"type": "log_mel", "n_fft": 512.0}, "n_fft must be an integer"),
    ({"type": "log_mel", "n_fft": 4093, "n_mels": 40}, "n_fft 4093 has no factors near its "
                                                       "square root"),
    ({"type": "log_mel", "win_length": 1024}, "win_length must be from 1 to 512"),
    ({"type": "log_mel", "fmax": 9000}, "fmax"),
    ({"type": "log_mel", "fmin": float("nan")}, "fmin must be finite"),
    ({"type": "log_mel", "log_offset": 0}, "log_offset must be positive"),
    ({"type": "log_mel", "n_mfcc": 41}, "n_mfcc must be from 1 to 40"),
    ({"type": "log_mel", "mean": [0.0] * 3}, "mean must be 40 finite numbers"),
    ({"type": "log_mel", "std": [0.0] * 40}, "std must be positive"),
    ({"type": "log_mel", "mel_scale": "bark"}, "mel_scale"),
    ({"type": "log_mel", "pre_emphasis": 0.97}, "unknown key(s) pre_emphasis"),
    ({"type": "mfcc"}, "type must be 'log_mel'"),
    ({"type": "log_mel", "window": "hamming"}, "window must be 'hann'"),
    ({"type": "log_mel", "n_fft": 64, "win_length": 64, "hop_length": 32, "n_mels": 128}, "covers no DFT bin"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_configs_are_refused_by_name(config, message):
    with pytest.raises(ll.ModelError, match=None) as caught:
        LogMel.from_config(config)
    assert message in str(caught.value), str(caught.value)


def test_a_model_without_a_front_end_or_of_another_width_is_refused(rng):
    model = ll.Model([ll.Dense(np.ones((3, 13), np.float32), np.zeros(3, np.float32))])
    with pytest.raises(ll.ModelError, match="no audio front end"):
        LogMel.from_model(model)
    model.metadata["frontend"] = LogMel().config()
    with pytest.raises(ll.ModelError, match="gives 40 features per frame but the model "
                                            "takes 13"):
        LogMel.from_model(model)


@pytest.mark.parametrize("audio,error,message", [
    (np.zeros((100, 2)), ll.ShapeError, "one channel"),
    (np.zeros(100, dtype=np.int32), ll.InputTypeError, "int16 PCM or float"),
    (np.array(["a", "b"]), ll.InputTypeError, "int16 PCM or float"),
    (np.array([0.0, np.nan]), ll.InputTypeError, "NaN"),
])
def test_bad_audio_is_refused_and_the_state_kept(rng, audio, error, message):
    front = LogMel()
    signal = speech_like(rng)
    whole = front.transform(signal)
    first = np.array(front.push(signal[:700]))
    with pytest.raises(error, match=message):
        front.push(audio)
    rest = np.array(front.push(signal[700:]))
    assert np.array_equal(np.concatenate([first, rest]), whole)
