"""The committed files in params/ are what the tool makes, and the README's commands work."""

from __future__ import annotations

import json
import re
import shlex
import shutil

import numpy as np
from typer.testing import CliRunner

from lstm_cli.cli import app
from tests.conftest import PARAMS_DIR, ROOT


def test_params_folder_is_what_make_examples_makes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_examples", PARAMS_DIR / "make_examples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make(tmp_path)
    for name in ("x_t.npy", "h_prev.npy", "c_prev.npy"):
        np.testing.assert_array_equal(np.load(tmp_path / name), np.load(PARAMS_DIR / name))
    with np.load(tmp_path / "seed42.npz") as new, np.load(PARAMS_DIR / "seed42.npz") as old:
        assert new.files == old.files
        for key in new.files:
            np.testing.assert_array_equal(new[key], old[key], err_msg=key)
    assert json.loads((tmp_path / "inputs.json").read_text()) == json.loads(
        (PARAMS_DIR / "inputs.json").read_text()
    )


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("lstm-cell ")]


def test_readme_lstm_cell_commands_run(tmp_path, monkeypatch):
    """Every plain `lstm-cell ...` line in the README's bash blocks runs, in a copy of params/."""
    shutil.copytree(PARAMS_DIR, tmp_path / "params")
    monkeypatch.chdir(tmp_path)
    commands = readme_commands()
    assert any(c.startswith("lstm-cell init") for c in commands)
    assert any(c.startswith("lstm-cell step --params") for c in commands)
    runner = CliRunner()
    for command in commands:
        args = shlex.split(command)[1:]
        # outputs go to a temporary folder, never into the repository
        args = [
            str(tmp_path / a) if a.endswith(".npz") and not a.startswith("params/") else a
            for a in args
        ]
        result = runner.invoke(app, args, input="")
        assert result.exit_code == 0, (command, result.output)
