"""Recurrent nodes and the layer chain: LSTM, GRU and RNN nodes bound to the sequence's time and
batch axes, their initial states and lengths, and the drafts of the layers appended.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from lstmlite.errors import ConversionError, ModelError

from .onnx_recurrent import RecurrentNode
from .onnx_values import (_ROLE, Axis, Const, Seq, State, Sym,
                          _is_full_features, _show, _show_axes, _show_recipe)


class RecurrentOps:
    """Op handlers of OnnxGraphConverter (onnx_graph.py): recurrent nodes and the layer chain."""

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
        # the sequence axes: (T, B, F) for layout 0, (B, T, F) for layout 1; a feature axis
        # of size 1 there is a unit axis (silero-vad's encoder leaves one position, which
        # its 16k_sequence graph transposes into the batch place)
        X = replace(X, axes=tuple(Axis("unit") if a.kind == "feat" and a.is_unit and i < 2
                                  else a for i, a in enumerate(X.axes)))
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
        if op == "unsqueeze":
            # h (batch, hidden) -> (batch, hidden, 1): silero-vad's decoder feeds the final
            # h to a 1x1 Conv so
            inner = self._recipe_as_seq(node, recipe[-1])
            axes = list(inner.axes)
            for axis in sorted(a % (len(axes) + len(recipe[1])) for a in recipe[1]):
                axes.insert(axis, Axis("unit"))
            return replace(inner, axes=tuple(axes))
        if op == "cast" and np.dtype(recipe[1]).kind == "f":
            return self._recipe_as_seq(node, recipe[-1])
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
