"""The backward pass of the LSTM cell in pure NumPy: one step, a sequence (BPTT), and a
numerical gradient check by central differences.

The loss whose gradients are computed is the one the upstream gradients define::

    one step:   L = sum(dh_next * h_next) + sum(dc_next * c_next)
    a sequence: L = sum_t sum(dhs[t] * h_t) + sum(dh_next * h_T) + sum(dc_next * c_T)

so ``dh_next = ones, dc_next = zeros`` (the defaults) gives the gradients of ``sum(h_next)``.

Going backwards through the seed's equations (``*`` is elementwise, ``'`` marks a gradient)::

    o_t'           = h_next' * tanh(c_next)
    c_next'       += h_next' * o_t * (1 - tanh(c_next)**2)      # plus the upstream dc_next
    f_t'           = c_next' * c_prev
    i_t'           = c_next' * c_t_candidate
    c_t_candidate' = c_next' * i_t
    c_prev'        = c_next' * f_t
    z_g'           = g' * g * (1 - g)  for the sigmoid gates i, f, o
    z_c'           = c_t_candidate' * (1 - c_t_candidate**2)
    W_g'           = z_g'^T @ u,  b_g' = sum over the batch of z_g'
    u'             = sum_g z_g' @ W_g;  h_prev' = u'[:, :H],  x_t' = u'[:, H:]

With ONNX's variants (see :mod:`lstm_cli.core`) the same walk gains these terms::

    peepholes:     z_o' adds z_o' * Po to c_next' (o_t peeks at c_next, so this comes first);
                   c_prev' += z_i' * Pi + z_f' * Pf;
                   Pi' = sum z_i' * c_prev,  Pf' = sum z_f' * c_prev,  Po' = sum z_o' * c_next
    clip C:        z_g' = 0 where the clip is active (the clipped z_g is at +-C);
                   the clip's derivative is 1 only strictly inside (-C, C)
    input_forget:  f_t = 1 - i_t, so i_t' -= f_t' and z_f' = 0 (Wf' and bf' are zero)

Convention at the clip's boundary: a pre-activation that lands exactly on +-C is treated as
clipped (gradient 0). ``torch.clamp`` counts the boundary as inside (gradient 1); the two
differ only on that set of measure zero, where the function has no derivative.

Gradients are named after their array with a ``d`` prefix (``dx_t``, ``dh_prev``, ``dWf``, ...)
and have its shape: a 1-D ``h_prev``/``c_prev`` used for every row of a batch gets the sum
over the batch. Weight and bias gradients are summed over the batch (and over time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core import Array, StepResult, lstm_step_variant

WEIGHT_NAMES = ("Wf", "Wi", "Wo", "Wc")
BIAS_NAMES = ("bf", "bi", "bo", "bc")
PARAM_NAMES = WEIGHT_NAMES + BIAS_NAMES
PEEPHOLE_NAMES = ("Pi", "Pf", "Po")  # gradients dPi, dPf, dPo only when the cell has them
STEP_GRAD_NAMES = ("dx_t", "dh_prev", "dc_prev") + tuple("d" + n for n in PARAM_NAMES)
CHECK_EPS = 1e-6  # the gradient check's step, in float64
SEQUENCE_GRAD_NAMES = ("dxs", "dh0", "dc0") + tuple("d" + n for n in PARAM_NAMES)


@dataclass(frozen=True)
class Grads:
    """Gradients by name (``dx_t`` ... or ``dxs`` ...), each with its array's shape.

    ``h_next`` and ``c_next`` are the forward result (the final state for a sequence), so
    a caller never needs a second forward pass.
    """

    grads: dict[str, Array]
    h_next: Array
    c_next: Array

    def __getitem__(self, name: str) -> Array:
        return self.grads[name]


@dataclass(frozen=True)
class Variant:
    """ONNX's variants of a cell (all off: the seed's equations); see :mod:`lstm_cli.core`.

    ``peepholes`` maps ``Pi, Pf, Po`` to (H,) arrays, or is None.
    """

    peepholes: Mapping[str, Array] | None = None
    clip: float | None = None
    input_forget: bool = False

    @classmethod
    def of(cls, params: Mapping[str, Any], clip: float | None, input_forget: bool) -> Variant:
        """The variant of a params mapping (peepholes when it holds ``Pi``) and the switches."""
        peep = None
        if any(k in params for k in PEEPHOLE_NAMES):
            peep = {k: np.asarray(params[k]) for k in PEEPHOLE_NAMES}
        return cls(peep, None if clip is None else float(clip), bool(input_forget))

    def step(
        self, x_t: Array, h_prev: Array, c_prev: Array, params: Mapping[str, Any]
    ) -> StepResult:
        """The forward step of the core with this variant."""
        return lstm_step_variant(
            x_t, h_prev, c_prev, **{n: params[n] for n in PARAM_NAMES},
            **(self.peepholes or {}), clip=self.clip, input_forget=self.input_forget,
        )  # fmt: skip

    def grad_names(self) -> tuple[str, ...]:
        """The parameter gradients' names: ``dWf ... dbc``, then ``dPi, dPf, dPo``."""
        names = PARAM_NAMES + (PEEPHOLE_NAMES if self.peepholes is not None else ())
        return tuple("d" + n for n in names)


PLAIN = Variant()


def _inside(z: Array, clip: float | None) -> Array | float:
    """The clip's derivative at the clipped pre-activation ``z``: 1 strictly inside
    (-clip, clip), 0 where the clip is active (see the module docstring); 1 without a clip."""
    if clip is None:
        return 1.0
    return (np.abs(z) < clip).astype(z.dtype)


def _sum_batch(a: Array) -> Array:
    return a.reshape(-1, a.shape[-1]).sum(axis=0)  # (H,)


def _step_backward(
    r: StepResult,
    weights: Mapping[str, Array],
    dh_next: Array,
    dc_next: Array,
    variant: Variant = PLAIN,
) -> tuple[Array, Array, Array, dict[str, Array]]:
    """Backward through one (possibly batched) step whose forward pass is ``r``.

    Returns ``(dx_t, dh_prev, dc_prev, param_grads)`` with the batch shape of ``r``
    (h_prev/c_prev as broadcast to the batch) and the parameter gradients summed over it.
    """
    H = r.h_next.shape[-1]
    P, clip = variant.peepholes, variant.clip
    tanh_c = np.tanh(r.c_next)
    do = dh_next * tanh_c
    dz_o = do * r.o_t * (1.0 - r.o_t) * _inside(r.z_o, clip)
    dc = dc_next + dh_next * r.o_t * (1.0 - tanh_c**2)
    if P is not None:
        dc = dc + dz_o * P["Po"]  # z_o = ... + Po * c_next
    df = dc * r.c_prev
    di = dc * r.c_t_candidate
    dg = dc * r.i_t
    dc_prev = dc * r.f_t
    if variant.input_forget:  # f_t = 1 - i_t: the forget path flows into i_t
        di = di - df
        dz_f = np.zeros_like(df)
    else:
        dz_f = df * r.f_t * (1.0 - r.f_t) * _inside(r.z_f, clip)
    dz = {
        "i": di * r.i_t * (1.0 - r.i_t) * _inside(r.z_i, clip),
        "f": dz_f,
        "o": dz_o,
        "c": dg * (1.0 - r.c_t_candidate**2) * _inside(r.z_c, clip),
    }
    u2 = r.u.reshape(-1, r.u.shape[-1])  # (B, H + F); B = 1 without a batch
    grads: dict[str, Array] = {}
    du = np.zeros_like(r.u)
    for gate, dz_g in dz.items():
        dz2 = dz_g.reshape(-1, H)  # (B, H)
        grads["dW" + gate] = dz2.T @ u2  # (H, H + F)
        grads["db" + gate] = dz2.sum(axis=0)  # (H,)
        du = du + dz_g @ weights["W" + gate]  # (B, H + F)
    if P is not None:
        dc_prev = dc_prev + dz["i"] * P["Pi"] + dz["f"] * P["Pf"]
        grads["dPi"] = _sum_batch(dz["i"] * r.c_prev)  # (H,)
        grads["dPf"] = _sum_batch(dz["f"] * r.c_prev)
        grads["dPo"] = _sum_batch(dz_o * r.c_next)
    return du[..., H:], du[..., :H], dc_prev, grads


def _upstream(
    value: Array | None, shape: tuple[int, ...], fill: float, name: str, dtype: np.dtype[Any]
) -> Array:
    """The upstream gradient ``value`` broadcast to ``shape``, or ``fill`` everywhere."""
    if value is None:
        return np.full(shape, fill, dtype=dtype)
    value = np.asarray(value, dtype=dtype)
    try:
        return np.broadcast_to(value, shape)
    except ValueError:
        raise ValueError(
            f"{name} must have shape {shape} (or broadcast to it), got {value.shape}"
        ) from None


def _reduce_to(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum a batch-shaped gradient down to ``shape`` (a 1-D state used for every row)."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    return grad


def lstm_step_backward(
    x_t: Array,
    h_prev: Array,
    c_prev: Array,
    Wf: Array,
    Wi: Array,
    Wo: Array,
    Wc: Array,
    bf: Array,
    bi: Array,
    bo: Array,
    bc: Array,
    dh_next: Array | None = None,
    dc_next: Array | None = None,
    *,
    Pi: Array | None = None,
    Pf: Array | None = None,
    Po: Array | None = None,
    clip: float | None = None,
    input_forget: bool = False,
) -> Grads:
    """Gradients of one LSTM step (same arguments as :func:`lstm_cli.core.lstm_step_variant`).

    Args:
        dh_next: upstream gradient of h_next, (H,) or (B, H); default ones.
        dc_next: upstream gradient of c_next, (H,) or (B, H); default zeros.
        Pi, Pf, Po, clip, input_forget: ONNX's variants (off by default).

    Returns:
        :class:`Grads` with ``dx_t`` (F,) or (B, F), ``dh_prev`` and ``dc_prev`` shaped like
        the given ``h_prev``/``c_prev``, ``dWf, dWi, dWo, dWc`` (H, H + F),
        ``dbf, dbi, dbo, dbc`` (H,), and ``dPi, dPf, dPo`` (H,) for a cell with peepholes.
        With ``input_forget``, ``dWf`` and ``dbf`` are zero (Wf and bf are not used).
    """
    params = {"Wf": Wf, "Wi": Wi, "Wo": Wo, "Wc": Wc, "bf": bf, "bi": bi, "bo": bo, "bc": bc}
    peep = {k: v for k, v in (("Pi", Pi), ("Pf", Pf), ("Po", Po)) if v is not None}
    variant = Variant.of(peep, clip, input_forget)
    r = variant.step(x_t, h_prev, c_prev, {**params, **peep})
    shape, dtype = r.h_next.shape, r.h_next.dtype
    dh = _upstream(dh_next, shape, 1.0, "dh_next", dtype)
    dc = _upstream(dc_next, shape, 0.0, "dc_next", dtype)
    weights = {k: np.asarray(params[k]) for k in WEIGHT_NAMES}
    dx, dh_prev, dc_prev, pgrads = _step_backward(r, weights, dh, dc, variant)
    grads = {
        "dx_t": dx,
        "dh_prev": _reduce_to(dh_prev, np.shape(h_prev)),
        "dc_prev": _reduce_to(dc_prev, np.shape(c_prev)),
    }
    grads.update({n: pgrads[n] for n in variant.grad_names()})
    return Grads(grads=grads, h_next=r.h_next, c_next=r.c_next)


def lstm_sequence_forward(
    xs: Array,
    h0: Array,
    c0: Array,
    params: Mapping[str, Array],
    clip: float | None = None,
    input_forget: bool = False,
) -> list[StepResult]:
    """Run the cell over ``xs`` (T, F) or (T, B, F) from ``h0``, ``c0``; one result per step.

    A plain loop over the core's step; ``params`` holds Wf, Wi, Wo, Wc, bf, bi, bo, bc (and
    Pi, Pf, Po for peepholes); ``clip`` and ``input_forget`` are ONNX's other variants.
    """
    return _forward(xs, h0, c0, params, Variant.of(params, clip, input_forget))


def _forward(
    xs: Array, h0: Array, c0: Array, params: Mapping[str, Array], variant: Variant
) -> list[StepResult]:
    xs = np.asarray(xs)
    if xs.ndim not in (2, 3) or xs.shape[0] == 0:
        raise ValueError(f"xs must be (T, F) or (T, B, F) with T >= 1, got shape {xs.shape}")
    results = []
    h, c = np.asarray(h0), np.asarray(c0)
    for x_t in xs:
        r = variant.step(x_t, h, c, params)
        results.append(r)
        h, c = r.h_next, r.c_next
    return results


def lstm_sequence_backward(
    xs: Array,
    h0: Array,
    c0: Array,
    params: Mapping[str, Array],
    dh_next: Array | None = None,
    dc_next: Array | None = None,
    dhs: Array | None = None,
    *,
    clip: float | None = None,
    input_forget: bool = False,
) -> Grads:
    """Backpropagation through time over a sequence.

    Args:
        xs: inputs (T, F) or (T, B, F).
        h0, c0: the initial state, (H,) or (B, H).
        params: Wf, Wi, Wo, Wc (H, H + F) and bf, bi, bo, bc (H,); with peepholes also
            Pi, Pf, Po (H,).
        dh_next, dc_next: upstream gradients of the final h_T and c_T, (H,) or (B, H);
            defaults ones and zeros.
        dhs: upstream gradients of every step's output h_t, (T, H) or (T, B, H); default zeros.
        clip, input_forget: ONNX's other variants (off by default).

    Returns:
        :class:`Grads` with ``dxs`` shaped like ``xs``, ``dh0``/``dc0`` like ``h0``/``c0``,
        and ``dW*``/``db*`` (and ``dP*``) summed over time and batch; ``h_next``/``c_next``
        are h_T, c_T.
    """
    variant = Variant.of(params, clip, input_forget)
    results = _forward(xs, h0, c0, params, variant)
    last = results[-1]
    shape, dtype = last.h_next.shape, last.h_next.dtype
    dh = _upstream(dh_next, shape, 1.0, "dh_next", dtype)
    dc = _upstream(dc_next, shape, 0.0, "dc_next", dtype)
    T = len(results)
    per_step = _upstream(dhs, (T,) + shape, 0.0, "dhs", dtype)
    weights = {n: np.asarray(params[n]) for n in WEIGHT_NAMES}
    totals = {
        n: np.zeros_like(np.asarray(params[n[1:]]), dtype=dtype) for n in variant.grad_names()
    }
    dxs = np.zeros(np.shape(xs), dtype=dtype)
    for t in range(T - 1, -1, -1):
        dx, dh, dc, pgrads = _step_backward(results[t], weights, dh + per_step[t], dc, variant)
        dxs[t] = dx
        for k, v in pgrads.items():
            totals[k] = totals[k] + v
    grads = {
        "dxs": dxs,
        "dh0": _reduce_to(dh, np.shape(h0)),
        "dc0": _reduce_to(dc, np.shape(c0)),
        **totals,
    }
    return Grads(grads=grads, h_next=last.h_next, c_next=last.c_next)


# --------------------------------------------------------------------------- gradient check


@dataclass(frozen=True)
class CheckRow:
    """The numerical check of one gradient array.

    ``rel_error`` = ||analytic - numerical|| / (||analytic|| + ||numerical||) over the
    checked entries (0 when both are 0); ``max_abs_error`` the largest entry difference.
    """

    name: str
    rel_error: float
    max_abs_error: float
    checked: int
    size: int


def numerical_gradient(
    loss: Callable[[], float], arr: Array, eps: float = 1e-6, indices: Any = None
) -> Array:
    """Central differences ``(L(a + eps) - L(a - eps)) / (2 eps)`` for each entry of ``arr``.

    ``arr`` is perturbed in place and restored; ``loss`` must read it. ``indices`` (flat)
    restricts the entries; the others are left 0.
    """
    grad = np.zeros(arr.shape, dtype=np.float64)
    flat = arr.reshape(-1)  # a view: arr must be contiguous
    flat_grad = grad.reshape(-1)
    entries = range(flat.size) if indices is None else indices
    for k in entries:
        old = flat[k]
        flat[k] = old + eps
        plus = loss()
        flat[k] = old - eps
        minus = loss()
        flat[k] = old
        flat_grad[k] = (plus - minus) / (2.0 * eps)
    return grad


def _rel_error(a: Array, n: Array) -> tuple[float, float]:
    diff = np.abs(a - n)
    denom = float(np.linalg.norm(a) + np.linalg.norm(n))
    rel = float(np.linalg.norm(a - n)) / denom if denom > 0 else 0.0
    return rel, float(diff.max()) if diff.size else 0.0


def gradient_check(
    x: Array,
    h: Array,
    c: Array,
    params: Mapping[str, Array],
    dh_next: Array | None = None,
    dc_next: Array | None = None,
    dhs: Array | None = None,
    sequence: bool = False,
    eps: float = CHECK_EPS,
    max_entries: int | None = None,
    seed: int = 0,
    clip: float | None = None,
    input_forget: bool = False,
) -> list[CheckRow]:
    """Compare the analytic gradients with central differences, in float64, per array.

    ``x`` is ``x_t`` for one step, or ``xs`` (T, ...) with ``sequence=True``; ``params`` may
    hold the peepholes ``Pi, Pf, Po``, and ``clip``/``input_forget`` set the other variants
    (a pre-activation within ``eps`` of the clip's boundary makes its numbers meaningless). With
    ``max_entries``, arrays larger than that are checked on that many random entries
    (``seed``), the rest of the array is skipped. Returns one :class:`CheckRow` per gradient.
    """
    arrays: dict[str, Array] = {
        ("xs" if sequence else "x_t"): np.array(x, dtype=np.float64),
        ("h0" if sequence else "h_prev"): np.array(h, dtype=np.float64),
        ("c0" if sequence else "c_prev"): np.array(c, dtype=np.float64),
    }
    peep = PEEPHOLE_NAMES if any(k in params for k in PEEPHOLE_NAMES) else ()
    arrays.update({n: np.array(params[n], dtype=np.float64) for n in PARAM_NAMES + peep})
    variant_kw: dict[str, Any] = {"clip": clip, "input_forget": input_forget}
    variant = Variant.of(arrays, clip, input_forget)
    names = list(arrays)
    xk, hk, ck = names[:3]

    def up(v: Array | None) -> Array | None:
        return None if v is None else np.asarray(v, dtype=np.float64)

    dh, dc, dhs64 = up(dh_next), up(dc_next), up(dhs)

    cell: dict[str, Any] = {n: arrays[n] for n in PARAM_NAMES + peep}

    def analytic() -> Grads:
        if sequence:
            return lstm_sequence_backward(
                arrays[xk], arrays[hk], arrays[ck], arrays, dh, dc, dhs64, **variant_kw
            )
        return lstm_step_backward(
            arrays[xk],
            arrays[hk],
            arrays[ck],
            **cell,
            dh_next=dh,
            dc_next=dc,
            **variant_kw,
        )

    g = analytic()
    shape = g.h_next.shape
    w_h = np.broadcast_to(np.ones(shape) if dh is None else dh, shape)
    w_c = np.broadcast_to(np.zeros(shape) if dc is None else dc, shape)

    def loss() -> float:
        if sequence:
            results = _forward(arrays[xk], arrays[hk], arrays[ck], arrays, variant)
            total = float(np.sum(w_h * results[-1].h_next) + np.sum(w_c * results[-1].c_next))
            if dhs64 is not None:
                hs = np.stack([r.h_next for r in results])
                total += float(np.sum(np.broadcast_to(dhs64, hs.shape) * hs))
            return total
        r = variant.step(arrays[xk], arrays[hk], arrays[ck], arrays)
        return float(np.sum(w_h * r.h_next) + np.sum(w_c * r.c_next))

    rng = np.random.default_rng(seed)
    rows = []
    for name in names:
        arr = arrays[name]
        idx = None
        if max_entries is not None and arr.size > max_entries:
            idx = np.sort(rng.choice(arr.size, size=max_entries, replace=False))
        num = numerical_gradient(loss, arr, eps, idx)
        ana = np.asarray(g.grads["d" + name], dtype=np.float64)
        if idx is not None:
            ana, num = ana.reshape(-1)[idx], num.reshape(-1)[idx]
        rel, max_abs = _rel_error(ana, num)
        rows.append(
            CheckRow("d" + name, rel, max_abs, arr.size if idx is None else len(idx), arr.size)
        )
    return rows
