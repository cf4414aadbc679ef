"""The LSTM cell's equations in pure NumPy: no files, no JSON, no terminal.

Notation (the seed notebook's; ``docs/design.md`` says where each equation lives)::

    u      = concat(h_prev, x_t)                 # hidden FIRST, then input: (H + F,)
    i_t    = sigmoid(Wi @ u + bi)                # input gate
    f_t    = sigmoid(Wf @ u + bf)                # forget gate
    o_t    = sigmoid(Wo @ u + bo)                # output gate
    c_t_candidate = tanh(Wc @ u + bc)            # cell candidate ("g" in PyTorch)
    c_next = f_t * c_prev + i_t * c_t_candidate
    h_next = o_t * tanh(c_next)

Shapes: F input features, H hidden units, optional batch B in front of every state.
``W*`` are (H, H + F), ``b*`` are (H,), ``x_t`` is (F,) or (B, F), ``h``/``c`` are (H,) or (B, H).
Everything is computed in the floating dtype of the arguments (float32 stays float32).

Variants that ONNX's LSTM defines, each off by default (then the equations above hold exactly)::

    peepholes Pi, Pf, Po (H,):   z_i += Pi * c_prev;  z_f += Pf * c_prev;  z_o += Po * c_next
    clip C > 0:                  every pre-activation z_* is clipped to [-C, C] before its
                                 sigmoid/tanh (c_next itself and tanh(c_next) are not clipped)
    input_forget (coupled):      f_t = 1 - i_t  (Wf and bf are not used; z_f is reported as -z_i)

The order is ONNX Runtime's: peephole term, then bias, then clip, then the activation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[np.floating]
else:  # numpy.typing costs start-up; annotations here are strings, never evaluated
    Array = np.ndarray


def sigmoid(z: Array) -> Array:
    """Logistic sigmoid ``1 / (1 + exp(-z))``, elementwise, same shape and dtype as ``z``.

    ``exp(-z)`` overflows to ``inf`` for very negative ``z`` (below about -709 in float64,
    -88 in float32); ``1 / (1 + inf)`` is then exactly the right limit, 0. The overflow is
    expected, so its RuntimeWarning is silenced; the result is finite for every finite ``z``.
    """
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def project(u: Array, W: Array, b: Array) -> Array:
    """Pre-activations ``u @ W.T + b``: (..., K) @ (N, K).T + (N,) -> (..., N).

    One matrix product. Only when it overflows (huge inputs or weights: a product or a sum
    beyond the dtype's range, which can even give ``inf - inf = nan``) is it recomputed on
    operands scaled by powers of two, so an overflowing pre-activation becomes +-inf with the
    right sign (and the gates saturate to exactly 0 or 1) instead of NaN.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        z = u @ W.T + b
    if np.isfinite(z).all():
        return z
    # Entries of u too small for any of their products to overflow (even all K summed) are
    # projected as they are, the others rescaled: scaled together with the large entries of
    # their row, small ones would underflow to 0, and be lost when the large terms cancel.
    with np.errstate(over="ignore", invalid="ignore"):
        small = np.abs(u) * (2 * u.shape[-1] * np.max(np.abs(W))) <= np.finfo(z.dtype).max
        z = _project_scaled(np.where(small, 0, u), W)
        if small.any():  # (never with an infinite weight, where 0 * inf would be nan)
            z = z + np.where(small, u, 0) @ W.T  # a finite term: never inf - inf
        z = z + b  # may overflow to +-inf
    return z.astype(u.dtype, copy=False)


def _project_scaled(u: Array, W: Array) -> Array:
    """``u @ W.T``, (..., K) @ (N, K).T -> (..., N), without overflowing on the way: +-inf
    only where the result itself is beyond the range."""
    # Scale each row of u and of W by a power of two (exact) so that every |entry| < 1;
    # the scaled product is then bounded by K and cannot overflow. Scale back after.
    eu = np.frexp(np.max(np.abs(u), axis=-1, keepdims=True))[1]  # (..., 1) exponents
    ew = np.frexp(np.max(np.abs(W), axis=-1))[1]  # (N,)
    with np.errstate(over="ignore", invalid="ignore"):
        z = np.ldexp(u, -eu) @ np.ldexp(W, -ew[:, None]).T  # (..., N), finite
        return np.ldexp(np.ldexp(z, eu), ew)  # may overflow to +-inf; never inf - inf


class StepResult(NamedTuple):
    """Every intermediate of one LSTM step; leading batch axis (B,) when the step was batched.

    A NamedTuple, like NumPy's result types (cheap to define: start-up time).

    Attributes (shapes without batch):
        x_t (F,), h_prev (H,), c_prev (H,): the inputs (h/c broadcast to the batch).
        u (H + F,): ``concat(h_prev, x_t)``.
        z_i, z_f, z_o, z_c (H,): pre-activations ``W* @ u + b*``: exactly what enters each
            activation, so with the variants on they include the peephole terms and the clip
            (and with input_forget, z_f is -z_i, whose sigmoid is 1 - i_t).
        i_t, f_t, o_t (H,): the input, forget and output gates, in (0, 1).
        c_t_candidate (H,): the cell candidate ``tanh(z_c)``, in (-1, 1).
        c_next, h_next (H,): the new cell and hidden state.
    """

    x_t: Array
    h_prev: Array
    c_prev: Array
    u: Array
    z_i: Array
    z_f: Array
    z_o: Array
    z_c: Array
    i_t: Array
    f_t: Array
    o_t: Array
    c_t_candidate: Array
    c_next: Array
    h_next: Array

    def __repr__(self) -> str:
        from .reprs import shape, short_repr

        return short_repr(
            "StepResult",
            {"x_t": shape(self.x_t), "h_next": shape(self.h_next), "dtype": self.h_next.dtype},
        )

    def _repr_html_(self) -> str:
        """The gate table of the terminal (batch row 0 of a batch), for notebooks."""
        from .reprs import gate_table_html

        batched = self.h_next.ndim == 2
        columns = {k: (v[0] if batched else v) for k, v in self.arrays().items()}
        title = "Gate activations" + (f", batch row 0 of {self.h_next.shape[0]}" if batched else "")
        return gate_table_html(columns, title)

    def arrays(self) -> dict[str, Array]:
        """All arrays of the result by name, in the order of the equations."""
        return self._asdict()

    @property
    def gates(self) -> dict[str, Array]:
        """The four activations: ``i_t, f_t, o_t, c_t_candidate``."""
        return {
            "i_t": self.i_t,
            "f_t": self.f_t,
            "o_t": self.o_t,
            "c_t_candidate": self.c_t_candidate,
        }

    @property
    def pre_activations(self) -> dict[str, Array]:
        """The four pre-activations ``z_i, z_f, z_o, z_c`` (``W* @ u + b*``)."""
        return {"z_i": self.z_i, "z_f": self.z_f, "z_o": self.z_o, "z_c": self.z_c}


def _check_shapes(
    x_t: Array, h_prev: Array, c_prev: Array, weights: dict[str, Array], biases: dict[str, Array]
) -> None:
    """Raise ValueError naming the first array whose shape disagrees with the others."""
    if x_t.ndim not in (1, 2):
        raise ValueError(f"x_t must be (F,) or (B, F), got shape {x_t.shape}")
    n_features = x_t.shape[-1]
    n_hidden = weights["Wf"].shape[0] if weights["Wf"].ndim == 2 else -1
    expected_w = (n_hidden, n_hidden + n_features)
    for name, w in weights.items():
        if w.shape != expected_w:
            raise ValueError(f"{name} must have shape {expected_w} (H, H + F), got {w.shape}")
    for name, b in biases.items():
        if b.shape != (n_hidden,):
            raise ValueError(f"{name} must have shape {(n_hidden,)} (H,), got {b.shape}")
    batch = x_t.shape[:-1]
    for name, s in (("h_prev", h_prev), ("c_prev", c_prev)):
        if s.shape not in ((n_hidden,), batch + (n_hidden,)):
            want = f"{(n_hidden,)}" + (f" or {batch + (n_hidden,)}" if batch else "")
            raise ValueError(f"{name} must have shape {want}, got {s.shape}")


# --------------------------------------------------------------------------- variants
#
# Small functions so that a sequence loop can reuse exactly the same variant math.


def clip_preactivation(z: Array, clip: float | None) -> Array:
    """ONNX's cell clip: ``z`` bounded to [-clip, clip]; ``z`` itself when ``clip`` is None."""
    return z if clip is None else np.clip(z, -clip, clip)


def add_peephole(z: Array, p: Array | None, c: Array) -> Array:
    """A peephole connection: ``z + p * c`` with ``p`` (H,) and ``c`` (H,) or (B, H);
    ``z`` itself when ``p`` is None."""
    return z if p is None else z + p * c


def coupled_forget_gate(i_t: Array) -> Array:
    """ONNX's ``input_forget``: the forget gate coupled to the input gate, ``1 - i_t``."""
    return 1.0 - i_t


def check_variant(
    n_hidden: int,
    peepholes: dict[str, Array | None],
    clip: float | None,
    input_forget: bool,
) -> None:
    """Raise ValueError for peepholes that are not all (H,) or all absent, or a bad clip."""
    given = [k for k, p in peepholes.items() if p is not None]
    if given and len(given) != len(peepholes):
        missing = [k for k in peepholes if k not in given]
        raise ValueError(f"peepholes need all of Pi, Pf, Po; missing {', '.join(missing)}")
    for name in given:
        shape = np.shape(np.asarray(peepholes[name]))
        if shape != (n_hidden,):
            raise ValueError(f"{name} must have shape {(n_hidden,)} (H,), got {shape}")
    if clip is not None and not (np.isfinite(clip) and clip > 0):
        raise ValueError(f"clip must be a finite number > 0, got {clip}")
    if not isinstance(input_forget, (bool, np.bool_)):
        raise ValueError(f"input_forget must be true or false, got {input_forget!r}")


def lstm_step_detailed(  # noqa: PLR0913 (the seed notebook's public signature)
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
) -> StepResult:
    """One LSTM step with every intermediate (see :class:`StepResult`).

    Same arguments as :func:`lstm_step`. A 1-D ``h_prev``/``c_prev`` with a batched ``x_t``
    is used for every row of the batch. (ONNX's variants: :func:`lstm_step_variant`.)
    """
    return lstm_step_variant(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)


def lstm_step_variant(  # noqa: PLR0913 (the seed's signature plus the variants)
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
    *,
    Pi: Array | None = None,
    Pf: Array | None = None,
    Po: Array | None = None,
    clip: float | None = None,
    input_forget: bool = False,
) -> StepResult:
    """:func:`lstm_step_detailed` with ONNX's variants (see the module docstring): peephole
    weights ``Pi, Pf, Po`` (H,) (all three or none), ``clip`` (> 0) and ``input_forget``.
    With their defaults it is exactly :func:`lstm_step_detailed`: the seed's equations.
    """
    x_t, h_prev, c_prev = (np.asarray(a) for a in (x_t, h_prev, c_prev))
    weights = dict(zip(("Wf", "Wi", "Wo", "Wc"), map(np.asarray, (Wf, Wi, Wo, Wc)), strict=True))
    biases = dict(zip(("bf", "bi", "bo", "bc"), map(np.asarray, (bf, bi, bo, bc)), strict=True))
    _check_shapes(x_t, h_prev, c_prev, weights, biases)
    n_hidden = biases["bf"].shape[0]
    peep = {"Pi": Pi, "Pf": Pf, "Po": Po}
    check_variant(n_hidden, peep, clip, input_forget)
    Pi, Pf, Po = (None if p is None else np.asarray(p) for p in (Pi, Pf, Po))
    state_shape = x_t.shape[:-1] + (n_hidden,)  # (H,) or (B, H)
    h_prev = np.broadcast_to(h_prev, state_shape)
    c_prev = np.broadcast_to(c_prev, state_shape)

    u = np.concatenate((h_prev, x_t), axis=-1)  # (B, H + F): hidden first, as in the seed
    # One fused projection, then split (gate blocks in the order of the equations: i, f, o, c).
    W = np.concatenate((weights["Wi"], weights["Wf"], weights["Wo"], weights["Wc"]))  # (4H, H+F)
    b = np.concatenate((biases["bi"], biases["bf"], biases["bo"], biases["bc"]))  # (4H,)
    z = project(u, W, b)  # (B, 4H)
    z_i, z_f, z_o, z_c = np.split(z, 4, axis=-1)  # each (B, H)

    if Pi is None and clip is None and not input_forget:  # the seed's equations, exactly
        i_t = sigmoid(z_i)  # input gate
        f_t = sigmoid(z_f)  # forget gate
        o_t = sigmoid(z_o)  # output gate
        c_t_candidate = np.tanh(z_c)  # cell candidate
        c_next = f_t * c_prev + i_t * c_t_candidate
        h_next = o_t * np.tanh(c_next)
        return StepResult(
            x_t, h_prev, c_prev, u, z_i, z_f, z_o, z_c, i_t, f_t, o_t, c_t_candidate, c_next, h_next
        )
    return _step_with_variants(x_t, h_prev, c_prev, u, z, (Pi, Pf, Po), clip, input_forget)


def _step_with_variants(
    x_t: Array,
    h_prev: Array,
    c_prev: Array,
    u: Array,
    z: Array,
    peepholes: tuple[Array | None, Array | None, Array | None],
    clip: float | None,
    input_forget: bool,
) -> StepResult:
    """ONNX's variants, in ONNX Runtime's order: peephole, clip, activation; ``z`` (B, 4H) is
    the projection with gate blocks i, f, o, c."""
    Pi, Pf, Po = peepholes
    z_i, z_f, z_o, z_c = np.split(z, 4, axis=-1)  # each (B, H)
    z_i = clip_preactivation(add_peephole(z_i, Pi, c_prev), clip)
    i_t = sigmoid(z_i)
    if input_forget:
        z_f, f_t = -z_i, coupled_forget_gate(i_t)
    else:
        z_f = clip_preactivation(add_peephole(z_f, Pf, c_prev), clip)
        f_t = sigmoid(z_f)
    z_c = clip_preactivation(z_c, clip)
    c_t_candidate = np.tanh(z_c)
    c_next = f_t * c_prev + i_t * c_t_candidate
    z_o = clip_preactivation(add_peephole(z_o, Po, c_next), clip)  # o peeks at c_next
    o_t = sigmoid(z_o)
    h_next = o_t * np.tanh(c_next)
    return StepResult(
        x_t, h_prev, c_prev, u, z_i, z_f, z_o, z_c, i_t, f_t, o_t, c_t_candidate, c_next, h_next
    )


def lstm_step(  # noqa: PLR0913 (the seed notebook's public signature)
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
) -> tuple[Array, Array]:
    """Perform a single LSTM step (the seed notebook's function, without its debug print).

    Args:
        x_t: input at step t, (F,) or (B, F).
        h_prev: previous hidden state, (H,) or (B, H).
        c_prev: previous cell state, (H,) or (B, H).
        Wf, Wi, Wo, Wc: forget, input, output and candidate weights, each (H, H + F),
            acting on ``concat(h_prev, x_t)``.
        bf, bi, bo, bc: the matching biases, each (H,).

    Returns:
        ``(h_next, c_next)``, each (H,) or (B, H).
    """
    r = lstm_step_detailed(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)
    return r.h_next, r.c_next
