"""What the ONNX and PyTorch importers share: layer drafts made into layers, the result of a
conversion, and the comparison at the heart of verification."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from lstmlite.errors import ConversionError, ModelError, VerificationError
from lstmlite.layers import Dense, Layer, Normalize, Scale
from lstmlite.model import Model


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (foreign libraries write pages), or its
    type when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def reject_options(options: Mapping[str, Any], where: str, what: str) -> None:
    """CLI options that only some sources take: refuse them, naming the option."""
    for name, value in options.items():
        if value is not None:
            raise ConversionError(f"{where}: option --{name.replace('_', '-')} does not apply "
                                  f"to {what}")


# ---- layer drafts ------------------------------------------------------------------------
# What the importers build while they walk a graph, before the layers are final (a Dense may
# still take a bias or an activation from the next node).


def build_layers(chain: List[dict], where: str) -> List[Layer]:
    """Drafts are {"layer": recurrent Layer}, {"dense", "bias", "activation"}, {"conv":
    Conv1d, "activation"}, {"frame": Magnitude, Mean or Elementwise}, {"normalize": (mean, std)} or
    {"scale", "offset"}, each with the "node" that made it (for messages). The recurrent
    layers' state recipes count the "layer" drafts only."""
    layers = []
    for draft in chain:
        try:
            if "layer" in draft:
                layers.append(draft["layer"])
            elif "conv" in draft:
                layers.append(draft["conv"].with_activation(draft["activation"]))
            elif "frame" in draft:  # Magnitude, Mean, Elementwise: no weights, no state
                layers.append(draft["frame"])
            elif "dense" in draft:
                layers.append(Dense(draft["dense"], draft["bias"],
                                    activation=draft["activation"]))
            elif "normalize" in draft:
                layers.append(Normalize(*draft["normalize"]))
            else:
                layers.append(Scale(draft["scale"], draft["offset"]))
        except Exception as exc:
            raise ConversionError(f"{where}: node {draft['node']!r}: {exc}") from None
    return layers


@dataclass
class Half:
    """One direction of a bidirectional layer's output, cut out by a Slice: of its direction
    axis (tf2onnx's Keras Bidirectional), or the first or second half of its features
    (`y[..., :H]`, `y[..., H:]`, as torchaudio's DeepSpeech writes). `seq` is the importer's
    sequence value for it. Only the two halves together may use it: summed (summed_directions)
    or, in ONNX graphs, concatenated back."""
    seq: Any
    direction: int              # 0 forward, 1 reverse
    hidden: int


def feature_half(start: int, end: int, hidden: int) -> Optional[int]:
    """0 or 1 when the slice [start:end] of a bidirectional output's 2 hidden features
    (forward then reverse) is the forward or the reverse half (negative and past-the-end
    bounds as Python's), else None."""
    width = 2 * hidden
    start = start + width if start < 0 else start
    end = min(end + width if end < 0 else end, width)
    if (start, end) not in ((0, hidden), (hidden, width)):
        return None
    return start // hidden


def summed_directions(hidden: int) -> dict:
    """The Dense draft [I | I] that sums a bidirectional output's two directions."""
    identity = np.eye(hidden, dtype=np.float32)
    return {"dense": np.concatenate([identity, identity], axis=1), "bias": None,
            "activation": "Identity"}


def clip_drafts(low: float, high: float, features: int):
    """clip(x, low, high) (ONNX's Clip, torch's hardtanh/relu6/clamp) as the engine runs it:
    it has no clip activation, but clip(x, lo, hi) = lo + (hi - lo) HardSigmoid((x - lo) /
    (hi - lo)), the HardSigmoid clamping to [0, 1]. Returns the activation for the layer
    (alpha 1 / (hi - lo), beta -lo / (hi - lo)) and the Scale draft (hi - lo, lo) after it;
    the roundings of x / (hi - lo) * (hi - lo) are all it adds. Both bounds finite, high > low
    (the caller refuses the rest)."""
    width = high - low
    activation = ("HardSigmoid", 1.0 / width, -low / width)
    scale = {"scale": np.full(features, width, np.float32),
             "offset": np.full(features, low, np.float32)}
    return activation, scale


def draft_output_size(draft: dict) -> int:
    if "layer" in draft:
        return draft["layer"].output_size
    if "conv" in draft:
        return draft["conv"].output_size
    if "frame" in draft:
        return draft["frame"].output_size
    if "dense" in draft:
        return int(np.asarray(draft["dense"]).shape[0])
    if "normalize" in draft:
        return len(draft["normalize"][0])
    return len(draft["scale"])


# ---- results and verification --------------------------------------------------------------

DEFAULT_TOLERANCE = 1e-4


@dataclass
class VerificationReport:
    """What verification compared: the reference that ran the source, the feeds' sizes, and
    the maximum absolute difference per output. `skipped` says why nothing ran."""
    reference: str = ""
    batch: int = 0
    steps: int = 0
    differences: Dict[str, float] = field(default_factory=dict)
    tolerance: float = DEFAULT_TOLERANCE
    skipped: Optional[str] = None
    note: Optional[str] = None

    @property
    def passed(self) -> bool:
        return self.skipped is None and all(d <= self.tolerance
                                            for d in self.differences.values())

    def as_metadata(self) -> Dict[str, Any]:
        return {"reference": self.reference, "tolerance": self.tolerance,
                "max_abs_difference": {k: float(v) for k, v in self.differences.items()}}

    def lines(self) -> List[str]:
        if self.skipped:
            return [f"verification skipped: {self.skipped}"]
        out = [f"verification against {self.reference} (batch {self.batch}, {self.steps} "
               f"steps, seeded random inputs; tolerance {self.tolerance:g}):"]
        if self.note:
            out.append(f"  note: {self.note}")
        for name, diff in self.differences.items():
            verdict = "ok" if diff <= self.tolerance else "FAILED"
            out.append(f"  output {name!r}: max abs difference {diff:.3g}  {verdict}")
        return out

    def compare(self, expected: Mapping[str, Any], actual: Mapping[str, np.ndarray],
                name: str) -> "VerificationReport":
        """Records the max abs difference of every expected output (NaN counts as inf);
        raises VerificationError naming the outputs above the tolerance."""
        failures = []
        missing = sorted(set(expected) - set(actual))
        if missing:
            raise VerificationError(f"{name}: {self.reference} gives output(s) {missing} that "
                                    f"the converted model does not")
        for output, want in expected.items():
            want, got = np.asarray(want), actual[output]
            if got.shape != want.shape:
                raise VerificationError(f"{name}: output {output!r} has shape {want.shape} in "
                                        f"{self.reference} and {got.shape} converted")
            diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) \
                if want.size else 0.0
            diff = diff if np.isfinite(diff) else float("inf")
            self.differences[output] = diff
            if diff > self.tolerance:
                failures.append(f"{output!r}: {diff:.3g}")
        if failures:
            error = VerificationError(
                f"{name}: the converted model differs from {self.reference} by more than "
                f"{self.tolerance:g} (max abs difference {', '.join(failures)}); nothing was "
                f"written")
            error.report = self
            raise error
        return self


def record_verification(conversion: "Conversion", verify: bool) -> "Conversion":
    """Runs conversion.verify on its model when asked, keeps the report, and records it in
    the model's metadata (what `lstmlite info` and the saved file show) unless it was
    skipped (no onnxruntime)."""
    conversion.report = conversion.verify(conversion.model) if verify else None
    if conversion.report is not None and not conversion.report.skipped:
        conversion.model.metadata["verification"] = conversion.report.as_metadata()
    return conversion


def verified_conversion(layers: List[Layer], signature: Dict[str, Any], notes: List[str],
                        source: Dict[str, Any], check, *, verify: bool,
                        where: str) -> "Conversion":
    """The step every importer ends with: the Model from the layers, with the source and the
    signature as metadata (a ModelError becomes a ConversionError naming `where`), verified
    by `check(model) -> VerificationReport` when asked and the report recorded
    (record_verification). The check stays on the Conversion, so another model (one
    quantized from this one, say) can be checked against the source the same way."""
    try:
        model = Model(layers, metadata={"source": source, "signature": signature})
    except ModelError as exc:
        raise ConversionError(f"{where}: {exc}") from None
    return record_verification(Conversion(model, signature, notes, None, check), verify)


@dataclass
class Conversion:
    """A converted model, its signature, what the converter noticed, the verification report
    (None when not asked), and `verify(model)`: the same check against the source, run on
    any model of the same signature (a float16/int8 file is checked against the float32
    conversion instead: files.verify_stored)."""
    model: Model
    signature: Dict[str, Any]
    notes: List[str]
    report: Optional[VerificationReport]
    verify: Any = None
