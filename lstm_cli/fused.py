"""The fused cell and its fast step loops: the numerical kernel under ``sequence.py``.

:class:`FusedCell` fuses the eight arrays once; :class:`_State` holds the preallocated
buffers; :func:`_steps_plain` steps through a chunk whose input projection is precomputed
(one recurrent product per step); :func:`steps_stacked` does one product per step on the
stacked operand ``[h; x_t; 1]`` instead, where that wins (a batch), under a cheap overflow
bound (:func:`stacked_is_safe`). The layout and the exact rewrites they share are described
in the docstring of :mod:`lstm_cli.sequence`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .core import Array
from .params import LSTMParams

# Row blocks of the work buffer (multiples of H): c, then the fused gates in the order g, o, f, i.
_C, _G, _O, _F, _I = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class FusedCell:
    """A cell's weights fused once for the sequence loop.

    Attributes:
        W (4H, H + F): ``Wc, Wo, Wf, Wi`` stacked (gates g, o, f, i), the rows of the sigmoid
            gates o, f, i multiplied by 1/2 (see the module docstring).
        b (4H,): ``bc, bo, bf, bi``, scaled the same way.
        n_hidden: H.

    The operands of each path are made from ``W`` and ``b`` on first use (a path never pays
    for another's copies; at H = 1024 each is tens of MB):

        W_h (4H, H): ``W[:, :H]``, contiguous: acts on ``h_prev`` (H, B).
        W_x (4H, F): ``W[:, H:]``, contiguous: acts on a chunk of batched inputs (n, F, B).
        W_xT (F, 4H): ``W[:, H:].T``, contiguous: acts on a chunk of unbatched inputs (n, F).
        W_u (4H, H + F + 1): ``[W_h | W_x | b]``: acts on the stacked ``[h; x_t; 1]`` (K, B).
        abs_rows (3, 4H) float64: the row sums of ``|W_h|`` and ``|W_x|``, and ``|b|``: with
            ``|h| <= h_max`` and ``|x| <= x_max``, ``|z_j| <= A_h[j] h_max + A_x[j] x_max
            + |b_j|`` (:func:`stacked_is_safe`).
    """

    W: Array
    b: Array
    n_hidden: int

    @property
    def n_features(self) -> int:
        return int(self.W.shape[1]) - self.n_hidden

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.W.dtype

    @cached_property
    def derived(self) -> dict[Any, Array]:
        """Operands a backend derives from these weights, made once per cell, by key (the
        compiled loop's packed weights)."""
        return {}

    @cached_property
    def W_h(self) -> Array:
        return np.ascontiguousarray(self.W[:, : self.n_hidden])

    @cached_property
    def W_x(self) -> Array:
        return np.ascontiguousarray(self.W[:, self.n_hidden :])

    @cached_property
    def W_xT(self) -> Array:
        return np.ascontiguousarray(self.W[:, self.n_hidden :].T)

    @cached_property
    def W_u(self) -> Array:
        return np.concatenate((self.W, self.b[:, None]), axis=1)

    @cached_property
    def abs_rows(self) -> Array:
        A, H = np.abs(self.W), self.n_hidden  # exact; the sums are taken in float64
        with np.errstate(over="ignore"):  # a sum past float64's range: inf, the bound fails
            return np.stack(
                (
                    A[:, :H].sum(axis=1, dtype=np.float64),
                    A[:, H:].sum(axis=1, dtype=np.float64),
                    np.abs(self.b.astype(np.float64)),
                )
            )

    @classmethod
    def from_params(cls, params: LSTMParams, dtype: Any = None) -> FusedCell:
        """Fuse ``params`` in ``dtype`` (default: the params' own dtype)."""
        p = params.astype(dtype if dtype is not None else params.dtype)
        H = p.n_hidden
        W = np.concatenate((p.Wc, p.Wo, p.Wf, p.Wi))  # (4H, H + F)
        b = np.concatenate((p.bc, p.bo, p.bf, p.bi))  # (4H,)
        W[H:] *= 0.5  # sigmoid(z) = 0.5 + 0.5 * tanh(z / 2): fold z / 2 into o, f, i
        b[H:] *= 0.5
        return cls(W=W, b=b, n_hidden=H)


class _State:
    """Preallocated buffers of the step loop, for batch size B; every view is made once."""

    def __init__(self, H: int, B: int, dtype: np.dtype[Any]) -> None:
        self.h = np.zeros((H, B), dtype)  # (H, B) h_prev, then h_next
        self.work = np.zeros((5 * H, B), dtype)  # (5H, B) [c | g o f i]
        self.prod = np.empty((2 * H, B), dtype)  # (2H, B) [f * c_prev | i * g]
        self.tanh_c = np.empty((H, B), dtype)  # (H, B) tanh(c_next)
        w = self.work
        self.c = w[_C * H : _G * H]  # (H, B) the cell state, updated in place
        self.z = w[_G * H :]  # (4H, B) pre-activations, then activations g, o, f, i
        self.sig = w[_O * H :]  # (3H, B) the sigmoid gates o, f, i
        self.o = w[_O * H : _F * H]  # (H, B)
        self.fi = w[_F * H :]  # (2H, B) f, i
        self.cg = w[_C * H : _O * H]  # (2H, B) c_prev, g: multiplied by f, i
        self.fc = self.prod[:H]  # (H, B) f * c_prev
        self.ig = self.prod[H:]  # (H, B) i * g
        self.half = np.array(0.5, dtype)  # a 0-d array: no scalar conversion per call
        self._scratch = np.empty(0, dtype)

    def scratch(self, size: int) -> Array:
        """A flat buffer of ``size`` elements for a backend's own work, kept across chunks."""
        if self._scratch.size < size:
            self._scratch = np.empty(size, self._scratch.dtype)
        return self._scratch[:size]


def _steps_plain(
    cell: FusedCell,
    s: _State,
    xproj: Array,
    h_slots: Iterable[Array],
    record: Array | None,
) -> Array:
    """Run ``len(xproj)`` steps of the plain LSTM from the state in ``s``.

    Args:
        xproj (n, 4H, B): ``W_x @ x_t + b`` of each step, in the fused gate order.
        h_slots: where each step writes ``h_next`` (H, B): rows of an (n, H, B) array to keep
            the hidden sequence, or ``s.h`` again and again (the state updated in place).
        record (n, 5H, B) or None: receives the work buffer ``[c | g o f i]`` after each step
            (cell state and activations), when the cell or gate sequences are asked for.

    Returns:
        The (H, B) array holding the last ``h_next`` (a row of ``h_slots``). ``s.c`` holds
        the last ``c_next``.
    """
    W_h, h = cell.W_h, s.h
    c, z, sig, o, fi, cg, prod, fc, ig, tanh_c, half = (
        s.c, s.z, s.sig, s.o, s.fi, s.cg, s.prod, s.fc, s.ig, s.tanh_c, s.half
    )  # fmt: skip
    dot, add, multiply, tanh = np.dot, np.add, np.multiply, np.tanh  # local names: faster
    for t, (xp_t, h_next) in enumerate(zip(xproj, h_slots, strict=False)):  # h_slots may be endless
        dot(W_h, h, out=z)  # (4H, B) = W_h @ h_prev
        add(z, xp_t, out=z)  # (4H, B) + W_x @ x_t + b
        tanh(z, out=z)  # g = tanh(z_g); o, f, i = tanh(z / 2) (halved in W and b)
        multiply(sig, half, out=sig)
        add(sig, half, out=sig)  # o, f, i = 0.5 + 0.5 * tanh(z / 2) = sigmoid(z)
        multiply(fi, cg, out=prod)  # (2H, B) [f * c_prev | i * g]
        add(fc, ig, out=c)  # c_next = f * c_prev + i * g
        tanh(c, out=tanh_c)
        multiply(o, tanh_c, out=h_next)  # h_next = o * tanh(c_next)
        h = h_next
        if record is not None:
            record[t] = s.work
    return h


def stacked_is_safe(cell: FusedCell, h_max: float, x_max: float) -> bool:
    """True when no pre-activation ``W_u @ [h; x_t; 1]`` can overflow ``cell.dtype``.

    A sound bound, computed in float64: ``|z_j| <= A_h[j] h_max + A_x[j] x_max + |b_j|``
    (the triangle inequality), where ``h_max`` bounds ``|h|`` over the chunk (``|h_next| <=
    1`` after a step; the initial state may be larger) and ``x_max`` bounds ``|x_t|``. The
    rounding of a sum of K terms is at most K epsilons of it relative: a factor of 2 of
    margin covers it for any K below ``1 / (2 eps)``. NaN or inf anywhere fails the test.
    """
    A_h, A_x, A_b = cell.abs_rows
    with np.errstate(over="ignore", invalid="ignore"):
        bound = float(np.max(A_h * h_max + A_x * x_max + A_b)) if A_h.size else 0.0
    return bool(np.isfinite(bound)) and 2.0 * bound < float(np.finfo(cell.dtype).max)


def steps_stacked(cell: FusedCell, s: _State, U: Array, record: Array | None) -> None:
    """Run ``n = len(U) - 1`` steps of the plain LSTM, one matrix product per step.

    Args:
        U (n + 1, H + F + 1, B): the stacked operands: ``U[t] = [h_prev; x_t; 1]`` with rows
            ``H:`` filled in for every step and ``U[0, :H]`` the initial ``h``; step t writes
            its ``h_next`` straight into ``U[t + 1, :H]``, the next step's operand.
        record (n, 5H, B) or None: receives the work buffer ``[c | g o f i]`` after each step.

    ``s.c`` holds the last ``c_next``; ``s.h`` is not touched (``U[n, :H]`` is the last h).
    """
    H = cell.n_hidden
    W_u = cell.W_u
    c, z, sig, o, fi, cg, prod, fc, ig, tanh_c, half = (
        s.c, s.z, s.sig, s.o, s.fi, s.cg, s.prod, s.fc, s.ig, s.tanh_c, s.half
    )  # fmt: skip
    dot, add, multiply, tanh = np.dot, np.add, np.multiply, np.tanh  # local names: faster
    n = U.shape[0] - 1
    for t in range(n):
        dot(W_u, U[t], out=z)  # (4H, B) = W_h @ h_prev + W_x @ x_t + b, in one product
        tanh(z, out=z)  # g = tanh(z_g); o, f, i = tanh(z / 2) (halved in W and b)
        multiply(sig, half, out=sig)
        add(sig, half, out=sig)  # o, f, i = sigmoid(z)
        multiply(fi, cg, out=prod)  # (2H, B) [f * c_prev | i * g]
        add(fc, ig, out=c)  # c_next = f * c_prev + i * g
        tanh(c, out=tanh_c)
        multiply(o, tanh_c, out=U[t + 1, :H])  # h_next, in place in the next operand
        if record is not None:
            record[t] = s.work
