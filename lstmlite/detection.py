"""Streaming decisions from per-frame class posteriors: a keyword spotter's last stage.

    detector = Detector.from_model(model, frame_seconds=front.frame_seconds)
    for probs in per_step_outputs:                  # (classes,) posteriors, one per frame
        hit = detector.update(probs)
        if hit is not None:
            index, score = hit                      # model.metadata["labels"][index]

The posteriors are averaged over the last `smoothing_seconds` of frames (fewer at the start);
a detection is reported when the best class outside `ignore` (silence, unknown) reaches
`threshold` in that average, and no other detection came in the `refractory_seconds` before
it. One detection per spoken keyword: the refractory time is longer than the label window the
model was trained with.

The configuration travels in a model's metadata under the key "detection" (docs/FORMAT.md).
A Detector allocates its buffers once; update() allocates no arrays.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import ModelError, ShapeError

#: The metadata key of a model's detection configuration.
METADATA_KEY = "detection"

#: Bounds a configuration read from a file must respect (an hour of frames at most).
MAX_WINDOW_FRAMES = 360_000


class Detector:
    """Smoothed-posterior threshold detection with a refractory time; see the module
    docstring. labels: the model's class names (one per output); ignore: names never
    reported; frame_seconds: time between frames (a front end's hop / sample rate)."""

    def __init__(self, labels: Sequence[str], frame_seconds: float,
                 smoothing_seconds: float = 0.2, threshold: float = 0.5,
                 refractory_seconds: float = 1.0, ignore: Sequence[str] = ()):
        if not labels or not all(isinstance(label, str) for label in labels):
            raise ModelError("detection: labels must be a non-empty list of class names")
        self.labels = list(labels)
        for name, value in (("frame_seconds", frame_seconds),
                            ("smoothing_seconds", smoothing_seconds),
                            ("threshold", threshold),
                            ("refractory_seconds", refractory_seconds)):
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value < 0):
                raise ModelError(f"detection: {name} must be a finite number >= 0, got "
                                 f"{value!r}")
        if not frame_seconds > 0:
            raise ModelError(f"detection: frame_seconds must be positive, got {frame_seconds}")
        if not 0 < threshold <= 1:
            raise ModelError(f"detection: threshold must be in (0, 1], got {threshold}")
        unknown = [name for name in ignore if name not in self.labels]
        if unknown:
            raise ModelError(f"detection: ignore names {unknown} that are not labels "
                             f"{self.labels}")
        self.frame_seconds = float(frame_seconds)
        self.smoothing_seconds = float(smoothing_seconds)
        self.threshold = float(threshold)
        self.refractory_seconds = float(refractory_seconds)
        self.ignore = list(ignore)
        self.window = max(1, round(smoothing_seconds / frame_seconds))
        self.refractory_frames = round(refractory_seconds / frame_seconds)
        if self.window > MAX_WINDOW_FRAMES or self.refractory_frames > MAX_WINDOW_FRAMES:
            raise ModelError(f"detection: smoothing and refractory times must be at most "
                             f"{MAX_WINDOW_FRAMES} frames")
        classes = len(self.labels)
        self._history = np.zeros((self.window, classes))
        self._rows = [self._history[i] for i in range(self.window)]
        self._smoothed = np.zeros(classes)
        self._ones = np.ones(self.window)
        # ignored classes are masked to -inf so they never win
        self._mask = np.zeros(classes)
        for name in self.ignore:
            self._mask[self.labels.index(name)] = -np.inf
        self._candidates = np.zeros(classes)
        self.reset()

    def config(self) -> Dict[str, Any]:
        """What to store under metadata["detection"] (frame_seconds comes from the front end
        or the caller, not from here)."""
        return {"smoothing_seconds": self.smoothing_seconds, "threshold": self.threshold,
                "refractory_seconds": self.refractory_seconds, "ignore": list(self.ignore)}

    @classmethod
    def from_model(cls, model: Any, frame_seconds: float) -> "Detector":
        """The detector a model's metadata describes (its "labels" and "detection" keys)."""
        labels = model.metadata.get("labels")
        config = model.metadata.get(METADATA_KEY)
        if config is None or labels is None:
            raise ModelError("the model has no detection configuration (metadata keys "
                             "'labels' and 'detection')")
        if not isinstance(labels, list) or len(labels) != model.output_size:
            raise ModelError(f"detection: the model has {model.output_size} outputs but "
                             f"metadata 'labels' is {labels!r}")
        return cls.from_config(config, labels, frame_seconds)

    @classmethod
    def from_config(cls, config: Any, labels: Sequence[str],
                    frame_seconds: float) -> "Detector":
        if not isinstance(config, dict):
            raise ModelError(f"detection: expected a JSON object, got {type(config).__name__}")
        known = {"smoothing_seconds", "threshold", "refractory_seconds", "ignore"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ModelError(f"detection: unknown key(s) {', '.join(unknown)}")
        ignore = config.get("ignore", [])
        if not isinstance(ignore, list) or not all(isinstance(x, str) for x in ignore):
            raise ModelError(f"detection: ignore must be a list of label names, got {ignore!r}")
        arguments = {key: value for key, value in config.items() if key != "ignore"}
        return cls(labels, frame_seconds, ignore=ignore, **arguments)

    def reset(self) -> None:
        """Forget the history: the next frame is frame 0 of a new signal."""
        self._history[...] = 0.0
        self._frames = 0
        self._last_detection = -(1 << 62)

    @property
    def frames(self) -> int:
        """Frames seen since the last reset."""
        return self._frames

    def update(self, probs: Any) -> Optional[Tuple[int, float]]:
        """Takes one frame's (classes,) posteriors; returns (class index, smoothed score) when
        this frame is a detection, else None."""
        if getattr(probs, "shape", None) != self._smoothed.shape:
            raise ShapeError(f"detection: expected {self._smoothed.shape[0]} posteriors, got "
                             f"shape {getattr(probs, 'shape', None)}")
        np.copyto(self._rows[self._frames % self.window], probs, casting="same_kind")
        self._frames += 1
        # the window's mean as one product (np.sum's reduction would allocate on every call)
        np.dot(self._ones, self._history, out=self._smoothed)
        np.multiply(self._smoothed, 1.0 / min(self._frames, self.window), out=self._smoothed)
        np.add(self._smoothed, self._mask, out=self._candidates)
        best = int(self._candidates.argmax())
        score = float(self._candidates[best])
        frame = self._frames - 1
        if score >= self.threshold and frame - self._last_detection >= self.refractory_frames:
            self._last_detection = frame
            return best, score
        return None


class Segmenter:
    """Speech segments from a voice-activity detector's per-chunk speech probability, by
    silero-vad's own rule (get_speech_timestamps, without a maximum segment length), as a
    stream: a segment is returned as soon as its end is certain.

    Chunk i covers samples [i * chunk, (i + 1) * chunk). Speech starts at the first chunk
    whose probability reaches `threshold`; it ends where the probability fell below
    `neg_threshold` (threshold - 0.15 by default, at least 0.01) and stayed below threshold
    for min_silence_duration_ms; a segment no longer than min_speech_duration_ms is
    dropped; each segment is then widened by speech_pad_ms on both sides, or by half the
    silence to its neighbour when that silence is shorter than two pads. Positions are in
    samples; the last segment of a signal is closed by finish(total samples).

    The configuration travels in a model's metadata["detection"] with "type": "segments".
    """

    def __init__(self, sample_rate: int = 16000, chunk: int = 512, threshold: float = 0.5,
                 min_speech_duration_ms: float = 250, min_silence_duration_ms: float = 100,
                 speech_pad_ms: float = 30, neg_threshold: Optional[float] = None):
        for name, value in (("sample_rate", sample_rate), ("chunk", chunk),
                            ("threshold", threshold),
                            ("min_speech_duration_ms", min_speech_duration_ms),
                            ("min_silence_duration_ms", min_silence_duration_ms),
                            ("speech_pad_ms", speech_pad_ms)) + \
                ((("neg_threshold", neg_threshold),) if neg_threshold is not None else ()):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or value < 0:
                raise ModelError(f"detection: {name} must be a finite number >= 0, got "
                                 f"{value!r}")
        if not sample_rate > 0 or not chunk > 0:
            raise ModelError("detection: sample_rate and chunk must be positive")
        if not 0 < threshold <= 1:
            raise ModelError(f"detection: threshold must be in (0, 1], got {threshold}")
        self.sample_rate, self.chunk = int(sample_rate), int(chunk)
        self.threshold = float(threshold)
        self.neg_threshold = max(self.threshold - 0.15, 0.01) if neg_threshold is None \
            else float(neg_threshold)
        self.min_speech_duration_ms = min_speech_duration_ms
        self.min_silence_duration_ms = min_silence_duration_ms
        self.speech_pad_ms = speech_pad_ms
        # silero's sample counts, computed as it computes them
        self._min_speech = self.sample_rate * min_speech_duration_ms / 1000
        self._min_silence = self.sample_rate * min_silence_duration_ms / 1000
        self._pad = self.sample_rate * speech_pad_ms / 1000
        self.reset()

    def config(self) -> Dict[str, Any]:
        config = {"type": "segments", "threshold": self.threshold,
                  "min_speech_duration_ms": self.min_speech_duration_ms,
                  "min_silence_duration_ms": self.min_silence_duration_ms,
                  "speech_pad_ms": self.speech_pad_ms}
        if self.neg_threshold != max(self.threshold - 0.15, 0.01):
            config["neg_threshold"] = self.neg_threshold
        return config

    @classmethod
    def from_config(cls, config: Any, sample_rate: int, chunk: int) -> "Segmenter":
        if not isinstance(config, dict) or config.get("type") != "segments":
            raise ModelError(f"detection: expected a 'segments' configuration, got "
                             f"{config!r:.80}")
        known = {"type", "threshold", "min_speech_duration_ms", "min_silence_duration_ms",
                 "speech_pad_ms", "neg_threshold"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ModelError(f"detection: unknown key(s) {', '.join(unknown)}")
        return cls(sample_rate, chunk, **{k: v for k, v in config.items() if k != "type"})

    @classmethod
    def for_model(cls, config: Any, front: Any, outputs: int) -> Optional["Segmenter"]:
        """The segmenter a model's metadata["detection"] describes when it is of type
        "segments", for the model's front end (its rate and chunk) and its outputs (one: the
        speech probability); None for any other detection config."""
        if not (isinstance(config, dict) and config.get("type") == "segments"):
            return None
        if front is None or outputs != 1:
            raise ModelError(f"detection: 'segments' needs an audio front end and a model with "
                             f"one output (the speech probability); it has "
                             f"{'no front end' if front is None else 'a front end'} and "
                             f"{outputs} outputs")
        return cls.from_config(config, front.sample_rate, front.hop_length)

    def reset(self) -> None:
        self._chunks = 0
        self._triggered = False
        self._start = 0
        self._temp_end = 0
        #: a finished segment [padded start, end] whose end padding waits on the next one
        self._held: Optional[Tuple[int, int]] = None

    def _release(self, next_start: Optional[int], total: Optional[int]):
        """(the held segment with its end padded, the padded start of the next segment or
        None): by half the silence between them when it is shorter than two pads, else by a
        whole pad (the end at most `total`). The held segment is gone after."""
        (start, end), self._held = self._held, None
        if next_start is not None and next_start - end < 2 * self._pad:
            half = (next_start - end) // 2
            return (start, int(end + half)), int(max(0, next_start - half))
        end = end + self._pad
        padded_next = None if next_start is None else int(max(0, next_start - self._pad))
        return (start, int(min(total, end) if total is not None else end)), padded_next

    def _finished(self, start: int, end: int, total: Optional[int] = None):
        """A kept raw segment [start, end): releases the one held before it, holds this
        one. With nothing held (the first segment, or the one before is at least two pads
        away and already out), its start gets the whole pad."""
        out = []
        padded_start = int(max(0, start - self._pad))
        if self._held is not None:
            segment, padded_start = self._release(start, total)
            out.append(segment)
        self._held = (padded_start, end)
        return out

    def update(self, probability: float) -> List[Tuple[int, int]]:
        """Takes the next chunk's speech probability; returns the segments (start, end in
        samples) that became certain with it."""
        out: List[Tuple[int, int]] = []
        current = self.chunk * self._chunks
        self._chunks += 1
        if probability >= self.threshold and self._temp_end:
            self._temp_end = 0
        if probability >= self.threshold and not self._triggered:
            self._triggered = True
            self._start = current
        elif probability < self.neg_threshold and self._triggered:
            if not self._temp_end:
                self._temp_end = current
            if current - self._temp_end >= self._min_silence:
                if self._temp_end - self._start > self._min_speech:
                    out += self._finished(self._start, self._temp_end)
                self._triggered = False
                self._temp_end = 0
        # a held segment whose end padding no later start can change any more
        if self._held is not None and (self._triggered and self._start - self._held[1] >=
                                       2 * self._pad or not self._triggered and
                                       current + self.chunk - self._held[1] >= 2 * self._pad):
            out.append(self._release(None, None)[0])
        return out

    def finish(self, total_samples: int) -> List[Tuple[int, int]]:
        """Closes the signal after `total_samples` samples: the segments still open or held."""
        out: List[Tuple[int, int]] = []
        if self._triggered and total_samples - self._start > self._min_speech:
            out += self._finished(self._start, total_samples, total_samples)
        if self._held is not None:
            out.append(self._release(None, total_samples)[0])
        self.reset()
        return out
