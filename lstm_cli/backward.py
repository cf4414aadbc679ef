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

Every function takes the cell as one :class:`~lstm_cli.params.LSTMParams`; the variant in use
is ``cell.variant``.

Gradients are named after their array with a ``d`` prefix (``dx_t``, ``dh_prev``, ``dWf``, ...)
and have its shape: a 1-D ``h_prev``/``c_prev`` used for every row of a batch gets the sum
over the batch. Weight and bias gradients are summed over the batch (and over time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core import Array, StepResult
from .params import PARAM_NAMES, LSTMParams, Variant

STEP_GRAD_NAMES = ("dx_t", "dh_prev", "dc_prev") + tuple("d" + n for n in PARAM_NAMES)
SEQUENCE_GRAD_NAMES = ("dxs", "dh0", "dc0") + tuple("d" + n for n in PARAM_NAMES)
CHECK_EPS = 1e-6  # the gradient check's step, in float64
CHECK_TOL = 1e-6  # the gradient check's default relative tolerance
ROUNDOFF_SAFETY = 10.0  # the roundoff of one central difference, in units of u * scale / eps


@dataclass(frozen=True)
class Grads:
    """Gradients by name (``dx_t`` ... or ``dxs`` ...), each with its array's shape.

    ``h_next`` and ``c_next`` are the forward result (the final state for a sequence), so
    a caller never needs a second forward pass.
    """

    grads: dict[str, Array]
    h_next: Array
    c_next: Array
    loss: float | None = None  # the value of the loss these are the gradients of

    def __getitem__(self, name: str) -> Array:
        return self.grads[name]


def _grad_names(cell: LSTMParams) -> tuple[str, ...]:
    """The parameter gradients' names: ``dWf ... dbc``, then ``dPi, dPf, dPo`` with peepholes."""
    return tuple("d" + n for n in cell.all_arrays())


def _inside(z: Array, clip: float | None) -> Array | float:
    """The clip's derivative at the clipped pre-activation ``z``: 1 strictly inside
    (-clip, clip), 0 where the clip is active (see the module docstring); 1 without a clip."""
    if clip is None:
        return 1.0
    return (np.abs(z) < clip).astype(z.dtype)


def _sum_batch(a: Array) -> Array:
    return a.reshape(-1, a.shape[-1]).sum(axis=0)  # (H,)


def _pre_activation_grads(
    r: StepResult, variant: Variant, dh_next: Array, dc_next: Array
) -> tuple[dict[str, Array], Array]:
    """``(z', c_next')``: the gradients of the four pre-activations ``z_i, z_f, z_o, z_c``
    and of ``c_next`` (upstream plus the path through h_next and, with peepholes, z_o)."""
    clip = variant.clip
    tanh_c = np.tanh(r.c_next)
    do = dh_next * tanh_c
    dz_o = do * r.o_t * (1.0 - r.o_t) * _inside(r.z_o, clip)
    dc: Array = dc_next + dh_next * r.o_t * (1.0 - tanh_c**2)
    if variant.Po is not None:
        dc = dc + dz_o * variant.Po  # z_o = ... + Po * c_next
    df = dc * r.c_prev
    di = dc * r.c_t_candidate
    dg = dc * r.i_t
    if variant.input_forget:  # f_t = 1 - i_t: the forget path flows into i_t
        di = di - df
        dz_f = np.zeros_like(df)
    else:
        dz_f = df * r.f_t * (1.0 - r.f_t) * _inside(r.z_f, clip)
    dz: dict[str, Array] = {
        "i": di * r.i_t * (1.0 - r.i_t) * _inside(r.z_i, clip),
        "f": dz_f,
        "o": dz_o,
        "c": dg * (1.0 - r.c_t_candidate**2) * _inside(r.z_c, clip),
    }
    return dz, dc


def _step_backward(
    r: StepResult, cell: LSTMParams, dh_next: Array, dc_next: Array
) -> tuple[Array, Array, Array, dict[str, Array]]:
    """Backward through one (possibly batched) step of ``cell`` whose forward pass is ``r``.

    Returns ``(dx_t, dh_prev, dc_prev, param_grads)`` with the batch shape of ``r``
    (h_prev/c_prev as broadcast to the batch) and the parameter gradients summed over it.
    """
    H = r.h_next.shape[-1]
    dz, dc = _pre_activation_grads(r, cell.variant, dh_next, dc_next)
    dc_prev = dc * r.f_t
    u2 = r.u.reshape(-1, r.u.shape[-1])  # (B, H + F); B = 1 without a batch
    grads: dict[str, Array] = {}
    du = np.zeros_like(r.u)
    for gate, dz_g in dz.items():
        dz2 = dz_g.reshape(-1, H)  # (B, H)
        grads["dW" + gate] = dz2.T @ u2  # (H, H + F)
        grads["db" + gate] = dz2.sum(axis=0)  # (H,)
        du = du + dz_g @ getattr(cell, "W" + gate)  # (B, H + F)
    P = cell.peepholes
    if P is not None:
        dc_prev = dc_prev + dz["i"] * P["Pi"] + dz["f"] * P["Pf"]
        grads["dPi"] = _sum_batch(dz["i"] * r.c_prev)  # (H,)
        grads["dPf"] = _sum_batch(dz["f"] * r.c_prev)
        grads["dPo"] = _sum_batch(dz["o"] * r.c_next)
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
    cell: LSTMParams,
    x_t: Array,
    h_prev: Array,
    c_prev: Array,
    dh_next: Array | None = None,
    dc_next: Array | None = None,
) -> Grads:
    """Gradients of one step of ``cell`` (its variant included) from ``x_t``, ``h_prev``,
    ``c_prev`` (shapes as for :meth:`~lstm_cli.params.LSTMParams.step`).

    Args:
        dh_next: upstream gradient of h_next, (H,) or (B, H); default ones.
        dc_next: upstream gradient of c_next, (H,) or (B, H); default zeros.

    Returns:
        :class:`Grads` with ``dx_t`` (F,) or (B, F), ``dh_prev`` and ``dc_prev`` shaped like
        the given ``h_prev``/``c_prev``, ``dWf, dWi, dWo, dWc`` (H, H + F),
        ``dbf, dbi, dbo, dbc`` (H,), and ``dPi, dPf, dPo`` (H,) for a cell with peepholes.
        With ``input_forget``, ``dWf`` and ``dbf`` are zero (Wf and bf are not used).
    """
    r = cell.step(x_t, h_prev, c_prev)
    shape, dtype = r.h_next.shape, r.h_next.dtype
    dh = _upstream(dh_next, shape, 1.0, "dh_next", dtype)
    dc = _upstream(dc_next, shape, 0.0, "dc_next", dtype)
    dx, dh_prev, dc_prev, pgrads = _step_backward(r, cell, dh, dc)
    grads = {
        "dx_t": dx,
        "dh_prev": _reduce_to(dh_prev, np.shape(h_prev)),
        "dc_prev": _reduce_to(dc_prev, np.shape(c_prev)),
    }
    grads.update({n: pgrads[n] for n in _grad_names(cell)})
    loss = float(np.sum(dh * r.h_next) + np.sum(dc * r.c_next))
    return Grads(grads=grads, h_next=r.h_next, c_next=r.c_next, loss=loss)


def lstm_sequence_forward(cell: LSTMParams, xs: Array, h0: Array, c0: Array) -> list[StepResult]:
    """Run ``cell`` over ``xs`` (T, F) or (T, B, F) from ``h0``, ``c0``; one result per step.

    A plain loop over the cell's step (its variant included).
    """
    xs = np.asarray(xs)
    if xs.ndim not in (2, 3) or xs.shape[0] == 0:
        raise ValueError(f"xs must be (T, F) or (T, B, F) with T >= 1, got shape {xs.shape}")
    results = []
    h, c = np.asarray(h0), np.asarray(c0)
    for x_t in xs:
        r = cell.step(x_t, h, c)
        results.append(r)
        h, c = r.h_next, r.c_next
    return results


def lstm_sequence_backward(
    cell: LSTMParams,
    xs: Array,
    h0: Array,
    c0: Array,
    dh_next: Array | None = None,
    dc_next: Array | None = None,
    dhs: Array | None = None,
) -> Grads:
    """Backpropagation through time of ``cell`` (its variant included) over a sequence.

    Args:
        xs: inputs (T, F) or (T, B, F).
        h0, c0: the initial state, (H,) or (B, H).
        dh_next, dc_next: upstream gradients of the final h_T and c_T, (H,) or (B, H);
            defaults ones and zeros.
        dhs: upstream gradients of every step's output h_t, (T, H) or (T, B, H); default zeros.

    Returns:
        :class:`Grads` with ``dxs`` shaped like ``xs``, ``dh0``/``dc0`` like ``h0``/``c0``,
        and ``dW*``/``db*`` (and ``dP*``) summed over time and batch; ``h_next``/``c_next``
        are h_T, c_T.
    """
    results = lstm_sequence_forward(cell, xs, h0, c0)
    last = results[-1]
    shape, dtype = last.h_next.shape, last.h_next.dtype
    dh = _upstream(dh_next, shape, 1.0, "dh_next", dtype)
    dc = _upstream(dc_next, shape, 0.0, "dc_next", dtype)
    T = len(results)
    per_step = _upstream(dhs, (T,) + shape, 0.0, "dhs", dtype)
    hs = np.stack([r.h_next for r in results])
    loss = float(np.sum(per_step * hs) + np.sum(dh * last.h_next) + np.sum(dc * last.c_next))
    totals = {"d" + n: np.zeros_like(a, dtype=dtype) for n, a in cell.all_arrays().items()}
    dxs = np.zeros(np.shape(xs), dtype=dtype)
    for t in range(T - 1, -1, -1):
        dx, dh, dc, pgrads = _step_backward(results[t], cell, dh + per_step[t], dc)
        dxs[t] = dx
        for k, v in pgrads.items():
            totals[k] = totals[k] + v
    grads = {
        "dxs": dxs,
        "dh0": _reduce_to(dh, np.shape(h0)),
        "dc0": _reduce_to(dc, np.shape(c0)),
        **totals,
    }
    return Grads(grads=grads, h_next=last.h_next, c_next=last.c_next, loss=loss)


# --------------------------------------------------------------------------- gradient check


@dataclass(frozen=True)
class CheckRow:
    """The numerical check of one gradient array.

    ``rel_error`` = ||analytic - numerical|| / max(||analytic|| + ||numerical||, floor) over
    the checked entries (0 when both are 0); ``max_abs_error`` the largest entry difference.
    ``floor`` is the smallest gradient norm the check can judge at its tolerance: below it,
    the roundoff of central differences (about ``u * loss_scale / eps`` per entry, ``u`` the
    float64 unit roundoff) is larger than the tolerance allows, and the array is
    ``too_small`` to check. Such an array fails only when it differs from the numerical
    gradient by more than that roundoff: a wrong gradient, not an unresolvable one.
    """

    name: str
    rel_error: float
    max_abs_error: float
    checked: int
    size: int
    floor: float = 0.0
    too_small: bool = False
    tol: float = CHECK_TOL

    @property
    def ok(self) -> bool:
        """True when the analytic gradient agrees within the tolerance (against the floor)."""
        return self.rel_error <= self.tol


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


def check_floor(loss_scale: float, entries: int, eps: float, tol: float) -> float:
    """The smallest gradient norm (over ``entries`` entries) whose relative error central
    differences with step ``eps`` can measure to ``tol``: each entry's estimate carries a
    roundoff of about ``u * loss_scale / eps`` (the loss, computed to ``u`` of its scale, is
    divided by ``2 eps``); over ``entries`` it adds up to ``sqrt(entries)`` times that.
    A ``tol`` of 0 asks for an exact agreement: no floor."""
    u = float(np.finfo(np.float64).eps)
    noise = ROUNDOFF_SAFETY * u * loss_scale / eps * np.sqrt(max(entries, 1))
    return float(noise / tol) if tol > 0 else 0.0  # a zero tolerance asks for no floor


def _rel_error(a: Array, n: Array, floor: float = 0.0) -> tuple[float, float]:
    diff = np.abs(a - n)
    denom = max(float(np.linalg.norm(a) + np.linalg.norm(n)), floor)
    rel = float(np.linalg.norm(a - n)) / denom if denom > 0 else 0.0
    return rel, float(diff.max()) if diff.size else 0.0


@dataclass(frozen=True)
class _Problem:
    """What the gradient check differentiates, all in float64: the inputs ``x, h, c`` and the
    cell, whose arrays are the very objects in ``arrays`` (perturbing one changes the cell),
    and the upstream gradients that define the loss."""

    arrays: dict[str, Array]  # x_t, h_prev, c_prev (or xs, h0, c0), then the cell's arrays
    cell: LSTMParams
    dh_next: Array | None
    dc_next: Array | None
    dhs: Array | None
    sequence: bool

    def inputs(self) -> tuple[Array, Array, Array]:
        x, h, c = list(self.arrays.values())[:3]
        return x, h, c

    def analytic(self) -> Grads:
        """The backward pass under check."""
        x, h, c = self.inputs()
        if self.sequence:
            return lstm_sequence_backward(self.cell, x, h, c, self.dh_next, self.dc_next, self.dhs)
        return lstm_step_backward(self.cell, x, h, c, self.dh_next, self.dc_next)

    def loss(self, shape: tuple[int, ...], scale: bool = False) -> Callable[[], float]:
        """``L = sum(dh_next * h_T) + sum(dc_next * c_T) [+ sum_t sum(dhs[t] * h_t)]`` as a
        function of the arrays' current values; ``shape`` is h_next's. With ``scale``, the
        sum of the terms' absolute values instead (the size the loss is rounded at)."""
        w_h = np.broadcast_to(np.ones(shape) if self.dh_next is None else self.dh_next, shape)
        w_c = np.broadcast_to(np.zeros(shape) if self.dc_next is None else self.dc_next, shape)
        x, h, c = self.inputs()
        f = np.abs if scale else np.asarray

        def loss() -> float:
            if not self.sequence:
                r = self.cell.step(x, h, c)
                return float(np.sum(f(w_h * r.h_next)) + np.sum(f(w_c * r.c_next)))
            steps = lstm_sequence_forward(self.cell, x, h, c)
            last = steps[-1]
            total = float(np.sum(f(w_h * last.h_next)) + np.sum(f(w_c * last.c_next)))
            if self.dhs is not None:
                hs = np.stack([r.h_next for r in steps])
                total += float(np.sum(f(np.broadcast_to(self.dhs, hs.shape) * hs)))
            return total

        return loss


def _float64(a: Array | None) -> Array | None:
    return None if a is None else np.asarray(a, dtype=np.float64)


def _problem(
    cell: LSTMParams, xhc: Sequence[Array], upstream: Sequence[Array | None], sequence: bool
) -> _Problem:
    """Float64 copies of the inputs and of the cell's arrays (never the caller's: the check
    perturbs them in place), and the upstream gradients in float64."""
    names = ("xs", "h0", "c0") if sequence else ("x_t", "h_prev", "c_prev")
    inputs = {n: np.array(a, dtype=np.float64) for n, a in zip(names, xhc, strict=True)}
    own = {n: np.array(a, dtype=np.float64) for n, a in cell.all_arrays().items()}
    dh, dc, dhs = (_float64(u) for u in upstream)
    return _Problem({**inputs, **own}, cell.with_arrays(own), dh, dc, dhs, sequence)


def _sample(size: int, max_entries: int | None, rng: np.random.Generator) -> Array | None:
    """``max_entries`` sorted random flat indices into an array of ``size``, or None (all)."""
    if max_entries is None or size <= max_entries:
        return None
    return np.sort(rng.choice(size, size=max_entries, replace=False))


def _check_array(
    name: str,
    numerical: Array,
    analytic: Array,
    idx: Array | None,
    floor_of: Callable[[int], float],
) -> CheckRow:
    """One :class:`CheckRow`: the analytic gradient of array ``name`` against central
    differences, on the flat entries ``idx`` (all when None); ``floor_of(entries)`` is the
    floor for that many entries."""
    ana = np.asarray(analytic, dtype=np.float64)
    num = numerical
    if idx is not None:
        ana, num = ana.reshape(-1)[idx], num.reshape(-1)[idx]
    checked = numerical.size if idx is None else len(idx)
    floor = floor_of(checked)
    rel, max_abs = _rel_error(ana, num, floor)
    small = float(np.linalg.norm(ana) + np.linalg.norm(num)) < floor
    return CheckRow("d" + name, rel, max_abs, checked, numerical.size, floor, small)


def gradient_check(  # noqa: PLR0913 -- public API: the backward pass's arguments and the check's
    cell: LSTMParams,
    x: Array,
    h: Array,
    c: Array,
    dh_next: Array | None = None,
    dc_next: Array | None = None,
    dhs: Array | None = None,
    sequence: bool = False,
    eps: float = CHECK_EPS,
    max_entries: int | None = None,
    seed: int = 0,
    tol: float = CHECK_TOL,
) -> list[CheckRow]:
    """Compare the analytic gradients of ``cell`` (its variant included) with central
    differences, in float64, per array.

    ``x`` is ``x_t`` for one step, or ``xs`` (T, ...) with ``sequence=True``. With a clip, a
    pre-activation within ``eps`` of the clip's boundary makes the numbers meaningless. With
    ``max_entries``, arrays larger than that are checked on that many random entries
    (``seed``), the rest of the array is skipped. Relative errors are measured against
    ``max(norm, floor)`` with the floor of :func:`check_floor` (from ``eps``, the loss's
    scale and ``tol``). Returns one :class:`CheckRow` per gradient.
    """
    problem = _problem(cell, (x, h, c), (dh_next, dc_next, dhs), sequence)
    g = problem.analytic()
    loss = problem.loss(g.h_next.shape)
    scale = problem.loss(g.h_next.shape, scale=True)()
    rng = np.random.default_rng(seed)
    rows = []
    for name, arr in problem.arrays.items():
        idx = _sample(arr.size, max_entries, rng)
        numerical = numerical_gradient(loss, arr, eps, idx)
        row = _check_array(
            name, numerical, g["d" + name], idx, lambda k: check_floor(scale, k, eps, tol)
        )
        rows.append(dataclasses.replace(row, tol=tol))
    return rows
