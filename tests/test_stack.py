"""``run --stack`` and :func:`lstm_cli.stack.run_stack`: the whole 2-layer bidirectional
nn.LSTM of tests/data/torch_lstm_2x2.pt equals torch's own outputs (torch_lstm_2x2_out.npz,
torch in float64) to 1e-10; a one-cell file is a 1-layer stack; the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lstm_cli.cli.app import app
from lstm_cli.cli.options import cast_cell
from lstm_cli.io.survey import load_stack
from lstm_cli.sequence import run_sequence
from lstm_cli.stack import run_stack

DATA = Path(__file__).parent / "data"


def outputs() -> dict[str, np.ndarray]:
    with np.load(DATA / "torch_lstm_2x2_out.npz") as f:
        return dict(f)


@pytest.mark.parametrize("name", ["torch_lstm_2x2.pt", "torch_lstm_2x2.npz"])
def test_the_library_stack_equals_torch(name):
    want = outputs()
    layers = [
        [cast_cell(ps.params, "float64", name, ps.bias_halves) for ps in sets]
        for sets in load_stack(DATA / name, 1 << 30)
    ]
    assert [len(cells) for cells in layers] == [2, 2]
    r = run_stack(layers, want["xs"], want["h0"], want["c0"], dtype="float64")
    for got, key in ((r.y, "y"), (r.h_n, "h_n"), (r.c_n, "c_n"), (r.layer_outputs[0], "y0")):
        np.testing.assert_allclose(got, want[key], rtol=0, atol=1e-10)
    unbatched = run_stack(layers, want["xs"][:, 1], want["h0"][:, 1], want["c0"][:, 1])
    np.testing.assert_allclose(unbatched.y, want["y"][:, 1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(unbatched.h_n, want["h_n"][:, 1], rtol=0, atol=1e-10)


def test_a_one_cell_stack_is_run_sequence():
    (cells,) = [[ps.params for ps in sets] for sets in load_stack(DATA / "torch_cell.pt", 1 << 30)]
    xs = np.random.default_rng(0).standard_normal((4, 2, cells[0].n_features))
    r = run_stack([cells], xs, dtype="float64")
    seq = run_sequence(cells[0], xs, dtype="float64", return_sequences=True)
    np.testing.assert_array_equal(r.y, seq.h_seq)
    np.testing.assert_array_equal(r.h_n[0], seq.h_next)


def test_run_stack_refuses_bad_shapes():
    cell = load_stack(DATA / "torch_cell.pt", 1 << 30)[0][0].params
    with pytest.raises(ValueError, match="h0 must have shape"):
        run_stack([[cell]], np.zeros((3, cell.n_features)), h0=np.zeros((2, cell.n_hidden)))
    with pytest.raises(ValueError, match="same number of directions"):
        run_stack([[cell, cell], [cell]], np.zeros((3, cell.n_features)))


def test_run_stack_on_the_command_line(runner, in_tmp):
    want = outputs()
    for k in ("xs", "h0", "c0"):
        np.save(f"{k}.npy", want[k])
    args = ["run", "--params", str(DATA / "torch_lstm_2x2.pt"), "--stack", "--xs", "xs.npy"]
    result = runner.invoke(app, [*args, "--h", "h0.npy", "--c", "c0.npy", "-o", "o.npz", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["layers"], report["directions"], report["y"]) == (2, [2, 2], [5, 2, 4])
    assert report["left_out"] == [] and [c["H"] for c in report["cells"]] == [2, 2, 2, 2]
    np.testing.assert_allclose(report["h_n"], want["h_n"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(report["c_n"], want["c_n"], rtol=0, atol=1e-10)
    with np.load("o.npz") as saved:
        assert sorted(saved) == ["c_n", "h_n", "y", "y_l0", "y_l1"]
        np.testing.assert_allclose(saved["y"], want["y"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(saved["y_l0"], want["y0"], rtol=0, atol=1e-10)
        np.testing.assert_array_equal(saved["y_l1"], saved["y"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layer", "1"], "--layer/--direction cannot be combined"),
        (["--direction", "reverse"], "--layer/--direction cannot be combined"),
        (["--gates", "--out", "o.npz"], "--gates cannot be combined"),
        (["--plot", "p.png"], "--plot cannot be combined"),
        (["--chunk-steps", "2"], "--chunk-steps cannot be combined"),
        (["--h", "h.npy"], "h0 has shape (2, 2), expected (4, 2, 2)"),
        (["--xs", "bad.npy"], "xs has shape (5, 7), expected (T, 3) or (T, B, 3)"),
        (["--xs", "scalar.npy"], "xs has shape (), expected (T, 3) or (T, B, 3)"),
        (
            ["--xs", "no-batch.npy", "--batch-first"],
            "xs has shape (0, 5, 3), expected (T, 3) or (B, T, 3), T >= 1 and B >= 1",
        ),
    ],
)
def test_refusals(runner, in_tmp, extra, message):
    np.save("xs.npy", outputs()["xs"])
    np.save("bad.npy", np.zeros((5, 7)))
    np.save("scalar.npy", np.float64(3))
    np.save("no-batch.npy", np.zeros((0, 5, 3)))
    np.save("h.npy", np.zeros((2, 2)))
    args = ["run", "--params", str(DATA / "torch_lstm_2x2.pt"), "--stack", "--xs", "xs.npy"]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not Path("o.npz").exists()


def test_no_params_refused(runner, in_tmp):
    np.save("xs.npy", np.zeros((5, 3)))
    result = runner.invoke(app, ["run", "--stack", "--xs", "xs.npy"])
    assert result.exit_code == 2 and "needs --params" in result.output


def test_a_layer_that_does_not_read_the_layer_below_is_refused(runner, in_tmp):
    with np.load(DATA / "torch_lstm_2x2.npz") as f:
        arrays = dict(f)
    arrays["weight_ih_l1"] = arrays["weight_ih_l1"][:, :3]  # F = 3, not D*H = 4
    np.savez("bad.npz", **arrays)
    np.save("xs.npy", outputs()["xs"])
    result = runner.invoke(app, ["run", "--params", "bad.npz", "--stack", "--xs", "xs.npy"])
    assert result.exit_code == 2
    assert "layer 1 cell 0 has F = 3, H = 2; a stack of 2 direction(s) needs F = 4" in result.output


def test_batch_first_reads_b_t_f_and_saves_b_t_x(runner, in_tmp):
    want = outputs()
    np.save("xs.npy", want["xs"].swapaxes(0, 1))  # (B, T, F)
    np.save("h0.npy", want["h0"])  # states unchanged: (L*D, B, H)
    args = ["run", "--params", str(DATA / "torch_lstm_2x2.pt"), "--stack", "--xs", "xs.npy"]
    result = runner.invoke(app, [*args, "--batch-first", "--h", "h0.npy", "--c", "h0.npy",
                                 "-o", "o.npz", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["y"] == [2, 5, 4] and report["batch_first"] is True
    layers = [[cast_cell(ps.params, "float64", "t", ps.bias_halves) for ps in sets]
              for sets in load_stack(DATA / "torch_lstm_2x2.pt", 1 << 30)]  # fmt: skip
    r = run_stack(layers, want["xs"], want["h0"], want["h0"], backend="auto")  # as the CLI
    with np.load("o.npz") as saved:
        np.testing.assert_array_equal(saved["y"], r.y.swapaxes(0, 1))
        np.testing.assert_array_equal(saved["y_l0"], r.layer_outputs[0].swapaxes(0, 1))
        np.testing.assert_array_equal(saved["h_n"], r.h_n)


@pytest.mark.parametrize("backend", ["numpy", "compiled", "auto"])
def test_the_backend_is_passed_through(runner, in_tmp, backend, monkeypatch):
    from lstm_cli import compiled, sequence

    if backend == "compiled" and not compiled.available():
        pytest.skip("the compiled kernel was not built (no C compiler)")
    seen = []
    real = sequence.run_sequence

    def spy(*args, **kwargs):
        seen.append(kwargs["backend"])
        return real(*args, **kwargs)

    monkeypatch.setattr("lstm_cli.stack.run_sequence", spy)
    want = outputs()
    np.save("xs.npy", want["xs"][:, 0])  # unbatched: auto may choose compiled
    args = ["run", "--params", str(DATA / "torch_lstm_2x2.pt"), "--stack", "--xs", "xs.npy"]
    result = runner.invoke(app, [*args, "--backend", backend, "-v", "--json"])
    assert result.exit_code == 0, result.output
    chosen = json.loads(result.stdout)["backend"]
    assert seen == [chosen] * 4 and f"backend: {chosen}" in result.stderr
    assert chosen == ("numpy" if backend == "numpy" or not compiled.available() else "compiled")
    r = run_stack(
        [[cast_cell(ps.params, "float64", "t", ps.bias_halves) for ps in sets]
         for sets in load_stack(DATA / "torch_lstm_2x2.pt", 1 << 30)],
        want["xs"][:, 0],
    )  # fmt: skip
    np.testing.assert_allclose(json.loads(result.stdout)["h_n"], r.h_n, rtol=0, atol=1e-12)


def test_compiled_backend_refused_when_not_installed(runner, in_tmp, monkeypatch):
    from lstm_cli import compiled

    monkeypatch.setattr(compiled, "available", lambda: False)
    np.save("xs.npy", outputs()["xs"])
    args = ["run", "--params", str(DATA / "torch_lstm_2x2.pt"), "--stack", "--xs", "xs.npy"]
    result = runner.invoke(app, [*args, "--backend", "compiled"])
    assert result.exit_code == 2 and "--backend compiled: the compiled backend is not" in (
        result.output
    )


def test_the_view_is_a_table_and_export_writes_it(runner, in_tmp):
    want = outputs()
    np.save("xs.npy", want["xs"])
    args = ["run", "--params", str(DATA / "torch_lstm_2x2.pt"), "--stack", "--xs", "xs.npy"]
    result = runner.invoke(app, [*args, "--pretty", "--export-view", "v.txt"],
                           env={"COLUMNS": "120"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not result.stdout.lstrip().startswith("{")
    for part in ("layer", "dir", "h_n, batch row 0", "y (5, 2, 4), h_n and c_n (4, 2, 2)"):
        assert part in result.stdout, part
    assert result.stdout.count("reverse ←") == 2 and "│ l1 " in result.stdout
    r = run_stack(
        [[cast_cell(ps.params, "float64", "t", ps.bias_halves) for ps in sets]
         for sets in load_stack(DATA / "torch_lstm_2x2.pt", 1 << 30)],
        want["xs"],
    )  # fmt: skip
    assert f"{r.h_n[3, 0, 0]:+.4f} {r.h_n[3, 0, 1]:+.4f}" in result.stdout
    assert f"{r.c_n[0, 0, 0]:+.4f} {r.c_n[0, 0, 1]:+.4f}" in result.stdout
    assert "layer" in Path("v.txt").read_text()
