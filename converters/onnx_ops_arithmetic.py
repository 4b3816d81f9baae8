"""Dense and elementwise ops: MatMul and Gemm heads, arithmetic with constants, activations, Clip
and Softmax, as layers of the chain.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from lstmlite.errors import ConversionError
from lstmlite.layers import Elementwise

from .common import Half, clip_drafts
from .onnx_ops_convolution import Part, Squared
from .onnx_values import (_ACTIVATION_OPS, _DEFAULTS, Axis, Const, Seq, ShapeVec, State,
                          _show_axes)


class ArithmeticOps:
    """Op handlers of OnnxGraphConverter (onnx_graph.py): dense and elementwise ops."""

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
        if isinstance(a, (Part, Squared)) or isinstance(b, (Part, Squared)):
            return self._magnitude_arith(node, a, b)
        if isinstance(a, Half) and isinstance(b, Half) and op == "Add":
            return [self._join_halves(node, a, b, "adds")]
        if isinstance(a, ShapeVec) or isinstance(b, ShapeVec):
            return [self._shape_arith(node, a, b)]
        seq_first = not isinstance(a, Const)
        seq_value, const = (a, b) if seq_first else (b, a)
        if isinstance(seq_value, State) and isinstance(const, Const) and \
                np.broadcast_shapes(np.shape(const.value), np.shape(np.empty(
                    [d if isinstance(d, int) else 1 for d in seq_value.shape]))) == \
                tuple(d if isinstance(d, int) else 1 for d in seq_value.shape):
            identity = 0 if op in ("Add", "Sub") else 1
            if (seq_first or op in ("Add", "Mul")) and np.all(const.value == identity):
                # silero-vad's op15 graph adds sr * 0 to its state output (a use of sr)
                return [seq_value]
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
        value = self._get(node, 0)
        last = self.chain[-1] if self.chain else None
        if isinstance(value, Seq) and self._can_merge(node, value) and "conv" in last and \
                last["activation"] == "Identity" and activation[0] not in ("Softmax",
                                                                           "LogSoftmax"):
            # elementwise on a Conv's (channels, positions): the layer applies it
            last["activation"] = activation
            last["output"] = node.output[0]
            return [value]
        if activation[0] in ("Softmax", "LogSoftmax"):
            seq = self._feature_seq(node, value)
        else:  # elementwise: any layout of the features
            seq = self._frame_seq(node, value)
        if self._can_merge(node, seq) and last.get("dense") is not None and \
                last["activation"] == "Identity":
            last["activation"] = activation
            last["output"] = node.output[0]
            return [seq]
        N = int(np.prod([a.size for a in seq.axes if a.kind == "feat"] or [1]))
        # an activation with no Dense or Conv before it: a layer of its own
        depth = self._append(node, seq, {"frame": Elementwise(N, activation)})
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
