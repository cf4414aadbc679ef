"""The gradient check's absolute floor: arrays whose gradient is below what central
differences resolve are reported "too small to check", never failed when right, still failed
when wrong; the JSON ``loss`` is the loss's value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import backward
from lstm_cli.backward import (
    check_floor,
    gradient_check,
    lstm_sequence_backward,
    lstm_step_backward,
)
from lstm_cli.cli import app
from lstm_cli.params import LSTMParams

from .conftest import random_cell

runner = CliRunner()
XS = str(Path(__file__).resolve().parent.parent / "params" / "xs.npy")


def test_floor_grows_with_the_loss_scale_and_shrinks_with_eps_and_tol():
    base = check_floor(1.0, 4, 1e-6, 1e-6)
    assert check_floor(2.0, 4, 1e-6, 1e-6) == pytest.approx(2 * base)
    assert check_floor(1.0, 4, 2e-6, 1e-6) == pytest.approx(base / 2)
    assert check_floor(1.0, 16, 1e-6, 1e-6) == pytest.approx(2 * base)
    assert check_floor(1.0, 4, 1e-6, 1e-5) == pytest.approx(base / 10)
    assert check_floor(0.0, 4, 1e-6, 1e-6) == 0.0


def test_the_projects_own_long_sequence_passes_with_vanishing_gradients_reported():
    result = runner.invoke(app, ["grad", "--xs", XS, "--check", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    check = out["check"]
    assert check["ok"] is True
    assert set(check["too_small"]) == {"dh0", "dc0"}
    for name in ("dh0", "dc0"):
        assert check["arrays"][name]["status"] == "too small to check"
        assert check["arrays"][name]["rel_error"] <= check["tolerance"]
    assert check["arrays"]["dWf"]["status"] == "ok"
    assert "Error" not in result.stderr


def test_the_view_says_too_small_and_exits_0():
    result = runner.invoke(app, ["grad", "--xs", XS, "--check", "--pretty"])
    assert result.exit_code == 0, result.output
    assert "too small to check" in result.stdout
    assert "FAIL" not in result.stdout


def test_json_loss_is_the_value_and_the_formula_moves():
    out = json.loads(runner.invoke(app, ["grad", "--json"]).stdout)
    assert isinstance(out["loss"], float)
    assert out["loss"] == pytest.approx(sum(out["h_next"]), rel=1e-12)
    assert out["loss_formula"].startswith("sum(dh_next * h_next)")
    seq = json.loads(runner.invoke(app, ["grad", "--xs", XS, "--json"]).stdout)
    assert seq["loss"] == pytest.approx(sum(seq["h_next"]), rel=1e-12)
    assert seq["loss_formula"].startswith("sum_t")


def test_library_loss_values_include_every_upstream_term():
    rng = np.random.default_rng(11)
    cell = LSTMParams(**random_cell(rng, 3, 2))
    x, h, c = rng.standard_normal(3), rng.standard_normal(2), rng.standard_normal(2)
    dh, dc = rng.standard_normal(2), rng.standard_normal(2)
    g = lstm_step_backward(cell, x, h, c, dh, dc)
    r = cell.step(x, h, c)
    assert g.loss == pytest.approx(float(dh @ r.h_next + dc @ r.c_next), rel=1e-14)
    xs, dhs = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    gs = lstm_sequence_backward(cell, xs, h, c, dh, dc, dhs)
    hh, cc, total = h, c, 0.0
    for t in range(4):
        s = cell.step(xs[t], hh, cc)
        hh, cc = s.h_next, s.c_next
        total += float(dhs[t] @ hh)
    total += float(dh @ hh + dc @ cc)
    assert gs.loss == pytest.approx(total, rel=1e-12)


def _shift_dh0(monkeypatch, amount: float) -> None:
    real = backward.lstm_sequence_backward

    def broken(*args, **kwargs):
        g = real(*args, **kwargs)
        return backward.Grads({**g.grads, "dh0": g.grads["dh0"] + amount}, g.h_next, g.c_next)

    monkeypatch.setattr(backward, "lstm_sequence_backward", broken)


def test_a_wrong_tiny_gradient_still_fails(monkeypatch):
    """dh0 is ~1e-12 (too small to check), but an error of 1e-6 is far above the roundoff."""
    _shift_dh0(monkeypatch, 1e-6)
    result = runner.invoke(app, ["grad", "--xs", XS, "--check", "--json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["check"]["arrays"]["dh0"]["status"] == "fail"
    assert out["check"]["arrays"]["dc0"]["status"] == "too small to check"
    assert "gradient check failed: dh0" in result.stderr


def test_a_wrong_large_gradient_fails_in_the_library(monkeypatch):
    real = backward._step_backward

    def broken(r, cell, dh_next, dc_next):
        dx, dh, dc_prev, grads = real(r, cell, dh_next, dc_next)
        return dx, dh, dc_prev, {**grads, "dWo": grads["dWo"] * 1.001}

    monkeypatch.setattr(backward, "_step_backward", broken)
    rng = np.random.default_rng(12)
    cell = LSTMParams(**random_cell(rng, 3, 2))
    rows = gradient_check(cell, rng.standard_normal(3), rng.standard_normal(2), np.ones(2))
    bad = {r.name for r in rows if not r.ok}
    assert bad == {"dWo"}
    assert not any(r.too_small for r in rows)
