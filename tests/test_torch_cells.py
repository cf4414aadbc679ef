"""Every cell of a 2-layer bidirectional nn.LSTM (tests/data/torch_lstm_2x2.pt), chosen with
--layer and --direction, equals torch's own outputs (tests/data/torch_lstm_2x2_out.npz, torch in
float64) when fed what torch feeds it: layer 0 the inputs, layer 1 layer 0's output (D*H
features); the reverse cells the sequence last step first."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lstm_cli.cli.app import app
from lstm_cli.io.cells import CellChoice
from lstm_cli.io.paramfiles import load_param_set
from lstm_cli.sequence import run_sequence

DATA = Path(__file__).parent / "data"
CELLS = [(layer, d) for layer in (0, 1) for d in ("forward", "reverse")]  # torch's h_n order
H = 2


def outputs() -> dict[str, np.ndarray]:
    with np.load(DATA / "torch_lstm_2x2_out.npz") as f:
        return dict(f)


def cell_params(path: Path, layer: int, direction: str):
    """The chosen cell in float64, its two biases summed in float64 (as the CLI does)."""
    ps = load_param_set(path, cell=CellChoice(layer, direction))
    params = ps.params.astype("float64")
    if ps.bias_halves is not None:
        params = params.with_arrays(ps.bias_halves.summed("float64"))
    return params


def expected(out, layer: int, direction: str):
    """(inputs in the order the cell reads them, torch's h_seq in that order, h_n, c_n)."""
    xs = out["xs"] if layer == 0 else out["y0"]
    y = out["y0"] if layer == 0 else out["y"]
    half = slice(0, H) if direction == "forward" else slice(H, 2 * H)
    idx = 2 * layer + (direction == "reverse")
    step = 1 if direction == "forward" else -1
    return xs[::step], y[::step, :, half], idx


@pytest.mark.parametrize(("layer", "direction"), CELLS)
def test_each_cell_equals_torch(layer: int, direction: str):
    out = outputs()
    xs, ys, idx = expected(out, layer, direction)
    params = cell_params(DATA / "torch_lstm_2x2.pt", layer, direction)
    assert params.n_features == (3 if layer == 0 else 2 * H)
    result = run_sequence(params, xs, out["h0"][idx], out["c0"][idx], return_sequences=True)
    assert result.h_seq is not None
    np.testing.assert_allclose(result.h_seq, ys, rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.h_next, out["h_n"][idx], rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.c_next, out["c_n"][idx], rtol=0, atol=1e-10)


def test_run_layer_1_reverse_through_the_cli(runner, in_tmp):
    out = outputs()
    xs, ys, idx = expected(out, 1, "reverse")
    shutil.copy(DATA / "torch_lstm_2x2.pt", "m.pt")
    np.save("xs.npy", xs)
    np.save("h.npy", out["h0"][idx])
    np.save("c.npy", out["c0"][idx])
    args = ["run", "--params", "m.pt", "--layer", "1", "--direction", "reverse"]
    r = runner.invoke(app, [*args, "--xs", "xs.npy", "--h", "h.npy", "--c", "c.npy",
                             "--out", "seq.npz", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["sources"]["params"] == "m.pt (layer 1, reverse)"
    with np.load("seq.npz") as saved:
        np.testing.assert_allclose(saved["h_seq"], ys, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "holds 4 cells (l0, l0_reverse, l1, l1_reverse: 2 layers, 2 directions)"),
        (["--layer", "1"], "holds 4 cells"),
        (["--direction", "reverse"], "holds 4 cells"),
        (["--layer", "2"], "has no cell layer 2; it holds 4: l0, l0_reverse, l1, l1_reverse"),
    ],
)
def test_several_cells_and_no_choice_refused(runner, in_tmp, options, message):
    shutil.copy(DATA / "torch_lstm_2x2.pt", "m.pt")
    for command in (["step", "--x", "x.npy"], ["convert", "m.pt", "o.npz", "--to", "native"]):
        params = [] if command[0] == "convert" else ["--params", "m.pt"]
        r = runner.invoke(app, [*command, *params, *options])
        assert r.exit_code == 2, r.output
        assert message in r.stderr
        if "holds 4 cells" in message:
            assert "Choose one with --layer N and --direction forward|reverse" in r.stderr
    assert not Path("o.npz").exists()


def test_one_cell_files_take_only_layer_0_forward(runner, in_tmp):
    shutil.copy(DATA / "torch_cell.pt", "c.pt")
    np.save("x.npy", np.ones(3))
    ok = runner.invoke(app, ["step", "--params", "c.pt", "--x", "x.npy", "--layer", "0",
                              "--direction", "forward", "--json"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["sources"]["params"] == "c.pt"
    r = runner.invoke(app, ["step", "--params", "c.pt", "--x", "x.npy", "--layer", "1"])
    assert r.exit_code == 2
    assert "has no cell layer 1; it holds 1: l0" in r.stderr


def test_layer_without_params_is_a_usage_error(runner, in_tmp):
    r = runner.invoke(app, ["step", "--layer", "1"])
    assert r.exit_code == 2
    assert "--layer" in r.stderr


def test_convert_writes_the_chosen_cell(runner, in_tmp):
    shutil.copy(DATA / "torch_lstm_2x2.pt", "m.pt")
    r = runner.invoke(app, ["convert", "m.pt", "l1r.npz", "--to", "pytorch", "--layer", "1",
                             "--direction", "reverse", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    with np.load("l1r.npz") as written, np.load(DATA / "torch_lstm_2x2.npz") as source:
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            np.testing.assert_array_equal(written[name], source[f"{name}_l1_reverse"])
