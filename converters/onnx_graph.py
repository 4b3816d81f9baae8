"""ONNX graph -> lstmlite Model, by abstract interpretation of the graph.

The graph is walked once in topological order. This file holds the walk itself (values,
folding, dispatch, refusals, the result); the op handlers live by family in
onnx_ops_recurrent.py, onnx_ops_arithmetic.py, onnx_ops_convolution.py and
onnx_ops_layout.py, the abstract values in
onnx_values.py, and control flow fixed at conversion in onnx_control.py. Every value gets an abstract kind:

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
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lstmlite.errors import ConversionError

from .common import Half, build_layers, first_line
from .onnx_ops_arithmetic import ArithmeticOps
from .onnx_ops_convolution import ConvolutionOps, Padded, Part, Squared, SumOfSquares
from .onnx_ops_layout import LayoutOps
from .onnx_ops_recurrent import RecurrentOps
from .onnx_values import (_ACTIVATION_OPS, _INDEXED, _RECURRENT, FOLD_FACTOR, FOLD_SLACK,
                          MAX_STATIC_INPUT_ELEMENTS, MERGE, RANDOM_OPS, SUPPORTED_OPS, Axis, Const,
                          Lengths, Seq, ShapeVec, State, Sym, _folded_elements, _show,
                          evaluate_node)


class OnnxGraphConverter(RecurrentOps, ArithmeticOps, ConvolutionOps, LayoutOps):
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
                   f"ops (its state an input and an output of each call); lstmlite "
                   f"recognises an LSTM step written as two products (x and h), a Split into "
                   f"four gates, Sigmoid and Tanh, Mul and Add (converters/onnx_cells.py), and "
                   f"this one is not that: " if one_cell else "")
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
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx"):
                raise ConversionError(
                    f"{self._where(node)}: domain {node.domain!r} is not ONNX's default "
                    f"domain; lstmlite converts standard ONNX ops only")
            if node.op_type in RANDOM_OPS:
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
            try:
                results = evaluate_node(self.model, node, feeds)
            except Exception as exc:
                raise ConversionError(f"{self._where(node)}: folding this constant node with "
                                      f"onnx's reference evaluator failed: "
                                      f"{first_line(exc)}") from None
            for name, value in zip([n for n in node.output if n], results):
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
                "follows the two directions concatenated or summed)",
                Padded: "a padded frame (lstmlite takes a Pad only as the padding of the Conv "
                "after it)",
                Part: "a slice of channels (lstmlite takes one only into a magnitude "
                "sqrt(a^2 + b^2))", Squared: "a squared slice of channels (only a magnitude "
                "takes it)", SumOfSquares: "a sum of squares (only a Sqrt, the magnitude, "
                "takes it)"}.get(
            type(value), type(value).__name__)
        return ConversionError(f"{self._where(node)}: lstmlite cannot apply {node.op_type} "
                               f"to {kind} here")

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
                kind = "a constant" if isinstance(value, Const) else "a shape" \
                    if isinstance(value, ShapeVec) else "part of a frame encoder's computation"
                raise ConversionError(f"{self.source}: graph output {name!r} is {kind}; "
                                      f"lstmlite cannot produce it")
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
