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
