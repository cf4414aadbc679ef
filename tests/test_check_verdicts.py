"""``check``'s verdict: missing results are "no result", not disagreement; a variant can be
skipped; one verdict per run on a terminal; no "explains" beside "no known mistake matches"."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.cli import check as check_cli

from .test_vectors_variants import results

runner = CliRunner()


@pytest.fixture
def vdir(in_tmp):
    args = ["--out", "v", "--count", "16", "--variants", "all", "--json"]
    assert runner.invoke(app, ["vectors", *args]).exit_code == 0
    return in_tmp / "v"


def run_check(in_tmp, res, *extra: str):
    (in_tmp / "r.json").write_text(json.dumps(res))
    return runner.invoke(app, ["check", "--vectors", "v", "--results", "r.json", *extra])


def test_missing_results_are_no_result_not_disagreement(vdir, in_tmp):
    result = run_check(in_tmp, results(vdir, only={"standard"}), "--json")
    assert result.exit_code == 1
    v = json.loads(result.stdout)
    assert (v["disagree"], v["no_result"], v["passed"]) == (0, 12, 4)
    statuses = {c["status"] for c in v["cases"] if c["kind"] == "variant"}
    assert statuses == {"no result"}
    assert v["summary"] == "12 of 16 cases have no result."
    assert "12 of 16 cases have no result" in result.stderr
    assert "disagree" not in result.stderr
    view = run_check(in_tmp, results(vdir, only={"standard"}), "--pretty").stdout
    assert "no result" in view and "FAIL" not in view


def test_disagreement_and_no_result_are_counted_apart(vdir, in_tmp):
    res = results(vdir, only={"standard", "clip"}, ignore_clip=True)
    v = json.loads(run_check(in_tmp, res, "--json").stdout)
    assert v["disagree"] == 3 and v["no_result"] == 9
    assert v["summary"] == "3 of 16 cases disagree; 9 of 16 cases have no result."


def test_skip_variant_leaves_its_cases_out(vdir, in_tmp):
    res = results(vdir, only={"standard", "peepholes"})
    result = run_check(in_tmp, res, "--skip-variant", "clip", "--skip-variant",
                       "input_forget,onnx_all", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    v = json.loads(result.stdout)
    assert v["passed"] == 4 + 3 and v["failed"] == 0
    assert not any("clip" in c["name"] for c in v["cases"])


def test_skip_variant_refuses_an_unknown_name(vdir, in_tmp):
    result = run_check(in_tmp, results(vdir), "--skip-variant", "clipp")
    assert result.exit_code == 2
    assert "unknown variant 'clipp'" in result.stderr


def test_one_verdict_on_a_terminal(vdir, in_tmp, monkeypatch):
    res = results(vdir, ignore_clip=True)
    piped = run_check(in_tmp, res, "--pretty")
    assert piped.exit_code == 1
    assert "cases disagree" in piped.stdout and "cases disagree" in piped.stderr
    monkeypatch.setattr(check_cli, "_on_terminal", lambda: True)
    tty = run_check(in_tmp, res, "--pretty")
    assert tty.exit_code == 1
    assert "cases disagree" in tty.stdout
    assert tty.stderr == ""


def test_no_match_never_says_explains(vdir, in_tmp):
    res = results(vdir)
    for name, entry in res["cases"].items():
        if "onnx_all" in name:
            entry["c_next"] = _times(entry["c_next"], 1.1)
    v = json.loads(run_check(in_tmp, res, "--json").stdout)
    d = next(d for d in v["diagnosis"] if "onnx_all" in d["culprit"])
    assert d["matched"] is False
    assert d["explains"] == "3 of 3 onnx_all cases fail"
    view = run_check(in_tmp, res, "--pretty").stdout
    assert "no known mistake matches" in view
    assert "explains 3 of 3" not in view
    assert "(3 of 3 onnx_all cases fail)" in view


def _times(v, factor: float):
    return [_times(x, factor) for x in v] if isinstance(v, list) else v * factor
