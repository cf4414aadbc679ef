"""The backward pass with ONNX's variants (peepholes, clip, input_forget): analytic gradients
against central differences of the independent scalar ONNX reference (tests/test_variants.py),
for one step, a batch and a sequence (BPTT); and ``lstm-cell grad`` on a variant cell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import init_params
from lstm_cli.backward import (
    PARAM_NAMES,
    SEQUENCE_GRAD_NAMES,
    STEP_GRAD_NAMES,
    gradient_check,
    lstm_sequence_backward,
    lstm_step_backward,
)
from lstm_cli.cli import app
from lstm_cli.core import lstm_step_variant
from lstm_cli.io.paramfiles import save_param_set
from lstm_cli.params import LSTMParams

from .conftest import random_cell
from .test_backward import numeric_grads, rel_error
from .test_variants import onnx_reference

PEEP = ("Pi", "Pf", "Po")
# (peepholes, clip, input_forget): each variant alone, then all three
VARIANTS = [(True, None, False), (False, 1.5, False), (False, None, True), (True, 1.5, True)]
MARGIN = 1e-3  # no raw pre-activation this close to +-clip: the gradient exists there


def ref_rows(x, h, c, cell, variant):
    """The scalar ONNX reference over a batch, one row at a time: (h_next, c_next)."""
    peep, clip, input_forget = variant
    xs = np.atleast_2d(x)
    hs = np.broadcast_to(h, (xs.shape[0], len(cell["bf"])))
    cs = np.broadcast_to(c, hs.shape)
    P = {k: cell[k] for k in PEEP} if peep else None
    outs = [
        onnx_reference(xr, hr, cr, cell, P, clip, input_forget)
        for xr, hr, cr in zip(xs, hs, cs, strict=True)
    ]
    h_next = np.array([o["h"] for o in outs]).reshape(np.shape(x)[:-1] + (-1,))
    c_next = np.array([o["c"] for o in outs]).reshape(h_next.shape)
    return h_next, c_next


def raw_margin(x, h, c, cell, variant) -> float:
    """min over every pre-activation of ||z_raw| - clip|: how far the point is from a kink."""
    peep, clip, input_forget = variant
    kw = {k: cell[k] for k in PEEP} if peep else {}
    r = lstm_step_variant(x, h, c, **{n: cell[n] for n in PARAM_NAMES}, **kw, clip=clip,
                          input_forget=input_forget)  # fmt: skip
    z = {g: r.u @ cell["W" + g].T + cell["b" + g] for g in "ifoc"}
    if peep:
        z["i"] = z["i"] + cell["Pi"] * r.c_prev
        z["f"] = z["f"] + cell["Pf"] * r.c_prev
        z["o"] = z["o"] + cell["Po"] * r.c_next
    if input_forget:
        del z["f"]
    return float(min(np.min(np.abs(np.abs(v) - clip)) for v in z.values()))


def variant_cell(rng, F, H, variant):
    cell = random_cell(rng, F, H, scale=0.7)
    if variant[0]:
        cell.update({k: 0.8 * rng.standard_normal(H) + 0.1 for k in PEEP})
    return cell


def kwargs(variant) -> dict:
    return {"clip": variant[1], "input_forget": variant[2]}


def as_cell(arrays, variant) -> LSTMParams:
    """The cell of ``arrays`` (the eight, and Pi, Pf, Po when present) with the variant's
    clip and input_forget; its arrays are those of ``arrays`` (float64, not copied)."""
    return LSTMParams.from_mapping(arrays, **kwargs(variant))


def names_for(base, variant) -> tuple[str, ...]:
    return base + (tuple("d" + k for k in PEEP) if variant[0] else ())


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("F", "H", "batch", "state_1d"), [(4, 3, None, False), (3, 4, 3, True)])
def test_variant_step_gradients_match_central_differences(variant, F, H, batch, state_1d):
    rng = np.random.default_rng(F * 10 + H + 100 * VARIANTS.index(variant))
    cell = variant_cell(rng, F, H, variant)
    lead = () if batch is None else (batch,)
    state = (H,) if state_1d else lead + (H,)
    arrays = {
        "x_t": rng.standard_normal(lead + (F,)),
        "h_prev": rng.standard_normal(state),
        "c_prev": rng.standard_normal(state),
        **cell,
    }
    if variant[1] is not None:
        assert raw_margin(arrays["x_t"], arrays["h_prev"], arrays["c_prev"], cell, variant) > MARGIN
    dh, dc = rng.standard_normal(lead + (H,)), rng.standard_normal(lead + (H,))

    def loss() -> float:
        h_next, c_next = ref_rows(arrays["x_t"], arrays["h_prev"], arrays["c_prev"], arrays,
                                  variant)  # fmt: skip
        return float(np.sum(dh * h_next) + np.sum(dc * c_next))

    g = lstm_step_backward(as_cell(arrays, variant), arrays["x_t"], arrays["h_prev"],
                           arrays["c_prev"], dh_next=dh, dc_next=dc)  # fmt: skip
    assert tuple(g.grads) == names_for(STEP_GRAD_NAMES, variant)
    numeric = numeric_grads(loss, arrays)
    for name in g.grads:
        assert g[name].shape == numeric[name].shape, name
        err = rel_error(g[name], numeric[name]) if np.any(numeric[name]) else 0.0
        assert err < 1e-7, (name, err)
        if variant[2] and name in ("dWf", "dbf"):
            assert not np.any(g[name])  # Wf, bf unused with input_forget
    if variant[1] is not None:  # the clip is active somewhere, and cuts gradients there
        r = lstm_step_variant(arrays["x_t"], arrays["h_prev"], arrays["c_prev"],
                              **cell, **kwargs(variant))  # fmt: skip
        z = np.abs(np.concatenate([r.z_i, r.z_o, r.z_c]))
        assert np.any(z == variant[1]) and np.any(z < variant[1])


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_bptt_gradients_match_central_differences(variant):
    T, F, H, batch = 3, 3, 4, 2
    rng = np.random.default_rng(50 + VARIANTS.index(variant))
    cell = variant_cell(rng, F, H, variant)
    arrays = {
        "xs": rng.standard_normal((T, batch, F)),
        "h0": rng.standard_normal((batch, H)),
        "c0": rng.standard_normal((batch, H)),
        **cell,
    }
    dh, dc = rng.standard_normal((batch, H)), rng.standard_normal((batch, H))
    dhs = rng.standard_normal((T, batch, H))

    def loss() -> float:
        h, c = arrays["h0"], arrays["c0"]
        total = 0.0
        for t in range(T):
            if variant[1] is not None:
                assert raw_margin(arrays["xs"][t], h, c, arrays, variant) > MARGIN
            h, c = ref_rows(arrays["xs"][t], h, c, arrays, variant)
            total += float(np.sum(dhs[t] * h))
        return total + float(np.sum(dh * h) + np.sum(dc * c))

    params = {k: v for k, v in arrays.items() if k not in ("xs", "h0", "c0")}
    g = lstm_sequence_backward(as_cell(params, variant), arrays["xs"], arrays["h0"],
                               arrays["c0"], dh, dc, dhs)  # fmt: skip
    assert tuple(g.grads) == names_for(SEQUENCE_GRAD_NAMES, variant)
    numeric = numeric_grads(loss, arrays)
    for name in g.grads:
        err = rel_error(g[name], numeric[name]) if np.any(numeric[name]) else 0.0
        assert err < 1e-7, (name, err)


def test_variant_backward_is_not_the_plain_one():
    """Each variant changes the gradients (a backward pass ignoring it would be caught)."""
    rng = np.random.default_rng(3)
    cell = variant_cell(rng, 3, 4, (True, None, False))
    x, h, c = rng.standard_normal(3), rng.standard_normal(4), rng.standard_normal(4)
    plain = lstm_step_backward(LSTMParams(**{n: cell[n] for n in PARAM_NAMES}), x, h, c)
    for variant in VARIANTS:
        kw = {k: cell[k] for k in PEEP} if variant[0] else {}
        g = lstm_step_backward(as_cell({**{n: cell[n] for n in PARAM_NAMES}, **kw}, variant),
                               x, h, c)  # fmt: skip
        assert not np.allclose(g["dWi"], plain["dWi"]), variant


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("sequence", [False, True])
def test_library_gradient_check_with_variants(variant, sequence):
    rng = np.random.default_rng(9 + VARIANTS.index(variant))
    cell = variant_cell(rng, 4, 3, variant)
    x = rng.standard_normal((3, 2, 4) if sequence else (2, 4))
    rows = gradient_check(as_cell(cell, variant), x, np.zeros(3), rng.standard_normal(3),
                          sequence=sequence)  # fmt: skip
    base = SEQUENCE_GRAD_NAMES if sequence else STEP_GRAD_NAMES
    assert [r.name for r in rows] == list(names_for(base, variant))
    for r in rows:
        assert r.rel_error < 1e-7, r


def test_gradient_check_catches_a_missing_peephole_path(monkeypatch):
    """The check can fail on a variant: drop the Pi path into dc_prev."""
    from lstm_cli import backward

    real = backward._step_backward

    def broken(r, cell, dh_next, dc_next):
        dx, dh, dc_prev, grads = real(r, cell, dh_next, dc_next)
        dz_i = grads["dbi"]  # (H,), one example
        return dx, dh, dc_prev - dz_i * cell.peepholes["Pi"], grads

    monkeypatch.setattr(backward, "_step_backward", broken)
    rng = np.random.default_rng(6)
    cell = LSTMParams.from_mapping(variant_cell(rng, 3, 2, (True, None, False)))
    rows = gradient_check(cell, rng.standard_normal(3), rng.standard_normal(2), np.ones(2))
    assert {r.name for r in rows if r.rel_error > 1e-3} == {"dc_prev"}


# --------------------------------------------------------------------------- the CLI

runner = CliRunner()


def grad_json(*args: str) -> dict:
    result = runner.invoke(app, ["grad", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_grad_on_a_clip_file_computes_the_clipped_cell(in_tmp: Path):
    """The bug: a params file holding a variant must never give the plain cell's gradients."""
    ps = init_params(10, 4, 42, clip=0.5)
    save_param_set(in_tmp / "v.npz", ps)
    out = grad_json("--params", "v.npz", "--check")
    assert out["variant"] == {"peepholes": False, "clip": 0.5, "input_forget": False}
    assert out["check"]["ok"] is True
    ex = ps.example
    assert ex is not None
    plain_cell = LSTMParams.from_mapping(ps.params.arrays())
    g = lstm_step_backward(plain_cell.with_variant(clip=0.5), **ex.arrays())
    plain = lstm_step_backward(plain_cell, **ex.arrays())
    for name in STEP_GRAD_NAMES:
        np.testing.assert_allclose(out["grads"][name], g[name], rtol=1e-15)
    assert not np.allclose(out["grads"]["dWi"], plain["dWi"])
    off = grad_json("--params", "v.npz", "--no-clip")
    assert off["variant"]["clip"] is None
    np.testing.assert_allclose(off["grads"]["dWi"], plain["dWi"], rtol=1e-15)


def test_cli_grad_with_peepholes_and_input_forget(in_tmp: Path):
    ps = init_params(5, 3, 7, peepholes=True)
    save_param_set(in_tmp / "p.npz", ps)
    out = grad_json("--params", "p.npz", "--input-forget", "--check", "--out", "g.npz")
    assert out["variant"] == {"peepholes": True, "clip": None, "input_forget": True}
    assert list(out["grads"])[-3:] == ["dPi", "dPf", "dPo"]
    assert out["check"]["ok"] is True and "dPo" in out["check"]["arrays"]
    assert not np.any(out["grads"]["dWf"]) and not np.any(out["grads"]["dbf"])
    with np.load(in_tmp / "g.npz") as saved:
        assert {"dPi", "dPf", "dPo"} <= set(saved.files)
        np.testing.assert_array_equal(saved["dPo"], out["grads"]["dPo"])
    no_peep = grad_json("--params", "p.npz", "--no-peepholes")
    assert "dPi" not in no_peep["grads"] and no_peep["variant"]["peepholes"] is False


def test_cli_grad_sequence_with_a_variant(in_tmp: Path):
    ps = init_params(4, 3, 5, peepholes=True, clip=2.0)
    save_param_set(in_tmp / "p.npz", ps)
    xs = np.random.default_rng(0).standard_normal((3, 2, 4))
    np.save(in_tmp / "xs.npy", xs)
    out = grad_json("--params", "p.npz", "--xs", "xs.npy", "--check")
    assert out["check"]["ok"] is True
    cell = LSTMParams.from_mapping(ps.params.all_arrays(), clip=2.0)
    g = lstm_sequence_backward(cell, xs, np.zeros((2, 3)), np.zeros((2, 3)))
    for name in g.grads:
        np.testing.assert_allclose(out["grads"][name], g[name], rtol=1e-15)


def test_cli_grad_pretty_names_the_variant(in_tmp: Path):
    save_param_set(in_tmp / "p.npz", init_params(3, 2, 1, peepholes=True, input_forget=True))
    result = runner.invoke(app, ["grad", "--params", "p.npz", "--check", "--pretty"])
    assert result.exit_code == 0, result.output
    assert "dPo" in result.stdout and "input_forget" in result.stdout
