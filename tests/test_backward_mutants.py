"""Written from the survivors of mutation testing of lstm_cli/backward.py (docs/mutation.md):
the refusal of a misshapen upstream gradient names the right array, and central differences
with the default step are accurate."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_cli import backward
from lstm_cli.backward import (
    check_floor,
    gradient_check,
    lstm_step_backward,
    numerical_gradient,
)
from lstm_cli.params import LSTMParams

from .conftest import random_cell


@pytest.mark.parametrize("name", ["dh_next", "dc_next"])
def test_a_misshapen_upstream_is_refused_by_its_own_name(name):
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match=rf"^{name} must have shape \(2,\) .*got \(5,\)$"):
        lstm_step_backward(
            LSTMParams(**random_cell(rng, 3, 2)),
            rng.standard_normal(3),
            np.zeros(2),
            np.zeros(2),
            **{name: np.ones(5)},
        )


def test_central_differences_with_the_default_step_are_accurate_on_a_cubic():
    a = np.array([[0.5, -1.5], [2.0, 3.0]])

    grad = numerical_gradient(lambda: float(np.sum(a**3)), a)

    assert grad.shape == a.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, 3 * a**2, rtol=1e-7)
    np.testing.assert_array_equal(a, [[0.5, -1.5], [2.0, 3.0]])  # restored


def test_central_differences_restricted_to_entries_leave_the_others_zero():
    a = np.array([1.0, 2.0, 3.0])

    grad = numerical_gradient(lambda: float(np.sum(a**2)), a, indices=[2])

    np.testing.assert_allclose(grad, [0.0, 0.0, 6.0], rtol=1e-7)


def test_the_check_floor_follows_its_formula():
    u = float(np.finfo(np.float64).eps)
    expected = 10.0 * u * 3.0 / 1e-6 * np.sqrt(4) / 1e-5

    assert check_floor(3.0, 4, 1e-6, 1e-5) == pytest.approx(expected, rel=1e-12)
    assert check_floor(3.0, 0, 1e-6, 1e-5) == pytest.approx(expected / 2, rel=1e-12)
    assert check_floor(3.0, 4, 1e-6, 0.0) == 0.0  # an exact agreement asked: no floor


@pytest.mark.parametrize("sequence", [False, True])
def test_the_check_uses_the_given_upstream_gradients(sequence):
    rng = np.random.default_rng(12)
    cell = LSTMParams(**random_cell(rng, 3, 2))
    x = rng.standard_normal((4, 3) if sequence else 3)
    up = {"dh_next": rng.standard_normal(2), "dc_next": rng.standard_normal(2)}
    if sequence:
        up["dhs"] = rng.standard_normal((4, 2))

    rows = gradient_check(
        cell, x, rng.standard_normal(2), rng.standard_normal(2), **up, sequence=sequence
    )

    assert all(r.ok and r.rel_error < 1e-6 and not r.too_small for r in rows)
    assert all(0.0 < r.floor < 0.1 for r in rows)


def test_a_doubled_gradient_is_reported_with_its_relative_and_absolute_error(monkeypatch):
    real = backward._step_backward

    def doubled(r, cell, dh_next, dc_next):
        dx, dh, dc, grads = real(r, cell, dh_next, dc_next)
        return dx, dh, dc, {**grads, "dbo": 2 * grads["dbo"]}

    monkeypatch.setattr(backward, "_step_backward", doubled)
    rng = np.random.default_rng(13)
    cell = LSTMParams(**random_cell(rng, 3, 2))
    x, h, c = rng.standard_normal(3), rng.standard_normal(2), rng.standard_normal(2)
    doubled_g = lstm_step_backward(cell, x, h, c)["dbo"]  # patched too: 2 g

    row = {r.name: r for r in gradient_check(cell, x, h, c)}["dbo"]

    assert row.rel_error == pytest.approx(1 / 3, rel=1e-6)  # |2g - g| / (|2g| + |g|)
    assert row.max_abs_error == pytest.approx(np.max(np.abs(doubled_g)) / 2, rel=1e-6)
    assert not row.ok


@pytest.mark.parametrize("xs_shape", [(0, 3), (3,), (2, 1, 1, 3)])
def test_a_sequence_without_steps_or_of_the_wrong_rank_is_refused(xs_shape):
    cell = LSTMParams(**random_cell(np.random.default_rng(14), 3, 2))
    with pytest.raises(ValueError, match="xs must") as e:
        backward.lstm_sequence_backward(cell, np.zeros(xs_shape), np.zeros(2), np.zeros(2))
    assert str(e.value) == f"xs must be (T, F) or (T, B, F) with T >= 1, got shape {xs_shape}"


@pytest.mark.parametrize(
    ("name", "want"), [("dh_next", "(2,)"), ("dc_next", "(2,)"), ("dhs", "(4, 2)")]
)
def test_a_misshapen_upstream_of_a_sequence_is_refused_by_its_own_name(name, want):
    rng = np.random.default_rng(15)
    cell = LSTMParams(**random_cell(rng, 3, 2))
    with pytest.raises(ValueError, match="must have shape") as e:
        backward.lstm_sequence_backward(
            cell, rng.standard_normal((4, 3)), np.zeros(2), np.zeros(2), **{name: np.ones(5)}
        )
    assert str(e.value) == f"{name} must have shape {want} (or broadcast to it), got (5,)"


@pytest.mark.parametrize("clip", [None, 0.5])
def test_a_float32_sequence_gets_float32_gradients_whatever_the_upstreams_dtype(clip):
    rng = np.random.default_rng(16)
    cell = LSTMParams.from_mapping(random_cell(rng, 3, 2), clip=clip).astype("float32")
    xs, zero = rng.standard_normal((4, 3)).astype(np.float32), np.zeros(2, np.float32)
    for up in ({}, {"dh_next": np.ones(2), "dc_next": np.ones(2), "dhs": np.ones((4, 2))}):
        g = backward.lstm_sequence_backward(cell, xs, zero, zero, **up)
        assert {v.dtype for v in g.grads.values()} == {np.dtype(np.float32)}


def test_a_float32_cell_is_checked_in_float64():
    rng = np.random.default_rng(17)
    cell = LSTMParams(**random_cell(rng, 3, 2)).astype("float32")
    xs, zero = rng.standard_normal((4, 3)).astype(np.float32), np.zeros(2, np.float32)

    rows = gradient_check(cell, xs, zero, zero, sequence=True)

    assert all(r.ok and r.rel_error < 1e-7 for r in rows)


def test_an_exactly_zero_gradient_passes_even_an_exact_check_and_is_too_small():
    """With c_prev = 0 the input and forget peepholes have exactly zero gradients, analytic
    and numerical: no relative error to divide by, and below any floor."""
    rng = np.random.default_rng(18)
    peep = {k: rng.standard_normal(2) for k in ("Pi", "Pf", "Po")}
    cell = LSTMParams.from_mapping({**random_cell(rng, 3, 2), **peep})
    x, h = rng.standard_normal(3), rng.standard_normal(2)
    for tol, too_small in ((0.0, False), (1e-6, True)):
        rows = {r.name: r for r in gradient_check(cell, x, h, np.zeros(2), tol=tol)}
        for name in ("dPi", "dPf"):
            assert rows[name].rel_error == 0.0 and rows[name].max_abs_error == 0.0
            assert rows[name].ok and rows[name].too_small is too_small
        assert rows["dPo"].too_small is False
    tiny = {r.name: r for r in gradient_check(cell, x, h, np.full(2, 1e-9))}
    assert tiny["dPi"].too_small and tiny["dPi"].ok  # roundoff-sized, judged against the floor


@pytest.mark.parametrize("name", ["dh_next", "dc_next", "dhs"])
def test_the_check_fails_a_backward_pass_that_ignores_a_given_upstream(monkeypatch, name):
    real = backward.lstm_sequence_backward

    def ignoring(cell, xs, h0, c0, dh_next=None, dc_next=None, dhs=None):
        up = {"dh_next": dh_next, "dc_next": dc_next, "dhs": dhs, name: None}
        return real(cell, xs, h0, c0, **up)

    monkeypatch.setattr(backward, "lstm_sequence_backward", ignoring)
    rng = np.random.default_rng(19)
    cell = LSTMParams(**random_cell(rng, 3, 2))
    up = {"dh_next": rng.standard_normal(2), "dc_next": rng.standard_normal(2)}
    up["dhs"] = rng.standard_normal((4, 2))

    rows = gradient_check(
        cell, rng.standard_normal((4, 3)), np.zeros(2), np.zeros(2), **up, sequence=True
    )

    assert not all(r.ok for r in rows)


def test_sampled_entries_are_distinct_and_sorted():
    """``checked`` counts entries: a sample of 9 of 10 entries is 9 different ones."""
    for seed in range(5):
        idx = backward._sample(10, 9, np.random.default_rng(seed))
        assert idx is not None and len(idx) == 9
        assert np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < 10


def test_a_check_of_no_entries_reports_no_error():
    """``max_entries=0`` (from Python) checks nothing: every row has 0 entries checked and
    errors of exactly 0, and passes."""
    rng = np.random.default_rng(2)
    cell = LSTMParams(**random_cell(rng, 3, 2))
    rows = gradient_check(cell, rng.standard_normal(3), np.zeros(2), np.zeros(2), max_entries=0)
    assert rows and all(r.checked == 0 for r in rows)
    assert all(r.rel_error == 0.0 and r.max_abs_error == 0.0 for r in rows)
    assert all(r.ok for r in rows)
