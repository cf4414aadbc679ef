"""docs/failures.md, executed: every `catalogue` row is run and checked, every other row names
a test that exists."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from tests import hostile
from tests.conftest import ROOT, notebook_arrays

CATALOGUE = ROOT / "docs" / "failures.md"
runner = CliRunner()


def parse_rows() -> list[dict[str, str]]:
    rows = []
    for line in CATALOGUE.read_text().splitlines():
        if not line.startswith("| ") or line.startswith("| id ") or line.startswith("| ---"):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        row = dict(
            zip(("id", "what", "command", "stdin", "exit", "message", "test"), cells, strict=True)
        )
        rows.append(
            {k: v[1:-1] if v.startswith("`") and v.endswith("`") else v for k, v in row.items()}
        )
    return rows


ROWS = parse_rows()
RUN = [r for r in ROWS if r["test"] == "catalogue"]
ELSEWHERE = [r for r in ROWS if r["test"] != "catalogue"]

SPECIAL_STDIN = {
    "{huge-int}": lambda: f"[{10**400}, 0]",
    "{deep-50}": lambda: "[" * 50 + "1" + "]" * 50,
    "{deep-100000}": lambda: "[" * 100_000 + "]" * 100_000,
    "{not-utf8}": lambda: b"\xff\xfe\x00[",
    "{json-2mb}": lambda: "[" + ",".join(["0.5"] * 600_000) + "]",
    "{x-1e300}": lambda: json.dumps((notebook_arrays()["x_t"] * 1e300).tolist()),
}


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    hostile.build(folder)
    return folder


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_catalogue_ids_are_unique_and_cover_the_issue():
    ids = [r["id"] for r in ROWS]
    assert len(ids) == len(set(ids))
    assert len(RUN) >= 60


HOSTILE_TERMINALS = {
    "plain": {},
    "NO_COLOR": {"NO_COLOR": "1"},
    "TERM=dumb,COLUMNS=20": {"TERM": "dumb", "COLUMNS": "20"},
}


@pytest.mark.parametrize("terminal", list(HOSTILE_TERMINALS))
@pytest.mark.parametrize("row", RUN, ids=[r["id"] for r in RUN])
def test_catalogue_row(row, terminal, bad, tmp_path, monkeypatch):
    """Each row, also under NO_COLOR and under TERM=dumb with a 20-column terminal."""
    for name, value in HOSTILE_TERMINALS[terminal].items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    args = [a.replace("{bad}", str(bad)) for a in shlex.split(row["command"])]
    stdin: str | bytes = (
        SPECIAL_STDIN[row["stdin"]]() if row["stdin"] in SPECIAL_STDIN else row["stdin"]
    )
    before = digest(bad)
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code == int(row["exit"]), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if int(row["exit"]) != 0:
        message = row["message"].replace("{bad}", str(bad))
        assert message in result.stderr, result.stderr
        assert result.stdout == ""
        assert 1 <= len(result.stderr.strip().splitlines()) <= 6  # usage errors add a hint
        if result.stderr.startswith("Error: "):
            assert len(result.stderr.strip().splitlines()) <= 2
        assert list(tmp_path.iterdir()) == []  # nothing written
    assert digest(bad) == before  # nothing clobbered
    assert not (bad / "pwned").exists()  # no pickle ever ran


@pytest.mark.parametrize("row", ELSEWHERE, ids=[r["id"] for r in ELSEWHERE])
def test_rows_proven_elsewhere_name_a_real_test(row):
    path, _, name = row["test"].partition("::")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    assert callable(getattr(module, name, None)), row["test"]


def test_integer_params_are_cast_to_float64(bad):
    from lstm_cli.io.paramfiles import load_param_set

    ps = load_param_set(bad / "int.npz")
    assert ps.params.Wf.dtype == np.float64
