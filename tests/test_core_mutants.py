"""Tests written to kill surviving mutants of lstm_cli/core.py (docs/mutation.md): the
overflow path of a pre-activation, and the peephole checks' messages."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from lstm_cli import LSTMParams, run_sequence
from lstm_cli.core import lstm_step, lstm_step_variant, project

rng = np.random.default_rng(5)
F, H = 3, 2
W = {k: rng.standard_normal((H, H + F)) for k in ("Wf", "Wi", "Wo", "Wc")}
B = {k: rng.standard_normal(H) for k in ("bf", "bi", "bo", "bc")}
P = {k: rng.standard_normal(H) for k in ("Pi", "Pf", "Po")}


def test_an_overflowing_pre_activation_is_a_signed_inf_without_warnings():
    u = np.array([[1e308, 1e308, -1e308], [1.0, 2.0, 3.0]])
    w = np.array([[1e10, 1e10, 0.0], [-1e10, -1e10, 0.0], [1.0, 0.0, -1.0]])
    b = np.array([0.0, 0.0, 0.5])
    z = project(u, w, b)  # warnings are errors in the test run
    assert z.shape == (2, 3)
    assert z[0, 0] == np.inf and z[0, 1] == -np.inf
    assert z[0, 2] == np.inf  # 1e308 - (-1e308) overflows with the sign kept
    np.testing.assert_allclose(z[1], u[1] @ w.T + b)
    np.testing.assert_array_equal(project(u[1:], w, b), u[1:] @ w.T + b)


def test_a_step_with_huge_inputs_saturates_to_finite_outputs():
    x = np.full(F, 1e305)
    r = lstm_step_variant(x, np.zeros(H), np.zeros(H), **W, **B)
    assert np.all(np.isfinite(r.h_next)) and np.all(np.isfinite(r.c_next))
    for gate in (r.i_t, r.f_t, r.o_t):
        assert set(np.unique(gate)) <= {0.0, 1.0}


@pytest.mark.parametrize("absent", ["Pi", "Pf", "Po"])
def test_peepholes_name_the_missing_one(absent):
    given = {k: v for k, v in P.items() if k != absent}
    with pytest.raises(ValueError, match=rf"need all of Pi, Pf, Po; missing {absent}$"):
        lstm_step_variant(np.zeros(F), np.zeros(H), np.zeros(H), **W, **B, **given)


@pytest.mark.parametrize("bad", ["Pi", "Pf", "Po"])
def test_a_peephole_of_the_wrong_shape_is_named(bad):
    arrays = {**P, bad: np.zeros(H + 1)}
    message = rf"^{bad} must have shape \({H},\) \(H,\), got \({H + 1},\)"
    with pytest.raises(ValueError, match=message):
        lstm_step_variant(np.zeros(F), np.zeros(H), np.zeros(H), **W, **B, **arrays)


def test_an_overflowing_float32_pre_activation_stays_float32():
    u = np.array([3e38, 3e38], dtype=np.float32)
    w = np.array([[10.0, 10.0]], dtype=np.float32)
    z = project(u, w, np.zeros(1, dtype=np.float32))
    assert z.dtype == np.float32 and z[0] == np.inf


# --------------------------------------------------------------------------- overflow, exactly


def exact_project(u: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``u @ w.T + b`` in exact rational arithmetic, rounded once to float64 (+-inf beyond)."""

    def rounded(q: Fraction) -> float:
        try:
            return float(q)
        except OverflowError:
            return float("inf") if q > 0 else float("-inf")

    rows = np.atleast_2d(u)
    z = [
        [rounded(sum((Fraction(a) * Fraction(c) for a, c in zip(r, wn, strict=True)), Fraction(bn)))
         for wn, bn in zip(w, b, strict=True)]
        for r in rows
    ]  # fmt: skip
    return np.array(z).reshape(u.shape[:-1] + (w.shape[0],))


BIG = np.finfo(np.float64).max
OVERFLOWING = {
    # (values whose products are exact, so that a cancellation is exact in floating point)
    # the large terms cancel; what is left is the small entries' product
    "cancelling inputs": (
        np.array([0.75, -0.5, BIG, BIG]),
        np.array([[1.0, 2.0, 4.0, -4.0], [-3.0, 0.5, 1.0, -1.0], [1.0, 1.0, 1.0, 0.0]]),
    ),
    # a batch row far below the largest one, with weights that cancel on it
    "rows of different sizes": (
        np.array([[2.0**1023, 0.0, 0.0], [2.0**26, 2.0**26, 3 * 2.0**26]]),
        np.array([[2.0**996, -(2.0**996), 1.0], [2.0, 0.0, -1.0]]),
    ),
    # a row of weights far below the largest one, on inputs that cancel but one
    "weights of different sizes": (
        np.array([2.0**1023, 2.0**1023, 2.0**30]),
        np.array([[2.0**996, 0.0, 0.0], [1.0, -1.0, 1.0], [0.5, -0.5, -3.0], [0.0, 0.0, 1.0]]),
    ),
    # a sum that overflows on the way (0.75 max + 0.75 max - 0.75 max): the large entries
    # are rescaled even when each product alone is finite
    "a sum overflowing on the way": (
        np.array([1.5 * 2.0**1023, 1.5 * 2.0**1023, 1.5 * 2.0**1023]),
        np.array([[1.0, 1.0, -1.0], [0.5, 0.25, 0.25]]),
    ),
    # an entry exactly at the threshold (max / 8 with K = 4, max|W| = 1): projected as it
    # is; rescaled with the row's maximum its product with 2**-1060 would be subnormal
    "an entry at the threshold": (
        np.array([BIG / 8, BIG, BIG, 0.0]),
        np.array([[0.0, 1.0, 1.0, 0.0], [2.0**-1060, 1.0, -1.0, 0.0]]),
    ),
    # an entry just small enough to be projected as it is (|u| * 2K * max|W| <= max), whose
    # product would underflow if it were rescaled with the large ones
    "an entry at the edge": (
        np.array([2.0**1023, 2.0**1023, 2.0**21]),
        np.array([[2.0**1000, -(2.0**1000), 2.0**900], [1.0, 1.0, 1.0]]),
    ),
}


@pytest.mark.parametrize("case", OVERFLOWING)
def test_an_overflowing_projection_is_the_exact_sum_rounded(case):
    u, w = OVERFLOWING[case]
    b = np.linspace(-1.0, 1.0, w.shape[0])
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(u @ w.T + b).all()  # the plain product overflows
    want = exact_project(u, w, b)
    got = project(u, w, b)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


def test_cancelling_huge_inputs_keep_the_recurrent_term_of_a_step():
    """Two inputs at float64's maximum with weights +4 and -4 on them: the step is the step
    with those inputs at 0 (the exact answer), as ``run_sequence`` computes it too."""
    rng = np.random.default_rng(11)
    arrays = {**{k: rng.standard_normal((H, H + F)) for k in W}, **B}
    for name in W:
        arrays[name][:, H : H + 2] = [4.0, -4.0]
    x, h, c = np.array([BIG, BIG, 0.25]), rng.standard_normal(H), rng.standard_normal(H)
    x0 = np.array([0.0, 0.0, 0.25])
    r = lstm_step_variant(x, h, c, **arrays)
    u = np.concatenate([h, x])
    for gate, z in (("i", r.z_i), ("f", r.z_f), ("o", r.z_o), ("c", r.z_c)):
        w, bias = arrays["W" + gate], arrays["b" + gate]
        np.testing.assert_allclose(z, exact_project(u, w, bias), rtol=1e-15, atol=0)
    h_next, c_next = lstm_step(x, h, c, **arrays)
    want_h, want_c = lstm_step(x0, h, c, **arrays)
    np.testing.assert_allclose(h_next, want_h, rtol=1e-14, atol=0)
    np.testing.assert_allclose(c_next, want_c, rtol=1e-14, atol=0)
    seq = run_sequence(LSTMParams(**arrays), x[None], h, c)
    np.testing.assert_allclose(h_next, seq.h_next, rtol=1e-14, atol=0)


# --------------------------------------------------------------------------- refusals


def step_with(**change):
    a = {"x_t": np.zeros(F), "h_prev": np.zeros(H), "c_prev": np.zeros(H), **W, **B, **change}
    return lstm_step_variant(**a)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x_t": np.zeros((2, 2, F))}, "x_t must be (F,) or (B, F), got shape (2, 2, 3)"),
        ({"Wi": np.zeros((H, 4))}, "Wi must have shape (2, 5) (H, H + F), got (2, 4)"),
        ({"Wf": np.zeros(H + F)}, "Wf must have shape (-1, 2) (H, H + F), got (5,)"),
        ({"bo": np.zeros(3)}, "bo must have shape (2,) (H,), got (3,)"),
        ({"h_prev": np.zeros(3)}, "h_prev must have shape (2,), got (3,)"),
        ({"x_t": np.zeros((4, F)), "c_prev": np.zeros((3, H))},
         "c_prev must have shape (2,) or (4, 2), got (3, 2)"),
        ({"Pi": P["Pi"]}, "peepholes need all of Pi, Pf, Po; missing Pf, Po"),
        ({"clip": 0.0}, "clip must be a finite number > 0, got 0.0"),
        ({"clip": np.inf}, "clip must be a finite number > 0, got inf"),
        ({"input_forget": 1}, "input_forget must be true or false, got 1"),
    ],
)  # fmt: skip
def test_a_refused_step_says_why_word_for_word(change, message):
    with pytest.raises(ValueError, match="must|need") as e:
        step_with(**change)
    assert str(e.value) == message


def test_a_batched_steps_html_is_row_0s_own_table():
    """The notebook table of a batch shows row 0, as the step of that row alone."""
    from lstm_cli.reprs import gate_table_html

    rng = np.random.default_rng(3)
    x, h, c = rng.standard_normal((3, F)), rng.standard_normal((3, H)), rng.standard_normal((3, H))
    alone = step_with(x_t=x[0], h_prev=h[0], c_prev=c[0])
    assert alone._repr_html_() == gate_table_html(alone.arrays(), "Gate activations")
    page = step_with(x_t=x, h_prev=h, c_prev=c)._repr_html_()
    assert page == gate_table_html(alone.arrays(), "Gate activations, batch row 0 of 3")


def test_infinite_inputs_and_weights_give_the_plain_products_infs_and_nans():
    """inf * 0 and inf - inf are nan, as in the plain product; an infinite input or weight
    warns nothing, and a finite row against an infinite weight is a signed inf."""
    u = np.array([[np.inf, 1.0], [2.0, -3.0], [0.0, 2.0]])
    w = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, np.inf]])
    z = project(u, w, np.zeros(3))
    want = [[np.inf, np.nan, np.nan], [2.0, -3.0, -np.inf], [0.0, 2.0, np.inf]]
    np.testing.assert_array_equal(z, want)
    z = project(u[1:2], w[1:], np.zeros(2))  # finite input, an infinite weight
    np.testing.assert_array_equal(z, [[-3.0, -np.inf]])
