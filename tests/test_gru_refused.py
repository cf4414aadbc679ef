"""A GRU's parameters (3 stacked gate blocks) are named as a GRU, not refused as a bad shape,
by every command that reads a params file, in every stacked layout."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app

runner = CliRunner()
H, F = 4, 10
GRUS = {
    "torch-cell": {"weight_ih": (3 * H, F), "weight_hh": (3 * H, H),
                   "bias_ih": (3 * H,), "bias_hh": (3 * H,)},
    "torch-layer": {"weight_ih_l0": (3 * H, F), "weight_hh_l0": (3 * H, H),
                    "bias_ih_l0": (3 * H,), "bias_hh_l0": (3 * H,)},
    "keras": {"kernel": (F, 3 * H), "recurrent_kernel": (H, 3 * H), "bias": (2, 3 * H)},
    "onnx": {"W": (1, 3 * H, F), "R": (1, 3 * H, H), "B": (1, 6 * H)},
}  # fmt: skip
COMMANDS = {
    "step": ["step", "--params", "gru.npz"],
    "run": ["run", "--params", "gru.npz", "--xs", "xs.npy"],
    "convert": ["convert", "gru.npz", "out.npz", "--to", "native"],
    "inspect": ["inspect", "gru.npz"],
}


@pytest.mark.parametrize("kind", GRUS)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_gru_is_named(in_tmp, kind, command):
    rng = np.random.default_rng(0)
    np.savez(in_tmp / "gru.npz", **{k: rng.standard_normal(s) for k, s in GRUS[kind].items()})
    np.save(in_tmp / "xs.npy", np.zeros((2, F)))
    result = runner.invoke(app, COMMANDS[command])
    assert result.exit_code == 2, result.output
    assert "this looks like a GRU (3 gate blocks), not an LSTM" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (in_tmp / "out.npz").exists()


def test_an_lstm_with_three_hidden_units_is_not_a_gru(in_tmp):
    """(4H, H) with H = 3 has 12 rows, as a GRU's (3H, H) with H = 4 has: the ratio decides."""
    from lstm_cli import init_params, to_pytorch

    np.savez(in_tmp / "lstm.npz", **to_pytorch(init_params(F, 3, 1).params))
    result = runner.invoke(app, ["inspect", "lstm.npz"])
    assert result.exit_code == 0, result.output
    assert "GRU" not in result.output
