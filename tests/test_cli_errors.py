"""Every refused input of `step`: exit code, a plain message naming what is wrong, no traceback,
nothing written."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from tests.conftest import PARAMS_DIR, notebook_arrays

runner = CliRunner()
SEED42 = PARAMS_DIR / "seed42.npz"


class Payload:
    """Unpickling this would create a folder: proof that nothing is ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def save_npz(path: Path, **arrays) -> str:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return str(path)


def save_npy(path: Path, arr, allow_pickle: bool = False) -> str:
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=allow_pickle)
    return str(path)


def bad_params(tmp: Path, case: str) -> tuple[list[str], str]:
    """Build a broken params file; return the step arguments and the expected message."""
    a = notebook_arrays()
    p = tmp / "bad.npz"
    if case == "missing-file":
        return ["--params", str(tmp / "nope.npz")], "nope.npz: no such file"
    if case == "directory":
        return ["--params", str(tmp)], "is a directory"
    if case == "empty":
        p.write_bytes(b"")
        return ["--params", str(p)], "not a .npz archive"
    if case == "not-a-zip":
        p.write_text("hello")
        return ["--params", str(p)], "not a .npz archive"
    if case == "truncated":
        data = SEED42.read_bytes()
        p.write_bytes(data[: len(data) // 2])
        return ["--params", str(p)], "bad.npz"
    if case == "corrupt-member":
        raw = bytearray(SEED42.read_bytes())
        raw[200:260] = b"\0" * 60
        p.write_bytes(bytes(raw))
        return ["--params", str(p)], "bad.npz"
    if case == "a-npy":
        save_npy(p, a["Wf"])
        return ["--params", str(p)], "single .npy array"
    if case == "missing-key":
        del a["bc"]
        save_npz(p, **a)
        return ["--params", str(p)], "missing bc"
    if case == "wrong-shape":
        a["Wo"] = np.zeros((4, 13))
        save_npz(p, **a)
        return ["--params", str(p)], "Wo has shape (4, 13), expected (4, 14)"
    if case == "object-array":
        a["Wf"] = np.array([Payload(tmp / "pwned")], dtype=object)
        save_npz(p, **a)
        return ["--params", str(p)], "Wf is an object (pickled) array, which is never loaded"
    if case == "nan":
        a["bi"][2] = np.nan
        save_npz(p, **a)
        return ["--params", str(p)], "bi contains nan at index (2,)"
    if case == "inf":
        a["Wc"][1, 3] = -np.inf
        save_npz(p, **a)
        return ["--params", str(p)], "Wc contains -inf at index (1, 3)"
    if case == "complex":
        a["Wi"] = a["Wi"].astype(complex)
        save_npz(p, **a)
        return ["--params", str(p)], "Wi has complex dtype"
    if case == "bool":
        a["bf"] = a["bf"] > 0
        save_npz(p, **a)
        return ["--params", str(p)], "bf has boolean dtype"
    if case == "string":
        a["bo"] = np.array(["a", "b", "c", "d"])
        save_npz(p, **a)
        return ["--params", str(p)], "bo has string dtype"
    if case == "structured":
        a["bc"] = np.zeros(4, dtype=[("a", "f8"), ("b", "i4")])
        save_npz(p, **a)
        return ["--params", str(p)], "bc has structured dtype"
    if case == "example-shape":
        a["x_t"] = np.zeros(3)
        save_npz(p, **a)
        return ["--params", str(p)], "example input x_t has shape (3,), expected (10,)"
    if case == "bad-meta":
        save_npz(p, **a, meta=np.array([1, 2]))
        return ["--params", str(p)], "meta is not a JSON object string"
    raise AssertionError(case)


PARAMS_CASES = [
    "missing-file", "directory", "empty", "not-a-zip", "truncated", "corrupt-member", "a-npy",
    "missing-key", "wrong-shape", "object-array", "nan", "inf", "complex", "bool", "string",
    "structured", "example-shape", "bad-meta",
]  # fmt: skip


def assert_refused(result, message: str, code: int = 2) -> None:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""  # no partial result
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, lines


@pytest.mark.parametrize("case", PARAMS_CASES)
def test_bad_params_file_is_refused(in_tmp, case):
    args, message = bad_params(in_tmp, case)
    before = sorted(p.name for p in in_tmp.iterdir())
    result = runner.invoke(app, ["step", *args, "--out", "result.npz"])
    assert_refused(result, message)
    assert sorted(p.name for p in in_tmp.iterdir()) == before  # nothing written
    assert not (in_tmp / "pwned").exists()  # never unpickled


# (stdin, extra args, expected message)
STDIN_CASES = {
    "malformed": ('{"x_t": [1, 2', [], "stdin: malformed JSON at line 1"),
    "nan-literal": ('{"x_t": [NaN, 1]}', [], "NaN is not allowed"),
    "infinity-literal": ("[Infinity]", [], "Infinity is not allowed"),
    "huge-number": ("[1e999, 0, 0, 0, 0, 0, 0, 0, 0, 0]", [], "x_t contains inf"),
    "huge-int": (f"[{10**400}, 0]", [], "too large for float64"),
    "string": ('{"x_t": ["1", 2]}', [], "x_t holds a string, expected numbers"),
    "boolean": ('{"x_t": [true, 2]}', [], "x_t holds true, expected numbers"),
    "null": ('{"h_prev": null, "x_t": [1]}', [], "h_prev holds null"),
    "ragged": ("[[1, 2], [3]]", [], "x_t is ragged"),
    "too-deep": ("[" * 50 + "1" + "]" * 50, [], "nested more than"),
    "very-deep": ("[" * 100000 + "]" * 100000, [], "stdin: JSON nested too deeply"),
    "object-in-list": ('[{"a": 1}]', [], "x_t holds an object"),
    "unknown-key": ('{"x_t": [1], "c_prv": [1]}', [], "unknown key 'c_prv'"),
    "duplicate-key": ('{"x_t": [1], "x_t": [2]}', [], "duplicate key 'x_t'"),
    "alias-twice": ('{"x_t": [1], "x": [2]}', [], "x_t is given twice"),
    "x-wrong-shape": ('{"x": [1, 2, 3]}', [], "x_t has shape (3,), expected (10,) or (B, 10)"),
    "x-3d": ("[[[1]]]", [], "x_t has shape (1, 1, 1), expected (10,) or (B, 10)"),
    "h-wrong-shape": (
        json.dumps({"x": [0] * 10, "h": [0] * 5}), [], "h_prev has shape (5,), expected (4,)"
    ),
    "batch-mismatch": (
        json.dumps({"x": [[0] * 10] * 3, "c": [[0] * 4] * 2}), [],
        "c_prev has shape (2, 4), expected (4,) or (3, 4)",
    ),
    "no-x": ('{"h": [0, 0, 0, 0]}', [], "x_t is missing"),
    "not-utf8": (b"\xff\xfe\x00[", [], "not UTF-8"),
    "empty-dash": ("", ["--x", "-"], "stdin: empty"),
    "two-dashes": ("[1]", ["--x", "-", "--h", "-"], "only one input can come from stdin"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(STDIN_CASES))
def test_bad_stdin_is_refused(in_tmp, case):
    stdin, args, message = STDIN_CASES[case]
    result = runner.invoke(app, ["step", *args, "--out", "r.npz"], input=stdin)
    assert_refused(result, message)
    assert list(in_tmp.iterdir()) == []


def test_bad_input_files_are_refused(in_tmp):
    a = notebook_arrays()
    cases = {
        "missing.npy": (str(in_tmp / "missing.npy"), "missing.npy: no such file"),
        "dir": (str(in_tmp), "is a directory"),
        "obj.npy": (
            save_npy(in_tmp / "obj.npy", np.array([Payload(in_tmp / "pwned")]), True),
            "x_t is an object (pickled) array",
        ),
        "trunc.npy": (None, "x_t is truncated: its header declares 80 bytes of data"),
        "ints.npy": (save_npy(in_tmp / "ints.npy", np.arange(3)), "x_t has shape (3,)"),
        "cplx.npy": (save_npy(in_tmp / "cplx.npy", a["x_t"] + 1j), "x_t has complex dtype"),
        "p.npz": (save_npz(in_tmp / "p.npz", x=a["x_t"]), "is a .npz archive"),
        "empty.json": (None, "empty, expected x_t"),
        "obj.json": (None, "the JSON object has no x_t"),
    }
    trunc = io.BytesIO()
    np.save(trunc, a["x_t"])
    (in_tmp / "trunc.npy").write_bytes(trunc.getvalue()[:-20])
    cases["trunc.npy"] = (str(in_tmp / "trunc.npy"), cases["trunc.npy"][1])
    (in_tmp / "empty.json").write_text("  \n")
    cases["empty.json"] = (str(in_tmp / "empty.json"), cases["empty.json"][1])
    (in_tmp / "obj.json").write_text('{"h": [0, 0, 0, 0]}')
    cases["obj.json"] = (str(in_tmp / "obj.json"), cases["obj.json"][1])
    for name, (path, message) in cases.items():
        before = sorted(p.name for p in in_tmp.iterdir())
        result = runner.invoke(app, ["step", "--x", path, "--out", "r.npz"])
        assert_refused(result, message)
        assert sorted(p.name for p in in_tmp.iterdir()) == before, name
    assert not (in_tmp / "pwned").exists()


def test_integer_arrays_are_cast_not_refused(in_tmp):
    save_npy(in_tmp / "x.npy", np.arange(10))
    result = runner.invoke(app, ["step", "--x", "x.npy", "--json"])
    assert result.exit_code == 0, result.output


def test_existing_out_file_is_not_clobbered(in_tmp):
    (in_tmp / "r.npz").write_bytes(b"precious")
    result = runner.invoke(app, ["step", "--out", "r.npz"])
    assert_refused(result, "r.npz: already exists; pass --force")
    assert (in_tmp / "r.npz").read_bytes() == b"precious"
    result = runner.invoke(app, ["step", "--out", "r.npz", "--force"])
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(in_tmp / "r.npz")


def test_out_into_a_missing_folder_or_a_folder(in_tmp):
    assert_refused(runner.invoke(app, ["step", "--out", "no/r.npz"]), "does not exist")
    assert_refused(runner.invoke(app, ["step", "--out", "."]), "is a directory")
    assert list(in_tmp.iterdir()) == []


def test_a_failing_disk_leaves_no_file_behind(in_tmp, monkeypatch):
    """A full disk (ENOSPC at fsync) is a runtime error, exit 1, and no partial file remains."""
    import errno

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    assert_refused(runner.invoke(app, ["step", "--out", "r.npz"]), "No space left", code=1)
    assert list(in_tmp.iterdir()) == []


def test_json_and_pretty_together_is_a_usage_error():
    result = runner.invoke(app, ["step", "--json", "--pretty"])
    assert result.exit_code == 2
    assert "exclude each other" in result.output


def test_result_overflow_is_a_runtime_error(in_tmp):
    a = notebook_arrays()
    big = json.dumps({"x": a["x_t"].tolist(), "c": [1e308, -1e308, 1e308, 1e308]})
    result = runner.invoke(app, ["step", "--out", "r.npz"], input=big)
    # f_t * c_prev + i_t * g stays finite for |c_prev| <= 1e308 with f_t < 1: accepted
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["c_next"][0] < 1e308
