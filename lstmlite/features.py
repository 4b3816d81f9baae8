"""Streaming audio front end: log-mel energies (or MFCCs) from audio chunks of any length.

    front = lstmlite.features.LogMel(sample_rate=16000, n_fft=512, win_length=400,
                                     hop_length=160, n_mels=40)
    stream = model.stream()
    for chunk in microphone_chunks:           # 1-D int16 (PCM) or float audio, any length
        for frame in front.push(chunk):       # (k, n_features) float32, k >= 0 complete frames
            probs = stream.step(frame)

Frame t covers samples [t * hop_length, t * hop_length + n_fft) of everything pushed since the
last reset(): the frame is emitted as soon as its last sample arrives (librosa's `center=False`
framing), so a stream never waits for future audio. The window (periodic Hann, `win_length`
long) sits centred in the n_fft samples, as librosa and torch.stft place it. Per frame:

    power[k]  = |sum_n x[n] w[n] exp(-2 pi i k n / n_fft)|^2            k = 0 .. n_fft / 2
    mel[m]    = sum_k filters[m, k] power[k]        triangular filters, slaney or htk mel scale
    logmel[m] = ln(mel[m] + log_offset)
    mfcc      = DCT-II (orthonormal) of logmel, first n_mfcc coefficients   (when n_mfcc is set)
    features  = (logmel or mfcc - mean) / std                            (when mean/std are set)

equal to librosa.feature.melspectrogram(center=False, power=2) followed by the same log, and to
librosa.feature.mfcc(S=logmel, n_mfcc, norm="ortho") (tests/test_features.py, within 1e-6
relative). Audio in int16 is scaled by 1/32768, float audio is taken as it is.

The DFT is computed in float64 as two passes of small matrix products (a "four-step" FFT, see
LogMel.__init__): numpy's FFT would allocate its output on every call, products into
preallocated buffers do not.
After the first push of a given chunk size, a push allocates no arrays (only transient views;
tested under tracemalloc). The frames returned are views of the front end's own buffer,
overwritten by the next push: copy them to keep them.

The configuration travels in a model's metadata under the key "frontend" (docs/FORMAT.md):
`LogMel.from_config(model.metadata["frontend"])` rebuilds the exact front end the model was
trained with, and `front.config()` is what to store.

Chunks is the other front end: the raw samples themselves, in chunks of `chunk` new samples
each preceded by the last `context` samples before them (zeros before the first), as
silero-vad's own wrapper feeds its graph (512 + 64 at 16 kHz). `from_model(model)` returns
whichever front end a model's metadata describes.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

import numpy as np

from .errors import InputTypeError, ModelError, ShapeError

#: The metadata key of a model's front end configuration.
METADATA_KEY = "frontend"

#: Bounds a configuration (possibly read from a file) must respect: the DFT basis is
#: n_fft * (n_fft + 2) float64 values, 134 MB at 4096, so a hostile file cannot ask for more.
MAX_N_FFT = 4096
MAX_MELS = 512
MAX_SAMPLE_RATE = 192_000
#: the larger factor of n_fft = N1 x N2 (see LogMel.__init__): its (2 N2)^2 DFT matrix is 8 MB
MAX_FFT_FACTOR = 512

_MEL_SCALES = ("slaney", "htk")
_MEL_NORMS = ("slaney", None)


def hz_to_mel(hz: np.ndarray, scale: str = "slaney") -> np.ndarray:
    """Hz to mel. "htk": 2595 log10(1 + f / 700). "slaney" (the Auditory Toolbox's, librosa's
    default): f / (200 / 3) below 1 kHz, logarithmic above it (a factor 6.4 per 27 mel)."""
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear_step = 200.0 / 3
    break_hz, break_mel = 1000.0, 1000.0 / linear_step
    log_step = math.log(6.4) / 27.0
    mel = hz / linear_step
    above = hz >= break_hz
    return np.where(above, break_mel + np.log(np.maximum(hz, break_hz) / break_hz) / log_step,
                    mel)


def mel_to_hz(mel: np.ndarray, scale: str = "slaney") -> np.ndarray:
    """The inverse of hz_to_mel."""
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear_step = 200.0 / 3
    break_hz, break_mel = 1000.0, 1000.0 / linear_step
    log_step = math.log(6.4) / 27.0
    return np.where(mel >= break_mel, break_hz * np.exp(log_step * (mel - break_mel)),
                    linear_step * mel)


def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float,
                scale: str = "slaney", norm: Optional[str] = "slaney") -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float64 triangular filters: n_mels + 2 points equally spaced
    in mel between fmin and fmax, each filter rising from its left point to its centre and
    falling to its right point, evaluated at the DFT bin frequencies. norm="slaney" scales
    each filter to unit area (2 / (right - left) in Hz); None leaves peaks at 1."""
    bin_hz = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    points_hz = mel_to_hz(np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale),
                                      n_mels + 2), scale)
    widths = np.diff(points_hz)
    # distance of every bin from every point: rising edge / left width, falling edge / right
    offsets = points_hz[:, None] - bin_hz[None, :]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        filters *= (2.0 / (points_hz[2:] - points_hz[:-2]))[:, None]
    return filters


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out) float64 orthonormal DCT-II, first n_out coefficients: y = x @ D."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    basis = np.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[:, 0] *= math.sqrt(0.5)
    return basis


def periodic_hann(length: int) -> np.ndarray:
    """0.5 - 0.5 cos(2 pi n / length): the periodic Hann window (scipy's sym=False)."""
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * np.arange(length) / length)


def _middle_divisor(n: int) -> int:
    """The largest divisor of n not above sqrt(n) (1 for a prime: then one direct DFT)."""
    for divisor in range(math.isqrt(n), 0, -1):
        if n % divisor == 0:
            return divisor
    return 1


def _integer(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ModelError(f"front end: {key} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ModelError(f"front end: {key} must be from {low} to {high}, got {value}")
    return int(value)


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ModelError(f"front end: {key} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ModelError(f"front end: {key} must be finite, got {value}")
    return value


def _vector(value: Any, key: str, size: int) -> Optional[np.ndarray]:
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelError(f"front end: {key} must be {size} numbers") from None
    if array.shape != (size,) or not np.isfinite(array).all():
        raise ModelError(f"front end: {key} must be {size} finite numbers, got shape "
                         f"{array.shape}")
    return array


class LogMel:
    """A streaming log-mel (or MFCC) extractor; see the module docstring for the exact
    definition. Parameters:

    sample_rate  Hz of the audio pushed (16000)
    n_fft        samples per frame and DFT size (512); bins = n_fft // 2 + 1
    win_length   Hann window length, <= n_fft, centred in the frame (400: 25 ms at 16 kHz)
    hop_length   samples between frame starts (160: 10 ms)
    n_mels       mel bands (40)
    fmin, fmax   band edges in Hz (20, sample_rate / 2 when None)
    mel_scale    "slaney" (librosa's default) or "htk"
    mel_norm     "slaney" (unit-area filters, librosa's default) or None
    log_offset   added before the natural log (1e-6)
    n_mfcc       None for log-mel features, or the number of DCT-II coefficients kept
    mean, std    optional per-feature normalization, each (n_features,)
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, win_length: int = 400,
                 hop_length: int = 160, n_mels: int = 40, fmin: float = 20.0,
                 fmax: Optional[float] = None, mel_scale: str = "slaney",
                 mel_norm: Optional[str] = "slaney", log_offset: float = 1e-6,
                 n_mfcc: Optional[int] = None, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None):
        self.sample_rate = _integer(sample_rate, "sample_rate", 1, MAX_SAMPLE_RATE)
        self.n_fft = _integer(n_fft, "n_fft", 2, MAX_N_FFT)
        self.win_length = _integer(win_length, "win_length", 1, self.n_fft)
        self.hop_length = _integer(hop_length, "hop_length", 1, self.n_fft)
        self.n_mels = _integer(n_mels, "n_mels", 1, MAX_MELS)
        self.fmin = _number(fmin, "fmin")
        self.fmax = _number(self.sample_rate / 2 if fmax is None else fmax, "fmax")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ModelError(f"front end: need 0 <= fmin < fmax <= sample_rate / 2 = "
                             f"{self.sample_rate / 2:g}, got fmin={self.fmin:g}, "
                             f"fmax={self.fmax:g}")
        if mel_scale not in _MEL_SCALES:
            raise ModelError(f"front end: mel_scale must be one of {_MEL_SCALES}, got "
                             f"{mel_scale!r}")
        if mel_norm not in _MEL_NORMS:
            raise ModelError(f"front end: mel_norm must be 'slaney' or None, got {mel_norm!r}")
        self.mel_scale, self.mel_norm = mel_scale, mel_norm
        self.log_offset = _number(log_offset, "log_offset")
        if not self.log_offset > 0:
            raise ModelError(f"front end: log_offset must be positive, got {self.log_offset:g}")
        if n_mfcc is not None:
            n_mfcc = _integer(n_mfcc, "n_mfcc", 1, self.n_mels)
        self.n_mfcc = n_mfcc
        self.n_features = self.n_mels if n_mfcc is None else n_mfcc
        self.mean = _vector(mean, "mean", self.n_features)
        self.std = _vector(std, "std", self.n_features)
        if self.std is not None and not (self.std > 0).all():
            raise ModelError("front end: std must be positive")

        filters = mel_filters(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax,
                              self.mel_scale, self.mel_norm)
        if not (filters.sum(axis=1) > 0).all():
            empty = int(np.argmin(filters.sum(axis=1)))
            raise ModelError(f"front end: mel band {empty} covers no DFT bin (n_fft "
                             f"{self.n_fft} is too small for {self.n_mels} bands between "
                             f"{self.fmin:g} and {self.fmax:g} Hz)")
        # The DFT in two passes of small matrix products (the "four-step" FFT): n_fft = N1 * N2,
        # the frame as an (N1, N2) matrix A[n1, n2] = x[N2 n1 + n2], then
        #   X[k1 + N1 k2] = sum_n2 (T[k1, n2] sum_n1 F1[k1, n1] A[n1, n2]) F2[n2, k2]
        # with F1, F2 the DFT matrices of sizes N1 and N2 and T the twiddles. At 512 = 32 x 16
        # that is 24,576 complex products instead of 512 x 257 for a direct DFT, on matrices
        # that stay in cache. Complex numbers are kept as real and imaginary blocks so that
        # every step is a product or an elementwise operation on contiguous float64 buffers,
        # preallocated: numpy's FFT would allocate its result on every call, and ufuncs on
        # strided views (a complex array's .real) allocate an iterator.
        n1 = _middle_divisor(self.n_fft)
        n2 = self.n_fft // n1
        if n2 > MAX_FFT_FACTOR:
            # a prime n_fft would make the second pass one (2 n_fft)^2 matrix: 536 MB at 4093
            raise ModelError(f"front end: n_fft {self.n_fft} has no factors near its square "
                             f"root (it splits as {n1} x {n2}); use a power of two or another "
                             f"size whose larger factor is at most {MAX_FFT_FACTOR}")
        self._n1, self._n2 = n1, n2
        angle1 = 2 * math.pi * np.outer(np.arange(n1), np.arange(n1)) / n1
        # [Re; Im] of F1 A for real A: one (2 N1, N1) x (N1, N2) product
        self._dft1 = np.concatenate([np.cos(angle1), -np.sin(angle1)])
        twiddle = -2 * math.pi * np.outer(np.arange(n1), np.arange(n2)) / self.n_fft
        self._twiddle_re, self._twiddle_im = np.cos(twiddle), np.sin(twiddle)
        angle2 = 2 * math.pi * np.outer(np.arange(n2), np.arange(n2)) / n2
        cos2, sin2 = np.cos(angle2), -np.sin(angle2)
        # [Zr | Zi] (N1, 2 N2) x this = [Re X | Im X]
        self._dft2 = np.block([[cos2, sin2], [-sin2, cos2]])
        window = np.zeros(self.n_fft)
        start = (self.n_fft - self.win_length) // 2
        window[start:start + self.win_length] = periodic_hann(self.win_length)
        self._window = window
        self._windowed = np.empty(self.n_fft)
        self._windowed_matrix = self._windowed.reshape(n1, n2)
        self._stage1 = np.empty((2 * n1, n2))
        self._stage1_re, self._stage1_im = self._stage1[:n1], self._stage1[n1:]
        self._twiddled_re, self._twiddled_im = np.empty((n1, n2)), np.empty((n1, n2))
        self._product = np.empty((n1, n2))
        self._twiddled = np.empty((n1, 2 * n2))
        self._twiddled_left, self._twiddled_right = self._twiddled[:, :n2], self._twiddled[:, n2:]
        self._spectrum = np.empty((n1, 2 * n2))          # [Re X | Im X], bin k1 + N1 k2
        self._spectrum_flat = self._spectrum.reshape(-1)
        # the filters in the squared spectrum's memory order: slot (k1, part, k2) holds the
        # square of the real or imaginary part of bin k1 + N1 k2; bins above n_fft / 2 (mirror
        # images, for real input) get no weight
        bins = np.broadcast_to(np.arange(n1)[:, None, None] + n1 * np.arange(n2)[None, None, :],
                               (n1, 2, n2)).reshape(-1)
        self._filters_t = np.zeros((2 * self.n_fft, self.n_mels))
        kept = bins <= self.n_fft // 2
        self._filters_t[kept] = filters.T[bins[kept]]
        self._dct = None if n_mfcc is None else dct_matrix(self.n_mels, n_mfcc)
        self._inverse_std = None if self.std is None else 1.0 / self.std

        self._mel = np.empty(self.n_mels)
        self._features = np.empty(self.n_features)
        self._carry = np.empty(self.n_fft)
        self._samples = np.empty(0)
        self._frames = np.empty((0, self.n_features), dtype=np.float32)
        self._frame_views: list = []
        self._pending = 0
        self._reserve(self.n_fft + self.hop_length)

    # -- configuration -------------------------------------------------------------------
    def config(self) -> Dict[str, Any]:
        """A JSON-serialisable description; LogMel.from_config(config) rebuilds this exactly."""
        config = {"type": "log_mel", "sample_rate": self.sample_rate, "n_fft": self.n_fft,
                  "win_length": self.win_length, "hop_length": self.hop_length,
                  "window": "hann", "n_mels": self.n_mels, "fmin": self.fmin,
                  "fmax": self.fmax, "mel_scale": self.mel_scale, "mel_norm": self.mel_norm,
                  "log_offset": self.log_offset}
        if self.n_mfcc is not None:
            config["n_mfcc"] = self.n_mfcc
        if self.mean is not None:
            config["mean"] = self.mean.tolist()
        if self.std is not None:
            config["std"] = self.std.tolist()
        return config

    @classmethod
    def from_config(cls, config: Any) -> "LogMel":
        """The front end a config() dict (or a model's metadata["frontend"]) describes; an
        unknown key, type or value raises ModelError naming it."""
        if not isinstance(config, dict):
            raise ModelError(f"front end: expected a JSON object, got {type(config).__name__}")
        if config.get("type") != "log_mel":
            raise ModelError(f"front end: type must be 'log_mel', got {config.get('type')!r}")
        if config.get("window", "hann") != "hann":
            raise ModelError(f"front end: window must be 'hann', got {config.get('window')!r}")
        known = {"type", "window", "sample_rate", "n_fft", "win_length", "hop_length",
                 "n_mels", "fmin", "fmax", "mel_scale", "mel_norm", "log_offset", "n_mfcc",
                 "mean", "std"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ModelError(f"front end: unknown key(s) {', '.join(unknown)}")
        arguments = {key: value for key, value in config.items()
                     if key not in ("type", "window")}
        return cls(**arguments)

    @classmethod
    def from_model(cls, model: Any) -> "LogMel":
        """The log-mel front end stored in a model's metadata; ModelError when it has none
        or another kind (features.from_model takes any kind)."""
        front = from_model(model)
        if not isinstance(front, cls):
            raise ModelError(f"front end: the model's is {front!r}, not a log-mel one")
        return front

    @property
    def frame_seconds(self) -> float:
        """Seconds between frames (hop_length / sample_rate)."""
        return self.hop_length / self.sample_rate

    def frame_end_seconds(self, index: int) -> float:
        """The time (since the last reset) at which frame `index` is complete."""
        return (index * self.hop_length + self.n_fft) / self.sample_rate

    def __repr__(self) -> str:
        kind = f"MFCC {self.n_mfcc}" if self.n_mfcc else "log-mel"
        return (f"LogMel({kind}, {self.n_mels} bands {self.fmin:g}-{self.fmax:g} Hz, "
                f"{self.sample_rate} Hz, n_fft {self.n_fft}, window {self.win_length}, "
                f"hop {self.hop_length})")

    # -- streaming -----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the buffered samples: the next push starts a new signal at time 0."""
        self._pending = 0

    def _reserve(self, samples: int) -> None:
        """Grows the sample and frame buffers to hold `samples` pending samples (the only
        allocation a push can make: when a chunk is longer than any before it)."""
        if samples <= self._samples.shape[0]:
            return
        capacity = max(samples, 2 * self._samples.shape[0])
        grown = np.empty(capacity)
        grown[:self._pending] = self._samples[:self._pending]
        self._samples = grown
        most_frames = (capacity - self.n_fft) // self.hop_length + 1
        self._frames = np.empty((most_frames, self.n_features), dtype=np.float32)
        self._frame_views = [self._frames[:k] for k in range(most_frames + 1)]
        for view in self._frame_views:
            view.flags.writeable = False

    def push(self, chunk: Any) -> np.ndarray:
        """Appends a 1-D chunk of audio (int16 PCM, or float in [-1, 1]; any length, empty
        included) and returns the frames it completed: a read-only (k, n_features) float32
        view of this front end's buffer, valid until the next push or reset."""
        chunk, scale = _audio(chunk)
        count = chunk.shape[0]
        self._reserve(self._pending + count)
        _store(self._samples[self._pending:self._pending + count], chunk, scale)
        self._pending += count
        produced = 0
        offset = 0
        while self._pending - offset >= self.n_fft:
            self._frame(self._samples[offset:offset + self.n_fft], self._frames[produced])
            produced += 1
            offset += self.hop_length
        if offset:
            remaining = self._pending - offset
            # through a separate buffer: numpy copies overlapping ranges via a temporary
            self._carry[:remaining] = self._samples[offset:self._pending]
            self._samples[:remaining] = self._carry[:remaining]
            self._pending = remaining
        return self._frame_views[produced]

    def _frame(self, samples: np.ndarray, out: np.ndarray) -> None:
        """One frame from n_fft samples, written to `out` (a float32 row)."""
        np.multiply(samples, self._window, out=self._windowed)
        np.dot(self._dft1, self._windowed_matrix, out=self._stage1)  # np.matmul would allocate
        re, im, product = self._twiddled_re, self._twiddled_im, self._product
        np.multiply(self._stage1_re, self._twiddle_re, out=re)
        np.multiply(self._stage1_im, self._twiddle_im, out=product)
        np.subtract(re, product, out=re)
        np.multiply(self._stage1_re, self._twiddle_im, out=im)
        np.multiply(self._stage1_im, self._twiddle_re, out=product)
        np.add(im, product, out=im)
        np.copyto(self._twiddled_left, re)
        np.copyto(self._twiddled_right, im)
        np.dot(self._twiddled, self._dft2, out=self._spectrum)
        np.multiply(self._spectrum_flat, self._spectrum_flat, out=self._spectrum_flat)
        np.dot(self._spectrum_flat, self._filters_t, out=self._mel)   # sums re^2 + im^2 too
        np.add(self._mel, self.log_offset, out=self._mel)
        np.log(self._mel, out=self._mel)
        features = self._mel
        if self._dct is not None:
            np.dot(self._mel, self._dct, out=self._features)
            features = self._features
        if self.mean is not None:
            np.subtract(features, self.mean, out=features)
        if self._inverse_std is not None:
            np.multiply(features, self._inverse_std, out=features)
        out[...] = features

    def frame_count(self, samples: int) -> int:
        """How many frames a signal of `samples` samples gives."""
        return max(0, (samples - self.n_fft) // self.hop_length + 1)

    def flush(self) -> np.ndarray:
        """The frames the end of a signal completes: none (a frame needs all its samples)."""
        return self._frame_views[0]

    def transform(self, signal: Any) -> np.ndarray:
        """The frames of a whole signal from time 0, as a new (T, n_features) float32 array;
        the streaming state is reset before and after."""
        self.reset()
        try:
            return np.array(self.push(signal))
        finally:
            self.reset()


def _audio(chunk: Any) -> "tuple[np.ndarray, float]":
    """A pushed chunk checked: (the 1-D array, the scale that makes it float in [-1, 1])."""
    chunk = np.asarray(chunk)
    if chunk.ndim != 1:
        raise ShapeError(f"front end: audio must be one channel, a 1-D array of samples; "
                         f"got shape {chunk.shape}")
    if chunk.dtype == np.int16:
        return chunk, 1.0 / 32768.0
    if chunk.dtype.kind == "f":
        return chunk, 1.0
    raise InputTypeError(f"front end: audio must be int16 PCM or float samples, got "
                         f"{chunk.dtype}")


def _store(target: np.ndarray, chunk: np.ndarray, scale: float) -> None:
    """target[...] = chunk * scale (a view of a front end's buffer), refusing NaN and
    infinity, with no allocation: a cast copy then an in-place scaling (np.multiply with a
    cast would allocate a buffer on every push); for float audio the energy, finite iff
    every sample is (and below 1e150), since isfinite() would allocate a boolean array per
    push and a sum its reduction machinery."""
    np.copyto(target, chunk, casting="unsafe")
    if scale != 1.0:
        np.multiply(target, scale, out=target)
    elif not math.isfinite(np.dot(target, target)):
        raise InputTypeError("front end: audio contains NaN or infinity (or samples beyond "
                             "1e150)")


#: the longest chunk and context a configuration may ask for (ten seconds at 48 kHz)
MAX_CHUNK = 480_000


class Chunks:
    """Raw audio as the model's steps: every `chunk` new samples make one frame of `context +
    chunk` float32 samples, the last `context` samples before the chunk (zeros before the
    first) then the chunk itself: silero-vad's framing (512 + 64 at 16 kHz, 256 + 32 at
    8 kHz). int16 audio is scaled by 1/32768, float audio taken as it is. flush() zero-pads a
    last partial chunk, as silero-vad's get_speech_timestamps does.

    After the first push of a given chunk size, a push allocates no arrays; the frames
    returned are read-only views of the front end's buffer, valid until the next push."""

    def __init__(self, sample_rate: int = 16000, chunk: int = 512, context: int = 64):
        self.sample_rate = _integer(sample_rate, "sample_rate", 1, MAX_SAMPLE_RATE)
        self.chunk = _integer(chunk, "chunk", 1, MAX_CHUNK)
        self.context = _integer(context, "context", 0, MAX_CHUNK)
        self.n_features = self.context + self.chunk
        self.hop_length = self.chunk
        # _samples[:context] holds the context, then the samples not yet in a frame
        self._samples = np.zeros(0, dtype=np.float32)
        self._frames = np.empty((0, self.n_features), dtype=np.float32)
        self._frame_views: list = []
        self._carry = np.empty(self.n_features, dtype=np.float32)
        self._pending = 0
        self._reserve(self.n_features)
        self.reset()

    def config(self) -> Dict[str, Any]:
        return {"type": "chunks", "sample_rate": self.sample_rate, "chunk": self.chunk,
                "context": self.context}

    @classmethod
    def from_config(cls, config: Any) -> "Chunks":
        if not isinstance(config, dict) or config.get("type") != "chunks":
            raise ModelError(f"front end: expected a 'chunks' configuration, got {config!r:.80}")
        unknown = sorted(set(config) - {"type", "sample_rate", "chunk", "context"})
        if unknown:
            raise ModelError(f"front end: unknown key(s) {', '.join(unknown)}")
        return cls(**{k: v for k, v in config.items() if k != "type"})

    @property
    def frame_seconds(self) -> float:
        return self.chunk / self.sample_rate

    def frame_end_seconds(self, index: int) -> float:
        return (index + 1) * self.chunk / self.sample_rate

    def frame_count(self, samples: int) -> int:
        """Frames of a whole signal, the zero-padded last one (flush()) included."""
        return -(-samples // self.chunk)

    def __repr__(self) -> str:
        return (f"Chunks({self.chunk} samples + {self.context} of context, "
                f"{self.sample_rate} Hz)")

    def reset(self) -> None:
        """Forget the audio: the next push starts a new signal, after a context of zeros."""
        self._samples[:self.context] = 0.0
        self._pending = 0

    def _reserve(self, samples: int) -> None:
        needed = self.context + samples
        if needed <= self._samples.shape[0]:
            return
        capacity = max(needed, 2 * self._samples.shape[0])
        grown = np.zeros(capacity, dtype=np.float32)
        kept = min(self.context + self._pending, self._samples.shape[0])
        grown[:kept] = self._samples[:kept]
        self._samples = grown
        most_frames = (capacity - self.context) // self.chunk
        self._frames = np.empty((max(most_frames, 1), self.n_features), dtype=np.float32)
        self._frame_views = [self._frames[:k] for k in range(self._frames.shape[0] + 1)]
        for view in self._frame_views:
            view.flags.writeable = False
        # the views _push_one writes through: frame 0's context and chunk, the context held
        # for the next frame (where the general path keeps it), the samples that become it
        self._first_head = self._frames[0, :self.context]
        self._first_tail = self._frames[0, self.context:]
        self._context_now = self._samples[:self.context]
        self._first_last_context = self._frames[0, self.chunk:]

    def push(self, chunk: Any) -> np.ndarray:
        """Appends a 1-D chunk of audio (int16 PCM or float; any length) and returns the
        frames it completed, (k, context + chunk) float32."""
        chunk, scale = _audio(chunk)
        count = chunk.shape[0]
        if count == self.chunk and self._pending == 0:
            return self._push_one(chunk, scale)
        self._reserve(self._pending + count)
        start = self.context + self._pending
        _store(self._samples[start:start + count], chunk, scale)
        self._pending += count
        return self._emit()

    def _push_one(self, chunk: np.ndarray, scale: float) -> np.ndarray:
        """push() of exactly one chunk with nothing pending (a microphone's or a file's
        steady state): straight into the frame, the context kept for the next, in four numpy
        calls instead of the general path's dozen."""
        _store(self._first_tail, chunk, scale)
        np.copyto(self._first_head, self._context_now)
        np.copyto(self._context_now, self._first_last_context)
        return self._frame_views[1]

    def _emit(self) -> np.ndarray:
        produced, offset = 0, 0
        while self._pending - offset >= self.chunk:
            self._frames[produced] = self._samples[offset:offset + self.n_features]
            produced += 1
            offset += self.chunk
        if offset:
            kept = self.context + self._pending - offset
            self._carry[:kept] = self._samples[offset:offset + kept]
            self._samples[:kept] = self._carry[:kept]
            self._pending -= offset
        return self._frame_views[produced]

    def flush(self) -> np.ndarray:
        """The last partial chunk, zero-padded, as one frame (none when nothing is pending);
        the front end then starts a new signal."""
        if self._pending == 0:
            return self._frame_views[0]
        tail = self._samples[self.context + self._pending:self.n_features]
        tail[...] = 0.0
        self._pending = self.chunk
        frames = self._emit()
        self.reset()
        return frames

    def transform(self, signal: Any) -> np.ndarray:
        """The frames of a whole signal (the padded last chunk included), a new array."""
        self.reset()
        try:
            head = np.array(self.push(signal))
            return np.concatenate([head, self.flush()]) if self._pending else head
        finally:
            self.reset()


FRONT_END_TYPES = {"log_mel": LogMel, "chunks": Chunks}


def from_config(config: Any):
    """The front end a configuration (a model's metadata["frontend"]) describes."""
    kind = config.get("type") if isinstance(config, dict) else None
    if kind not in FRONT_END_TYPES:
        raise ModelError(f"front end: type must be one of {sorted(FRONT_END_TYPES)}, got "
                         f"{kind!r}")
    return FRONT_END_TYPES[kind].from_config(config)


def from_model(model: Any):
    """The front end stored in a model's metadata (LogMel or Chunks), checked against the
    model's input size; ModelError when it has none."""
    config = model.metadata.get(METADATA_KEY)
    if config is None:
        raise ModelError(f"the model has no audio front end (no metadata key "
                         f"{METADATA_KEY!r}); its input is {model.input_size} features "
                         f"per step")
    front = from_config(config)
    if front.n_features != model.input_size:
        raise ModelError(f"front end: gives {front.n_features} features per frame but the "
                         f"model takes {model.input_size}")
    return front
