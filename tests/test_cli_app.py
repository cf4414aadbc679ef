"""The group itself: --version, -h, the lazy registry, and how errors become exit codes."""

from __future__ import annotations

import json
from importlib.metadata import version

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.cli.app import COMMANDS, load_command
from lstm_cli.cli.output import HINT_TEXT, render_error
from lstm_cli.errors import Hint, InputError, LstmCellError, OutputError, UserCodeError

runner = CliRunner()


def test_version_prints_the_installed_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().startswith(f"lstm-cell {version('lstm-cell')}, backend: ")


def test_the_package_reports_the_same_version():
    import lstm_cli

    assert lstm_cli.__version__ == version("lstm-cell")


@pytest.mark.parametrize("args", [["-h"], ["--help"], ["step", "-h"], ["run", "-h"]])
def test_short_and_long_help(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Usage: lstm-cell" in result.output


def test_shell_completion_is_offered():
    result = runner.invoke(app, ["--help"])
    assert "--install-completion" in result.output and "--show-completion" in result.output


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_registered_command_loads(name):
    command = load_command(name)
    assert command.name == name
    assert command.help  # the function's docstring is its --help


def test_every_hint_has_command_line_text():
    assert set(HINT_TEXT) == set(Hint)


@pytest.mark.parametrize(
    ("error", "code"), [(InputError("x"), 2), (OutputError("x"), 1), (UserCodeError("x"), 1)]
)
def test_exit_codes_by_kind(error: LstmCellError, code: int):
    assert error.exit_code == code


def test_a_hint_becomes_the_option_that_fixes_it():
    e = InputError("p.npz: already exists", Hint.FORCE)
    assert render_error(e) == "Error: p.npz: already exists; pass --force to overwrite it"
    assert render_error(InputError("plain")) == "Error: plain"


def test_run_json_file_obeys_the_input_limit(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"xs": np.zeros((30_000, 10)).tolist()}))
    assert big.stat().st_size > 1 << 20
    result = runner.invoke(app, ["run", "--xs", str(big), "--max-input-mb", "1"])
    assert result.exit_code == 2, result.output
    assert "over the 1 MiB input limit; raise it with --max-input-mb" in result.output
    assert "Traceback" not in result.output
    ok = runner.invoke(app, ["run", "--xs", str(big), "--max-input-mb", "2", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["steps"] == 30_000


def test_exit_status_is_what_sys_exit_would_give(capsys):
    """main() ends the process with os._exit once the command has run: the status and the
    message are sys.exit's (None 0, an int itself, anything else printed and 1)."""
    from lstm_cli.cli.app import exit_status

    assert exit_status(None) == 0
    assert exit_status(0) == 0 and exit_status(2) == 2 and exit_status(130) == 130
    assert exit_status("a message") == 1
    assert capsys.readouterr().err == "a message\n"


def test_exit_status_when_stdout_s_reader_has_gone(monkeypatch):
    from lstm_cli.cli.app import exit_status

    class Gone:
        def flush(self) -> None:
            raise BrokenPipeError

    monkeypatch.setattr("sys.stdout", Gone())
    assert exit_status(0) == 1  # as while writing: 1, without a word
    assert exit_status(2) == 2  # an error's own status stays


def test_the_process_ends_with_all_of_its_output_and_files(tmp_path):
    """Through the console entry point (os._exit after flushing): a large JSON payload through
    a pipe arrives whole, a written file is complete, and the exit codes are the commands'."""
    import subprocess
    import sys

    import numpy as np

    lstm = [sys.executable, "-m", "lstm_cli"]
    xs = tmp_path / "xs.npy"
    np.save(xs, np.random.default_rng(0).standard_normal((5, 4000, 10)))  # a batch of 4000
    out = subprocess.run([*lstm, "run", "--xs", str(xs), "--json"], capture_output=True,
                         check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)  # well over a pipe's 64 KiB buffer
    assert len(out.stdout) > 1 << 18 and len(payload["h_next"]) == 4000
    made = subprocess.run([*lstm, "init", "--seed", "3", "--out", str(tmp_path / "p.npz")],
                          capture_output=True, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    with np.load(tmp_path / "p.npz") as npz:
        assert npz["Wf"].shape == (4, 14) and np.isfinite(npz["Wf"]).all()
    bad = subprocess.run([*lstm, "step", "--x", str(tmp_path / "missing.npy"), "--json"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") <= 2 and "missing.npy" in bad.stderr
    usage = subprocess.run([*lstm, "step", "--no-such-option"], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert usage.returncode == 2 and "No such option" in usage.stderr
