"""The committed files in params/ are what the tool makes, and the README's commands work."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
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
    for name in ("x_t.npy", "h_prev.npy", "c_prev.npy", "xs.npy", "xs-batch.npy"):
        np.testing.assert_array_equal(np.load(tmp_path / name), np.load(PARAMS_DIR / name))
    with np.load(tmp_path / "seed42.npz") as new, np.load(PARAMS_DIR / "seed42.npz") as old:
        assert new.files == old.files
        for key in new.files:
            np.testing.assert_array_equal(new[key], old[key], err_msg=key)
    assert json.loads((tmp_path / "inputs.json").read_text()) == json.loads(
        (PARAMS_DIR / "inputs.json").read_text()
    )


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def doc_lines(path: Path) -> list[str]:
    """The command lines of a page's ```bash blocks, comments cut."""
    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]


def readme_commands(path: Path = ROOT / "README.md") -> list[str]:
    return [line for line in doc_lines(path) if line.startswith("lstm-cell ") and "|" not in line]


def piped_commands(path: Path) -> list[str]:
    """Shell lines that pipe into or out of lstm-cell (run by bash, not CliRunner)."""
    return [
        line for line in doc_lines(path)
        if "lstm-cell " in line and "|" in line and "<(" not in line and "jq" not in line
    ]  # fmt: skip


def inputs_exist(args: list[str]) -> bool:
    """True when every input file the command names exists (outputs follow --out)."""
    for k, arg in enumerate(args):
        if k and args[k - 1] in ("--out", "-o", "--export-view", "--plot"):
            continue
        if args[0] == "convert" and k == 2:  # convert IN OUT: OUT is written
            continue
        if ":" in arg and not arg.startswith("-"):  # check MODULE:FUNCTION
            return False
        suffixes = (".npz", ".npy", ".json", ".py", ".pt", ".pth", ".bin", ".onnx", ".safetensors",
                    ".keras", ".h5")  # fmt: skip
        is_path = "/" in arg or arg.endswith(suffixes)
        if is_path and not Path(arg).exists():
            return False
    return True


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_page_s_commands_run(page, tmp_path, monkeypatch):
    """Each page's `lstm-cell ...` lines run, in order, in a folder holding a copy of params/;
    a line is skipped only when it names a file of the user's (my_lstm.py, x.npy, ...)."""
    shutil.copytree(PARAMS_DIR, tmp_path / "params")
    shutil.copytree(ROOT / "tests" / "data", tmp_path / "tests" / "data")  # framework files
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for command in readme_commands(page):
        args = shlex.split(command)[1:]
        if not inputs_exist(args) or "# exit" in command:
            continue
        if args[0] == "init" or "--out" in args or "-o" in args:
            args.append("--force")  # examples may write the same file twice
        result = runner.invoke(app, args, input="")
        assert result.exit_code == 0, (page.name, command, result.output)


@pytest.mark.slow
def test_the_readme_s_pipes_run(tmp_path):
    """The README's shell lines with a pipe, run by bash with the installed lstm-cell."""
    import os
    import subprocess
    import sys

    shutil.copytree(PARAMS_DIR, tmp_path / "params")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    lines = piped_commands(ROOT / "README.md")
    assert len(lines) >= 2
    for line in lines:
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 0, (line, proc.stderr)


def test_readme_lstm_cell_commands_run(tmp_path, monkeypatch):
    """The README's `lstm-cell ...` lines run, in order, in a folder holding a copy of params/;
    a line is skipped only when it names a file of the user's (my_lstm.py, x.npy, ...)."""
    shutil.copytree(PARAMS_DIR, tmp_path / "params")
    shutil.copytree(ROOT / "tests" / "data", tmp_path / "tests" / "data")  # framework files
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    ran = []
    for command in readme_commands():
        args = shlex.split(command)[1:]
        if not inputs_exist(args):
            continue
        if args[0] == "init":
            args.append("--force")  # the README's init examples may write the same file
        result = runner.invoke(app, args, input="")
        assert result.exit_code == 0, (command, result.output)
        ran.append(args[0])
    assert {"init", "step", "run", "grad", "vectors", "convert"} <= set(ran)
    assert len(ran) == len(readme_commands())  # every README command ran


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300
