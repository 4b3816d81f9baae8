"""Layout, selection and shape ops: how the sequence's axes move (Transpose, Squeeze, Unsqueeze,
Flatten, Reshape, Identity, Cast, Dropout), which steps and features are picked (Gather, Slice,
Concat, ReverseSequence) and the shapes computed from them.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, List, Optional

import numpy as np

from lstmlite.errors import ConversionError

from .common import (Half, feature_half, summed_directions)
from .onnx_ops_convolution import Padded, Part
from .onnx_values import (_BIG, MERGE, Axis, Const, Lengths,
                          Seq, ShapeVec, State, Sym, _is_full_features,
                          _show, _show_axes)


class LayoutOps:
    """Op handlers of OnnxGraphConverter (onnx_graph.py): layout, selection and shape ops."""

    # ---- layout ops ---------------------------------------------------------------------------

    def _op_Identity(self, node):
        self._attributes(node, ())
        return [self._get(node, 0)]   # any value, Padded and Part included

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
        if isinstance(value, (Padded, Part)) and target.kind == "f":
            return [value]             # silero-vad casts its STFT's slices to float
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
        if isinstance(value, Padded):
            return self._padded_layout(node, self._op_Unsqueeze)
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
        if isinstance(value, Part):
            return [self._slice_part(node, value,
                                     self._slice_params(node, len(value.seq.axes)))]
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
            part = self._channel_part(node, value, params)
            if part is not None:
                return [part]
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
