"""The abstract values the ONNX graph walk gives every tensor (see onnx_graph.py), the
op tables, constant-folding bounds and the helpers that show values in errors."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lstmlite.errors import ConversionError

from .signature import recipe_leaves


# ---- abstract values ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sym:
    """A dynamic size: the time or batch extent of a sequence axis, or a graph input's
    named dimension."""
    label: str


@dataclass
class Const:
    value: np.ndarray


@dataclass
class ShapeVec:
    dims: Tuple[Any, ...]   # ints and Sym
    scalar: bool = False


@dataclass(frozen=True)
class Axis:
    """An axis of a Seq. kind "seq": a time-or-batch axis of the graph's sequence input
    (label names it; which of the two it is gets bound by the first recurrent node); "unit":
    an axis of size 1; "feat": part of the feature vector, flat index += i * stride;
    "merged": the time and batch axes flattened into one (label: theirs joined by MERGE), as
    Keras' Dense over a sequence does (Reshape to (-1, F), MatMul, Reshape back): only
    position-wise ops may see it, and a Reshape must split it again. `reversed`: a time axis
    in the opposite order to the graph input's (ReverseSequence over every step, as tf2onnx
    writes Keras' go_backwards); it travels with the axis through every layout op and
    through a merge (a merged axis holding the reversed time axis is marked reversed)."""
    kind: str
    label: str = ""
    size: Optional[int] = None
    stride: int = 1
    reversed: bool = False

    @property
    def is_unit(self) -> bool:
        return self.kind == "unit" or (self.kind == "feat" and self.size == 1)


@dataclass
class Seq:
    depth: int                  # number of chain layers applied
    axes: Tuple[Axis, ...]
    last_step: bool = False
    #: the step selected is the last of a reversed time axis: the first in the model's order
    first_step: bool = False


@dataclass
class Lengths:
    """Every sequence's length is the whole time axis: Expand(T, [B]) of shape entries, the
    sequence_lens tf2onnx gives ReverseSequence for Keras' go_backwards. Only ReverseSequence
    may read it."""
    time: Any                   # the time extent (Sym or int)
    batch: Any                  # the batch extent


@dataclass
class State:
    recipe: list
    shape: Tuple[Any, ...]      # ints and Sym
    dtype: str = "float32"

    @property
    def sources(self) -> set:
        """Which kinds of leaves the recipe has: "input", "state", "zeros"."""
        return {leaf[0] for leaf in recipe_leaves(self.recipe)}


# ---- the converter -----------------------------------------------------------------------

_RECURRENT = ("LSTM", "GRU", "RNN")
#: what a bound sequence axis is, by its signature letter
_ROLE = {"T": "time", "B": "batch"}
#: joins the labels of the axes a "merged" axis holds
MERGE = "*"
#: ops whose inputs after the first only choose positions
_INDEXED = ("Gather", "GatherElements", "GatherND")

#: ops whose output is not a function of their inputs: never folded
RANDOM_OPS = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Multinomial", "Bernoulli")

#: Elementwise activation ops and the engine's name for them, with their attributes.
_ACTIVATION_OPS = {
    "Relu": ("Relu", ()), "Tanh": ("Tanh", ()), "Sigmoid": ("Sigmoid", ()),
    "LeakyRelu": ("LeakyRelu", ("alpha",)), "HardSigmoid": ("HardSigmoid", ("alpha", "beta")),
    "Elu": ("Elu", ("alpha",)), "Softsign": ("Softsign", ()), "Softplus": ("Softplus", ()),
    "ThresholdedRelu": ("ThresholdedRelu", ("alpha",)),
}
_DEFAULTS = {"LeakyRelu": {"alpha": 0.01}, "HardSigmoid": {"alpha": 0.2, "beta": 0.5},
             "Elu": {"alpha": 1.0}, "ThresholdedRelu": {"alpha": 1.0}}

SUPPORTED_OPS = sorted(set(_RECURRENT) | set(_ACTIVATION_OPS) | {
    "Softmax", "LogSoftmax", "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Transpose",
    "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Identity", "Cast", "Dropout", "Gather",
    "Slice", "Concat", "Shape", "ConstantOfShape", "Expand", "Constant", "ReduceProd",
    "Clip", "ReverseSequence", "Conv", "Pad", "Pow", "Sqrt", "ReduceMean"})

# Slice ends at or beyond this mean "to the end": torch writes INT64_MAX, tf2onnx INT32_MAX
_BIG = 2 ** 31 - 1

#: The static dimensions of a graph input may multiply to at most this many elements.
MAX_STATIC_INPUT_ELEMENTS = 1 << 24

#: Constant folding may allocate at most FOLD_FACTOR times the weights' bytes plus FOLD_SLACK.
FOLD_FACTOR = 4
FOLD_SLACK = 64 << 20

# Ops whose output has at most as many elements as their inputs together.
_FOLD_SHRINKING = {
    "Identity", "Cast", "CastLike", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten",
    "Slice", "Split", "Concat", "Shape", "Size", "Neg", "Abs", "Sqrt", "Exp", "Log",
    "Reciprocal", "Sigmoid", "Tanh", "Relu", "LeakyRelu", "Elu", "Selu", "HardSigmoid",
    "Softplus", "Softsign", "Floor", "Ceil", "Round", "Sign", "Not", "IsNaN", "IsInf", "Erf",
    "Sin", "Cos", "Softmax", "LogSoftmax", "Clip", "Dropout", "ReduceSum", "ReduceMean",
    "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ArgMax", "ArgMin", "CumSum", "Trilu",
    "GatherElements", "Compress", "DequantizeLinear", "QuantizeLinear"}
# Elementwise ops with numpy broadcasting: the output has the broadcast shape.
_FOLD_BROADCAST = {
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Equal", "Less",
    "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Where", "BitShift",
    "PRelu"}


def _folded_elements(node, inputs, where: str) -> int:
    """How many elements folding `node` on these constant inputs produces, computed from
    shapes and the inputs' values before anything is evaluated. Ops that can produce more
    than they take (ConstantOfShape, Expand, Tile, Range, Gather, MatMul, NonZero,
    broadcasting) are computed exactly; others are bounded by their inputs; any other op is
    not folded."""
    op = node.op_type
    present = [x for x in inputs if x is not None]
    try:
        if op == "Constant":
            return 0  # its value is already in the file, counted in the file's size
        if op in _FOLD_SHRINKING:
            return sum(int(np.size(x)) for x in present) + 1
        if op in _FOLD_BROADCAST:
            return math.prod(np.broadcast_shapes(*(np.shape(x) for x in present)))
        if op == "NonZero":  # (rank, count) indices: up to rank times the input
            return max(np.ndim(inputs[0]), 1) * int(np.size(inputs[0]))
        if op == "ConstantOfShape":
            return math.prod(int(d) for d in np.ravel(inputs[0]))
        if op == "Expand":
            return math.prod(np.broadcast_shapes(np.shape(inputs[0]),
                                                 tuple(int(d) for d in np.ravel(inputs[1]))))
        if op == "Tile":
            return int(np.size(inputs[0])) * math.prod(int(r) for r in np.ravel(inputs[1]))
        if op == "Range":
            start, limit, delta = (float(np.ravel(x)[0]) for x in inputs[:3])
            return max(0, math.ceil((limit - start) / delta)) if delta else 0
        attributes = {a.name: a for a in node.attribute}
        if op == "Gather":
            shape = np.shape(inputs[0])
            axis = attributes["axis"].i if "axis" in attributes else 0
            return int(np.size(inputs[1])) * math.prod(shape) // max(shape[axis], 1)
        if op == "Gemm":
            a, b = np.shape(inputs[0]), np.shape(inputs[1])
            rows = a[1] if "transA" in attributes and attributes["transA"].i else a[0]
            cols = b[0] if "transB" in attributes and attributes["transB"].i else b[1]
            return rows * cols
        if op == "MatMul":
            a, b = np.shape(inputs[0]), np.shape(inputs[1])
            rows = a[-2] if len(a) > 1 else 1
            cols = b[-1] if len(b) > 1 else 1
            return math.prod(np.broadcast_shapes(a[:-2], b[:-2])) * rows * cols
    except (ValueError, TypeError, OverflowError, IndexError, ZeroDivisionError) as exc:
        raise ConversionError(f"{where}: its constant inputs do not fit the op: "
                              f"{exc}") from None
    raise ConversionError(f"{where}: all its inputs are constant, and lstmlite folds only ops "
                          f"whose output size it can bound before evaluating them ({op} is "
                          f"not one)")


def _is_full_features(axis: Axis, seq: Seq) -> bool:
    """The last axis carries every feature: it is a feature axis with stride 1 and every
    other feature axis has size 1."""
    if axis.kind != "feat" or axis.stride != 1:
        return False
    return all(a.is_unit or a is axis for a in seq.axes if a.kind == "feat")


def _show(dims) -> str:
    return "(" + ", ".join(d.label if isinstance(d, Sym) else str(d) for d in dims) + ")"


def _show_axes(axes) -> str:
    parts = []
    for a in axes:
        if a.kind == "seq":
            parts.append(a.label)
        elif a.kind == "merged":
            parts.append(a.label)
        elif a.kind == "unit":
            parts.append("1")
        else:
            parts.append(f"{a.size}" if a.stride == 1 else f"{a.size}(stride {a.stride})")
    return "(" + ", ".join(parts) + ")"


def _show_recipe(recipe) -> str:
    if not isinstance(recipe, list):
        return repr(recipe)
    return recipe[0] + "(" + ", ".join(_show_recipe(r) if isinstance(r, list) and r and
                                       isinstance(r[0], str) else repr(r)
                                       for r in recipe[1:]) + ")"


def evaluate_node(model, node, feeds: Dict[str, np.ndarray]) -> List[np.ndarray]:
    """One node of `model` run by ONNX's reference evaluator on constant feeds (its input name
    -> value), in a one-node model of the same opsets; its non-empty outputs, in order. The
    caller bounds the output size first (_folded_elements) and handles the exceptions."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    graph = onnx.helper.make_graph(
        [node], "one_node", [onnx.helper.make_value_info(n, onnx.TypeProto()) for n in feeds],
        [onnx.helper.make_value_info(n, onnx.TypeProto()) for n in node.output if n])
    single = onnx.helper.make_model(graph, opset_imports=list(model.opset_import),
                                    ir_version=model.ir_version)
    return [np.asarray(value) for value in ReferenceEvaluator(single).run(None, feeds)]
