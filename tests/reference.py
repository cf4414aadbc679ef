"""An independent reference: the LSTM step written as plainly as possible, one scalar at a time,
in Python floats (math.exp / math.tanh), sharing no code with lstm_cli."""

from __future__ import annotations

import math

import numpy as np


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _affine(W: np.ndarray, b: np.ndarray, u: list[float], j: int) -> float:
    total = float(b[j])
    for k, value in enumerate(u):
        total += float(W[j, k]) * value
    return total


def reference_step(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """One unbatched step; returns a dict of lists: i, f, o, g, c_next, h_next."""
    u = [float(v) for v in h_prev] + [float(v) for v in x_t]  # hidden first, as in the seed
    H = len(bf)
    out: dict[str, list[float]] = {k: [] for k in ("i", "f", "o", "g", "c_next", "h_next")}
    for j in range(H):
        i = _sigmoid(_affine(Wi, bi, u, j))
        f = _sigmoid(_affine(Wf, bf, u, j))
        o = _sigmoid(_affine(Wo, bo, u, j))
        g = math.tanh(_affine(Wc, bc, u, j))
        c = f * float(c_prev[j]) + i * g
        h = o * math.tanh(c)
        for key, value in zip(
            ("i", "f", "o", "g", "c_next", "h_next"), (i, f, o, g, c, h), strict=True
        ):
            out[key].append(value)
    return out
