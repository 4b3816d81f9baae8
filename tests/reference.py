"""A float64 NumPy reference of every lstmlite layer, written from the equations of the ONNX
operator specs and PyTorch's docs, independent of the C kernels: plain loops over time, libm
activations, no fused products. The tests compare the engine's float32 results with it.

int8 layers (weight matrices that are lstmlite.QuantizedWeight) follow the dynamic scheme of
lstmlite.quantize, written again here from its contract: each product quantizes its vector
with quantize_vector(), multiplies in exact integers and scales in float64.
"""
import numpy as np

from lstmlite import QuantizedWeight


def quantize_vector(x):
    """The engine's per-step rule (src/lstmlite.h, ll_quantize_s8) in float32 NumPy:
    q = rint(x * (127 / peak)), half to even; scale = peak / 127; zero (or a peak too small
    for 127 / peak to be finite) gives scale 0; NaN or infinity gives scale NaN."""
    x32 = np.asarray(x, dtype=np.float32)
    zeros = np.zeros(x32.shape, dtype=np.int64)
    if not np.isfinite(x32).all():
        return zeros, float("nan")
    peak = np.abs(x32).max() if x32.size else np.float32(0)
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.float32(127) / peak
    if peak == 0 or not np.isfinite(inv):
        return zeros, 0.0
    q = np.clip(np.rint(x32 * inv), -127, 127).astype(np.int64)
    return q, float(peak / np.float32(127))


def matvec(W, x, rows=slice(None)):
    """W[rows] @ x in float64; an int8 W through quantize_vector and exact integer sums."""
    if isinstance(W, QuantizedWeight):
        qx, sx = quantize_vector(x)
        q, s = W.q[rows].astype(np.int64), W.scale[rows].astype(np.float64)
        return s * sx * (q @ qx).astype(np.float64)
    return np.asarray(W, dtype=np.float64)[rows] @ np.asarray(x, dtype=np.float64)


def activation(name, alpha, beta, x):
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        if name == "Identity":
            return x
        if name == "Sigmoid":
            return 1.0 / (1.0 + np.exp(-x))
        if name == "Tanh":
            return np.tanh(x)
        if name == "Relu":
            return np.maximum(x, 0.0)
        if name == "HardSigmoid":
            return np.minimum(np.maximum(alpha * x + beta, 0.0), 1.0)
        if name == "LeakyRelu":
            return np.where(x >= 0, x, alpha * x)
        if name == "ThresholdedRelu":
            return np.where(x > alpha, x, 0.0)
        if name == "ScaledTanh":
            return alpha * np.tanh(beta * x)
        if name == "Affine":
            return alpha * x + beta
        if name == "Elu":
            return np.where(x >= 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
        if name == "Softsign":
            return x / (1.0 + np.abs(x))
        if name == "Softplus":
            return np.logaddexp(0.0, x)
        if name == "Softmax":
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if name == "LogSoftmax":
            s = x - x.max(axis=-1, keepdims=True)
            return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
    raise ValueError(name)


def _f64(a):
    if a is None or isinstance(a, QuantizedWeight):  # int8 matrices go through matvec()
        return a
    return np.asarray(a, dtype=np.float64)


def _dir(a, d, nd):
    if a is None:
        return None
    return a[d] if nd == 2 else a


def _act(spec, x, clip=None):
    name, alpha, beta = spec
    if clip is not None:
        x = np.clip(x, -clip, clip)
    return activation(name, alpha, beta, x)


def lstm_cell(layer, d, x, h, c):
    nd, H = layer.num_directions, layer.hidden_size
    W = _f64(_dir(layer.weight_ih, d, nd))
    R = _f64(_dir(layer.weight_hh, d, nd))
    bi, bh = _f64(_dir(layer.bias_ih, d, nd)), _f64(_dir(layer.bias_hh, d, nd))
    P = _f64(_dir(layer.peepholes, d, nd))
    f_act, g_act, h_act = layer.activations[3 * d:3 * d + 3]
    gates = matvec(W, x) + matvec(R, h)
    if bi is not None:
        gates = gates + bi
    if bh is not None:
        gates = gates + bh
    i, f, g, o = gates[:H], gates[H:2 * H], gates[2 * H:3 * H], gates[3 * H:]
    p_i, p_o, p_f = (P[0], P[1], P[2]) if P is not None else (0.0, 0.0, 0.0)
    i = _act(f_act, i + p_i * c, layer.clip)
    f = 1.0 - i if layer.input_forget else _act(f_act, f + p_f * c, layer.clip)
    g = _act(g_act, g, layer.clip)
    c = f * c + i * g
    o = _act(f_act, o + p_o * c, layer.clip)
    h = o * _act(h_act, c)
    if layer.weight_hr is not None:
        h = matvec(_dir(layer.weight_hr, d, nd), h)
    return h, c


def gru_cell(layer, d, x, h):
    nd, H = layer.num_directions, layer.hidden_size
    W = _f64(_dir(layer.weight_ih, d, nd))
    R = _f64(_dir(layer.weight_hh, d, nd))
    bi = _f64(_dir(layer.bias_ih, d, nd))
    bh = _f64(_dir(layer.bias_hh, d, nd))
    bi = np.zeros(3 * H) if bi is None else bi
    bh = np.zeros(3 * H) if bh is None else bh
    f_act, g_act = layer.activations[2 * d:2 * d + 2]
    gx = matvec(W, x) + bi
    gh = matvec(R, h)
    r = _act(f_act, gx[:H] + gh[:H] + bh[:H], layer.clip)
    z = _act(f_act, gx[H:2 * H] + gh[H:2 * H] + bh[H:2 * H], layer.clip)
    if layer.linear_before_reset:
        n = _act(g_act, gx[2 * H:] + r * (gh[2 * H:] + bh[2 * H:]), layer.clip)
    else:
        n = _act(g_act, gx[2 * H:] + matvec(R, r * h, slice(2 * H, None)) + bh[2 * H:],
                 layer.clip)
    return (1.0 - z) * n + z * h


def rnn_cell(layer, d, x, h):
    nd = layer.num_directions
    W = _f64(_dir(layer.weight_ih, d, nd))
    R = _f64(_dir(layer.weight_hh, d, nd))
    pre = matvec(W, x) + matvec(R, h)
    for b in (_dir(layer.bias_ih, d, nd), _dir(layer.bias_hh, d, nd)):
        if b is not None:
            pre = pre + _f64(b)
    return _act(layer.activations[d], pre, layer.clip)


def position(layer, x):
    name = layer.type_name
    if name == "Dense":
        y = matvec(layer.weight, x)
        if layer.bias is not None:
            y = y + _f64(layer.bias)
        return _act(layer.activation, y)
    if name == "Normalize":
        return (x - _f64(layer.mean)) / _f64(layer.std)
    if name == "Scale":
        return x * _f64(layer.scale) + _f64(layer.offset)
    raise ValueError(name)


def run_layer(layer, X, lengths, state):
    """X (B, T, I) float64; state: list of (nd, B, size) arrays (copied); returns Y, state."""
    B, T, _ = X.shape
    if not layer.recurrent:
        return np.stack([[position(layer, X[b, t]) for t in range(T)] for b in range(B)]), None
    nd = layer.num_directions
    hs = layer.proj_size or layer.hidden_size if layer.type_name == "LSTM" else layer.hidden_size
    Y = np.zeros((B, T, nd * hs))
    state = [s.astype(np.float64).copy() for s in state]
    for d in range(nd):
        backwards = d == 1 or layer.direction == "reverse"
        for b in range(B):
            L = T if lengths is None else int(lengths[b])
            order = range(L - 1, -1, -1) if backwards else range(L)
            for t in order:
                if layer.type_name == "LSTM":
                    h, c = lstm_cell(layer, d, X[b, t], state[0][d, b], state[1][d, b])
                    state[0][d, b], state[1][d, b] = h, c
                elif layer.type_name == "GRU":
                    state[0][d, b] = gru_cell(layer, d, X[b, t], state[0][d, b])
                else:
                    state[0][d, b] = rnn_cell(layer, d, X[b, t], state[0][d, b])
                Y[b, t, d * hs:(d + 1) * hs] = state[0][d, b]
    return Y, state


def run_model(model, X, initial_state=None, lengths=None):
    """Float64 twin of Model.run for 3-D X (B, T, I); returns Y and the final states as a
    list of lists of (nd, B, size) arrays."""
    X = np.asarray(X, dtype=np.float64)
    B = X.shape[0]
    finals = []
    k = 0
    for layer in model.layers:
        state = None
        if layer.recurrent:
            sizes = layer.state_sizes()
            if initial_state is None or initial_state[k] is None:
                state = [np.zeros((layer.num_directions, B, s)) for s in sizes]
            else:
                state = [np.asarray(s, dtype=np.float64).reshape(layer.num_directions, B, -1)
                         for s in initial_state[k]]
            k += 1
        X, state = run_layer(layer, X, lengths, state)
        if state is not None:
            finals.append(state)
        if getattr(layer, "output", "sequence") == "final":
            # one step per sequence: the two directions' final h, from the final states
            X = np.concatenate([state[0][0], state[0][1]], axis=-1)[:, None, :]
            lengths = None if lengths is None else np.minimum(lengths, 1)
    return X, finals
