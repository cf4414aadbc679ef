"""Numerics under stress: huge, tiny, subnormal and zero inputs and weights; float32 overflow
in the pre-activations. Results are finite where the true result is, and no warning escapes
(pytest turns every warning into an error here)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import lstm_step_detailed
from lstm_cli.cli import app
from tests.conftest import notebook_arrays, random_cell
from tests.reference import reference_step

STATE = ("x_t", "h_prev", "c_prev")
runner = CliRunner()


def step_scaled(scale_x: float, scale_w: float, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    cell = random_cell(rng, 6, 3)
    x = rng.standard_normal(6) * scale_x
    h, c = rng.standard_normal(3), rng.standard_normal(3)
    weights = {k: (v * scale_w).astype(dtype) for k, v in cell.items()}
    r = lstm_step_detailed(x.astype(dtype), h.astype(dtype), c.astype(dtype), **weights)
    return r, (x, h, c, cell)


CASES = [
    (1e300, 1.0, np.float64),
    (1.0, 1e300, np.float64),
    (1e300, 1e300, np.float64),  # every product overflows float64
    (1e38, 1.0, np.float32),
    (1e20, 1e20, np.float32),  # the pre-activations overflow float32
    (1e-310, 1.0, np.float64),  # subnormal inputs
    (1e-40, 1e-40, np.float32),  # subnormal float32
    (0.0, 0.0, np.float64),
    (0.0, 1.0, np.float32),
]


@pytest.mark.parametrize(("scale_x", "scale_w", "dtype"), CASES)
def test_results_are_finite_and_gates_in_range(scale_x, scale_w, dtype):
    r, _ = step_scaled(scale_x, scale_w, dtype)
    for name in ("i_t", "f_t", "o_t", "c_t_candidate", "c_next", "h_next"):
        arr = getattr(r, name)
        assert arr.dtype == dtype and np.all(np.isfinite(arr)), name
    for gate in (r.i_t, r.f_t, r.o_t):
        assert np.all((gate >= 0) & (gate <= 1))
    assert not np.any(np.isnan(r.z_i))  # +-inf allowed (beyond range), never NaN


@pytest.mark.parametrize(("scale_x", "scale_w"), [(1e300, 1.0), (1.0, 1e300), (1e-310, 1.0)])
def test_huge_float64_agrees_with_the_reference_where_it_can(scale_x, scale_w):
    """Python floats overflow the same way; where the reference is finite, we agree."""
    r, (x, h, c, cell) = step_scaled(scale_x, scale_w, np.float64)
    try:
        ref = reference_step(x, h, c, **{k: v * scale_w for k, v in cell.items()})
    except OverflowError:
        pytest.fail("reference overflowed: pick scales it can handle")
    np.testing.assert_allclose(r.h_next, ref["h_next"], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(r.c_next, ref["c_next"], rtol=1e-12, atol=1e-300)


def test_saturated_gates_are_exact():
    r, _ = step_scaled(1e300, 1e300, np.float64)
    saturated = np.concatenate([r.i_t, r.f_t, r.o_t])
    assert set(np.unique(saturated)) <= {0.0, 1.0}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cli_with_huge_json_inputs_gives_valid_json(dtype):
    x = (notebook_arrays()["x_t"] * 1e300).tolist()
    result = runner.invoke(app, ["step", "--dtype", dtype, "--x", "-"], input=json.dumps(x))
    if dtype == "float32":  # 1e300 does not fit float32: refused, not silently made inf
        assert result.exit_code == 2, result.output
        assert "x_t" in result.stderr and "float32" in result.stderr
        return
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # strict JSON: no Infinity
    assert all(np.isfinite(out["h_next"])) and all(np.isfinite(out["c_next"]))


def test_cli_overflowing_pre_activations_are_null_in_json():
    a = notebook_arrays()
    x = json.dumps((a["x_t"] * 1e308).tolist())
    result = runner.invoke(app, ["step", "--x", "-"], input=x)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    flat = [v for z in out["pre_activations"].values() for v in z]
    assert None in flat  # beyond float64: null, and the gate is exactly 0 or 1
    for gate, z in zip(("i_t", "f_t", "o_t"), ("z_i", "z_f", "z_o"), strict=True):
        for g, zz in zip(out["gates"][gate], out["pre_activations"][z], strict=True):
            if zz is None:
                assert g in (0.0, 1.0)


@pytest.mark.parametrize("batch", [None, 3])
def test_run_agrees_with_step_when_the_input_projection_overflows(batch):
    """x and W near 1e300: every product overflows float64. The sequence core must saturate
    each gate the way the step does (exact rescaling), not by BLAS's arbitrary sign of inf."""
    from lstm_cli import init_params, run_sequence

    cell = init_params(10, 4, 1).params
    cell = cell.with_arrays({k: getattr(cell, k) * 1e300 for k in ("Wf", "Wi", "Wo", "Wc")})
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((6, 10) if batch is None else (6, batch, 10)) * 1e300
    r = run_sequence(cell, xs, return_sequences=True)
    h = c = np.zeros(xs.shape[1:-1] + (4,))
    for t in range(len(xs)):
        s = cell.step(xs[t], h, c)
        h, c = s.h_next, s.c_next
        np.testing.assert_allclose(r.h_seq[t], h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.c_next, c, rtol=1e-12, atol=1e-12)
