"""Seeded random layers and models for the tests: every layer type and option, sizes that are
not multiples of the SIMD width."""
import numpy as np

import lstmlite as ll


def _w(rng, *shape, scale=None):
    fan_in = shape[-1]
    scale = scale if scale is not None else 1.0 / np.sqrt(fan_in)
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def lstm(rng, I, H, *, direction="forward", proj=0, peepholes=False, bias=True, **kw):
    nd = 2 if direction == "bidirectional" else 1
    lead = (2,) if nd == 2 else ()
    P = proj or H
    return ll.LSTM(
        _w(rng, *lead, 4 * H, I), _w(rng, *lead, 4 * H, P),
        _w(rng, *lead, 4 * H, scale=0.5) if bias else None,
        _w(rng, *lead, 4 * H, scale=0.5) if bias else None,
        weight_hr=_w(rng, *lead, P, H) if proj else None,
        peepholes=_w(rng, *lead, 3, H, scale=0.5) if peepholes else None,
        direction=direction, **kw)


def gru(rng, I, H, *, direction="forward", bias=True, **kw):
    lead = (2,) if direction == "bidirectional" else ()
    return ll.GRU(_w(rng, *lead, 3 * H, I), _w(rng, *lead, 3 * H, H),
                  _w(rng, *lead, 3 * H, scale=0.5) if bias else None,
                  _w(rng, *lead, 3 * H, scale=0.5) if bias else None,
                  direction=direction, **kw)


def rnn(rng, I, H, *, direction="forward", bias=True, **kw):
    lead = (2,) if direction == "bidirectional" else ()
    return ll.RNN(_w(rng, *lead, H, I), _w(rng, *lead, H, H),
                  _w(rng, *lead, H, scale=0.5) if bias else None,
                  _w(rng, *lead, H, scale=0.5) if bias else None,
                  direction=direction, **kw)


def dense(rng, I, O, activation=None, bias=True):
    return ll.Dense(_w(rng, O, I), _w(rng, O, scale=0.5) if bias else None, activation)


def normalize(rng, I):
    return ll.Normalize(_w(rng, I, scale=1.0), (rng.uniform(0.5, 2.0, I)).astype(np.float32))


def scale(rng, I):
    return ll.Scale(_w(rng, I, scale=1.0), _w(rng, I, scale=1.0))
