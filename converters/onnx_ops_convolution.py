"""Ops that encode one step's frame: Conv (1-D, over the step's own input viewed as
(channels, positions)), Pad before it, the magnitude sqrt(a^2 + b^2) of two slices of one
value (an STFT's real and imaginary channels), and ReduceMean over the frame's positions.

A Conv appends a Conv1d layer; a Pad is held (Padded) until the Conv that reads it takes its
pads; the magnitude is recognised from the values its ops build up (Part, Squared,
SumOfSquares below), and only a Sqrt of such a sum becomes a layer: a Slice, Pow or Add that
ends anywhere else is refused where it is used.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np

from lstmlite.errors import ConversionError

from .onnx_values import Axis, Const, Seq, State, _show_axes

#: ONNX Pad modes -> the Conv1d layer's padding_mode
_PAD_MODES = {"constant": "zeros", "reflect": "reflect", "edge": "replicate",
              "wrap": "circular"}


@dataclass
class Padded:
    """A Seq whose last (positions) axis an ONNX Pad extended by `pads` in `mode`: only a
    Conv reading it (through Unsqueeze, Identity, Cast) takes it, as its padding."""
    seq: Seq
    pads: Tuple[int, int]
    mode: str                    # a Conv1d padding_mode


@dataclass
class Part:
    """Channels [start, stop) of a Seq's channel axis (`axis`) and positions [first, last)
    of its positions axis (the next): one side of a magnitude."""
    seq: Seq
    axis: int
    start: int
    stop: int
    first: int
    last: int


@dataclass
class Squared:
    part: Part


@dataclass
class SumOfSquares:
    real: Part
    imag: Part


class ConvolutionOps:
    """Op handlers of OnnxGraphConverter (onnx_graph.py): frame encoders."""

    # ---- the frame as (channels, positions) ------------------------------------------------

    def _frame_axes(self, node, seq: Seq) -> Tuple[int, int, tuple]:
        """(channels, positions, the axes before them) of a Seq whose last two axes hold the
        step's features channel major (the layout a Conv1d reads): the positions axis of
        stride 1, the channels axis of stride = positions, every other axis a time, batch or
        unit axis."""
        if len(seq.axes) < 3:
            raise ConversionError(f"{self._where(node)}: input has axes "
                                  f"{_show_axes(seq.axes)}; a 1-D convolution reads (batch, "
                                  f"channels, positions)")
        channel_axis, position_axis = seq.axes[-2], seq.axes[-1]
        C = channel_axis.size if channel_axis.kind == "feat" else 1
        L = position_axis.size if position_axis.kind == "feat" else 1
        if (channel_axis.kind not in ("feat", "unit")) or (position_axis.kind not in
                                                           ("feat", "unit")) or \
                (C > 1 and channel_axis.stride != L) or (L > 1 and position_axis.stride != 1) or \
                any(a.kind == "feat" and not a.is_unit for a in seq.axes[:-2]):
            raise ConversionError(f"{self._where(node)}: input has axes "
                                  f"{_show_axes(seq.axes)}; lstmlite convolves the step's own "
                                  f"features laid out as (channels, positions), channel major")
        return C, L, seq.axes[:-2]

    def _frame_seq(self, node, value) -> Seq:
        """The value as a Seq, in any layout of its features: a recurrent layer's final h
        read as its output at the last step (_state_as_seq)."""
        if isinstance(value, State) and "state" in value.sources:
            value = self._state_as_seq(node, value)
        if not isinstance(value, Seq):
            raise self._kind_error(node, value)
        return value

    # ---- Pad and Conv --------------------------------------------------------------------

    def _op_Pad(self, node):
        attrs = self._attributes(node, ("mode", "pads", "value"))
        mode = attrs.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode not in _PAD_MODES:
            raise ConversionError(f"{self._where(node)}: mode {mode!r} is not one of "
                                  f"{sorted(_PAD_MODES)}")
        seq = self._frame_seq(node, self._get(node, 0))
        rank = len(seq.axes)
        if "pads" in attrs:                                     # opset < 11
            pads, value = list(attrs["pads"]), float(attrs.get("value", 0.0))
        else:
            pads = [int(v) for v in np.asarray(self._const(node, 1, "pads")).ravel()]
            fill = self._const(node, 2, "constant_value", optional=True)
            value = 0.0 if fill is None or np.size(fill) == 0 else float(np.ravel(fill)[0])
        axes = list(range(rank))
        if len(node.input) > 3 and node.input[3]:
            axes = [int(a) % rank for a in np.asarray(self._const(node, 3, "axes")).ravel()]
        if len(pads) != 2 * len(axes):
            raise ConversionError(f"{self._where(node)}: {len(pads)} pads for {len(axes)} axes")
        begins, ends = pads[:len(axes)], pads[len(axes):]
        padded = {axis: (b, e) for axis, b, e in zip(axes, begins, ends) if b or e}
        if any(b < 0 or e < 0 for b, e in padded.values()):
            raise ConversionError(f"{self._where(node)}: negative pads {pads} crop; lstmlite "
                                  f"pads only")
        if mode == "constant" and value != 0.0:
            raise ConversionError(f"{self._where(node)}: pads with the constant {value:g}; "
                                  f"lstmlite pads with zeros, or reflects, replicates or wraps")
        if not padded:
            return [seq]
        last = rank - 1
        if set(padded) != {last} or seq.axes[last].kind != "feat":
            raise ConversionError(f"{self._where(node)}: pads axes {sorted(padded)} of "
                                  f"{_show_axes(seq.axes)}; lstmlite pads the positions of one "
                                  f"step's frame (the last axis), before a Conv")
        return [Padded(seq, padded[last], _PAD_MODES[mode])]

    def _padded_layout(self, node, handler):
        """Unsqueeze, Identity or Cast of a Padded value: applied to the Seq inside, whose
        last axis must stay last."""
        value = self.values[node.input[0]]
        self.values[node.input[0]] = value.seq
        try:
            result, = handler(node)
        finally:
            self.values[node.input[0]] = value
        if not isinstance(result, Seq) or result.axes[-1] != value.seq.axes[-1]:
            raise ConversionError(f"{self._where(node)}: moves the padded positions axis; "
                                  f"lstmlite takes a Pad only as the padding of the Conv after "
                                  f"it")
        return [Padded(result, value.pads, value.mode)]

    def _op_Conv(self, node):
        attrs = self._attributes(node, ("auto_pad", "dilations", "group", "kernel_shape",
                                        "pads", "strides"))
        value = self._get(node, 0)
        outer_pads, mode = (0, 0), "zeros"
        if isinstance(value, Padded):
            value, outer_pads, mode = value.seq, value.pads, value.mode
        seq = self._frame_seq(node, value)
        weight = self._const(node, 1, "W")
        if weight.ndim != 3:
            raise ConversionError(f"{self._where(node)}: weight has shape {weight.shape}; "
                                  f"lstmlite converts 1-D convolutions (out, in / group, "
                                  f"kernel)")
        if seq.axes and seq.axes[-1].kind == "seq":
            return self._pointwise_over_time(node, seq, weight, attrs, outer_pads)
        C, L, before = self._frame_axes(node, seq)
        M, per_group, K = (int(d) for d in weight.shape)
        groups = int(attrs.get("group", 1))
        if per_group * groups != C:
            raise ConversionError(f"{self._where(node)}: weight {weight.shape} with group="
                                  f"{groups} reads {per_group * groups} channels; the input has "
                                  f"{C}")
        if list(attrs.get("kernel_shape", [K])) != [K]:
            raise ConversionError(f"{self._where(node)}: kernel_shape {attrs['kernel_shape']} "
                                  f"disagrees with the weight {weight.shape}")
        stride = int((attrs.get("strides") or [1])[0])
        dilation = int((attrs.get("dilations") or [1])[0])
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad in ("NOTSET", "VALID"):
            pads = list(attrs.get("pads", [0, 0])) if auto_pad == "NOTSET" else [0, 0]
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            padded_length = L + sum(outer_pads)
            total = max((-(-padded_length // stride) - 1) * stride + (K - 1) * dilation + 1 -
                        padded_length, 0)
            small, large = total // 2, total - total // 2
            pads = [small, large] if auto_pad == "SAME_UPPER" else [large, small]
        else:
            raise ConversionError(f"{self._where(node)}: auto_pad {auto_pad!r} is not one ONNX "
                                  f"defines")
        if len(pads) != 2:
            raise ConversionError(f"{self._where(node)}: pads {pads}; a 1-D convolution has two")
        if any(pads) and mode != "zeros":
            raise ConversionError(f"{self._where(node)}: zero pads {pads} after a {mode} Pad; "
                                  f"lstmlite pads a Conv's input one way")
        padding = (outer_pads[0] + int(pads[0]), outer_pads[1] + int(pads[1]))
        bias = self._const(node, 2, "B", optional=True)
        if bias is not None:
            bias = self._bias_vector(node, bias, M, "B")
        from lstmlite.layers import Conv1d
        try:
            layer = Conv1d(weight.astype(np.float32), bias, length=L, stride=stride,
                           dilation=dilation, groups=groups, padding=padding,
                           padding_mode=mode)
        except Exception as exc:
            raise ConversionError(f"{self._where(node)}: {exc}") from None
        depth = self._append(node, seq, {"conv": layer, "activation": "Identity"})
        out_length = layer.out_length
        return [replace(seq, depth=depth, axes=before + (
            Axis("feat", size=M, stride=out_length), Axis("feat", size=out_length, stride=1)))]

    def _pointwise_over_time(self, node, seq: Seq, weight, attrs, outer_pads):
        """A Conv whose positions are the time steps is a layer across steps, which lstmlite
        cannot stream, unless its kernel is one position wide (1x1, stride 1, no pads, one
        group): then it is a Dense on every step's channels (silero-vad's 16k_sequence graph
        ends so)."""
        pads = list(attrs.get("pads", [0, 0]))
        pointwise = weight.shape[2] == 1 and int(attrs.get("group", 1)) == 1 and \
            not any(pads) and not any(outer_pads) and \
            list(attrs.get("strides", [1])) == [1] and list(attrs.get("dilations", [1])) == [1]
        if not pointwise:
            raise ConversionError(f"{self._where(node)}: convolves along the time axis "
                                  f"({_show_axes(seq.axes)}) with a kernel of "
                                  f"{weight.shape[2]}; lstmlite convolves within one step's "
                                  f"frame, or across steps with a 1-wide kernel only")
        if len(seq.axes) < 2 or seq.axes[-2].kind != "feat" or seq.axes[-2].stride != 1 or \
                any(a.kind == "feat" and not a.is_unit for a in seq.axes[:-2]):
            raise ConversionError(f"{self._where(node)}: input has axes "
                                  f"{_show_axes(seq.axes)}; a 1x1 Conv over time reads "
                                  f"(batch, channels, time)")
        M, C = int(weight.shape[0]), int(weight.shape[1])
        if C != seq.axes[-2].size:
            raise ConversionError(f"{self._where(node)}: weight {weight.shape} reads {C} "
                                  f"channels; the input has {seq.axes[-2].size}")
        bias = self._const(node, 2, "B", optional=True)
        if bias is not None:
            bias = self._bias_vector(node, bias, M, "B")
        draft = {"dense": np.ascontiguousarray(weight[:, :, 0], dtype=np.float32),
                 "bias": bias, "activation": "Identity"}
        depth = self._append(node, seq, draft)
        axes = seq.axes[:-2] + (Axis("feat", size=M, stride=1), seq.axes[-1])
        return [replace(seq, depth=depth, axes=axes)]

    # ---- the magnitude of two slices: sqrt(a^2 + b^2) --------------------------------------

    def _channel_part(self, node, seq: Seq, params):
        """A Slice of the channel axis (the one before the positions), step 1: a Part; None
        for any other slice."""
        if len(params) != 1 or len(seq.axes) < 2:
            return None
        axis, start, end, step = params[0]
        if axis != len(seq.axes) - 2 or step != 1 or seq.axes[axis].kind != "feat":
            return None
        size = seq.axes[axis].size
        start, stop, _ = slice(start, end, step).indices(size)
        if stop <= start:
            return None
        try:
            _, L, _ = self._frame_axes(node, seq)
        except ConversionError:
            return None
        return Part(seq, axis, start, stop, 0, L)

    def _slice_part(self, node, part: Part, params) -> Part:
        """A Slice of a Part: whole axes leave it as it is; its channel and positions axes
        narrow (step 1)."""
        for axis, start, end, step in params:
            target = part.seq.axes[axis]
            if axis == part.axis:
                size = part.stop - part.start
            elif axis == part.axis + 1:
                size = part.last - part.first
            else:
                size = target.size if target.kind == "feat" else \
                    1 if target.kind == "unit" else None
            if size is not None and step == 1 and \
                    slice(start, end, step).indices(size) == (0, size, 1):
                continue
            if axis not in (part.axis, part.axis + 1) or step != 1:
                raise ConversionError(f"{self._where(node)}: slices [{start}:{end}:{step}] "
                                      f"along axis {axis} of a slice of channels; lstmlite "
                                      f"takes slices of the channels and positions only")
            lo, hi, _ = slice(start, end, step).indices(size)
            if hi <= lo:
                raise ConversionError(f"{self._where(node)}: an empty slice of channels")
            if axis == part.axis:
                part = replace(part, start=part.start + lo, stop=part.start + hi)
            else:
                part = replace(part, first=part.first + lo, last=part.first + hi)
        return part

    def _magnitude_arith(self, node, a, b):
        """Pow(part, 2), Mul(part, part) and Add(square, square) on the way to a Sqrt."""
        op = node.op_type
        if op == "Pow" and isinstance(a, Part) and isinstance(b, Const) and \
                np.size(b.value) == 1 and float(np.ravel(b.value)[0]) == 2.0:
            return [Squared(a)]
        if op == "Mul" and isinstance(a, Part) and isinstance(b, Part) and a == b:
            return [Squared(a)]
        if op == "Add" and isinstance(a, Squared) and isinstance(b, Squared):
            return [SumOfSquares(a.part, b.part)]
        raise ConversionError(f"{self._where(node)}: {op} of a slice of channels; lstmlite "
                              f"converts slices of channels only as the magnitude "
                              f"sqrt(a^2 + b^2) of two equal slices")

    def _op_Pow(self, node):
        self._attributes(node, ())
        a, b = self._get(node, 0), self._get(node, 1)
        if isinstance(a, Part):
            return self._magnitude_arith(node, a, b)
        raise ConversionError(f"{self._where(node)}: Pow is converted only as the square of a "
                              f"slice of channels on the way to a magnitude sqrt(a^2 + b^2)")

    def _op_Sqrt(self, node):
        self._attributes(node, ())
        value = self._get(node, 0)
        if not isinstance(value, SumOfSquares):
            raise ConversionError(f"{self._where(node)}: Sqrt is converted only as the "
                                  f"magnitude sqrt(a^2 + b^2) of two equal slices of one "
                                  f"value's channels (an STFT's real and imaginary parts)")
        real, imag = value.real, value.imag
        if real.seq != imag.seq or \
                real.stop - real.start != imag.stop - imag.start or \
                (real.first, real.last) != (imag.first, imag.last):
            raise ConversionError(f"{self._where(node)}: the magnitude's two slices are not "
                                  f"equal slices of one value's channels")
        seq = real.seq
        C, L, before = self._frame_axes(node, seq)
        count, positions = real.stop - real.start, real.last - real.first
        from lstmlite.layers import Magnitude
        if positions == L:   # whole rows: two runs
            layer = Magnitude(C * L, count * L, real.start * L, imag.start * L)
        else:
            layer = Magnitude(C * L, count * positions, real.start * L + real.first,
                              imag.start * L + imag.first, rows=count, row_stride=L)
        depth = self._append(node, seq, {"frame": layer})
        return [replace(seq, depth=depth, axes=before + (
            Axis("feat", size=count, stride=positions),
            Axis("feat", size=positions, stride=1)))]

    # ---- ReduceMean over the frame's positions ------------------------------------------------

    def _op_ReduceMean(self, node):
        attrs = self._attributes(node, ("axes", "keepdims", "noop_with_empty_axes"))
        seq = self._frame_seq(node, self._get(node, 0))
        rank = len(seq.axes)
        if "axes" in attrs:
            axes = list(attrs["axes"])
        elif len(node.input) > 1 and node.input[1]:
            axes = [int(a) for a in np.asarray(self._const(node, 1, "axes")).ravel()]
        else:
            axes = [] if attrs.get("noop_with_empty_axes", 0) else list(range(rank))
        axes = sorted({a % rank for a in axes})
        keep = bool(attrs.get("keepdims", 1))
        reduced = [a for a in axes if not seq.axes[a].is_unit]
        if not reduced:               # the mean of one value: the value
            kept = tuple(Axis("unit") if i in axes else x for i, x in enumerate(seq.axes)) \
                if keep else tuple(x for i, x in enumerate(seq.axes) if i not in axes)
            return [replace(seq, axes=kept)]
        if reduced != [rank - 1] or seq.axes[-1].kind != "feat":
            raise ConversionError(f"{self._where(node)}: averages axes {axes} of "
                                  f"{_show_axes(seq.axes)}; lstmlite averages the positions of "
                                  f"one step's frame (the last axis), not over time or batch")
        C, L, before = self._frame_axes(node, seq)
        from lstmlite.layers import Mean
        depth = self._append(node, seq, {"frame": Mean(C, L)})
        channels = Axis("feat", size=C, stride=1) if C > 1 else Axis("unit")
        axes_out = before + (channels,) + ((Axis("unit"),) if keep else ())
        others = [a for a in axes if a != rank - 1]
        if others:
            axes_out = tuple(x for i, x in enumerate(axes_out) if i not in others) if not keep \
                else tuple(Axis("unit") if i in others else x for i, x in enumerate(axes_out))
        return [replace(seq, depth=depth, axes=axes_out)]
