"""``check path/to/file.py:FUNCTION`` from another folder: the file's folder is on the
import path, so the port's sibling modules import as ``python path/to/file.py`` would."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from lstm_cli.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def test_a_file_targets_sibling_module_imports_from_another_folder(in_tmp, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    ports = in_tmp / "ports"
    ports.mkdir()
    (ports / "cellmath_sibling.py").write_text((ROOT / "tests" / "ports.py").read_text())
    (ports / "adapt.py").write_text(
        "from cellmath_sibling import correct\n\n\ndef step(*args):\n    return correct(*args)\n"
    )
    elsewhere = in_tmp / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(app, ["check", "../ports/adapt.py:step", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


def test_a_batch_only_function_is_told_and_passes_with_batch_only(monkeypatch):
    monkeypatch.chdir(ROOT)
    plain = runner.invoke(app, ["check", "tests.ports:batch_only"])
    assert plain.exit_code == 1
    assert "pass --batch-only" in plain.stderr
    result = runner.invoke(app, ["check", "tests.ports:batch_only", "--batch-only", "--json"])
    assert result.exit_code == 0, result.output
    v = json.loads(result.stdout)
    assert v["ok"] is True and v["passed"] > 0
    assert all(c["shape"].split(",")[0] != "-" for c in v["cases"])


def test_no_batch_and_batch_only_exclude_each_other(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["check", "tests.ports:correct", "--no-batch", "--batch-only"])
    assert result.exit_code == 2
    assert "exclude each other" in result.stderr
