"""docs/checkpoints.md, executed: every `lstm-cell` line of its bash blocks runs, in order, in a
folder holding copies of tests/data; a line marked `# exit N` must exit N."""

from __future__ import annotations

import re
import shlex
import shutil

import numpy as np
from typer.testing import CliRunner

from lstm_cli.cli import app
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "checkpoints.md"


def page_commands() -> list[tuple[str, int]]:
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S)
    out = []
    for line in (line for block in blocks for line in block.splitlines()):
        command, _, comment = line.partition("  #")
        want = re.match(r"\s*exit (\d+)", comment)
        out.append((command.strip(), int(want.group(1)) if want else 0))
    return out


def test_every_command_of_the_page_runs(tmp_path, monkeypatch):
    for f in (ROOT / "tests" / "data").iterdir():
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", np.array([0.5, -1.0, 2.0]))
    np.save("xs.npy", np.random.default_rng(0).standard_normal((5, 3)))
    np.save("xs-bf.npy", np.random.default_rng(1).standard_normal((2, 5, 3)))  # (B, T, F)
    with np.load("torch_lstm_2x2_out.npz") as out:  # layer 0's output: layer 1's input
        np.save("y0.npy", out["y0"][:, 0])
    commands = page_commands()
    assert len(commands) >= 6 and all(c.startswith("lstm-cell ") for c, _ in commands)
    for command, want in commands:
        result = CliRunner().invoke(app, shlex.split(command)[1:], input="")
        assert result.exit_code == want, (command, result.output)
        assert "Traceback" not in result.output
