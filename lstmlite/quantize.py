"""int8 weights and the accuracy report of a quantized model.

The scheme is dynamic quantization, as onnxruntime's DynamicQuantizeLSTM and torch's
quantize_dynamic: weight matrices are int8, symmetric, one float32 scale per output row
(W[m, k] ~= q[m, k] * scale[m], q in -127..127); every step quantizes the vector a matrix
multiplies (the layer input x, the recurrent h) with one symmetric scale, the products run in
exact int32, and gates, cell state, activations and outputs stay float32. Biases, peepholes and
Normalize/Scale vectors stay float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Tuple

import numpy as np

from .errors import ModelError


def quantize_rows(array: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-row int8 of a float array (..., rows, cols): scale = max|row| / 127,
    q = round(w / scale) in -127..127. All-zero rows get scale 1 (their q is 0)."""
    array = np.asarray(array, dtype=np.float32)
    peak = np.abs(array).max(axis=-1) if array.shape[-1] else np.zeros(array.shape[:-1])
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(array / scale[..., None]), -127, 127).astype(np.int8)
    return q, scale


class QuantizedWeight:
    """An int8 weight matrix: q (..., rows, cols) int8 in -127..127 and scale (..., rows)
    float32, finite and positive; the value it stands for is q * scale[..., None].

    Arrays that already are int8 / float32 and C-contiguous are kept as they are (for
    instance zero-copy views into a loaded .lstm file), never copied.
    """

    __slots__ = ("q", "scale")
    dtype = np.dtype(np.int8)

    def __init__(self, q: Any, scale: Any, where: str = "int8 weight"):
        q = np.asarray(q)
        if q.dtype.kind not in "iu":
            raise ModelError(f"{where}: q must be integers in -127..127, got dtype {q.dtype}")
        if q.ndim < 2:
            raise ModelError(f"{where}: q has shape {q.shape}, expected (rows, cols)")
        # -128 would break the kernels' no-overflow argument (see src/kernels_avx2.c); an
        # int8 array cannot exceed 127, so only its minimum is read
        low = q.min() if q.size else 0
        high = q.max() if q.size and q.dtype != np.int8 else 0
        if low < -127 or high > 127:
            raise ModelError(f"{where}: q must lie in -127..127 (never -128), found values "
                             f"from {low} to {max(high, q.max())}")
        if q.dtype != np.int8 or not q.flags.c_contiguous:
            q = np.ascontiguousarray(q, dtype=np.int8)
        if not (isinstance(scale, np.ndarray) and scale.dtype == np.float32
                and scale.flags.c_contiguous):
            scale = np.asarray(scale)
            if scale.dtype.kind not in "fiu":
                raise ModelError(f"{where}: scale must be numeric, got dtype {scale.dtype}")
            scale = np.ascontiguousarray(scale, dtype=np.float32)
        if scale.shape != q.shape[:-1]:
            raise ModelError(f"{where}: scale has shape {scale.shape}, expected {q.shape[:-1]} "
                             f"(one per output row of q {q.shape})")
        if scale.size and not (np.isfinite(scale).all() and (scale > 0).all()):
            bad = scale[~(np.isfinite(scale) & (scale > 0))]
            raise ModelError(f"{where}: scales must be finite and positive, found "
                             f"{bad.size} that are not (e.g. {float(bad.flat[0])!r})")
        self.q = q
        self.scale = scale

    @classmethod
    def from_float(cls, array: np.ndarray, where: str = "int8 weight") -> "QuantizedWeight":
        q, scale = quantize_rows(array)
        return cls(q, scale, where)

    def dequantize(self) -> np.ndarray:
        """The float32 values q * scale (a new array)."""
        return self.q.astype(np.float32) * self.scale[..., None]

    # array-like parts the layer specs use: shape checks, a leading direction axis
    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.q.shape)

    @property
    def ndim(self) -> int:
        return self.q.ndim

    @property
    def size(self) -> int:
        return int(self.q.size)

    @property
    def nbytes(self) -> int:
        return int(self.q.nbytes + self.scale.nbytes)

    def __getitem__(self, index: int) -> "QuantizedWeight":
        if self.q.ndim < 3:
            raise IndexError("a QuantizedWeight is indexed only along a leading direction axis")
        return QuantizedWeight(self.q[index], self.scale[index])

    def reshape(self, shape: Tuple[int, ...]) -> "QuantizedWeight":
        shape = tuple(shape)
        if shape[-2:] != self.shape[-2:]:
            raise ValueError(f"cannot reshape an int8 matrix {self.shape} to {shape}")
        return QuantizedWeight(self.q.reshape(shape), self.scale.reshape(shape[:-1]))

    def __repr__(self) -> str:
        return f"QuantizedWeight(shape={self.shape}, int8)"


@dataclass
class CompareReport:
    """How far a model's outputs are from a reference model's on the same inputs.

    max_abs, mean_abs: of the elementwise difference over every step and output feature.
    cosine: mean over steps of the cosine similarity of the two output vectors.
    top1: fraction of steps whose largest output is the same feature in both (for
    classifiers: the agreement of their decisions).
    steps: how many output vectors were compared.
    reference_max_abs: the largest |output| of the reference, the scale `relative` uses.
    relative: max_abs / reference_max_abs (max_abs itself when the reference is all zeros):
    the error as a fraction of the outputs' range, comparable across models whatever units
    their outputs are in (probabilities, millimetres, ...).
    """
    max_abs: float
    mean_abs: float
    cosine: float
    top1: float
    steps: int
    reference_max_abs: float = 0.0

    @property
    def relative(self) -> float:
        return self.max_abs / self.reference_max_abs if self.reference_max_abs > 0 \
            else self.max_abs

    def __str__(self) -> str:
        return (f"max abs {self.max_abs:.3g} ({100 * self.relative:.2g}% of the largest "
                f"output, {self.reference_max_abs:.3g}), mean abs {self.mean_abs:.3g}, cosine "
                f"{self.cosine:.6f}, top-1 agreement {100 * self.top1:.2f}% over "
                f"{self.steps} steps")


def compare(reference, candidate, X, **run_options) -> CompareReport:
    """Runs both models over X ((T, I) or (B, T, I), Model.run's layouts and options) and
    reports how far candidate's outputs are from reference's (a CompareReport)."""
    from .model import Model
    for label, model in (("reference", reference), ("candidate", candidate)):
        if not isinstance(model, Model):
            raise ModelError(f"compare: {label} must be an lstmlite Model, got "
                             f"{type(model).__name__}")
    if (reference.input_size, reference.output_size) != (candidate.input_size,
                                                          candidate.output_size):
        raise ModelError(f"compare: the models differ in shape: {reference.input_size} -> "
                         f"{reference.output_size} and {candidate.input_size} -> "
                         f"{candidate.output_size}")
    return compare_outputs(reference.run(X, **run_options), candidate.run(X, **run_options))


def compare_outputs(expected, actual) -> CompareReport:
    """compare()'s figures for two models' outputs of the same shape (..., features), the
    reference's first."""
    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    if expected.shape != actual.shape or expected.ndim < 1:
        raise ModelError(f"compare: the outputs differ in shape: {expected.shape} and "
                         f"{actual.shape}")
    expected = expected.reshape(-1, expected.shape[-1])
    actual = actual.reshape(-1, expected.shape[-1])
    if expected.shape[0] == 0:
        raise ModelError("compare: X has no time steps")
    diff = np.abs(actual - expected)
    norms = np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1)
    dots = np.einsum("ij,ij->i", actual, expected)
    # two zero vectors are the same direction; one zero vector is orthogonal to anything
    both_zero = (np.linalg.norm(actual, axis=1) == 0) & (np.linalg.norm(expected, axis=1) == 0)
    cosine = np.where(both_zero, 1.0, dots / np.where(norms > 0, norms, 1.0))
    top1 = np.argmax(actual, axis=1) == np.argmax(expected, axis=1)
    return CompareReport(max_abs=float(np.max(diff)),  # NaN if either model gave NaN
                         mean_abs=float(np.mean(diff)), cosine=float(np.mean(cosine)),
                         top1=float(np.mean(top1)), steps=int(expected.shape[0]),
                         reference_max_abs=float(np.max(np.abs(expected))))
