"""Refusals that need more than a command line: clobbering with and without --force, a failing
disk, results at the edge of the range. Every other refused input is a row of
docs/failures.md, run by tests/test_catalogue.py."""

from __future__ import annotations

import errno
import json
import os
import zipfile

from typer.testing import CliRunner

from lstm_cli.cli import app
from tests.conftest import notebook_arrays

runner = CliRunner()


def assert_refused(result, message: str, code: int = 2) -> None:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""  # no partial result
    assert 1 <= len(result.stderr.strip().splitlines()) <= 2


def test_existing_out_file_is_not_clobbered(in_tmp):
    (in_tmp / "r.npz").write_bytes(b"precious")
    result = runner.invoke(app, ["step", "--out", "r.npz"])
    assert_refused(result, "r.npz: already exists; pass --force")
    assert (in_tmp / "r.npz").read_bytes() == b"precious"
    result = runner.invoke(app, ["step", "--out", "r.npz", "--force"])
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(in_tmp / "r.npz")
    assert sorted(p.name for p in in_tmp.iterdir()) == ["r.npz"]  # no temp file left


def test_a_failing_disk_leaves_no_file_behind(in_tmp, monkeypatch):
    """A full disk (ENOSPC at fsync) is a runtime error, exit 1, and no partial file remains."""

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    assert_refused(runner.invoke(app, ["step", "--out", "r.npz"]), "No space left", code=1)
    assert list(in_tmp.iterdir()) == []


def test_an_unwritable_folder_is_a_runtime_error(in_tmp, monkeypatch):
    """What a read-only folder does to a normal user (the tests run as root, who may write)."""
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    assert_refused(runner.invoke(app, ["init", "--out", "p.npz"]), "Permission denied", code=1)
    assert list(in_tmp.iterdir()) == []


def test_large_but_finite_state_is_accepted():
    a = notebook_arrays()
    big = json.dumps({"x": a["x_t"].tolist(), "c": [1e308, -1e308, 1e308, 1e308]})
    result = runner.invoke(app, ["step"], input=big)
    # f_t * c_prev + i_t * g stays finite for |c_prev| <= 1e308 with f_t < 1: accepted
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["c_next"][0] < 1e308
