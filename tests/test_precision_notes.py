"""A float32 params file computed in float64 (the default), or a float64 file computed in
float32, says so once: in the view's notes and in JSON ``notes``, for step, run, run --stack
and grad."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import init_params, to_pytorch
from lstm_cli.cli import app

runner = CliRunner()
UP = "The params file holds float32 arrays, computed in float64"
DOWN = "The params file holds float64 arrays, computed in float32"
COMMANDS = {
    "step": ["step", "--x", "x.npy"],
    "run": ["run", "--xs", "xs.npy"],
    "run --stack": ["run", "--stack", "--xs", "xs.npy"],
    "grad": ["grad", "--x", "x.npy"],
}


@pytest.fixture
def files(in_tmp):
    arrays = to_pytorch(init_params(10, 4, 1).params)
    np.savez(in_tmp / "t64.npz", **arrays)
    np.savez(in_tmp / "t32.npz", **{k: v.astype(np.float32) for k, v in arrays.items()})
    np.save(in_tmp / "x.npy", np.linspace(-1, 1, 10))
    np.save(in_tmp / "xs.npy", np.ones((3, 10)))
    return in_tmp


def invoke(command: str, params: str, *extra: str):
    args = [*COMMANDS[command], "--params", params, *extra]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("params", "extra", "note"),
    [("t32.npz", (), UP), ("t64.npz", ("--dtype", "float32"), DOWN)],
)
def test_a_precision_change_is_noted_once(files, command, params, extra, note):
    notes = json.loads(invoke(command, params, *extra, "--json").stdout)["notes"]
    assert [n for n in notes if n.startswith("The params file holds")] == [
        next(n for n in notes if n.startswith(note))
    ]
    view = invoke(command, params, *extra, "--pretty").stdout
    assert " ".join(view.split()).count(note) == 1


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("params", "extra"), [("t32.npz", ("--dtype", "float32")), ("t64.npz", ())]
)
def test_no_note_when_the_precision_is_the_files(files, command, params, extra):
    notes = json.loads(invoke(command, params, *extra, "--json").stdout)["notes"]
    assert not any("params file holds" in n for n in notes)
    assert "params file holds" not in invoke(command, params, *extra, "--pretty").stdout


def test_the_built_in_cell_has_no_note(in_tmp):
    result = runner.invoke(app, ["step", "--json"], input='{"x_t": [0,0,0,0,0,0,0,0,0,1]}')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["notes"] == []
