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
from typing import Any, Dict, Optional, Sequence, Tuple

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
