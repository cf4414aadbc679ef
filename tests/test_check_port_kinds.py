"""One ``lstm-cell check`` run per kind of port, each getting the right verdict: a float32
engine (ONNX's variants right, float32 arithmetic), a plain port on the plain vectors, the
mirror-concat port, and a batch-only port with --batch-only."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lstm_cli.cli import app

from . import ports
from .conftest import ROOT
from .test_check import port_results
from .test_check_float32 import engine_results

runner = CliRunner()


def check(*args: str) -> tuple[int, dict, str]:
    result = runner.invoke(app, ["check", *args, "--json"])
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_a_float32_engine_is_named_float32(in_tmp):
    assert runner.invoke(app, ["vectors", "--out", "v", "--variants", "all"]).exit_code == 0
    (in_tmp / "r.json").write_text(json.dumps(engine_results(in_tmp / "v")))
    code, v, err = check("--vectors", "v", "--results", "r.json")
    assert code == 1 and v["no_result"] == 0
    assert [d["culprit"] for d in v["diagnosis"]] == ["float32 arithmetic"]
    assert v["diagnosis"][0]["cases_explained"] == v["disagree"]
    assert "Likely culprit: float32 arithmetic" in err


def test_a_plain_port_on_plain_vectors_passes(in_tmp):
    assert runner.invoke(app, ["vectors", "--out", "v"]).exit_code == 0
    (in_tmp / "r.json").write_text(json.dumps(port_results(in_tmp / "v", ports.correct)))
    code, v, _ = check("--vectors", "v", "--results", "r.json")
    assert code == 0, v["summary"]
    assert v["passed"] == len(v["cases"]) == 26
    assert all(c["kind"] != "variant" for c in v["cases"]) and v["diagnosis"] == []


def test_a_mirror_concat_port_is_named(monkeypatch):
    monkeypatch.chdir(ROOT)
    code, v, err = check("tests.ports:mirror_concat")
    assert code == 1
    culprit = v["diagnosis"][0]["culprit"]
    assert culprit.startswith("concatenation: u = [h_prev, x_t] read with W's columns for")
    assert v["diagnosis"][0]["matched"] is True
    assert len(v["diagnosis"]) == 1 and "no known mistake" not in err


def test_a_batch_only_port_passes_with_batch_only(monkeypatch):
    monkeypatch.chdir(ROOT)
    code, v, _ = check("tests.ports:batch_only", "--batch-only")
    assert code == 0, v["summary"]
    assert v["cases"] and all(c["shape"][0] != "-" for c in v["cases"])
