"""ONNX graph -> lstmlite Model, by abstract interpretation of the graph.

The graph is walked once in topological order. Every value gets an abstract kind:

  Const     a constant array (initializers, Constant nodes, and every node whose inputs are
            all constant: those are folded by onnx's own ReferenceEvaluator, not by hand)
  Seq       the sequence flowing through the engine's layer chain: how many layers of the
            chain it has passed, and how its axes relate to the engine's (B, T, features)
  State     a value built from graph inputs (h0, c0, sequence_lens) or from the recurrent
            nodes' final states (Y_h, Y_c), as a recipe (see signature.py)
  ShapeVec  a shape computed from a Seq or State (Shape, Gather, Concat, ...): ints and
            symbols for the dynamic time and batch sizes

Each op handler checks every attribute and either produces the output kinds or raises a
ConversionError naming the node, the op and what it could not honour. Layout ops
(Transpose, Squeeze, Unsqueeze, Reshape, Flatten, Identity, Cast, Dropout) move axes of a
Seq; recurrent nodes, MatMul/Gemm, elementwise arithmetic with constants and activations
append layers to the chain. The result is the layer list plus the graph's signature.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lstmlite.errors import ConversionError, ModelError

from .common import (Half, build_layers, clip_drafts, feature_half, first_line,
                     summed_directions)
from .onnx_recurrent import RecurrentNode
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
#: joins the labels of the axes a "merged" axis holds
MERGE = "*"
#: ops whose inputs after the first only choose positions
_INDEXED = ("Gather", "GatherElements", "GatherND")

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
    "Clip", "ReverseSequence"})

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


class OnnxGraphConverter:
    """Converts one ModelProto; `convert()` returns (layers, signature, notes)."""

    def __init__(self, model, source_name: str, loop_reasons: Optional[Dict[str, str]] = None):
        """loop_reasons: why each Loop left in the graph is not a recurrent cell
        (onnx_loops.rewrite_recurrent_loops), for the refusal that names it."""
        import onnx
        from onnx import numpy_helper
        self.onnx, self.numpy_helper = onnx, numpy_helper
        self.source = source_name
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          None)
        if self.opset is None:
            raise ConversionError(f"{source_name}: the model imports no default ONNX opset")
        self.values: Dict[str, Any] = {}
        self.chain: List[dict] = []          # layer drafts, in order
        self.binding: Dict[str, str] = {}    # seq axis label -> "T" or "B"
        self.static_sizes: Dict[str, Optional[int]] = {}
        self.initial_state: List[Dict[str, Any]] = []
        self.lengths_recipe: Optional[list] = None
        self.lengths_seen: List[bool] = []
        self.sequence_input: Optional[str] = None
        self.sequence_input_axes: Tuple[str, ...] = ()
        self.notes: List[str] = []
        #: the direction of the bidirectional half an op is applied to (_on_half), else None
        self._half_direction: Optional[int] = None
        self.loop_reasons = dict(loop_reasons or {})
        self.consumers: Dict[str, int] = {}
        self.graph_outputs = {o.name for o in self.graph.output}
        self.producer = {out: node for node in self.graph.node for out in node.output if out}
        self.graph_inputs = {v.name for v in self.graph.input} - \
            {i.name for i in self.graph.initializer}
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.consumers[name] = self.consumers.get(name, 0) + 1

    # ---- entry point ---------------------------------------------------------------------

    def _subgraph_refusal(self) -> Optional[str]:
        """Why a graph with no top-level recurrent node fails, when the recurrence is inside
        control flow: a recurrent node in an If/Loop/Scan subgraph, or a Loop/Scan whose body
        steps the sequence itself (tf2onnx writes Keras GRU, SimpleRNN and masked layers so)."""
        onnx = self.onnx

        def walk(graph, path, top):
            """(node, attribute name, subgraph, path of enclosing nodes, top-level node)"""
            for node in graph.node:
                for attribute in node.attribute:
                    subgraphs = ([attribute.g] if attribute.HasField("g") else []) + \
                        list(attribute.graphs)
                    for sub in subgraphs:
                        yield node, attribute.name, sub, path, top or node
                        yield from walk(sub, path + [f"{node.op_type} {node.name!r}"],
                                        top or node)

        found = []
        for node, branch, sub, path, top in walk(self.graph, [], None):
            for inner in (n for n in sub.node if n.op_type in _RECURRENT):
                where = f"the {branch} graph of the {node.op_type} node {node.name!r}" + \
                    (f" (inside {' > '.join(path)})" if path else "")
                found.append((inner, where, top))
        if found:
            listed = "; ".join(f"the {inner.op_type} node {inner.name!r} is in {where}"
                               for inner, where, _ in found[:4])
            if len(found) > 4:
                listed += f"; and {len(found) - 4} more"
            # what decides the top-level Ifs around them
            tops = {id(top): top for _, _, top in found if top.op_type == "If"}.values()
            fix = describe_conditions(self.graph, tops) or \
                ("lstmlite converts recurrent nodes at the graph's top level, not inside "
                 "control flow (export the recurrent module on its own, without the "
                 "If/Loop around it)")
            return f"{self.source}: {listed}; {fix}"
        loops = [n for n in self.graph.node if n.op_type in ("Loop", "Scan")]
        if loops:
            loop = loops[0]
            body = next((onnx.helper.get_attribute_value(a) for a in loop.attribute
                         if a.name == "body"), None)
            ops = sorted({n.op_type for n in body.node}) if body is not None else []
            reason = self.loop_reasons.get(loop.name)
            why = f" ({reason})" if reason else ""
            return (f"{self.source}: the recurrence is the {loop.op_type} node {loop.name!r}, "
                    f"a loop over the time steps whose body computes the cell "
                    f"({', '.join(ops) or 'no ops'}). lstmlite converts a Loop that steps a "
                    f"Keras LSTM, GRU or SimpleRNN cell as tf2onnx writes it (one Gather of the "
                    f"time-major input per step, kernels carried unchanged, states from zeros; "
                    f"converters/onnx_loops.py) and this loop is not one{why}: export the cell "
                    f"as an ONNX LSTM/GRU/RNN op (torch.onnx.export(..., dynamo=False) keeps "
                    f"nn.LSTM/GRU/RNN as one node)")
        return None

    def convert(self):
        if not any(node.op_type in _RECURRENT for node in self.graph.node):
            refusal = self._subgraph_refusal()
            if refusal:
                raise ConversionError(refusal)
            ops = sorted({node.op_type for node in self.graph.node})
            count = {op: sum(n.op_type == op for n in self.graph.node) for op in ops}
            products = {"MatMul", "Gemm"} & set(ops)
            gates = count.get("Sigmoid", 0) + count.get("Tanh", 0)
            one_cell = products and count.get("Tanh", 0) and 0 < gates <= 8
            unrolled = products and {"Slice", "Gather", "Split"} & set(ops) and not one_cell
            raise ConversionError(
                f"{self.source}: the graph has no LSTM, GRU or RNN node (its ops: "
                f"{', '.join(ops) or 'none'}). "
                + (f"It computes one step of a recurrent cell written out as "
                   f"{', '.join(sorted(products | {'Sigmoid', 'Tanh'} & set(ops) | {'Split', 'Slice', 'Mul', 'Add'} & set(ops)))} "
                   f"ops (its state an input and an output of each call); lstmlite converts "
                   f"recurrent cells as ONNX LSTM/GRU/RNN nodes and does not recognise one "
                   f"written out as ops: " if one_cell else "")
                + ("It looks like an exporter unrolled the recurrence into per-step "
                   "MatMul/Gemm ops, which cannot be streamed; " if unrolled else "")
                + "export with a recurrent op (torch.onnx.export(..., dynamo=False) keeps "
                  "nn.LSTM/GRU/RNN as one node; the dynamo exporter unrolls nn.RNN), or "
                  "convert the PyTorch module itself with from_torch")
        self.sequence_sources = self._find_sequence_sources()
        self._refuse_reordered_batches()
        self._load_constants()
        self._load_inputs()
        self._fold_constants()
        self._refuse_unsupported()
        for node in self.graph.node:
            if all(o in self.values for o in node.output if o):
                continue  # folded
            self._convert_node(node)
        return self._finish()

    def _handler(self, op: str):
        return self._op_activation if op in _ACTIVATION_OPS else getattr(self, f"_op_{op}", None)

    def _refuse_unsupported(self) -> None:
        """Every node left after folding whose op lstmlite has no handler for, in one error,
        grouped by op: a user learns the whole distance at once, not one op per attempt. An
        If is named with the graph inputs its condition depends on (--input fixes them)."""
        blocked: Dict[str, list] = {}
        for node in self.graph.node:
            if all(o in self.values for o in node.output if o) or self._handler(node.op_type):
                continue
            blocked.setdefault(node.op_type, []).append(node)
        if not blocked:
            return
        supported = f"lstmlite converts {', '.join(SUPPORTED_OPS)} (and folds any op on constants)"
        if sum(map(len, blocked.values())) == 1 and "If" not in blocked:
            node = next(iter(blocked.values()))[0]
            raise ConversionError(f"{self._where(node)}: op {node.op_type} is not supported. "
                                  f"{supported}")
        parts = []
        for op in sorted(blocked):
            nodes = blocked[op]
            names = ", ".join(repr(n.name or n.output[0]) for n in nodes[:4]) + \
                (f" and {len(nodes) - 4} more" if len(nodes) > 4 else "")
            if op == "If":
                names += "; " + describe_conditions(self.graph, nodes)
            parts.append(f"{op} ({len(nodes)} node{'s' if len(nodes) > 1 else ''}: {names})")
        total = sum(map(len, blocked.values()))
        raise ConversionError(f"{self.source}: {total} nodes of {len(blocked)} op"
                              f"{'s' if len(blocked) > 1 else ''} cannot be converted: "
                              f"{'; '.join(parts)}. {supported}")



    def _where(self, node) -> str:
        name = node.name or (node.output[0] if node.output else "?")
        return f"{self.source}: node {name!r} ({node.op_type})"

    # ---- values ----------------------------------------------------------------------------

    def _load_constants(self):
        for init in self.graph.initializer:
            self.values[init.name] = Const(self.numpy_helper.to_array(init))
        for init in self.graph.sparse_initializer:
            raise ConversionError(f"{self.source}: sparse initializer "
                                  f"{init.values.name!r} is not supported")

    def _load_inputs(self):
        onnx = self.onnx
        for value_info in self.graph.input:
            name = value_info.name
            if name in self.values:
                continue  # an initializer that is also listed as an input (IR < 4 habit)
            if not self.consumers.get(name):
                self.notes.append(f"graph input {name!r} is not used")
                continue
            if not value_info.type.HasField("tensor_type"):
                raise ConversionError(f"{self.source}: graph input {name!r} is not a tensor")
            tensor_type = value_info.type.tensor_type
            if not tensor_type.HasField("shape"):
                raise ConversionError(f"{self.source}: graph input {name!r} has no shape; "
                                      f"lstmlite needs at least its rank")
            dims = [int(dim.dim_value) if dim.HasField("dim_value") else Sym(f"{name}:{number}")
                    for number, dim in enumerate(tensor_type.shape.dim)]
            static = [d for d in dims if isinstance(d, int)]
            if any(d < 0 for d in static) or math.prod(static) > MAX_STATIC_INPUT_ELEMENTS:
                raise ConversionError(
                    f"{self.source}: graph input {name!r} has static shape "
                    f"{_show(dims)}, {math.prod(static)} elements; lstmlite accepts at most "
                    f"{MAX_STATIC_INPUT_ELEMENTS} (the verification feeds inputs of that "
                    f"shape): make the time axis dynamic")
            elem = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
            self.values[name] = ("input", name, tuple(dims), np.dtype(elem))

    def _fold_constants(self):
        """Every node whose inputs are all constant is evaluated once, by ONNX's reference
        evaluator, one node at a time, after its output size is known to fit the budget:
        the weights' bytes times FOLD_FACTOR plus FOLD_SLACK, in total. An unused
        ConstantOfShape([2**28]) is refused, naming the node, before anything is allocated."""
        onnx = self.onnx
        known = {name: v.value for name, v in self.values.items() if isinstance(v, Const)}
        weight_bytes = sum(value.nbytes for value in known.values())
        budget = FOLD_FACTOR * weight_bytes + FOLD_SLACK
        spent = 0
        from onnx.reference import ReferenceEvaluator
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx"):
                raise ConversionError(
                    f"{self._where(node)}: domain {node.domain!r} is not ONNX's default "
                    f"domain; lstmlite converts standard ONNX ops only")
            if node.op_type in ("RandomNormal", "RandomUniform", "RandomNormalLike",
                                "RandomUniformLike", "Multinomial", "Bernoulli"):
                continue
            if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                   for a in node.attribute):
                continue  # If/Loop/Scan: left for the converter to refuse
            if not all((not name) or name in known for name in node.input):
                continue
            inputs = [known[name] if name else None for name in node.input]
            elements = _folded_elements(node, inputs, self._where(node))
            # 8 bytes per element: the widest dtype a folded value can have
            if elements * 8 > budget - spent:
                raise ConversionError(
                    f"{self._where(node)}: folding this constant would allocate "
                    f"{elements} elements; lstmlite's bound for the constant part of a graph "
                    f"is {budget} bytes ({FOLD_FACTOR}x the weights + {FOLD_SLACK >> 20} MiB), "
                    f"and {spent} are used")
            feeds = {name: value for name, value in zip(node.input, inputs) if name}
            graph = onnx.helper.make_graph(
                [node], "fold", [onnx.helper.make_value_info(n, onnx.TypeProto())
                                 for n in feeds],
                [onnx.helper.make_value_info(n, onnx.TypeProto()) for n in node.output if n])
            sub = onnx.helper.make_model(graph, opset_imports=list(self.model.opset_import),
                                         ir_version=self.model.ir_version)
            try:
                results = ReferenceEvaluator(sub).run(None, feeds)
            except Exception as exc:
                raise ConversionError(f"{self._where(node)}: folding this constant node with "
                                      f"onnx's reference evaluator failed: "
                                      f"{first_line(exc)}") from None
            for name, value in zip([n for n in node.output if n], results):
                value = np.asarray(value)
                if value.dtype == object:
                    raise ConversionError(f"{self._where(node)}: folds to a non-numeric "
                                          f"value")
                if node.op_type != "Constant":  # a Constant's bytes are the file's own
                    spent += value.nbytes
                known[name] = value
                self.values[name] = Const(value)
            if spent > budget:  # an op whose size estimate was low: stop here
                raise ConversionError(
                    f"{self._where(node)}: the folded constants reach {spent} bytes, beyond "
                    f"lstmlite's bound of {budget} for the constant part of a graph")

    def _get(self, node, index: int):
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.values:
            raise ConversionError(f"{self._where(node)}: input {name!r} is not produced by "
                                  f"any node, initializer or graph input")
        value = self.values[name]
        if isinstance(value, tuple) and value[0] == "input":
            value = self._first_use_of_input(node, index, value)
        return value

    def _first_use_of_input(self, node, index: int, raw):
        """A graph input becomes the sequence when it first reaches a sequence op, and a
        State (h0, c0, sequence_lens) otherwise."""
        _, name, dims, dtype = raw
        if name in self.sequence_sources:
            if self.sequence_input is not None and self.sequence_input != name:
                raise ConversionError(
                    f"{self._where(node)}: the graph has two sequence inputs "
                    f"({self.sequence_input!r} and {name!r}); lstmlite models take one")
            # axes of static size 1 beyond time and batch are unit axes (a channel axis:
            # torchaudio's DeepSpeech takes (batch, 1, time, features)), the innermost first
            units = set()
            for number in reversed(range(len(dims) - 1)):
                if len(dims) - 1 - len(units) <= 2:
                    break
                if isinstance(dims[number], int) and dims[number] == 1:
                    units.add(number)
            if len(dims) - len(units) not in (2, 3):
                raise ConversionError(f"{self.source}: graph input {name!r} has shape "
                                      f"{_show(dims)}; a sequence input has time and batch "
                                      f"axes (or one of them), features last, and any other "
                                      f"axis of size 1")
            if not isinstance(dims[-1], int):
                raise ConversionError(f"{self.source}: graph input {name!r} has a dynamic "
                                      f"feature axis {_show(dims)}; it must be static")
            self.sequence_input = name
            axes = []
            for number, dim in enumerate(dims[:-1]):
                if number in units:
                    axes.append(Axis("unit"))
                    continue
                label = f"{name}:{number}"
                self.static_sizes[label] = dim if isinstance(dim, int) else None
                axes.append(Axis("seq", label))
            axes.append(Axis("feat", size=int(dims[-1]), stride=1))
            # the signature's input axes: a label per time/batch axis, None for a unit axis
            self.sequence_input_axes = tuple(a.label if a.kind == "seq" else None
                                             for a in axes[:-1])
            value = Seq(0, tuple(axes))
        else:
            value = State(["input", name], tuple(dims), str(dtype))
        self.values[name] = value
        return value

    def _graph_inputs_behind(self, names, side_inputs: bool = True) -> set:
        """The graph inputs that values `names` are computed from. side_inputs=False does not
        follow a recurrent node's inputs after X (states, lengths) nor a Gather's indices
        (they only choose positions)."""
        found, seen, stack = set(), set(), [n for n in names if n]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in self.graph_inputs:
                found.add(name)
            node = self.producer.get(name)
            if node is None:
                continue
            inputs = node.input if side_inputs or \
                node.op_type not in _RECURRENT + _INDEXED else node.input[:1]
            stack.extend(i for i in inputs if i)
        return found

    def _find_sequence_sources(self) -> set:
        """The graph inputs that reach input X of a recurrent node, but not through the
        side inputs of recurrent nodes or Gathers (pack_padded_sequence(enforce_sorted=False)
        gathers the batch in the order of a sort of the lengths): the sequence. Every other
        graph input is a state or length input."""
        return self._graph_inputs_behind(
            [node.input[0] for node in self.graph.node if node.op_type in _RECURRENT and
             node.input], side_inputs=False)

    def _refuse_reordered_batches(self) -> None:
        """torch exports pack_padded_sequence(enforce_sorted=False) as a sort (TopK) of the
        lengths and a Gather of the sequence in that order, undone after the recurrent node;
        the walker would stop at the sort with a bare 'TopK is not supported'."""
        for node in self.graph.node:
            if node.op_type not in _INDEXED or len(node.input) < 2:
                continue
            if self._graph_inputs_behind([node.input[0]]) & self.sequence_sources:
                behind = self._graph_inputs_behind([node.input[1]]) - self.sequence_sources
                if behind:
                    raise ConversionError(
                        f"{self._where(node)}: reorders the sequence by indices computed from "
                        f"graph input {sorted(behind)[0]!r}: torch exports "
                        f"pack_padded_sequence(enforce_sorted=False) as a sort of the lengths "
                        f"and this {node.op_type}. lstmlite takes sequence lengths in any order: "
                        f"export with enforce_sorted=True (the graph then passes the lengths "
                        f"to the recurrent node as they are)")

    def _const(self, node, index: int, what: str, optional: bool = False) -> Optional[np.ndarray]:
        value = self._get(node, index)
        if value is None:
            if optional:
                return None
            raise ConversionError(f"{self._where(node)}: input {index} ({what}) is missing")
        if not isinstance(value, Const):
            raise ConversionError(
                f"{self._where(node)}: input {index} ({what}, {node.input[index]!r}) depends "
                f"on the graph's inputs; lstmlite needs it to be a constant")
        return value.value

    def _attributes(self, node, allowed: Sequence[str]) -> Dict[str, Any]:
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        unknown = sorted(set(attrs) - set(allowed))
        if unknown:
            raise ConversionError(f"{self._where(node)}: attribute {unknown[0]!r} "
                                  f"(value {attrs[unknown[0]]!r}) is not supported; lstmlite "
                                  f"will not ignore it")
        return attrs

    # ---- dispatch --------------------------------------------------------------------------

    def _convert_node(self, node):
        op = node.op_type
        handler = self._handler(op)
        if handler is None:
            raise ConversionError(
                f"{self._where(node)}: op {op} is not supported. lstmlite converts "
                f"{', '.join(SUPPORTED_OPS)} (and folds any op on constants)")
        try:
            outputs = handler(node)
        except ConversionError:
            raise
        except (ArithmeticError, IndexError, KeyError, LookupError, TypeError,
                ValueError) as exc:
            # the checker passes graphs whose shapes contradict their ops (a hand-edited or
            # damaged file): say which node, instead of a traceback from inside the walk
            raise ConversionError(f"{self._where(node)}: its inputs do not fit the op "
                                  f"({type(exc).__name__}: {first_line(exc)}); is the graph "
                                  f"valid? onnx.shape_inference.infer_shapes(model, "
                                  f"strict_mode=True) tells") from None
        for name, value in zip(node.output, outputs):
            if name:
                self.values[name] = value

    def _kind_error(self, node, value) -> ConversionError:
        kind = {Seq: "the sequence", State: "a state or length input", ShapeVec: "a shape",
                Lengths: "lengths that are the whole time axis for every sequence",
                Const: "a constant", Half: "one direction of a bidirectional layer (lstmlite "
                "follows the two directions concatenated or summed)"}.get(
            type(value), type(value).__name__)
        return ConversionError(f"{self._where(node)}: lstmlite cannot apply {node.op_type} "
                               f"to {kind} here")

    # ---- recurrent ---------------------------------------------------------------------------

    def _op_LSTM(self, node):
        return self._recurrent(node)

    _op_GRU = _op_RNN = _op_LSTM

    def _recurrent(self, node):
        op, where = node.op_type, self._where(node)
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        spec = RecurrentNode(op, attrs, where)
        X = self._get(node, 0)
        if isinstance(X, State) and X.sources == {"state"}:
            X = self._state_as_seq(node, X)
        if not isinstance(X, Seq):
            raise ConversionError(f"{where}: input X must be the sequence, got "
                                  f"{type(X).__name__}")
        if any(a.kind == "merged" for a in X.axes):
            raise ConversionError(f"{where}: input X has its time and batch axes flattened "
                                  f"into one ({_show_axes(X.axes)}); a recurrent node needs "
                                  f"them apart")
        if X.last_step:
            raise ConversionError(f"{where}: input X is a single (last) time step; a "
                                  f"recurrent node after the last-step selection is not "
                                  f"supported")
        W = self._const(node, 1, "W")
        R = self._const(node, 2, "R")
        B = self._const(node, 3, "B", optional=True)
        P = self._const(node, 7, "P", optional=True) if op == "LSTM" else None
        if op != "LSTM" and len(node.input) > 6 and any(node.input[6:]):
            raise ConversionError(f"{where}: {op} takes at most 6 inputs")
        time_index = 1 if spec.layout else 0
        if len(X.axes) == 3 and X.axes[time_index].reversed:
            # X runs backwards in time (ReverseSequence): stepping it forward is stepping the
            # graph's sequence in reverse, and the outputs keep the reversed axis, so the
            # signature puts them back in the graph's order
            if spec.num_directions != 1:
                raise ConversionError(f"{where}: a bidirectional {op} reads a time-reversed "
                                      f"sequence (ReverseSequence); lstmlite follows one "
                                      f"direction on a reversed sequence")
            if len(node.input) > 4 and node.input[4]:
                raise ConversionError(f"{where}: reads a time-reversed sequence "
                                      f"(ReverseSequence) and sequence_lens; lstmlite reverses "
                                      f"whole sequences only")
            spec.direction = "reverse" if spec.direction == "forward" else "forward"
        try:
            layer = spec.layer(W, R, B, P)
        except ModelError as exc:  # the layer's own validation
            raise ConversionError(f"{where}: {exc}") from None
        # the sequence axes: (T, B, F) for layout 0, (B, T, F) for layout 1
        core = X.axes
        if len(core) != 3 or not _is_full_features(core[2], X) or \
                any(a.kind == "feat" for a in core[:2]):
            raise ConversionError(f"{where}: input X has axes {_show_axes(X.axes)}; expected "
                                  f"{'(batch, time, features)' if spec.layout else '(time, batch, features)'}"
                                  f" with the features last")
        roles = ("B", "T") if spec.layout else ("T", "B")
        for axis, role in zip(core[:2], roles):
            self._bind(node, axis, role)
        time_axis, batch_axis = (core[1], core[0]) if spec.layout else (core[0], core[1])
        if layer.input_size != core[2].size:
            raise ConversionError(f"{where}: W expects {layer.input_size} input features, X "
                                  f"has {core[2].size}")
        depth = self._append(node, X, {"layer": layer})
        index = len(self.initial_state)  # this node's number among the recurrent layers
        # initial state and sequence lengths
        entry = {}
        names = [("h", 5)] + ([("c", 6)] if op == "LSTM" else [])
        for state_name, position in names:
            entry[state_name] = self._initial_state(node, position, spec, layer, state_name)
        self.initial_state.append(entry)
        self._sequence_lengths(node, time_axis)
        # outputs
        D, H = layer.num_directions, layer.hidden_size
        if spec.layout == 0:
            y_axes = (time_axis, Axis("feat", size=D, stride=H), batch_axis,
                      Axis("feat", size=H, stride=1))
        else:
            y_axes = (batch_axis, time_axis, Axis("feat", size=D, stride=H),
                      Axis("feat", size=H, stride=1))
        outputs = [Seq(depth, y_axes)]
        batch_dim = self._axis_dim(batch_axis)
        for state_name in ("h", "c")[:len(names)]:
            recipe = ["state", index, state_name]
            shape = (D, batch_dim, H)
            if spec.layout:
                recipe, shape = ["transpose", [1, 0, 2], recipe], (batch_dim, D, H)
            outputs.append(State(recipe, shape))
        return outputs

    def _axis_dim(self, axis: Axis):
        if axis.kind == "unit":
            return 1
        if axis.kind == "merged":
            return Sym(axis.label)
        size = self.static_sizes.get(axis.label)
        return size if size is not None else Sym(axis.label)

    def _bind(self, node, axis: Axis, role: str):
        if axis.kind == "unit":
            return
        bound = self.binding.get(axis.label)
        if bound is None:
            if role in self.binding.values():
                other = next(k for k, v in self.binding.items() if v == role)
                raise ConversionError(f"{self._where(node)}: uses axis {axis.label} as the "
                                      f"{_ROLE[role]} axis, but axis {other} already is")
            self.binding[axis.label] = role
        elif bound != role:
            raise ConversionError(
                f"{self._where(node)}: uses the graph's {_ROLE[bound]} axis as its "
                f"{_ROLE[role]} axis (the layout does not match the node before it)")

    def _initial_state(self, node, position: int, spec: RecurrentNode, layer, state_name):
        where = self._where(node)
        value = self._get(node, position)
        label = "initial_h" if state_name == "h" else "initial_c"
        if value is None:
            return None
        if isinstance(value, Const):
            if np.any(value.value != 0):
                raise ConversionError(
                    f"{where}: input {label} is a non-zero constant; lstmlite starts every "
                    f"sequence from zeros or from a state you pass (run(initial_state=...), "
                    f"Stream.state); make it a graph input")
            return None
        if not isinstance(value, State):
            raise ConversionError(f"{where}: input {label} is the sequence itself")
        if value.sources == {"zeros"}:
            return None
        if value.sources != {"input"}:
            raise ConversionError(
                f"{where}: input {label} comes from another recurrent node's final state "
                f"(an encoder-decoder); lstmlite runs one chain of layers and cannot feed "
                f"a state into another layer")
        D, H = layer.num_directions, layer.hidden_size
        shape = value.shape
        expected = (D, "batch", H) if spec.layout == 0 else ("batch", D, H)
        if len(shape) != 3 or shape[2] != H or shape[spec.layout] != D:
            raise ConversionError(f"{where}: input {label} has shape {_show(shape)}; "
                                  f"expected {_show(expected)}")
        recipe = value.recipe
        if spec.layout:
            recipe = ["transpose", [1, 0, 2], recipe]
        return recipe

    def _sequence_lengths(self, node, time_axis: Axis):
        value = self._get(node, 4)
        where = self._where(node)
        if value is None:
            self.lengths_seen.append(False)
        elif isinstance(value, Const):
            T = self._axis_dim(time_axis)
            if not isinstance(T, int) or np.any(value.value != T):
                raise ConversionError(
                    f"{where}: input sequence_lens is the constant {value.value.tolist()}; "
                    f"lstmlite takes sequence lengths at run time (run(sequence_lengths=...)); "
                    f"make it a graph input")
            self.lengths_seen.append(False)
        elif isinstance(value, State) and value.sources == {"input"}:
            if self.lengths_recipe is not None and self.lengths_recipe != value.recipe:
                raise ConversionError(f"{where}: input sequence_lens differs from an earlier "
                                      f"recurrent node's; lstmlite applies one set of lengths")
            self.lengths_recipe = value.recipe
            self.lengths_seen.append(True)
        else:
            raise ConversionError(f"{where}: input sequence_lens must be a graph input")
        if self.lengths_recipe is not None and not all(self.lengths_seen):
            raise ConversionError(
                f"{where}: some recurrent nodes take sequence_lens and others do not; "
                f"lstmlite applies the lengths to every recurrent layer")

    # ---- the chain ------------------------------------------------------------------------

    def _append(self, node, seq: Seq, draft: dict) -> int:
        if seq.depth != len(self.chain):
            raise ConversionError(
                f"{self._where(node)}: the graph branches: this node continues the sequence "
                f"after layer {seq.depth}, but layer {len(self.chain)} already follows it. "
                f"lstmlite models are one chain of layers")
        draft["node"] = node.name or node.output[0]
        draft["output"] = node.output[0]
        self.chain.append(draft)
        return len(self.chain)

    def _can_merge(self, node, seq: Seq, input_index: int = 0) -> bool:
        """True if `node` (reading the sequence as input `input_index`) may fold into the
        chain's last layer: the sequence is the chain's tip, the last layer was made by the
        node that made this input, and nothing else reads that value."""
        name = node.input[input_index]
        return seq.depth == len(self.chain) and seq.depth > 0 and \
            self.consumers.get(name, 0) == 1 and name not in self.graph_outputs and \
            self.chain[-1].get("output") == name

    def _feature_seq(self, node, value, what: str = "input") -> Seq:
        """A Seq whose last axis holds every feature (what a Dense or elementwise op needs)."""
        if isinstance(value, State) and "state" in value.sources:
            value = self._state_as_seq(node, value)
        if not isinstance(value, Seq):
            raise self._kind_error(node, value)
        if not _is_full_features(value.axes[-1], value):
            raise ConversionError(
                f"{self._where(node)}: {what} has axes {_show_axes(value.axes)}: its features "
                f"are not all on the last axis (a bidirectional Y must be transposed and "
                f"reshaped to (.., 2*hidden) first)")
        return value

    def _state_as_seq(self, node, state: State) -> Seq:
        """Y_h of a forward recurrent node is its output at the last step: a head reading
        h_n (`fc(h_n[-1])`) reads the last step of the sequence."""
        return self._recipe_as_seq(node, state.recipe)

    def _recipe_as_seq(self, node, recipe) -> Seq:
        op = recipe[0]
        if op == "state":
            index, which = recipe[1], recipe[2]
            draft = [d for d in self.chain if "layer" in d][index]
            layer = draft["layer"]
            depth = self.chain.index(draft) + 1
            if which != "h" or layer.direction != "forward":
                raise ConversionError(
                    f"{self._where(node)}: reads the final {which} of recurrent layer {index} "
                    f"({layer.direction}) as features; only the final h of a forward layer "
                    f"equals its output at the last step")
            # Y_h is (1, batch, hidden): the batch axis is the graph's bound batch axis
            batch = [Axis("seq", label) for label, role in self.binding.items() if role == "B"]
            axes = (Axis("feat", size=1, stride=layer.hidden_size),
                    batch[0] if batch else Axis("unit"), Axis("feat", size=layer.hidden_size))
            return Seq(depth, axes, last_step=True)
        if op == "gather" and recipe[1] == 0 and isinstance(recipe[2], int) and \
                recipe[-1][0] == "concat" and recipe[-1][1] == 0:
            # a row of stacked final states (PyTorch's h_n): find the layer it belongs to
            parts = recipe[-1][2]
            sizes = [self._recipe_rows(p) for p in parts]
            row = recipe[2] % sum(sizes)
            for part, size in zip(parts, sizes):
                if row < size:
                    return self._recipe_as_seq(node, ["gather", 0, row, part])
                row -= size
        if op == "gather" and recipe[1] == 0:
            inner = self._recipe_as_seq(node, recipe[-1])
            index = recipe[2]
            if isinstance(index, int) and inner.axes[0].size == 1 and index in (0, -1):
                return replace(inner, axes=inner.axes[1:])
        if op == "squeeze" and recipe[1] == [0]:
            inner = self._recipe_as_seq(node, recipe[-1])
            return replace(inner, axes=inner.axes[1:])
        if op == "slice" and recipe[1] == 0:
            inner = self._recipe_as_seq(node, recipe[-1])
            if inner.axes[0].size == 1:
                return inner
        raise ConversionError(
            f"{self._where(node)}: uses a final state in a way lstmlite cannot map to its "
            f"output ({_show_recipe(recipe)}); read the last step of the sequence output "
            f"instead")

    def _recipe_rows(self, recipe) -> int:
        if recipe[0] == "state":
            draft = [d for d in self.chain if "layer" in d][recipe[1]]
            return draft["layer"].num_directions
        raise ConversionError(f"{self.source}: cannot size state recipe {_show_recipe(recipe)}")

    # ---- dense and elementwise -------------------------------------------------------------

    def _op_MatMul(self, node):
        self._attributes(node, ())
        seq = self._feature_seq(node, self._get(node, 0))
        weight = self._const(node, 1, "B")
        if weight.ndim != 2 or weight.shape[0] != seq.axes[-1].size:
            raise ConversionError(f"{self._where(node)}: weight has shape {weight.shape}; "
                                  f"expected ({seq.axes[-1].size}, out_features)")
        layer = {"dense": np.ascontiguousarray(weight.T, dtype=np.float32), "bias": None,
                 "activation": "Identity"}
        depth = self._append(node, seq, layer)
        return [replace(seq, depth=depth,
                        axes=seq.axes[:-1] + (Axis("feat", size=weight.shape[1]),))]

    def _op_Gemm(self, node):
        attrs = self._attributes(node, ("alpha", "beta", "transA", "transB"))
        seq = self._feature_seq(node, self._get(node, 0), "input A")
        if attrs.get("transA", 0):
            raise ConversionError(f"{self._where(node)}: attribute transA=1 transposes the "
                                  f"sequence; not supported")
        if len(seq.axes) != 2:
            raise ConversionError(f"{self._where(node)}: input A has axes "
                                  f"{_show_axes(seq.axes)}; Gemm takes a matrix")
        weight = self._const(node, 1, "B")
        if weight.ndim != 2:
            raise ConversionError(f"{self._where(node)}: B has shape {weight.shape}")
        weight = weight.T if attrs.get("transB", 0) else weight   # (in, out)
        if weight.shape[0] != seq.axes[-1].size:
            raise ConversionError(f"{self._where(node)}: B maps {weight.shape[0]} features, "
                                  f"A has {seq.axes[-1].size}")
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        out = weight.shape[1]
        bias = self._const(node, 2, "C", optional=True)
        if bias is not None:
            bias = self._bias_vector(node, bias, out, "C") * np.float32(beta)
        dense = np.ascontiguousarray(weight.T, dtype=np.float32)
        if alpha != 1.0:
            dense = dense * np.float32(alpha)
        depth = self._append(node, seq, {"dense": dense, "bias": bias, "activation": "Identity"})
        return [replace(seq, depth=depth, axes=seq.axes[:-1] + (Axis("feat", size=out),))]

    def _bias_vector(self, node, array: np.ndarray, size: int, what: str) -> np.ndarray:
        squeezed = array.reshape([d for d in array.shape if d != 1] or [1]) \
            if array.ndim else array.reshape(1)
        if squeezed.shape == (1,):
            return np.full(size, squeezed[0], dtype=np.float32)
        if squeezed.shape != (size,) or (array.ndim and array.shape[-1] != size):
            raise ConversionError(f"{self._where(node)}: {what} has shape {array.shape}; "
                                  f"expected one value per feature ({size},) or a scalar")
        return squeezed.astype(np.float32)

    def _elementwise(self, node):
        self._attributes(node, ())
        a, b = self._get(node, 0), self._get(node, 1)
        op = node.op_type
        if isinstance(a, Half) and isinstance(b, Half) and op == "Add":
            return [self._join_halves(node, a, b, "adds")]
        if isinstance(a, ShapeVec) or isinstance(b, ShapeVec):
            return [self._shape_arith(node, a, b)]
        seq_first = not isinstance(a, Const)
        seq_value, const = (a, b) if seq_first else (b, a)
        if not isinstance(const, Const):
            raise ConversionError(f"{self._where(node)}: {op} of two computed values "
                                  f"(a residual or gating); lstmlite supports {op} with a "
                                  f"constant only")
        seq = self._feature_seq(node, seq_value)
        N = seq.axes[-1].size
        c = const.value
        if c.ndim > len(seq.axes):
            raise ConversionError(f"{self._where(node)}: constant of shape {c.shape} adds "
                                  f"axes to the sequence")
        vector = self._bias_vector(node, c, N, "the constant")
        one, zero = np.ones(N, np.float32), np.zeros(N, np.float32)
        last = self.chain[-1] if self.chain else None
        mergeable = self._can_merge(node, seq, 0 if seq_first else 1)
        if op == "Add":
            if mergeable and last.get("dense") is not None and last["bias"] is None and \
                    last["activation"] == "Identity":
                last["bias"] = vector
                last["output"] = node.output[0]
                return [seq]
            draft = {"scale": one, "offset": vector}
        elif op == "Sub":
            draft = {"scale": one, "offset": -vector} if seq_first else \
                {"scale": -one, "offset": vector}
        elif op == "Mul":
            draft = {"scale": vector, "offset": zero}
        else:  # Div
            if not seq_first:
                raise ConversionError(f"{self._where(node)}: Div of a constant by the "
                                      f"sequence is not supported")
            if np.any(vector == 0):
                raise ConversionError(f"{self._where(node)}: divides by zero")
            if mergeable and "scale" in last and np.all(last["scale"] == 1) and seq_first:
                # Sub then Div: (x - mean) / std, computed as the graph does
                self.chain[-1] = {"normalize": (-last["offset"], vector), "node": last["node"],
                                  "output": node.output[0]}
                return [seq]
            draft = {"normalize": (zero, vector)}
        depth = self._append(node, seq, draft)
        return [replace(seq, depth=depth)]

    _op_Add = _op_Sub = _op_Mul = _op_Div = _elementwise

    def _op_activation(self, node):
        name, params = _ACTIVATION_OPS[node.op_type]
        attrs = self._attributes(node, params)
        values = dict(_DEFAULTS.get(node.op_type, {}))
        values.update(attrs)
        activation = (name,) + tuple(float(values[p]) for p in params)
        return self._activate(node, activation)

    def _activate(self, node, activation):
        seq = self._feature_seq(node, self._get(node, 0))
        last = self.chain[-1] if self.chain else None
        if self._can_merge(node, seq) and last.get("dense") is not None and \
                last["activation"] == "Identity":
            last["activation"] = activation
            last["output"] = node.output[0]
            return [seq]
        N = seq.axes[-1].size
        # an activation with no Dense before it: an identity Dense carries it (exact: each
        # output is 1*x_i plus zeros)
        depth = self._append(node, seq, {"dense": np.eye(N, dtype=np.float32), "bias": None,
                                         "activation": activation})
        self.notes.append(f"node {node.name or node.output[0]!r} ({node.op_type}) has no "
                          f"Dense before it: it runs as an identity Dense layer")
        return [replace(seq, depth=depth)]

    def _op_Clip(self, node):
        """Clip(lo, hi) (torch's hardtanh, relu6): a HardSigmoid on the layer (or an identity
        Dense) and a Scale layer after it (common.clip_drafts). A Relu the layer already
        applies is absorbed (it only raises lo to 0). Clip(0, inf) is Relu."""
        attrs = self._attributes(node, ("min", "max"))  # attributes before opset 11
        lo, hi = float(attrs.get("min", -np.inf)), float(attrs.get("max", np.inf))
        if len(node.input) > 1 and node.input[1]:
            lo = float(np.asarray(self._const(node, 1, "min")).item())
        if len(node.input) > 2 and node.input[2]:
            hi = float(np.asarray(self._const(node, 2, "max")).item())
        seq = self._feature_seq(node, self._get(node, 0))
        last = self.chain[-1] if self.chain else None
        mergeable = self._can_merge(node, seq) and last.get("dense") is not None
        if mergeable and last["activation"] in ("Relu", ("Relu",)):
            lo = max(lo, 0.0)
            last["activation"] = "Identity"  # Clip(lo >= 0) of a Relu is that Clip
        if lo == 0.0 and hi == np.inf:
            return self._activate(node, ("Relu",))
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ConversionError(
                f"{self._where(node)}: clips to [{lo:g}, {hi:g}]; lstmlite converts a Clip with "
                f"both bounds finite (as hardtanh and relu6 give) or Clip(0, inf) (a Relu)")
        activation, scale = clip_drafts(lo, hi, seq.axes[-1].size)
        clipped, = self._activate(node, activation)
        depth = self._append(node, clipped, scale)
        self.notes.append(f"node {node.name or node.output[0]!r} clips to [{lo:g}, {hi:g}]: "
                          f"a HardSigmoid then a Scale layer ({hi - lo:g}, {lo:g})")
        return [replace(clipped, depth=depth)]

    def _op_Softmax(self, node):
        attrs = self._attributes(node, ("axis",))
        seq = self._feature_seq(node, self._get(node, 0))
        rank = len(seq.axes)
        axis = attrs.get("axis", -1 if self.opset >= 13 else 1)
        axis = axis + rank if axis < 0 else axis
        if axis != rank - 1:
            # before opset 13 the input is flattened to 2-D at `axis`: the same as the last
            # axis when every axis after `axis` but the last has size 1
            if self.opset >= 13 or not all(a.is_unit for a in seq.axes[axis:-1]):
                raise ConversionError(f"{self._where(node)}: attribute axis={attrs.get('axis')}"
                                      f" is not the feature axis (axes "
                                      f"{_show_axes(seq.axes)}); lstmlite normalizes over the "
                                      f"features of one step")
        return self._activate(node, (node.op_type,))

    _op_LogSoftmax = _op_Softmax

    # ---- layout ops ---------------------------------------------------------------------------

    def _op_Identity(self, node):
        self._attributes(node, ())
        return [self._get(node, 0)]

    def _op_Dropout(self, node):
        self._attributes(node, ("seed", "ratio", "is_test"))
        if len(node.input) > 2 and node.input[2]:
            training = self._const(node, 2, "training_mode")
            if bool(np.asarray(training).item()):
                raise ConversionError(f"{self._where(node)}: training_mode is true; dropout "
                                      f"is only the identity at inference")
        if len(node.output) > 1 and node.output[1]:
            raise ConversionError(f"{self._where(node)}: the dropout mask output is used")
        return [self._get(node, 0)]

    def _op_Cast(self, node):
        attrs = self._attributes(node, ("to", "saturate", "round_mode"))
        value = self._get(node, 0)
        target = np.dtype(self.onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))
        if isinstance(value, ShapeVec):
            return [value]
        if isinstance(value, State):
            if target.kind not in "fiu":
                raise ConversionError(f"{self._where(node)}: casts to {target}")
            return [State(["cast", str(target), value.recipe], value.shape, str(target))]
        if isinstance(value, Seq):
            if target.kind != "f":
                raise ConversionError(f"{self._where(node)}: casts the sequence to {target}; "
                                      f"lstmlite computes in float32")
            if target != np.float32:
                self.notes.append(f"node {node.name or node.output[0]!r} casts to {target}; "
                                  f"lstmlite computes in float32")
            return [value]
        raise self._kind_error(node, value)

    def _axes_input(self, node, attrs, rank: int, input_index: int = 1) -> Optional[List[int]]:
        if "axes" in attrs:
            axes = list(attrs["axes"])
        elif len(node.input) > input_index and node.input[input_index]:
            axes = [int(a) for a in np.asarray(self._const(node, input_index, "axes")).ravel()]
        else:
            return None
        return [a + rank if a < 0 else a for a in axes]

    def _op_Transpose(self, node):
        attrs = self._attributes(node, ("perm",))
        value = self._get(node, 0)
        rank = self._rank(node, value)
        perm = list(attrs.get("perm", range(rank - 1, -1, -1)))
        if isinstance(value, Seq):
            return [replace(value, axes=tuple(value.axes[p] for p in perm))]
        if isinstance(value, Half):
            return [replace(value, seq=replace(value.seq,
                                               axes=tuple(value.seq.axes[p] for p in perm)))]
        if isinstance(value, State):
            return [State(["transpose", perm, value.recipe],
                          tuple(value.shape[p] for p in perm), value.dtype)]
        raise self._kind_error(node, value)

    def _rank(self, node, value) -> int:
        if isinstance(value, Seq):
            return len(value.axes)
        if isinstance(value, Half):
            return len(value.seq.axes)
        if isinstance(value, State):
            return len(value.shape)
        if isinstance(value, ShapeVec):
            return 0 if value.scalar else 1
        raise self._kind_error(node, value)

    def _op_Squeeze(self, node):
        attrs = self._attributes(node, ("axes",))
        value = self._get(node, 0)
        rank = self._rank(node, value)
        axes = self._axes_input(node, attrs, rank)
        if isinstance(value, ShapeVec):
            return [ShapeVec(value.dims, scalar=True)]
        if isinstance(value, Half):
            units = [i for i, a in enumerate(value.seq.axes) if a.kind == "unit"]
            if axes is None or not set(axes) <= set(units):
                raise ConversionError(f"{self._where(node)}: squeezes an axis of one direction "
                                      f"of a bidirectional layer that is not of size 1")
            kept = tuple(a for i, a in enumerate(value.seq.axes) if i not in axes)
            return [replace(value, seq=replace(value.seq, axes=kept))]
        if isinstance(value, Seq):
            if axes is None:
                axes = [i for i, a in enumerate(value.axes) if a.is_unit]
            for a in axes:
                if not self._removable(value.axes[a]):
                    raise ConversionError(f"{self._where(node)}: squeezes axis {a} of "
                                          f"{_show_axes(value.axes)}, which is not of size 1")
            return [self._remove_axes(node, value, axes)]
        if isinstance(value, State):
            if axes is None:
                axes = [i for i, d in enumerate(value.shape) if d == 1]
            return [State(["squeeze", axes, value.recipe],
                          tuple(d for i, d in enumerate(value.shape) if i not in axes),
                          value.dtype)]
        raise self._kind_error(node, value)

    def _removable(self, axis: Axis) -> bool:
        return axis.is_unit or (axis.kind == "seq" and self.static_sizes.get(axis.label) == 1)

    def _remove_axes(self, node, seq: Seq, axes: List[int]) -> Seq:
        last_step = seq.last_step
        for a in axes:
            axis = seq.axes[a]
            if axis.kind == "seq":  # a time or batch axis of static size 1
                role = self.binding.get(axis.label)
                if role is None:
                    self._bind(node, axis, "T")
                if role in ("T", None):
                    last_step = True
        return replace(seq, axes=tuple(x for i, x in enumerate(seq.axes) if i not in axes),
                       last_step=last_step, first_step=seq.first_step or (
                           last_step and not seq.last_step and
                           any(seq.axes[a].reversed for a in axes)))

    def _op_Unsqueeze(self, node):
        attrs = self._attributes(node, ("axes",))
        value = self._get(node, 0)
        rank = self._rank(node, value)
        raw = attrs.get("axes")
        if raw is None:
            raw = [int(a) for a in np.asarray(self._const(node, 1, "axes")).ravel()]
        out_rank = rank + len(raw)
        axes = sorted(a + out_rank if a < 0 else a for a in raw)
        if isinstance(value, ShapeVec):
            return [ShapeVec(value.dims, scalar=False)]
        if isinstance(value, Seq):
            new = list(value.axes)
            for a in axes:
                new.insert(a, Axis("unit"))
            return [replace(value, axes=tuple(new))]
        if isinstance(value, State):
            shape = list(value.shape)
            for a in axes:
                shape.insert(a, 1)
            return [State(["unsqueeze", axes, value.recipe], tuple(shape), value.dtype)]
        raise self._kind_error(node, value)

    def _op_Flatten(self, node):
        attrs = self._attributes(node, ("axis",))
        value = self._get(node, 0)
        if not isinstance(value, Seq):
            raise self._kind_error(node, value)
        axis = attrs.get("axis", 1)
        axis = axis + len(value.axes) if axis < 0 else axis
        left = [a for a in value.axes[:axis] if not self._removable(a)]
        right = value.axes[axis:]
        if any(a.kind == "feat" for a in left) or any(a.kind == "seq" and not self._removable(a)
                                                      for a in right):
            raise ConversionError(f"{self._where(node)}: Flatten(axis={axis}) of "
                                  f"{_show_axes(value.axes)} mixes features with the time "
                                  f"or batch axis")
        if len(left) > 1:
            raise ConversionError(f"{self._where(node)}: Flatten(axis={axis}) merges the "
                                  f"time and batch axes")
        target = [Sym(left[0].label) if left else 1,
                  int(np.prod([a.size for a in right if a.kind == "feat"] or [1]))]
        return [self._reshape_seq(node, value, target)]

    def _op_Reshape(self, node):
        attrs = self._attributes(node, ("allowzero",))
        value = self._get(node, 0)
        shape = self._get(node, 1)
        if isinstance(shape, Const):
            target = [int(d) for d in np.asarray(shape.value).ravel()]
        elif isinstance(shape, ShapeVec):
            target = list(shape.dims)
        else:
            raise ConversionError(f"{self._where(node)}: the target shape must be a constant "
                                  f"or computed from shapes")
        if attrs.get("allowzero", 0) and 0 in target:
            raise ConversionError(f"{self._where(node)}: allowzero=1 with a 0 in the shape "
                                  f"makes an empty tensor")
        if isinstance(value, Seq):
            resolved = []
            for i, d in enumerate(target):
                if isinstance(d, int) and d == 0:
                    axis = value.axes[i]
                    d = Sym(axis.label) if axis.kind == "seq" else (axis.size or 1)
                resolved.append(d)
            reshaped = self._reshape_seq(node, value, resolved)
            if self._can_merge(node, value) and \
                    _is_full_features(value.axes[-1], value) and \
                    _is_full_features(reshaped.axes[-1], reshaped):
                # only the time, batch and unit axes moved: an activation after this reshape
                # may still fold into the layer before it (Keras' Dense over a sequence)
                self.chain[-1]["output"] = node.output[0]
            return [reshaped]
        if isinstance(value, State):
            return [self._reshape_state(node, value, target)]
        if isinstance(value, ShapeVec) and len(target) == 1 and target[0] in (-1, len(value.dims)):
            return [ShapeVec(value.dims)]
        raise self._kind_error(node, value)

    def _reshape_state(self, node, value: State, target):
        shape = list(value.shape)
        resolved = [shape[i] if isinstance(d, int) and d == 0 else d
                    for i, d in enumerate(target)]
        kept_in = [d for d in shape if d != 1]
        kept_out = [d for d in resolved if d != 1]
        if kept_in == kept_out or (kept_out.count(-1) == 1 and len(kept_out) == len(kept_in)):
            # only unit axes move: squeeze them all, then unsqueeze where the target has them
            recipe = ["squeeze", [i for i, d in enumerate(shape) if d == 1], value.recipe]
            units = [i for i, d in enumerate(resolved) if d == 1]
            if units:
                recipe = ["unsqueeze", units, recipe]
            final = tuple(kept_in[[j for j, d in enumerate(resolved) if d != 1].index(i)]
                          if d == -1 else d for i, d in enumerate(resolved))
            return State(recipe, final, value.dtype)
        raise ConversionError(f"{self._where(node)}: reshapes a state of shape {_show(shape)} "
                              f"to {_show(resolved)}; only unit axes may be added or removed")

    def _reshape_seq(self, node, seq: Seq, target: List[Any]) -> Seq:
        """Reshape of the sequence: time and batch axes stay whole and in order; runs of
        feature axes may merge (when contiguous in the flat feature order) and split; unit
        axes come and go."""
        where = self._where(node)
        if seq.axes and seq.axes[0].kind == "merged" and not (
                target and isinstance(target[0], Sym) and target[0].label == seq.axes[0].label):
            return self._reshape_split(node, seq, target)
        merged = self._reshape_merge(node, seq, target)
        if merged is not None:
            return merged
        kept = self._reshape_keeping_unit_time(node, seq, target)
        if kept is not None:
            return kept
        inputs = [a for a in seq.axes if not self._removable(a)]
        dropped = [i for i, a in enumerate(seq.axes) if self._removable(a) and a.kind == "seq"]
        base = self._remove_axes(node, seq, dropped) if dropped else seq
        if sum(1 for d in target if isinstance(d, int) and d == -1) > 1:
            raise ConversionError(f"{where}: the target shape {_show(target)} has two -1")
        fail = ConversionError(f"{where}: cannot reshape {_show_axes(seq.axes)} to "
                               f"{_show(target)}")
        kept_target = [d for d in target if not (isinstance(d, int) and d == 1)]
        i = j = 0
        groups = []   # (input axes, target dims): one time/batch axis, or a run of features
        while i < len(inputs) or j < len(kept_target):
            if i < len(inputs) and inputs[i].kind in ("seq", "merged"):
                axis = inputs[i]
                if j >= len(kept_target):
                    raise fail
                d = kept_target[j]
                static = self.static_sizes.get(axis.label)
                if isinstance(d, Sym) and d.label == axis.label or d == -1 or \
                        isinstance(d, int) and static == d:
                    pass
                elif isinstance(d, int) and static is None and d > 1:
                    # the exporter baked the example's size into the graph: the graph only
                    # runs at that size; lstmlite's model runs at any
                    self.static_sizes[axis.label] = d
                    self.notes.append(f"node {node.name or node.output[0]!r} fixes axis "
                                      f"{axis.label} at {d} (the exporter's example size); "
                                      f"the converted model runs at any size")
                else:
                    raise ConversionError(
                        f"{where}: reshapes {_show_axes(seq.axes)} to {_show(target)}, which "
                        f"merges or splits the time or batch axis; lstmlite keeps them whole")
                groups.append(([axis], [axis]))
                i, j = i + 1, j + 1
                continue
            if i >= len(inputs) or j >= len(kept_target) or not isinstance(kept_target[j], int):
                raise fail
            run_axes, run_dims = [], []
            product_in = product_out = 1
            while True:
                if product_in == product_out and run_axes and run_dims:
                    break
                if j < len(kept_target) and kept_target[j] == -1:
                    # -1 takes the rest of this run of features
                    while i < len(inputs) and inputs[i].kind == "feat":
                        run_axes.append(inputs[i])
                        product_in *= inputs[i].size
                        i += 1
                    run_dims.append(None)
                    j += 1
                    while j < len(kept_target) and isinstance(kept_target[j], int) and \
                            kept_target[j] != -1:
                        run_dims.append(kept_target[j])
                        product_out *= kept_target[j]
                        j += 1
                    if not run_axes or product_in % product_out:
                        raise fail
                    run_dims = [product_in // product_out if d is None else d
                                for d in run_dims]
                    break
                if product_in <= product_out and i < len(inputs) and inputs[i].kind == "feat":
                    run_axes.append(inputs[i])
                    product_in *= inputs[i].size
                    i += 1
                elif product_out < product_in and j < len(kept_target) and \
                        isinstance(kept_target[j], int) and kept_target[j] != -1:
                    run_dims.append(kept_target[j])
                    product_out *= kept_target[j]
                    j += 1
                else:
                    raise fail
            groups.append((run_axes, run_dims))
        if i != len(inputs) or j != len(kept_target):
            raise fail
        new_axes = []
        for axes, dims in groups:
            if axes[0].kind in ("seq", "merged"):
                new_axes.append(axes[0])
                continue
            for a, b in zip(axes, axes[1:]):
                if a.stride != b.size * b.stride:
                    raise ConversionError(
                        f"{where}: reshapes {_show_axes(seq.axes)} to {_show(target)}, which "
                        f"reorders the features (e.g. merges the direction axis after the "
                        f"hidden axis); lstmlite's features are forward then reverse")
            stride = axes[-1].stride
            split = []
            for d in reversed(dims):
                split.append(Axis("feat", size=d, stride=stride))
                stride *= d
            new_axes.extend(reversed(split))
        # unit axes of the target
        it = iter(new_axes)
        final = []
        for d in target:
            if isinstance(d, int) and d == 1:
                final.append(Axis("unit"))
            else:
                final.append(next(it))
        return replace(base, axes=tuple(final))

    def _reshape_merge(self, node, seq: Seq, target: List[Any]) -> Optional[Seq]:
        """(time, batch, features...) to (-1, features...): the sequence axes become one
        "merged" axis (Keras' Dense over a sequence, as tf2onnx writes it). None when the
        target is not that."""
        lead = 0
        while lead < len(seq.axes) and seq.axes[lead].kind in ("seq", "unit"):
            lead += 1
        sequence = [a for a in seq.axes[:lead] if a.kind == "seq"]
        label = MERGE.join(a.label for a in sequence)
        if len(sequence) < 2 or not target or not (
                isinstance(target[0], int) and target[0] == -1 or
                isinstance(target[0], Sym) and target[0].label == label):
            return None
        if any(a.kind in ("seq", "merged") for a in seq.axes[lead:]) or \
                any(isinstance(d, int) and d == -1 for d in target[1:]):
            return None
        # a reversed time axis stays reversed through the merge (_reshape_split restores it)
        merged = Axis("merged", label=label, reversed=any(a.reversed for a in sequence))
        features = replace(seq, axes=(merged,) + seq.axes[lead:])
        return self._reshape_seq(node, features, [Sym(merged.label)] + list(target[1:]))

    def _reshape_split(self, node, seq: Seq, target: List[Any]) -> Seq:
        """A merged (time, batch) axis back into its axes: the target starts with each of
        them in order (as Shape of the sequence before the merge gives them)."""
        merged = seq.axes[0]
        labels = merged.label.split(MERGE)
        # only the time axis is ever reversed (ReverseSequence binds it before any merge)
        restored = tuple(Axis("seq", label=label,
                              reversed=merged.reversed and self.binding.get(label) == "T")
                         for label in labels)
        for label, d in zip(labels, target):
            static = self.static_sizes.get(label)
            if not (isinstance(d, Sym) and d.label == label or
                    isinstance(d, int) and static is not None and d == static):
                raise ConversionError(
                    f"{self._where(node)}: reshapes {_show_axes(seq.axes)}, whose first axis "
                    f"is the time and batch axes flattened together, to {_show(target)}; "
                    f"lstmlite follows that only when the reshape restores them as they were")
        return self._reshape_seq(node, replace(seq, axes=restored + seq.axes[1:]), target)

    def _reshape_keeping_unit_time(self, node, seq: Seq, target: List[Any]) -> Optional[Seq]:
        """A graph traced on a one-frame (and one-sequence) example bakes T = 1 (and B = 1)
        into its reshapes: torch.onnx.export(dynamo=True) drops the direction axis between
        stacked layers with a constant [1, 1, H]. When the target has a 1 in order for each
        time or batch axis of static size 1 (or the axis itself, as a 0 copies it: the
        [0, 0, -1] that merges a bidirectional layer's directions), those axes stay what they
        are (the sequence, not a selected last step) and the rest of the shape is reshaped as
        usual. None when the target does not line up that way."""
        units = [p for p, a in enumerate(seq.axes) if a.kind == "seq" and self._removable(a)]
        if not units:
            return None
        placed, position = [], 0
        for p in units:
            # the first target entry not before the axes ahead of this one that keeps this
            # axis: a 1, or the axis itself (a 0 in the target, copied from the input)
            label = seq.axes[p].label
            candidates = [q for q, d in enumerate(target) if q >= position and
                          (isinstance(d, int) and d == 1 or
                           isinstance(d, Sym) and d.label == label)]
            if not candidates:
                return None
            placed.append(candidates[0])
            position = candidates[0] + 1
        inner_seq = replace(seq, axes=tuple(a for p, a in enumerate(seq.axes) if p not in units))
        inner_target = [d for q, d in enumerate(target) if q not in placed]
        try:
            inner = self._reshape_seq(node, inner_seq, inner_target)
        except ConversionError:
            return None
        axes = list(inner.axes)
        for p, q in sorted(zip(units, placed), key=lambda pair: pair[1]):
            axes.insert(q, seq.axes[p])
        return replace(inner, axes=tuple(axes))

    # ---- selection --------------------------------------------------------------------------

    def _on_half(self, node, half: Half, handler):
        """A layout or selection op on one direction of a bidirectional layer: applied to its
        sequence, the result still that direction (the halves join later, _join_halves).
        While it runs, _select knows which direction it selects from."""
        name = node.input[0]
        self.values[name], self._half_direction = half.seq, half.direction
        try:
            outputs = handler(node)
        finally:
            self.values[name], self._half_direction = half, None
        return [replace(half, seq=out) if isinstance(out, Seq) else out for out in outputs]

    def _op_Gather(self, node):
        attrs = self._attributes(node, ("axis",))
        value = self._get(node, 0)
        if isinstance(value, Half):
            return self._on_half(node, value, self._op_Gather)
        indices = self._const(node, 1, "indices")
        axis = attrs.get("axis", 0)
        rank = self._rank(node, value)
        axis = axis + rank if axis < 0 else axis
        if isinstance(value, ShapeVec):
            picked = [value.dims[int(k)] for k in np.asarray(indices).ravel()]
            return [ShapeVec(tuple(picked), scalar=np.ndim(indices) == 0)]
        if isinstance(value, State):
            index = indices.tolist()
            shape = list(value.shape)
            if np.ndim(indices) == 0:
                shape.pop(axis)
            else:
                shape[axis:axis + 1] = list(np.shape(indices))
            return [State(["gather", axis, index, value.recipe], tuple(shape), value.dtype)]
        if isinstance(value, Seq):
            return [self._select(node, value, axis, indices, keep=np.ndim(indices) > 0)]
        raise self._kind_error(node, value)

    def _select(self, node, seq: Seq, axis: int, indices, keep: bool) -> Seq:
        """Gather/Slice on the sequence: the last time step, or index 0 of an axis of size 1."""
        target = seq.axes[axis]
        flat = np.asarray(indices).ravel()
        where = self._where(node)
        if flat.size != 1:
            raise ConversionError(f"{where}: selects {flat.size} positions along axis {axis}; "
                                  f"lstmlite can select only the last time step")
        index = int(flat[0])
        if self._removable(target):
            if index not in (0, -1):
                raise ConversionError(f"{where}: index {index} on an axis of size 1")
            return seq if keep else self._remove_axes(node, seq, [axis])
        if target.kind == "feat":
            raise ConversionError(f"{where}: selects feature {index} along axis {axis}; "
                                  f"lstmlite cannot select features")
        role = self.binding.get(target.label)
        static = self.static_sizes.get(target.label)
        is_last = index == -1 or (static is not None and index == static - 1)
        if role == "B":
            raise ConversionError(f"{where}: selects sequence {index} of the batch; lstmlite "
                                  f"keeps the batch whole")
        # the reverse direction of a bidirectional layer ends at the first step (in the
        # graph's order): its final h, joined later with the forward direction's last step
        final_of_reverse = self._half_direction == 1 and (
            index == 0 or (static is not None and index == -static))
        if final_of_reverse:
            is_last = False
        elif not is_last:
            raise ConversionError(
                f"{where}: selects time step {index}; lstmlite can select only the last "
                f"step (-1). A graph that picks step after step looks like an exporter that "
                f"unrolled the recurrence into per-step ops: export the recurrent module "
                f"whole instead")
        if seq.depth == 0 or not any("layer" in d for d in self.chain):
            raise ConversionError(f"{where}: selects the last time step of the input before "
                                  f"any recurrent node")
        self._bind(node, target, "T")
        axes = list(seq.axes)
        if keep:
            axes[axis] = Axis("unit")
        else:
            axes.pop(axis)
        # the last step of a reversed time axis (Keras' go_backwards without
        # return_sequences) is the model's first: a reverse layer's output there; so is the
        # first step of one that is not reversed
        return replace(seq, axes=tuple(axes), last_step=True,
                       first_step=target.reversed != final_of_reverse)

    def _slice_params(self, node, rank):
        attrs = self._attributes(node, ("starts", "ends", "axes"))
        if "starts" in attrs:  # opset < 10
            starts, ends = list(attrs["starts"]), list(attrs["ends"])
            axes = list(attrs.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts = [int(v) for v in np.asarray(self._const(node, 1, "starts")).ravel()]
            ends = [int(v) for v in np.asarray(self._const(node, 2, "ends")).ravel()]
            axes_value = self._const(node, 3, "axes", optional=True)
            axes = list(range(len(starts))) if axes_value is None else \
                [int(v) for v in np.asarray(axes_value).ravel()]
            steps_value = self._const(node, 4, "steps", optional=True)
            steps = [1] * len(starts) if steps_value is None else \
                [int(v) for v in np.asarray(steps_value).ravel()]
        axes = [a + rank if a < 0 else a for a in axes]
        return list(zip(axes, starts, ends, steps))

    def _op_Slice(self, node):
        value = self._get(node, 0)
        if isinstance(value, Half):
            return self._on_half(node, value, self._op_Slice)
        rank = self._rank(node, value)
        params = self._slice_params(node, max(rank, 1))
        if isinstance(value, ShapeVec):
            (axis, start, end, step), = params
            return [ShapeVec(tuple(value.dims[slice(start, min(end, _BIG), step)]))]
        if isinstance(value, State):
            recipe, shape = value.recipe, list(value.shape)
            for axis, start, end, step in params:
                stop = None if end >= _BIG else end
                recipe = ["slice", axis, start, stop, step, recipe]
                if isinstance(shape[axis], int):
                    shape[axis] = len(range(*slice(start, stop, step).indices(shape[axis])))
            return [State(recipe, tuple(shape), value.dtype)]
        if isinstance(value, Seq):
            half = self._direction_half(value, params)
            if half is not None:
                return [half]
            for axis, start, end, step in params:
                target = value.axes[axis]
                whole = start == 0 and end >= _BIG and step == 1
                if whole:
                    continue
                size = target.size if target.kind == "feat" else \
                    (1 if target.kind == "unit" else self.static_sizes.get(target.label))
                if size is not None and step == 1 and start in (0, -size) and end >= size:
                    continue  # the whole axis
                if step == 1 and end >= _BIG and start == -1 or \
                        (size is not None and step == 1 and start in (size - 1, -1) and end >= size):
                    value = self._select(node, value, axis, np.array([-1]), keep=True)
                    continue
                if self._half_direction == 1 and step == 1 and start == 0 and end == 1:
                    # the first step of the reverse direction: its final h (_select)
                    value = self._select(node, value, axis, np.array([0]), keep=True)
                    continue
                raise ConversionError(
                    f"{self._where(node)}: slices [{start}:{end}:{step}] along axis {axis} of "
                    f"{_show_axes(value.axes)}; lstmlite supports taking the last time step "
                    f"only")
            return [value]
        raise self._kind_error(node, value)

    def _direction_half(self, seq: Seq, params) -> Optional[Half]:
        """A Slice that keeps one index of a bidirectional layer's direction axis (size 2,
        stride = hidden), or None."""
        if len(params) != 1 or seq.depth == 0 or seq.depth != len(self.chain):
            return None
        (axis, start, end, step), = params
        target = seq.axes[axis]
        layer = self.chain[-1].get("layer")
        if layer is None or getattr(layer, "num_directions", 1) != 2 or step != 1 or \
                target.kind != "feat":
            return None
        H = layer.h_size
        if target.size == 2 and target.stride == H:
            # the direction axis of (.., 2, .., hidden), as tf2onnx writes Keras'
            start = start + 2 if start < 0 else start
            if start not in (0, 1) or min(end, 2) != start + 1:
                return None
            axes = seq.axes[:axis] + (Axis("unit"),) + seq.axes[axis + 1:]
            return Half(replace(seq, axes=axes), start, H)
        if target.size == 2 * H and target.stride == 1 and axis == len(seq.axes) - 1 and \
                _is_full_features(target, seq):
            # the first or second half of the features (.., 2 hidden), as PyTorch code
            # writes y[..., :H] and y[..., H:] (torchaudio's DeepSpeech sums them)
            direction = feature_half(start, end, H)
            if direction is None:
                return None
            axes = seq.axes[:axis] + (Axis("feat", size=H, stride=1),)
            return Half(replace(seq, axes=axes), direction, H)
        return None

    def _join_halves(self, node, first: Half, second: Half, how: str) -> Seq:
        """The forward and reverse halves back together: concatenated (lstmlite's own
        bidirectional output) or summed (a Dense [I | I] after the layer)."""
        where = self._where(node)
        if (first.direction, second.direction) != (0, 1) or first.seq.axes != second.seq.axes \
                or first.seq.depth != second.seq.depth:
            raise ConversionError(f"{where}: {how} the two directions of a bidirectional layer "
                                  f"other than forward then reverse, on the same axes")
        seq = first.seq
        if first.seq != second.seq:
            final = first.seq.last_step and not first.seq.first_step and \
                second.seq.last_step and second.seq.first_step
            layer = self.chain[-1].get("layer") if seq.depth == len(self.chain) else None
            if not final or layer is None or how != "concatenates":
                raise ConversionError(
                    f"{where}: {how} different steps of the two directions of a bidirectional "
                    f"layer; lstmlite joins them at the same step, or as the layer's final "
                    f"states concatenated (the forward direction's last step, the reverse "
                    f"direction's first)")
            # Keras' Bidirectional(return_sequences=False): the layer's output="final"
            self.chain[-1]["layer"] = layer.with_output("final")
            self.notes.append(f"node {node.name or node.output[0]!r} concatenates the forward "
                              f"direction's last step and the reverse direction's first: the "
                              f"bidirectional layer's final states (output='final')")
            seq = replace(seq, first_step=False)
        if not _is_full_features(seq.axes[-1], seq) or seq.axes[-1].size != first.hidden:
            raise ConversionError(f"{where}: {how} the directions of a bidirectional layer "
                                  f"before its features are the last axis")
        full = replace(seq, axes=seq.axes[:-1] + (Axis("feat", size=2 * first.hidden),))
        if how == "concatenates":
            return full
        hidden = first.hidden
        depth = self._append(node, full, summed_directions(hidden))
        self.notes.append(f"node {node.name or node.output[0]!r} sums the two directions of a "
                          f"bidirectional layer: a Dense layer [I | I] after it")
        return replace(seq, depth=depth, axes=seq.axes[:-1] + (Axis("feat", size=hidden),))

    def _op_Concat(self, node):
        attrs = self._attributes(node, ("axis",))
        values = [self._get(node, k) for k in range(len(node.input))]
        if len(values) == 1:
            # a Concat of one input is the identity (darts' export wrapper writes one)
            return [values[0]]
        if len(values) == 2 and all(isinstance(v, Half) for v in values):
            axis = attrs["axis"]
            if axis not in (-1, len(values[0].seq.axes) - 1):
                raise ConversionError(f"{self._where(node)}: concatenates the two directions "
                                      f"of a bidirectional layer along axis {axis}, not the "
                                      f"features")
            return [self._join_halves(node, values[0], values[1], "concatenates")]
        if all(isinstance(v, (ShapeVec, Const)) for v in values):
            dims = []
            for v in values:
                dims.extend(v.dims if isinstance(v, ShapeVec) else
                            [int(x) for x in np.asarray(v.value).ravel()])
            return [ShapeVec(tuple(dims))]
        if all(isinstance(v, State) for v in values):
            axis = attrs["axis"]
            rank = len(values[0].shape)
            axis = axis + rank if axis < 0 else axis
            shape = list(values[0].shape)
            shape[axis] = sum(v.shape[axis] for v in values) if \
                all(isinstance(v.shape[axis], int) for v in values) else Sym("concat")
            return [State(["concat", axis, [v.recipe for v in values]], tuple(shape),
                          values[0].dtype)]
        kinds = ", ".join(f"{node.input[k]!r} ({type(v).__name__.lower()})"
                          for k, v in enumerate(values))
        raise ConversionError(f"{self._where(node)}: concatenates {kinds}; lstmlite can "
                              f"concatenate only state tensors and shapes, and its model is one "
                              f"chain of layers, so a sequence cannot be joined with other "
                              f"values")

    # ---- shapes -------------------------------------------------------------------------------

    def _op_ReduceProd(self, node):
        """The product of shape entries (Keras' Dense over a sequence computes batch x time
        so): the sequence axes multiply into one symbol, as a merged axis is labelled."""
        attrs = self._attributes(node, ("axes", "keepdims", "noop_with_empty_axes"))
        value = self._get(node, 0)
        if not isinstance(value, ShapeVec) or value.scalar:
            raise self._kind_error(node, value)
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(a) for a in np.asarray(self._const(node, 1, "axes")).ravel()]
        if not axes and attrs.get("noop_with_empty_axes", 0):
            return [value]  # no axes and noop_with_empty_axes: the identity
        if axes not in (None, [], [0], [-1]):
            raise ConversionError(f"{self._where(node)}: reduces a shape along axes {axes}")
        number, symbols = 1, []
        for d in value.dims:
            if isinstance(d, Sym):
                symbols.append(d.label)
            else:
                number *= int(d)
        if symbols and number != 1:
            raise ConversionError(f"{self._where(node)}: multiplies the time or batch size by "
                                  f"{number}; lstmlite keeps those axes whole")
        product = Sym(MERGE.join(symbols)) if symbols else number
        return [ShapeVec((product,), scalar=not attrs.get("keepdims", 1))]

    def _op_Shape(self, node):
        attrs = self._attributes(node, ("start", "end"))
        value = self._get(node, 0)
        if isinstance(value, Half):  # one direction has the shape of its sequence value
            value = value.seq
        if isinstance(value, Seq):
            dims = tuple(a.size if a.kind == "feat" else self._axis_dim(a) for a in value.axes)
        elif isinstance(value, State):
            dims = value.shape
        else:
            raise self._kind_error(node, value)
        start, end = attrs.get("start", 0), attrs.get("end", len(dims))
        return [ShapeVec(tuple(dims[slice(start, end)]))]

    def _shape_arith(self, node, a, b):
        op = node.op_type
        da = a.dims if isinstance(a, ShapeVec) else [int(x) for x in np.asarray(a.value).ravel()]
        db = b.dims if isinstance(b, ShapeVec) else [int(x) for x in np.asarray(b.value).ravel()]
        if len(da) == 1 and len(db) > 1:
            da = da * len(db)
        if len(db) == 1 and len(da) > 1:
            db = db * len(da)
        out = []
        for x, y in zip(da, db):
            if isinstance(x, int) and isinstance(y, int):
                out.append({"Add": x + y, "Sub": x - y, "Mul": x * y,
                            "Div": x // y if y else 0}[op])
            elif op == "Mul" and (x == 1 or y == 1):
                out.append(y if x == 1 else x)
            elif op in ("Div",) and y == 1:
                out.append(x)
            else:
                raise ConversionError(f"{self._where(node)}: shape arithmetic {op} on the "
                                      f"dynamic time or batch size is not supported")
        scalar = all(isinstance(v, ShapeVec) and v.scalar or isinstance(v, Const) and
                     np.ndim(v.value) == 0 for v in (a, b))
        return ShapeVec(tuple(out), scalar=scalar)

    def _op_ConstantOfShape(self, node):
        attrs = self._attributes(node, ("value",))
        shape = self._get(node, 0)
        if not isinstance(shape, ShapeVec):
            raise self._kind_error(node, shape)
        fill = attrs.get("value")
        fill = 0.0 if fill is None else self.numpy_helper.to_array(fill).ravel()[0]
        if fill != 0:
            raise ConversionError(f"{self._where(node)}: fills a tensor whose shape depends "
                                  f"on the input with {fill}; only zeros (an initial state) "
                                  f"are supported")
        return [State(["zeros"], shape.dims)]

    def _op_Expand(self, node):
        self._attributes(node, ())
        value, shape = self._get(node, 0), self._get(node, 1)
        if isinstance(value, Const) and isinstance(shape, ShapeVec):
            if np.any(value.value != 0):
                raise ConversionError(f"{self._where(node)}: expands a non-zero constant to "
                                      f"a shape that depends on the input")
            return [State(["zeros"], shape.dims)]
        if isinstance(value, ShapeVec) and isinstance(shape, ShapeVec) and \
                len(value.dims) == 1 and len(shape.dims) == 1:
            # one size repeated for every sequence of the batch: lengths (ReverseSequence)
            return [Lengths(value.dims[0], shape.dims[0])]
        raise self._kind_error(node, value)

    def _op_ReverseSequence(self, node):
        """Reverses every sequence over its whole length (the only lengths an exporter gives
        here, tf2onnx for Keras' go_backwards): the time axis is marked reversed, so that the
        recurrent layer reading it runs the other way and the outputs are put back in the
        graph's order (signature: first_step, reversed)."""
        attrs = self._attributes(node, ("batch_axis", "time_axis"))
        where = self._where(node)
        seq, lengths = self._get(node, 0), self._get(node, 1)
        if isinstance(seq, Half):
            return self._on_half(node, seq, self._op_ReverseSequence)
        if not isinstance(seq, Seq):
            raise self._kind_error(node, seq)
        time_index, batch_index = attrs.get("time_axis", 0), attrs.get("batch_axis", 1)
        time, batch = seq.axes[time_index], seq.axes[batch_index]
        if time.kind != "seq" or batch.kind != "seq" or seq.last_step:
            raise ConversionError(f"{where}: reverses axis {time_index} of "
                                  f"{_show_axes(seq.axes)}, which is not a time axis of the "
                                  f"sequence")
        whole = isinstance(lengths, Lengths) and lengths.time == self._axis_dim(time) and \
            lengths.batch == self._axis_dim(batch)
        if not whole:
            raise ConversionError(
                f"{where}: reverses sequences by lengths that are not the whole time axis for "
                f"every sequence ({type(lengths).__name__}); lstmlite reverses whole sequences "
                f"only (per-sequence lengths are run(sequence_lengths=...) of a reverse layer)")
        self._bind(node, time, "T")
        self._bind(node, batch, "B")
        axes = list(seq.axes)
        axes[time_index] = replace(time, reversed=not time.reversed)
        return [replace(seq, axes=tuple(axes))]

    # ---- the result ---------------------------------------------------------------------------

    def _finish(self):
        layers = build_layers(self.chain, self.source)
        outputs = {}
        final_depth = len(self.chain)
        for value_info in self.graph.output:
            name = value_info.name
            value = self.values.get(name)
            if isinstance(value, tuple) and value[0] == "input":
                raise ConversionError(f"{self.source}: graph output {name!r} is a graph input")
            if isinstance(value, State) and "state" not in value.sources:
                raise ConversionError(f"{self.source}: graph output {name!r} does not depend "
                                      f"on the network")
            if isinstance(value, Seq):
                if value.depth != final_depth:
                    raise ConversionError(
                        f"{self.source}: graph output {name!r} is the value after layer "
                        f"{value.depth} of {final_depth}; an lstmlite model has one sequence "
                        f"output, after its last layer")
                axes = []
                for axis in value.axes:
                    label = axis.label
                    if axis.kind == "merged":
                        # flattening with an axis of static size 1 leaves the other in order:
                        # (1, T) -> (T,) is the time axis itself
                        sized = [part for part in label.split(MERGE)
                                 if self.static_sizes.get(part) != 1]
                        if len(sized) != 1:
                            raise ConversionError(
                                f"{self.source}: graph output {name!r} has its time and batch "
                                f"axes flattened into one ({label}); lstmlite's outputs keep "
                                f"them apart (reshape back before the output) unless one of "
                                f"them has a static size of 1")
                        label = sized[0]
                    if axis.kind in ("seq", "merged"):
                        role = self.binding.get(label)
                        if role is None:
                            raise ConversionError(f"{self.source}: graph output {name!r}: "
                                                  f"axis {label} is never used as time "
                                                  f"or batch")
                        axes.append(role)
                    elif axis.is_unit:
                        axes.append("1")
                    else:
                        axes.append(["F", axis.size, axis.stride])
                total = int(np.prod([a[1] for a in axes if isinstance(a, list)] or [1]))
                if total != layers[-1].output_size:
                    raise ConversionError(f"{self.source}: graph output {name!r} holds {total}"
                                          f" of the {layers[-1].output_size} features")
                outputs[name] = {"kind": "sequence", "axes": axes,
                                 "last_step": bool(value.last_step)}
                if any(getattr(layer, "output", "") == "final" for layer in layers):
                    outputs[name]["final"] = True
                if value.first_step:
                    outputs[name]["first_step"] = True
                if any(a.kind in ("seq", "merged") and a.reversed for a in value.axes):
                    outputs[name]["reversed"] = True
            elif isinstance(value, State):
                outputs[name] = {"kind": "state", "recipe": value.recipe}
            else:
                raise ConversionError(f"{self.source}: graph output {name!r} is "
                                      f"{'a constant' if isinstance(value, Const) else 'a shape'}"
                                      f"; lstmlite cannot produce it")
        if not outputs:
            raise ConversionError(f"{self.source}: the graph has no outputs")
        seq_axes = []
        for label in self.sequence_input_axes:
            if label is None:
                seq_axes.append("1")
                continue
            role = self.binding.get(label)
            if role is None:
                raise ConversionError(f"{self.source}: axis {label} of the sequence input is "
                                      f"neither time nor batch for any recurrent node")
            seq_axes.append(role)
        seq_axes.append("F")
        signature = {
            "sequence_input": {"name": self.sequence_input, "axes": seq_axes},
            "initial_state": self.initial_state if any(
                v for e in self.initial_state for v in e.values()) else None,
            "sequence_lengths": self.lengths_recipe,
            "outputs": outputs,
        }
        return layers, signature, self.notes


_ROLE = {"T": "time", "B": "batch"}


def describe_conditions(graph, nodes) -> str:
    """What the conditions of these If nodes depend on, grouped: a graph input's value (fix
    it with --input) or only a dynamic size (the shape of an input)."""
    from .onnx_control import dependencies
    groups: Dict[str, List[str]] = {}
    for node in nodes:
        behind = dependencies(graph, node.input[0]) if node.input else {}
        values = [name for name, how in behind.items() if how == "value"]
        sizes = [name for name, how in behind.items() if how == "shape"]
        if values:
            reason = (f"depend{{s}} on graph input{'s' if len(values) > 1 else ''} "
                      f"{', '.join(map(repr, values))}: lstmlite keeps the branch taken when "
                      f"the condition is fixed at conversion (lstmlite convert --input "
                      f"{' '.join(v + '=VALUE' for v in values)}; API: input_values=)")
        elif sizes:
            reason = (f"depend{{s}} on the dynamic size of graph input"
                      f"{'s' if len(sizes) > 1 else ''} {', '.join(map(repr, sizes))}, which "
                      f"lstmlite cannot fix at conversion")
        else:
            reason = "could not be computed at conversion"
        groups.setdefault(reason, []).append(repr(node.name))
    return "; ".join(
        f"the condition{'s' if len(names) > 1 else ''} of If {', '.join(names)} "
        + reason.replace("{s}", "" if len(names) > 1 else "s")
        for reason, names in groups.items())


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
