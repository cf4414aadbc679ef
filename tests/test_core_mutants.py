"""Tests written to kill surviving mutants of lstm_cli/core.py (docs/mutation.md): the
overflow path of a pre-activation, and the peephole checks' messages."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_cli.core import lstm_step_variant, project

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
