"""The equations: the notebook's numbers, an independent reference, batches, dtypes, extremes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_cli import lstm_step, lstm_step_detailed, notebook_default, sigmoid
from tests.conftest import assert_notebook, notebook_arrays, random_cell
from tests.reference import reference_step

ORDER = ("x_t", "h_prev", "c_prev", "Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")


def test_notebook_numbers_with_the_seed_signature():
    a = notebook_arrays()
    h_next, c_next = lstm_step(*(a[k] for k in ORDER))
    assert_notebook(h_next, c_next)


def test_built_in_default_is_the_notebook_cell():
    cell = notebook_default()
    a = notebook_arrays()
    for name, arr in {**cell.params.arrays(), **cell.example.arrays()}.items():
        np.testing.assert_array_equal(arr, a[name], err_msg=name)
    r = cell.params.step(**cell.example.arrays())
    assert_notebook(r.h_next, r.c_next)


def test_detailed_result_holds_every_intermediate():
    a = notebook_arrays()
    r = lstm_step_detailed(*(a[k] for k in ORDER))
    np.testing.assert_array_equal(r.u, np.concatenate([a["h_prev"], a["x_t"]]))  # hidden first
    np.testing.assert_allclose(r.z_f, a["Wf"] @ r.u + a["bf"], rtol=1e-13)
    np.testing.assert_allclose(r.f_t, 1 / (1 + np.exp(-r.z_f)), rtol=1e-13)
    np.testing.assert_allclose(r.c_t_candidate, np.tanh(a["Wc"] @ r.u + a["bc"]), rtol=1e-13)
    np.testing.assert_allclose(r.c_next, r.f_t * a["c_prev"] + r.i_t * r.c_t_candidate)
    np.testing.assert_allclose(r.h_next, r.o_t * np.tanh(r.c_next))
    assert set(r.gates) == {"i_t", "f_t", "o_t", "c_t_candidate"}
    assert list(r.arrays())[-2:] == ["c_next", "h_next"]


@settings(max_examples=60, deadline=None)
@given(
    F=st.integers(1, 12),
    H=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([0.1, 1.0, 3.0]),
)
def test_matches_independent_reference_loop(F, H, seed, scale):
    rng = np.random.default_rng(seed)
    cell = random_cell(rng, F, H, scale)
    x, h, c = rng.standard_normal(F), rng.standard_normal(H), rng.standard_normal(H)
    r = lstm_step_detailed(x, h, c, **cell)
    ref = reference_step(x, h, c, **cell)
    for mine, theirs in (
        (r.i_t, "i"),
        (r.f_t, "f"),
        (r.o_t, "o"),
        (r.c_t_candidate, "g"),
        (r.c_next, "c_next"),
        (r.h_next, "h_next"),
    ):
        np.testing.assert_allclose(mine, ref[theirs], rtol=1e-12, atol=1e-14, err_msg=theirs)


def test_each_gate_uses_its_own_weights():
    """Swapping any two gates' weights changes the result: the gate order is not symmetric."""
    rng = np.random.default_rng(1)
    cell = random_cell(rng, 5, 3)
    x, h, c = rng.standard_normal(5), rng.standard_normal(3), rng.standard_normal(3)
    h0, c0 = lstm_step(x, h, c, **cell)
    for a, b in (("Wf", "Wi"), ("Wi", "Wo"), ("Wo", "Wc"), ("Wf", "Wc")):
        swapped = {**cell, a: cell[b], b: cell[a]}
        h1, c1 = lstm_step(x, h, c, **swapped)
        assert not np.allclose(h0, h1) or not np.allclose(c0, c1), (a, b)


def test_batch_equals_row_by_row():
    rng = np.random.default_rng(7)
    F, H, B = 6, 5, 4
    cell = random_cell(rng, F, H)
    xs, hs, cs = (rng.standard_normal((B, n)) for n in (F, H, H))
    h_b, c_b = lstm_step(xs, hs, cs, **cell)
    assert h_b.shape == c_b.shape == (B, H)
    for k in range(B):
        h_k, c_k = lstm_step(xs[k], hs[k], cs[k], **cell)
        np.testing.assert_allclose(h_b[k], h_k, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(c_b[k], c_k, rtol=1e-13, atol=1e-15)


def test_one_dimensional_state_is_shared_by_every_batch_row():
    rng = np.random.default_rng(8)
    cell = random_cell(rng, 3, 2)
    xs, h, c = rng.standard_normal((3, 3)), rng.standard_normal(2), rng.standard_normal(2)
    h_b, _ = lstm_step(xs, h, c, **cell)
    np.testing.assert_allclose(h_b[2], lstm_step(xs[2], h, c, **cell)[0], rtol=1e-13)


def test_float32_is_computed_in_float32_and_close_to_float64():
    a = notebook_arrays()
    r64 = lstm_step_detailed(*(a[k] for k in ORDER))
    r32 = lstm_step_detailed(*(a[k].astype(np.float32) for k in ORDER))
    for name, arr in r32.arrays().items():
        assert arr.dtype == np.float32, name
    np.testing.assert_allclose(r32.h_next, r64.h_next, rtol=0, atol=1e-5)
    np.testing.assert_allclose(r32.c_next, r64.c_next, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1e4, -1e4, 1e30])
def test_extreme_inputs_are_finite_and_warning_free(dtype, scale):
    a = notebook_arrays()
    a["x_t"] = a["x_t"] * scale
    args = [a[k].astype(dtype) for k in ORDER]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = lstm_step_detailed(*args)
    for name in ("i_t", "f_t", "o_t", "c_t_candidate", "c_next", "h_next"):
        assert np.all(np.isfinite(getattr(r, name))), name
    assert np.all((r.i_t >= 0) & (r.i_t <= 1))


def test_sigmoid_limits_without_warnings():
    z = np.array([-1e308, -800.0, -50.0, 0.0, 50.0, 800.0, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = sigmoid(z)
        s32 = sigmoid(np.array([-3e38, -100.0, 0.0, 100.0, 3e38], dtype=np.float32))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert 0 < s[2] < 1e-21  # small values keep their relative precision
    np.testing.assert_allclose(s[2], np.exp(-50.0) / (1 + np.exp(-50.0)), rtol=1e-15)
    assert s32.dtype == np.float32
    np.testing.assert_array_equal(s32[[0, 2, 4]], np.array([0.0, 0.5, 1.0], dtype=np.float32))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x_t": np.zeros((2, 3, 10))}, "x_t must be"),
        ({"h_prev": np.zeros(5)}, "h_prev must have shape"),
        ({"c_prev": np.zeros((3, 4))}, "c_prev must have shape"),
        ({"Wo": np.zeros((4, 13))}, "Wo must have shape (4, 14)"),
        ({"bc": np.zeros(3)}, "bc must have shape (4,)"),
    ],
)
def test_library_shape_errors_name_the_array(change, message):
    a = {**notebook_arrays(), **change}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lstm_step(*(a[k] for k in ORDER))
