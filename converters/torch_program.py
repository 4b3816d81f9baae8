"""The aten walker: an ExportedProgram's graph (torch.export of a module, or a .pt2 archive)
walked once, in order, into layer drafts and a signature.

torch.export gives aten.lstm / aten.gru / aten.rnn_tanh / aten.rnn_relu nodes for the
recurrent modules, aten.*_cell nodes for cells stepped in a Python loop (unrolled over the
example's length, and recognised as one layer when every step feeds the next), aten.linear,
the activations and the elementwise arithmetic of input normalization. The walk records, like
the ONNX importer, how the program's inputs and outputs map onto run() (signature.py).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lstmlite.errors import ConversionError
from lstmlite.layers import GRU, LSTM, RNN

from .common import (Half, build_layers, clip_drafts, draft_output_size, feature_half,
                     summed_directions)
from .signature import recipe_leaves


# ---- abstract values of the traced program ---------------------------------------------------

@dataclass
class Param:
    value: Any                 # numpy array or Python scalar


@dataclass
class Seq:
    depth: int
    axes: Tuple[str, ...]      # "x0", "x1" (labels of the input's axes), "1", "F"
    last_step: bool = False
    #: x[:, t] with a constant t: (the Seq it came from, the axis label, t). Only a cell
    #: stepped in a loop may read it, unless t is the last step.
    step_of: Optional[tuple] = None


@dataclass
class State:
    recipe: list


@dataclass
class Zeros:
    pass


@dataclass
class CellOut:
    chain: "CellChain"
    step: int
    part: str = "h"             # "h", "c" or "tuple" (an LSTM cell's (h, c))


@dataclass
class CellChain:
    op: str
    weights: Tuple[int, ...]    # ids of the weight nodes
    layer_depth: int
    source: Any                 # the Seq the cell reads a step of
    time_label: str
    steps: int = 0


_RECURRENT_OPS = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}
_CELL_OPS = {"lstm_cell": "LSTM", "gru_cell": "GRU", "rnn_tanh_cell": "RNN",
             "rnn_relu_cell": "RNN"}
_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax",
                "_softmax": "Softmax", "log_softmax": "LogSoftmax",
                "_log_softmax": "LogSoftmax", "hardsigmoid": None, "elu": "Elu",
                "leaky_relu": "LeakyRelu", "softplus": "Softplus", "softsign": "Softsign"}
_IDENTITY_OPS = {"clone", "contiguous", "detach", "alias", "dropout", "feature_dropout",
                 "alpha_dropout", "feature_alpha_dropout", "lift_fresh_copy", "_to_copy", "to"}
SUPPORTED = ("nn.LSTM, nn.GRU, nn.RNN (tanh/relu), nn.LSTMCell/GRUCell/RNNCell stepped over "
             "the sequence, nn.Linear, ReLU/Tanh/Sigmoid/Softmax/LogSoftmax, Dropout, "
             "Identity, (x - buffer) / buffer normalization, out[:, -1]")


class TorchProgramConverter:
    """Walks an ExportedProgram's graph once, in order."""

    def __init__(self, program, where: str):
        self.program, self.where = program, where
        self.graph = program.graph_module.graph
        self.values: Dict[Any, Any] = {}
        self.chain: List[dict] = []
        self.binding: Dict[str, str] = {}
        self.initial_state: List[Dict[str, Any]] = []
        self.sequence_input: Optional[str] = None
        self.sequence_axes: Tuple[str, ...] = ()
        self.user_inputs: List[str] = []
        self.cell_chains: Dict[Tuple[int, ...], CellChain] = {}
        self.notes: List[str] = []

    def fail(self, node, message: str) -> ConversionError:
        return ConversionError(f"{self.where}: {node.name} ({_target_name(node)}): {message}")

    # ---- inputs -------------------------------------------------------------------------------

    def _placeholders(self):
        signature = self.program.graph_signature
        constants = {}
        state = self.program.state_dict
        consts = getattr(self.program, "constants", {}) or {}
        for spec in signature.input_specs:
            name = spec.arg.name if hasattr(spec.arg, "name") else None
            kind = spec.kind.name
            if kind in ("PARAMETER", "BUFFER"):
                tensor = state[spec.target] if spec.target in state else consts[spec.target]
                constants[name] = Param(tensor.detach().cpu().numpy())
            elif kind in ("CONSTANT_TENSOR", "CUSTOM_OBJ"):
                tensor = consts.get(spec.target)
                if tensor is None or not hasattr(tensor, "detach"):
                    raise ConversionError(f"{self.where}: input {spec.target!r} is a "
                                          f"{kind.lower()}, not supported")
                constants[name] = Param(tensor.detach().cpu().numpy())
            elif kind == "USER_INPUT":
                self.user_inputs.append(name)
        return constants

    # ---- walk ---------------------------------------------------------------------------------

    def convert(self):
        constants = self._placeholders()
        recurrent = any(_op_name(n) in _RECURRENT_OPS or _op_name(n) in _CELL_OPS
                        for n in self.graph.nodes)
        if not recurrent:
            raise ConversionError(f"{self.where}: the traced program has no recurrent layer "
                                  f"(supported: {SUPPORTED})")
        for node in self.graph.nodes:
            if node.op == "placeholder":
                if node.name in constants:
                    self.values[node] = constants[node.name]
                elif self.sequence_input is None:
                    self.sequence_input = node.name
                    shape = tuple(int(d) for d in node.meta["val"].shape)
                    # axes of size 1 beyond time and batch are unit axes (torchaudio's
                    # DeepSpeech takes (batch, 1, time, features)), the innermost first
                    units = set()
                    for i in reversed(range(len(shape) - 1)):
                        if len(shape) - 1 - len(units) <= 2:
                            break
                        if shape[i] == 1:
                            units.add(i)
                    if len(shape) - len(units) not in (2, 3):
                        raise ConversionError(f"{self.where}: input {node.name!r} has shape "
                                              f"{shape}; expected (time, features) or "
                                              f"(batch, time, features), and any other axis "
                                              f"of size 1")
                    axes = tuple("1" if i in units else f"x{i}"
                                 for i in range(len(shape) - 1)) + ("F",)
                    self.sequence_axes = axes
                    self.sizes = {f"x{i}": shape[i] for i in range(len(shape) - 1)
                                  if i not in units}
                    self.sizes["F"] = shape[-1]
                    self.values[node] = Seq(0, axes)
                else:
                    self.values[node] = State(["input", node.name])
            elif node.op == "call_function":
                self.values[node] = self._call(node)
            elif node.op == "output":
                return self._finish(node)
            else:
                raise self.fail(node, f"graph node kind {node.op!r} is not supported")
        raise ConversionError(f"{self.where}: the program has no output")

    def _arg(self, value):
        import torch.fx
        if isinstance(value, torch.fx.Node):
            return self.values[value]
        if isinstance(value, (list, tuple)):
            return [self._arg(v) for v in value]
        return Param(value)

    def _call(self, node):
        name = _op_name(node)
        args = [self._arg(a) for a in node.args]
        if node.target is operator.getitem:
            return self._getitem(node, args)
        if name in _RECURRENT_OPS:
            return self._recurrent(node, name, args)
        if name in _CELL_OPS:
            return self._cell(node, name, args)
        if all(isinstance(a, Param) or (isinstance(a, list) and
                                        all(isinstance(x, Param) for x in a)) for a in args) \
                and name not in ("zeros", "zeros_like", "new_zeros"):
            return self._fold(node)
        if name in ("zeros", "zeros_like", "new_zeros"):
            return Zeros()
        if name in _IDENTITY_OPS:
            if name in ("dropout", "feature_dropout", "alpha_dropout",
                        "feature_alpha_dropout") and len(node.args) > 2 and node.args[2]:
                raise self.fail(node, "dropout in training mode; call module.eval() first")
            if name in ("_to_copy", "to"):
                dtype = node.kwargs.get("dtype")
                if dtype is not None and not dtype.is_floating_point:
                    raise self.fail(node, f"casts to {dtype}")
            return args[0]
        if name == "linear":
            return self._linear(node, args)
        if name in _ACTIVATIONS:
            return self._activation(node, name, args)
        if name in ("hardtanh", "relu6", "clamp", "clip"):
            return self._clamp(node, name, args)
        if name in ("sub", "add", "mul", "div", "rsub"):
            return self._arith(node, name, args)
        if name in ("select", "slice"):
            return self._select(node, name, args)
        if name == "stack":
            return self._stack(node, args)
        if name in ("squeeze", "unsqueeze", "view", "reshape", "flatten", "transpose",
                    "permute", "t"):
            return self._layout(node, name, args)
        raise self.fail(node, f"operation {_target_name(node)} is not supported; lstmlite "
                              f"converts {SUPPORTED}")

    def _fold(self, node):
        """An op on constants only: run it once with torch."""
        import torch
        import torch.fx

        def real(value):
            if isinstance(value, torch.fx.Node):
                v = self.values[value].value
                return torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v
            if isinstance(value, (list, tuple)):
                return type(value)(real(v) for v in value)
            return value
        result = node.target(*real(node.args), **{k: real(v) for k, v in node.kwargs.items()})
        if isinstance(result, torch.Tensor):
            return Param(result.detach().cpu().numpy())
        return Param(result)

    # ---- recurrent modules ------------------------------------------------------------------------

    def _recurrent(self, node, name, args):
        op = _RECURRENT_OPS[name]
        if len(args) != 9:
            raise self.fail(node, "expected aten's (input, hx, params, has_biases, "
                                  "num_layers, dropout, train, bidirectional, batch_first)")
        x, hx, params, has_biases, layers, _dropout, train, bidirectional, batch_first = args
        if train.value:
            raise self.fail(node, "the recurrent layer is in training mode; call "
                                  "module.eval() first")
        x = self._as_seq(node, x)
        if x.last_step:
            raise self.fail(node, "a recurrent layer after the last-step selection")
        hx = hx if isinstance(hx, list) else [hx]
        params = [p.value for p in params]
        layers, D = int(layers.value), 2 if bidirectional.value else 1
        per_direction = len(params) // (layers * D)
        if per_direction * layers * D != len(params):
            raise self.fail(node, f"{len(params)} weight tensors do not split into "
                                  f"{layers} layers x {D} directions")
        if len(x.axes) != 3 or x.axes[2] != "F":
            raise self.fail(node, f"input has axes {x.axes}; expected 3 axes, features last")
        time_axis, batch_axis = (x.axes[1], x.axes[0]) if batch_first.value else \
            (x.axes[0], x.axes[1])
        self._bind(node, time_axis, "T")
        self._bind(node, batch_axis, "B")
        first_index = len(self.initial_state)  # the first layer's number among recurrent ones
        depth = x.depth
        for layer_number in range(layers):
            chunks = []
            for d in range(D):
                start = (layer_number * D + d) * per_direction
                chunks.append(params[start:start + per_direction])
            arrays = _split_params(chunks, bool(has_biases.value), op, self.fail, node)
            stack = (lambda k: None if arrays[0][k] is None else
                     np.stack([a[k] for a in arrays]) if D == 2 else arrays[0][k])
            kwargs = dict(direction="bidirectional" if D == 2 else "forward")
            if op == "LSTM":
                layer = LSTM(stack(0), stack(1), stack(2), stack(3), weight_hr=stack(4),
                             **kwargs)
            elif op == "GRU":
                layer = GRU(stack(0), stack(1), stack(2), stack(3), **kwargs)
            else:
                layer = RNN(stack(0), stack(1), stack(2), stack(3),
                            nonlinearity="relu" if name == "rnn_relu" else "tanh", **kwargs)
            depth = self._append(node, Seq(depth, x.axes), {"layer": layer})
            entry = {}
            for state_name, value in zip(("h", "c"), hx):
                entry[state_name] = self._initial(node, value, layer_number, D)
            self.initial_state.append(entry)
        out = Seq(depth, x.axes)
        indices = range(first_index, first_index + layers)
        results = [out, State(["concat", 0, [["state", k, "h"] for k in indices]])]
        if op == "LSTM":
            results.append(State(["concat", 0, [["state", k, "c"] for k in indices]]))
        return tuple(results)

    def _initial(self, node, value, layer_number: int, D: int):
        if isinstance(value, Zeros):
            return None
        if isinstance(value, Param):
            if np.any(np.asarray(value.value) != 0):
                raise self.fail(node, "a non-zero constant initial state; pass it as an "
                                      "input instead (run(initial_state=...))")
            return None
        if isinstance(value, State) and value.recipe[0] == "input":
            return ["slice", 0, layer_number * D, (layer_number + 1) * D, 1, value.recipe]
        raise self.fail(node, "the initial state must be zeros or a program input")

    def _bind(self, node, label: str, role: str):
        if label == "1":
            return
        bound = self.binding.get(label)
        if bound is None:
            if role in self.binding.values():
                raise self.fail(node, f"uses a second axis as the {role} axis (batch_first "
                                      f"does not match the layer before)")
            self.binding[label] = role
        elif bound != role:
            raise self.fail(node, "batch_first does not match the layer before")

    def _append(self, node, seq: Seq, draft: dict) -> int:
        if seq.depth != len(self.chain):
            raise self.fail(node, "the program branches; lstmlite models are one chain of "
                                  "layers")
        draft["node"] = node.name
        self.chain.append(draft)
        return len(self.chain)

    # ---- cells stepped in a loop --------------------------------------------------------------------

    def _cell(self, node, name, args):
        op = _CELL_OPS[name]
        x, state = args[0], args[1]
        weights = tuple(id(a) for a in node.args[2:])
        step_source = x.step_of if isinstance(x, Seq) else None
        if step_source is None:
            raise self.fail(node, "a cell must read one time step of the sequence (x[:, t]) "
                                  "in a loop over the whole sequence")
        source, time_label, t = step_source
        chain = self.cell_chains.get(weights)
        if chain is None:
            if t != 0:
                raise self.fail(node, f"the first step of this cell reads step {t}, not 0")
            if not self._zero_state(state):
                raise self.fail(node, "the cell's first state must be zeros (or omitted)")
            w = [self.values[a].value if a is not None else None for a in node.args[2:6]]
            w += [None] * (4 - len(w))
            if op == "LSTM":
                layer = LSTM(w[0], w[1], w[2], w[3])
            elif op == "GRU":
                layer = GRU(w[0], w[1], w[2], w[3])
            else:
                layer = RNN(w[0], w[1], w[2], w[3],
                            nonlinearity="relu" if name == "rnn_relu_cell" else "tanh")
            self._bind(node, time_label, "T")
            for label in source.axes:
                if label not in (time_label, "F", "1"):
                    self._bind(node, label, "B")
            depth = self._append(node, source, {"layer": layer})
            chain = CellChain(op, weights, depth, source, time_label)
            self.cell_chains[weights] = chain
            self.initial_state.append({})
        else:
            previous = state[0] if op == "LSTM" and isinstance(state, list) else state
            expected = chain.steps
            if t != expected or not (isinstance(previous, CellOut) and previous.chain is chain
                                     and previous.step == expected - 1):
                raise self.fail(node, f"step {t} of the cell does not continue step "
                                      f"{expected - 1}: lstmlite needs every step to feed the "
                                      f"next, in order")
        chain.steps += 1
        return CellOut(chain, t, "tuple" if op == "LSTM" else "h")

    def _zero_state(self, state) -> bool:
        if state is None or isinstance(state, Zeros):
            return True
        if isinstance(state, Param):
            return state.value is None or not np.any(np.asarray(state.value) != 0)
        if isinstance(state, list):
            return all(self._zero_state(s) for s in state)
        return False

    def _cell_as_seq(self, node, value: CellOut) -> Seq:
        chain = value.chain
        if value.part != "h":
            raise self.fail(node, "uses a cell's c state; only h is the layer's output")
        if value.step != self.sizes[chain.time_label] - 1:
            raise self.fail(node, f"reads step {value.step} of the cell's output; only the "
                                  f"last step or all steps stacked are supported")
        batch = [a for a in chain.source.axes if a not in (chain.time_label, "F")]
        return Seq(chain.layer_depth, tuple(batch) + ("F",), last_step=True)

    def _stack(self, node, args):
        items, dim = args[0], args[1].value if len(args) > 1 else 0
        if not all(isinstance(v, CellOut) and v.part == "h" for v in items):
            raise self.fail(node, "stacks values other than a cell's outputs")
        chain = items[0].chain
        T = self.sizes[chain.time_label]
        if [v.step for v in items] != list(range(T)) or any(v.chain is not chain
                                                             for v in items):
            raise self.fail(node, "stacks a subset of the cell's steps; lstmlite needs all "
                                  "steps in order")
        batch = [a for a in chain.source.axes if a not in (chain.time_label, "F")]
        axes = list(batch) + ["F"]
        dim = dim + len(axes) + 1 if dim < 0 else dim
        axes.insert(dim, chain.time_label)
        return Seq(chain.layer_depth, tuple(axes))

    # ---- heads ------------------------------------------------------------------------------------

    def _as_seq(self, node, value) -> Seq:
        if isinstance(value, CellOut):
            return self._cell_as_seq(node, value)
        if isinstance(value, State):
            return self._state_as_seq(node, value)
        if not isinstance(value, Seq):
            raise self.fail(node, f"expected the sequence, got {type(value).__name__}")
        if value.step_of is not None:
            if not value.last_step:
                _, _, t = value.step_of
                raise self.fail(node, f"reads time step {t} of the sequence outside a cell "
                                      f"loop; lstmlite can select only the last step (-1)")
            value = replace(value, step_of=None)
        return value

    def _state_as_seq(self, node, value: State) -> Seq:
        """h_n[-1] of a forward last layer is the output at the last step."""
        recipe = value.recipe
        if recipe[0] == "gather" and recipe[3][0] == "concat" and recipe[1] == 0:
            parts = recipe[3][2]
            _, k, which = parts[-1]
            draft = [d for d in self.chain if "layer" in d][k]
            if recipe[2] in (-1, len(parts) - 1) and draft["layer"].num_directions == 1:
                if which == "h" and draft["layer"].direction == "forward":
                    depth = self.chain.index(draft) + 1
                    batch = [l for l, r in self.binding.items() if r == "B"]
                    return Seq(depth, tuple(batch[:1]) + ("F",), last_step=True)
        raise self.fail(node, "uses the final state in a way lstmlite cannot map to its "
                              "output (only h_n[-1] of a forward last layer is supported)")

    def _linear(self, node, args):
        seq = self._as_seq(node, args[0])
        if seq.axes[-1] != "F":
            raise self.fail(node, f"the features are not on the last axis ({seq.axes})")
        weight = args[1].value
        bias = args[2].value if len(args) > 2 and args[2] is not None and \
            isinstance(args[2], Param) else None
        depth = self._append(node, seq, {"dense": weight, "bias": bias,
                                         "activation": "Identity"})
        return Seq(depth, seq.axes, seq.last_step)

    def _activation(self, node, name, args):
        seq = self._as_seq(node, args[0])
        activation = _ACTIVATIONS[name]
        if activation is None:
            raise self.fail(node, "hardsigmoid (PyTorch's x/6 + 1/2) is not supported")
        if name in ("softmax", "_softmax", "log_softmax", "_log_softmax"):
            if any(isinstance(a, tuple) for a in seq.axes):
                raise self.fail(node, f"{name} over a part of the features (after a view "
                                      f"that split them); lstmlite normalizes over all of a "
                                      f"step's features")
            dim = args[1].value
            if dim not in (-1, len(seq.axes) - 1):
                raise self.fail(node, f"{name} over dim {dim}, not the features")
        params = ()
        if name == "leaky_relu":
            params = (args[1].value if len(args) > 1 else 0.01,)
        elif name == "elu":
            alpha = args[1].value if len(args) > 1 else 1.0
            if any(a.value != 1 for a in args[2:4]):
                raise self.fail(node, "elu with scale or input_scale is not supported")
            params = (alpha,)
        elif name == "softplus" and any(a.value != d for a, d in zip(args[1:], (1, 20))):
            raise self.fail(node, "softplus with beta or threshold is not supported")
        spec = (activation,) + tuple(float(p) for p in params)
        return self._activate(node, seq, spec)

    def _activate(self, node, seq: Seq, spec: tuple) -> Seq:
        """The activation `spec` on the layer that made `seq` when nothing else reads its
        output, else an Elementwise layer of its own."""
        last = self.chain[-1] if self.chain else None
        producer = node.args[0]
        if last is not None and last.get("dense") is not None and \
                last["activation"] == "Identity" and seq.depth == len(self.chain) and \
                len(producer.users) == 1 and last.get("output") in (None, producer.name) and \
                _op_name(producer) in ("linear", "dropout", "clone", "add", "relu"):
            last["activation"] = spec
            last["output"] = node.name
            return seq
        from lstmlite.layers import Elementwise
        depth = self._append(node, seq, {"frame": Elementwise(self._width(seq), spec)})
        return Seq(depth, seq.axes, seq.last_step)

    def _clamp(self, node, name, args):
        """hardtanh(lo, hi), relu6, clamp with both bounds: a HardSigmoid on the layer and a
        Scale layer after it (common.clip_drafts, as for ONNX's Clip). A ReLU the layer
        already applies is absorbed (it only raises lo to 0); clamp(min=0) is a ReLU."""
        defaults = {"hardtanh": (-1.0, 1.0), "relu6": (0.0, 6.0)}.get(name, (None, None))
        bounds = [a.value if isinstance(a, Param) else None for a in args[1:3]]
        lo = bounds[0] if len(bounds) > 0 and bounds[0] is not None else defaults[0]
        hi = bounds[1] if len(bounds) > 1 and bounds[1] is not None else defaults[1]
        lo = node.kwargs.get("min_val", node.kwargs.get("min", lo))
        hi = node.kwargs.get("max_val", node.kwargs.get("max", hi))
        if lo == 0 and (hi is None or hi == np.inf):
            return self._activate(node, self._as_seq(node, args[0]), ("Relu",))  # clamp(min=0)
        if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
            raise self.fail(node, f"{name} to [{lo}, {hi}]; lstmlite converts clamps with "
                                  f"both bounds finite")
        seq = self._as_seq(node, args[0])
        last = self.chain[-1] if self.chain else None
        producer = node.args[0]
        if last is not None and last.get("dense") is not None and \
                last["activation"] == ("Relu",) and seq.depth == len(self.chain) and \
                len(producer.users) == 1 and last.get("output") == producer.name:
            lo = max(float(lo), 0.0)
            last["activation"] = "Identity"  # a clamp with lo >= 0 of a ReLU is that clamp
            last["output"] = None
        lo, hi = float(lo), float(hi)
        activation, scale = clip_drafts(lo, hi, self._width(seq))
        clipped = self._activate(node, seq, activation)
        depth = self._append(node, clipped, scale)
        self.notes.append(f"{node.name} ({name}) clips to [{lo:g}, {hi:g}]: a HardSigmoid "
                          f"then a Scale layer ({hi - lo:g}, {lo:g})")
        return Seq(depth, clipped.axes, clipped.last_step)

    def _width(self, seq: Seq) -> int:
        """The features the sequence carries at its depth in the chain."""
        return draft_output_size(self.chain[seq.depth - 1]) if seq.depth else self.sizes["F"]

    def _arith(self, node, name, args):
        a, b = args[0], args[1]
        if isinstance(a, Half) or isinstance(b, Half):
            if name != "add":
                raise self.fail(node, f"{name} of a half of a bidirectional output; lstmlite "
                                      f"follows the two halves summed")
            return self._join_halves(node, name, a, b)
        seq_first = not isinstance(a, Param)
        seq, const = (a, b) if seq_first else (b, a)
        if not isinstance(const, Param):
            raise self.fail(node, f"{name} of two computed values (a residual or gating) is "
                                  f"not supported")
        seq = self._as_seq(node, seq)
        if "alpha" in node.kwargs and node.kwargs["alpha"] != 1:
            raise self.fail(node, f"{name} with alpha={node.kwargs['alpha']}")
        N = self._width(seq)
        c = np.asarray(const.value, dtype=np.float32)
        # a scalar, or one value per feature with only unit axes before it: anything else
        # would broadcast the sequence to a new shape
        if c.ndim > len(seq.axes) or any(d != 1 for d in c.shape[:-1]) or \
                c.size not in (1, N):
            raise self.fail(node, f"a constant of shape {c.shape} is not one value per "
                                  f"feature ({N}) or a scalar")
        vector = np.broadcast_to(c.reshape(-1), (N,)).astype(np.float32)
        one, zero = np.ones(N, np.float32), np.zeros(N, np.float32)
        last = self.chain[-1] if self.chain else None
        producer = node.args[0] if seq_first else node.args[1]
        mergeable = last is not None and seq.depth == len(self.chain) and \
            len(getattr(producer, "users", ())) == 1
        if name == "add":
            if mergeable and last.get("dense") is not None and last["bias"] is None and \
                    last["activation"] == "Identity":
                last["bias"] = vector
                return seq
            draft = {"scale": one, "offset": vector}
        elif name == "sub" or name == "rsub":
            negate = (name == "sub") != seq_first
            draft = {"scale": -one, "offset": vector} if negate else \
                {"scale": one, "offset": -vector}
        elif name == "mul":
            draft = {"scale": vector, "offset": zero}
        else:
            if not seq_first:
                raise self.fail(node, "divides a constant by the sequence")
            if np.any(vector == 0):
                raise self.fail(node, "divides by zero")
            if mergeable and "scale" in last and np.all(last["scale"] == 1):
                self.chain[-1] = {"normalize": (-last["offset"], vector), "node": last["node"]}
                return seq
            draft = {"normalize": (zero, vector)}
        depth = self._append(node, seq, draft)
        return Seq(depth, seq.axes, seq.last_step)

    def _select(self, node, name, args):
        value = args[0]
        if isinstance(value, State):
            if name == "select":
                return State(["gather", args[1].value, args[2].value, value.recipe])
            raise self.fail(node, "slices a state")
        seq = self._as_seq(node, value)
        dim = args[1].value if len(args) > 1 else 0
        dim = dim + len(seq.axes) if dim < 0 else dim
        label = seq.axes[dim]
        if isinstance(label, tuple):
            raise self.fail(node, "selects from a part of the features (after a view that "
                                  "split them)")
        if label == "F":
            half = self._direction_half(seq, name, args)
            if half is not None:
                return half
            raise self.fail(node, "selects features; lstmlite follows only the two halves "
                                  "of a bidirectional layer's output (y[..., :H], y[..., H:])")
        size = self.sizes.get(label, 1)
        if name == "select":
            index = args[2].value
            if self.binding.get(label) == "B":
                raise self.fail(node, "selects one sequence of the batch")
            is_last = index in (-1, size - 1)
            if not is_last and index < 0:
                raise self.fail(node, f"selects step {index}; lstmlite can select only the "
                                      f"last step (-1)")
            if is_last:
                self._bind(node, label, "T")
            # x[:, t] for t >= 0 may be one step of a cell loop (the cell checks that every
            # step follows the previous one); anything else may only read the last step
            step_of = (seq, label, index) if index >= 0 else None
            return Seq(seq.depth, seq.axes[:dim] + seq.axes[dim + 1:], last_step=is_last,
                       step_of=step_of)
        start = args[2].value if len(args) > 2 else 0
        end = args[3].value if len(args) > 3 else None
        step = args[4].value if len(args) > 4 else 1
        if step == 1 and (start in (0, None)) and (end is None or end >= size):
            return seq
        if step == 1 and start in (-1, size - 1) and (end is None or end >= size):
            self._bind(node, label, "T")
            axes = list(seq.axes)
            axes[dim] = "1"
            return Seq(seq.depth, tuple(axes), last_step=True)
        raise self.fail(node, f"slices [{start}:{end}:{step}] along dim {dim}; only the last "
                              f"step is supported")

    def _direction_half(self, seq: Seq, name, args) -> Optional[Half]:
        """slice(y, F, 0, H) or slice(y, F, H, 2H) of a bidirectional last layer's output."""
        layer = self.chain[-1].get("layer") if self.chain else None
        if name != "slice" or layer is None or layer.num_directions != 2 or \
                seq.depth != len(self.chain) or (len(args) > 4 and args[4].value != 1):
            return None
        H = layer.h_size
        start = args[2].value if len(args) > 2 and args[2].value is not None else 0
        end = args[3].value if len(args) > 3 and args[3].value is not None else 2 * H
        direction = feature_half(start, end, H)
        return None if direction is None else Half(seq, direction, H)

    def _join_halves(self, node, name, first, second) -> Seq:
        """The forward and reverse halves summed: a Dense [I | I] after the layer
        (torchaudio's DeepSpeech)."""
        if not (isinstance(first, Half) and isinstance(second, Half)) or \
                {first.direction, second.direction} != {0, 1} or first.seq != second.seq:
            raise self.fail(node, f"{name} of a half of a bidirectional output with something "
                                  f"else; lstmlite follows the two halves summed")
        seq = first.seq
        depth = self._append(node, seq, summed_directions(first.hidden))
        self.notes.append(f"{node.name} sums the two directions of a bidirectional layer: a "
                          f"Dense layer [I | I] after it")
        return Seq(depth, seq.axes, seq.last_step)

    def _layout(self, node, name, args):
        value = args[0]
        if isinstance(value, State):
            raise self.fail(node, f"{name} of a state is not supported")
        seq = self._as_seq(node, value)
        axes = list(seq.axes)
        if name == "unsqueeze":
            dim = args[1].value
            dim = dim + len(axes) + 1 if dim < 0 else dim
            axes.insert(dim, "1")
        elif name == "squeeze":
            dims = args[1].value if len(args) > 1 else None
            dims = [dims] if isinstance(dims, int) else dims
            dims = [i for i, a in enumerate(axes) if a == "1"] if dims is None else \
                [d + len(axes) if d < 0 else d for d in dims]
            # torch leaves a listed dim whose size is not 1 as it is
            axes = [a for i, a in enumerate(axes) if not (i in dims and a == "1")]
        elif name in ("transpose", "permute", "t"):
            if name == "transpose":
                a, b = args[1].value, args[2].value
                perm = list(range(len(axes)))
                perm[a], perm[b] = perm[b], perm[a]
            elif name == "t":
                perm = list(range(len(axes)))[::-1]
            else:  # the dims come as a list of values (aten.permute's int[])
                perm = [p.value for p in args[1]] if isinstance(args[1], list) else \
                    list(args[1].value)
            axes = [axes[p] for p in perm]
        else:  # view / reshape / flatten: only unit axes may come and go
            if any(isinstance(a, tuple) for a in axes):
                raise self.fail(node, f"{name} of features already split by a view")
            real = [a for a in axes if a != "1"]
            if name == "flatten":
                if len(real) > 1:
                    raise self.fail(node, f"flatten of axes {tuple(axes)} merges the features "
                                          f"with the time or batch axis")
                axes = real
            else:
                shape = [a.value for a in args[1]]
                kept = [d for d in shape if d != 1]
                width = self._width(seq)
                one_feature = width == 1 and "F" in real
                if one_feature:
                    # a single feature is a unit axis too (darts views its one-target
                    # predictions as (batch, time, 1, 1)); it comes back as the last unit
                    real = [a for a in real if a != "F"]
                if len(kept) > len(real) and real and real[-1] == "F" and not one_feature:
                    # the features viewed as several axes
                    return Seq(seq.depth, self._split_features(node, name, shape, real,
                                                               width), seq.last_step)
                sizes = [width if a == "F" else self.sizes[a] for a in real]
                if len(kept) != len(real) or shape.count(-1) > 1 or \
                        any(d not in (-1, size) for d, size in zip(kept, sizes)):
                    raise self.fail(node, f"{name} of axes {tuple(axes)} (sizes "
                                          f"{tuple(sizes)} without unit axes) to {shape} "
                                          f"changes more than unit axes")
                it = iter(real)
                axes = ["1" if d == 1 else next(it) for d in shape]
                if one_feature:
                    if "1" not in axes:
                        raise self.fail(node, f"{name} to {shape} drops the feature axis")
                    last_unit = len(axes) - 1 - axes[::-1].index("1")
                    axes[last_unit] = "F"
        return Seq(seq.depth, tuple(axes), seq.last_step)

    def _split_features(self, node, name, shape, real, width) -> Tuple:
        """A view that keeps the time and batch axes and splits the features into several
        axes (darts views its per-step predictions as (batch, time, target, params)): each
        part becomes a feature axis ("F", size, stride), row-major. Only the output may have
        them (a Linear or a softmax needs the features whole)."""
        lead = len(real) - 1
        kept = [d for d in shape if d != 1]
        for d, label in zip(kept[:lead], real[:lead]):
            if d not in (-1, self.sizes[label]):
                raise self.fail(node, f"{name} to {shape} changes the size of axis {label}")
        parts = kept[lead:]
        if any(d < 1 for d in parts) or int(np.prod(parts)) != width:
            raise self.fail(node, f"{name} to {shape} does not split the {width} features "
                                  f"into {parts}")
        strides = [int(np.prod(parts[k + 1:])) for k in range(len(parts))]
        labels = list(real[:lead]) + [("F", size, stride) for size, stride in
                                      zip(parts, strides)]
        it = iter(labels)
        return tuple("1" if d == 1 else next(it) for d in shape)

    def _getitem(self, node, args):
        container, index = args[0], args[1].value
        if isinstance(container, tuple):
            return container[index]
        if isinstance(container, CellOut) and container.part == "tuple":
            if index == 0:
                return CellOut(container.chain, container.step, "h")
            return CellOut(container.chain, container.step, "c")
        if isinstance(container, State):
            return State(["gather", 0, index, container.recipe])
        raise self.fail(node, "indexes a value lstmlite cannot index")

    # ---- the result ---------------------------------------------------------------------------------

    def _finish(self, output_node):
        layers = build_layers(self.chain, self.where)
        outputs = {}
        results = output_node.args[0]
        results = results if isinstance(results, (list, tuple)) else [results]
        for number, item in enumerate(results):
            value = self.values.get(item) if item is not None else None
            name = f"output{number}"
            if isinstance(value, (CellOut, Seq)):
                value = self._as_seq(output_node, value)
            if isinstance(value, Seq):
                if value.depth != len(self.chain):
                    raise ConversionError(f"{self.where}: output {number} is the value after "
                                          f"layer {value.depth} of {len(self.chain)}")
                axes = []
                for label in value.axes:
                    if label == "F":
                        axes.append(["F", layers[-1].output_size, 1])
                    elif isinstance(label, tuple):  # a part of the features (a view)
                        axes.append(list(label))
                    elif label == "1":
                        axes.append("1")
                    else:
                        role = self.binding.get(label)
                        if role is None:
                            raise ConversionError(f"{self.where}: axis {label} of output "
                                                  f"{number} is neither time nor batch")
                        axes.append(role)
                outputs[name] = {"kind": "sequence", "axes": axes,
                                 "last_step": bool(value.last_step)}
            elif isinstance(value, State) and \
                    any(leaf[0] == "state" for leaf in recipe_leaves(value.recipe)):
                outputs[name] = {"kind": "state", "recipe": value.recipe}
            else:
                raise ConversionError(f"{self.where}: output {number} is not computed by the "
                                      f"network ({type(value).__name__})")
        axes = []
        for label in self.sequence_axes:
            if label in ("F", "1"):
                axes.append(label)
                continue
            role = self.binding.get(label)
            if role is None:
                raise ConversionError(f"{self.where}: axis {label} of the input is neither "
                                      f"time nor batch")
            axes.append(role)
        inputs = {"sequence_input": {"name": self.sequence_input, "axes": axes}}
        signature = dict(inputs, initial_state=self.initial_state if any(
            v for e in self.initial_state for v in e.values()) else None,
            sequence_lengths=None, outputs=outputs, input_order=self.user_inputs)
        return layers, signature, self.notes


def _split_params(chunks, has_biases: bool, op: str, fail, node):
    """Per-direction (w_ih, w_hh, b_ih, b_hh, w_hr) from aten's flat parameter list."""
    out = []
    for chunk in chunks:
        arrays = [np.asarray(c, dtype=np.float32) for c in chunk]
        w_ih, w_hh = arrays[0], arrays[1]
        rest = arrays[2:]
        b_ih = b_hh = w_hr = None
        if has_biases:
            b_ih, b_hh, rest = rest[0], rest[1], rest[2:]
        if rest:
            if op != "LSTM" or len(rest) != 1:
                raise fail(node, f"unexpected extra weights {[r.shape for r in rest]}")
            w_hr = rest[0]
        out.append((w_ih, w_hh, b_ih, b_hh, w_hr))
    return out


def _op_name(node) -> str:
    target = getattr(node, "target", None)
    name = getattr(target, "__name__", str(target))
    return name.split(".")[0]


def _target_name(node) -> str:
    target = getattr(node, "target", None)
    return str(getattr(target, "__name__", target))
