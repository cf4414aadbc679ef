"""The backward pass: analytic gradients against central differences of the independent
scalar reference (tests/reference.py), for one step, a batch and a sequence (BPTT)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import backward, notebook_default
from lstm_cli.backward import (
    PARAM_NAMES,
    SEQUENCE_GRAD_NAMES,
    STEP_GRAD_NAMES,
    gradient_check,
    lstm_sequence_backward,
    lstm_step_backward,
)
from lstm_cli.cli import app
from lstm_cli.params import LSTMParams

from .conftest import random_cell
from .reference import reference_step

EPS = 1e-6


def rel_error(a, n) -> float:
    a, n = np.asarray(a, dtype=float), np.asarray(n, dtype=float)
    return float(np.linalg.norm(a - n) / (np.linalg.norm(a) + np.linalg.norm(n)))


def ref_rows(x, h, c, cell):
    """Reference step over a batch, one row at a time; returns (h_next, c_next) arrays."""
    xs = np.atleast_2d(x)
    hs = np.broadcast_to(h, (xs.shape[0], len(cell["bf"])))
    cs = np.broadcast_to(c, hs.shape)
    outs = [reference_step(xr, hr, cr, **cell) for xr, hr, cr in zip(xs, hs, cs, strict=True)]
    h_next = np.array([o["h_next"] for o in outs]).reshape(np.shape(x)[:-1] + (-1,))
    c_next = np.array([o["c_next"] for o in outs]).reshape(h_next.shape)
    return h_next, c_next


def numeric_grads(loss, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Central differences of ``loss()`` for every entry of every array (perturbed in place)."""
    out = {}
    for name, arr in arrays.items():
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + EPS
            plus = loss()
            arr[idx] = old - EPS
            minus = loss()
            arr[idx] = old
            g[idx] = (plus - minus) / (2 * EPS)
        out["d" + name] = g
    return out


@pytest.mark.parametrize(
    ("F", "H", "batch", "state_1d"),
    [(10, 4, None, False), (3, 5, None, False), (4, 3, 3, False), (2, 3, 4, True)],
)
def test_step_gradients_match_central_differences(F, H, batch, state_1d):
    rng = np.random.default_rng(F * 100 + H)
    cell = random_cell(rng, F, H, scale=0.5)  # unsaturated: gradients well above round-off
    lead = () if batch is None else (batch,)
    state = (H,) if state_1d else lead + (H,)
    arrays = {
        "x_t": rng.standard_normal(lead + (F,)),
        "h_prev": rng.standard_normal(state),
        "c_prev": rng.standard_normal(state),
        **cell,
    }
    dh = rng.standard_normal(lead + (H,))
    dc = rng.standard_normal(lead + (H,))

    def loss() -> float:
        h_next, c_next = ref_rows(
            arrays["x_t"],
            arrays["h_prev"],
            arrays["c_prev"],
            {n: arrays[n] for n in PARAM_NAMES},
        )
        return float(np.sum(dh * h_next) + np.sum(dc * c_next))

    step = LSTMParams(**{n: arrays[n] for n in PARAM_NAMES})  # the same arrays, perturbed below
    g = lstm_step_backward(step, arrays["x_t"], arrays["h_prev"], arrays["c_prev"], dh, dc)
    assert tuple(g.grads) == STEP_GRAD_NAMES
    numeric = numeric_grads(loss, arrays)
    for name in STEP_GRAD_NAMES:
        assert g[name].shape == numeric[name].shape, name
        assert rel_error(g[name], numeric[name]) < 1e-7, name


def test_default_upstream_is_gradient_of_sum_h_next():
    rng = np.random.default_rng(1)
    cell = random_cell(rng, 3, 2)
    x, h, c = rng.standard_normal(3), rng.standard_normal(2), rng.standard_normal(2)
    default = lstm_step_backward(LSTMParams(**cell), x, h, c)
    explicit = lstm_step_backward(
        LSTMParams(**cell), x, h, c, dh_next=np.ones(2), dc_next=np.zeros(2)
    )
    for name in STEP_GRAD_NAMES:
        np.testing.assert_array_equal(default[name], explicit[name])
    # d sum(h_next) / d c_prev = o * (1 - tanh(c)^2) * f, written out by hand
    r = reference_step(x, h, c, **cell)
    f, o, cn = np.array(r["f"]), np.array(r["o"]), np.array(r["c_next"])
    np.testing.assert_allclose(default["dc_prev"], o * (1 - np.tanh(cn) ** 2) * f, rtol=1e-12)


@pytest.mark.parametrize(("T", "batch"), [(1, None), (4, None), (3, 2)])
def test_bptt_gradients_match_central_differences(T, batch):
    F, H = 3, 4
    rng = np.random.default_rng(10 + T)
    cell = random_cell(rng, F, H, scale=0.5)  # unsaturated: gradients well above round-off
    lead = () if batch is None else (batch,)
    arrays = {
        "xs": rng.standard_normal((T,) + lead + (F,)),
        "h0": rng.standard_normal(lead + (H,)),
        "c0": rng.standard_normal(lead + (H,)),
        **cell,
    }
    dh = rng.standard_normal(lead + (H,))
    dc = rng.standard_normal(lead + (H,))
    dhs = rng.standard_normal((T,) + lead + (H,))

    def loss() -> float:
        h, c = arrays["h0"], arrays["c0"]
        total = 0.0
        params = {n: arrays[n] for n in PARAM_NAMES}
        for t in range(T):
            h, c = ref_rows(arrays["xs"][t], h, c, params)
            total += float(np.sum(dhs[t] * h))
        return total + float(np.sum(dh * h) + np.sum(dc * c))

    g = lstm_sequence_backward(
        LSTMParams(**cell), arrays["xs"], arrays["h0"], arrays["c0"], dh_next=dh, dc_next=dc,
        dhs=dhs,
    )  # fmt: skip
    assert tuple(g.grads) == SEQUENCE_GRAD_NAMES
    numeric = numeric_grads(loss, arrays)
    for name in SEQUENCE_GRAD_NAMES:
        assert g[name].shape == numeric[name].shape, name
        assert rel_error(g[name], numeric[name]) < 1e-7, name


def test_sequence_of_one_step_equals_the_step():
    rng = np.random.default_rng(3)
    cell = LSTMParams(**random_cell(rng, 5, 3))
    x, h, c = rng.standard_normal((2, 5)), rng.standard_normal(3), rng.standard_normal(3)
    step = lstm_step_backward(cell, x, h, c)
    seq = lstm_sequence_backward(cell, x[None], h, c)
    np.testing.assert_allclose(seq["dxs"][0], step["dx_t"], rtol=1e-14)
    np.testing.assert_allclose(seq["dh0"], step["dh_prev"], rtol=1e-14)
    for n in PARAM_NAMES:
        np.testing.assert_allclose(seq["d" + n], step["d" + n], rtol=1e-14)


@pytest.mark.parametrize("sequence", [False, True])
def test_library_gradient_check_is_small_for_every_array(sequence):
    rng = np.random.default_rng(5)
    cell = LSTMParams(**random_cell(rng, 4, 3))
    x = rng.standard_normal((3, 2, 4) if sequence else (2, 4))
    rows = gradient_check(cell, x, np.zeros(3), rng.standard_normal(3), sequence=sequence)
    names = SEQUENCE_GRAD_NAMES if sequence else STEP_GRAD_NAMES
    assert [r.name for r in rows] == list(names)
    for r in rows:
        assert r.rel_error < 1e-7, r
        assert r.checked == r.size


def test_library_gradient_check_catches_a_wrong_gradient(monkeypatch):
    """The check must be able to fail: break dc_prev's formula (drop the forget gate)."""
    real = backward._step_backward

    def broken(r, cell, dh_next, dc_next):
        dx, dh, dc_prev, grads = real(r, cell, dh_next, dc_next)
        return dx, dh, dc_prev / r.f_t, grads

    monkeypatch.setattr(backward, "_step_backward", broken)
    rng = np.random.default_rng(6)
    cell = LSTMParams(**random_cell(rng, 3, 2))
    rows = gradient_check(cell, rng.standard_normal(3), rng.standard_normal(2), np.ones(2))
    bad = {r.name for r in rows if r.rel_error > 1e-3}
    assert bad == {"dc_prev"}


def test_gradient_check_samples_large_arrays():
    rng = np.random.default_rng(7)
    cell = LSTMParams(**random_cell(rng, 6, 5))
    rows = gradient_check(cell, rng.standard_normal(6), np.zeros(5), np.zeros(5), max_entries=7)
    by_name = {r.name: r for r in rows}
    assert by_name["dWf"].checked == 7 and by_name["dWf"].size == 55
    assert by_name["dbf"].checked == 5
    assert all(r.rel_error < 1e-7 for r in rows)


def test_float32_inputs_give_float32_gradients():
    rng = np.random.default_rng(8)
    cell = LSTMParams(**random_cell(rng, 3, 2)).astype(np.float32)
    x = rng.standard_normal(3).astype(np.float32)
    g = lstm_step_backward(cell, x, np.zeros(2, np.float32), np.zeros(2, np.float32))
    assert all(v.dtype == np.float32 for v in g.grads.values())


def test_upstream_of_the_wrong_shape_is_refused():
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match="dh_next"):
        lstm_step_backward(
            LSTMParams(**random_cell(rng, 3, 2)),
            rng.standard_normal(3),
            np.zeros(2),
            np.zeros(2),
            dh_next=np.ones(5),
        )


# --------------------------------------------------------------------------- the CLI

runner = CliRunner()


def grad_json(*args: str) -> dict:
    result = runner.invoke(app, ["grad", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_grad_of_the_notebook_cell_with_check():
    out = grad_json("--check")
    assert list(out["grads"]) == list(STEP_GRAD_NAMES)
    assert out["upstream"] == {"dh_next": "ones", "dc_next": "zeros"}
    assert out["check"]["ok"] is True
    for name, row in out["check"]["arrays"].items():
        assert row["rel_error"] < 1e-7, name
        assert row["checked"] == row["size"]
    cell = notebook_default()
    assert cell.example is not None
    g = lstm_step_backward(cell.params, **cell.example.arrays())
    for name in STEP_GRAD_NAMES:
        np.testing.assert_allclose(out["grads"][name], g[name], rtol=1e-15)


def test_cli_grad_sequence_with_upstreams_and_outputs(in_tmp):
    rng = np.random.default_rng(11)
    xs = rng.standard_normal((4, 2, 10))
    dhs = rng.standard_normal((4, 2, 4))
    np.save(in_tmp / "xs.npy", xs)
    (in_tmp / "dhs.json").write_text(json.dumps(dhs.tolist()))
    (in_tmp / "dc.json").write_text(json.dumps([0.5, -1, 0, 2]))
    args = ["--xs", "xs.npy", "--dhs", "dhs.json", "--dc-next", "dc.json"]
    out = grad_json(*args, "--check", "--out", "g.npz")
    assert list(out["grads"]) == list(SEQUENCE_GRAD_NAMES)
    assert out["check"]["ok"] is True
    cell = notebook_default().params
    g = lstm_sequence_backward(
        cell, xs, np.zeros((2, 4)), np.zeros((2, 4)), dc_next=np.array([0.5, -1, 0, 2]), dhs=dhs
    )
    with np.load(in_tmp / "g.npz") as saved:
        for name in SEQUENCE_GRAD_NAMES:
            np.testing.assert_allclose(saved[name], g[name], rtol=1e-15)
            np.testing.assert_allclose(out["grads"][name], g[name], rtol=1e-15)
    assert np.shape(out["grads"]["dh0"]) == (2, 4)  # h0 defaults to zeros (B, H)
    out2 = grad_json(*args, "--out", "g.json")
    assert json.loads((in_tmp / "g.json").read_text())["grads"] == out2["grads"]
    result = runner.invoke(app, ["grad", *args, "--out", "g.json"])
    assert result.exit_code == 2 and "--force" in result.output


def test_cli_grad_float32_and_pretty(in_tmp):
    out = grad_json("--dtype", "float32")
    assert out["dtype"] == "float32"
    result = runner.invoke(app, ["grad", "--check", "--pretty"])
    assert result.exit_code == 0, result.output
    assert "Gradient check" in result.stdout and "dWf" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--xs", "a.npy", "--x", "b.npy"], "not both"),
        (["--dhs", "a.json"], "--dhs needs --xs"),
        (["--dh-next", "bad.json"], "dh_next has shape (3,), expected (4,)"),
        (["--xs", "bad.json"], "xs has shape (3,), expected (T, 10)"),
    ],
)
def test_cli_grad_rejects_bad_input_with_one_line(in_tmp, args, message):
    (in_tmp / "bad.json").write_text("[1, 2, 3]")
    result = runner.invoke(app, ["grad", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_grad_check_can_fail():
    result = runner.invoke(app, ["grad", "--check", "--check-tol", "0", "--json"])
    assert result.exit_code == 1
    assert "gradient check failed" in result.stderr
    assert json.loads(result.stdout)["check"]["ok"] is False


# --------------------------------------------------------------------------- the input limit

LIMIT_MESSAGE = "over the 1 MiB input limit; raise it with --max-input-mb"


def big_json(path, shape) -> None:
    """A JSON array of ``shape`` (numbers with many digits), about 3 MB on disk."""
    path.write_text(json.dumps(np.full(shape, 0.123456789).tolist()))
    assert path.stat().st_size > 3_000_000


def assert_refused_over_limit(folder, args: list[str], name: str) -> None:
    """``grad`` with ``--max-input-mb 1`` exits 2 naming the file ``name``, its size (3 MiB)
    and the limit, and writes nothing (not even the --out file)."""
    before = sorted(p.name for p in folder.iterdir())
    result = runner.invoke(app, ["grad", *args, "--max-input-mb", "1", "--out", "g.npz"])
    assert result.exit_code == 2, result.output
    assert f"{name}: 3 MiB, {LIMIT_MESSAGE}" in result.stderr, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert sorted(p.name for p in folder.iterdir()) == before


def test_grad_refuses_large_xs(in_tmp):
    np.save(in_tmp / "big.npy", np.zeros((37_500, 10)))  # (T, F) float64: 3 MB
    assert (in_tmp / "big.npy").stat().st_size > 3_000_000
    assert_refused_over_limit(in_tmp, ["--xs", "big.npy"], "big.npy")


def test_grad_refuses_large_dhs(in_tmp):
    np.save(in_tmp / "xs.npy", np.zeros((3, 10)))  # small: only dhs is over the limit
    big_json(in_tmp / "big.json", (60_000, 4))
    assert_refused_over_limit(in_tmp, ["--xs", "xs.npy", "--dhs", "big.json"], "big.json")


def test_grad_refuses_large_x(in_tmp):
    big_json(in_tmp / "big.json", (25_000, 10))
    assert_refused_over_limit(in_tmp, ["--x", "big.json"], "big.json")


def test_grad_upstream_from_stdin_is_not_taken_for_x(tmp_path):
    """With --dh-next - the piped bytes are the upstream gradient, not x_t (stdin is read once)."""
    from typer.testing import CliRunner

    from lstm_cli.cli import app

    runner = CliRunner()
    (tmp_path / "dh.json").write_text("[2, 0.5, -1, 3]")
    piped = runner.invoke(app, ["grad", "--dh-next", "-", "--json"], input="[2, 0.5, -1, 3]")
    named = runner.invoke(app, ["grad", "--dh-next", str(tmp_path / "dh.json"), "--json"])
    assert piped.exit_code == 0, piped.output
    assert named.exit_code == 0, named.output
    a, b = json.loads(piped.stdout), json.loads(named.stdout)
    assert a["grads"] == b["grads"] and a["sources"]["x_t"].startswith("example in")
