"""A float32 engine (ONNX's variants right, every operation in float32, like onnxruntime) on
the variant vectors: the diagnosis tries every mistake on every case family, names float32
arithmetic first (and alone, since it explains every case), and float32 tolerances pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.porting.check import check_outcomes
from lstm_cli.porting.outcomes import Outcome
from lstm_cli.porting.signatures import SIGNATURES
from lstm_cli.porting.vector_files import load_vectors

from . import ports
from .test_vectors_variants import results as float64_results

runner = CliRunner()
F32 = ("--atol", "1e-4", "--rtol", "1e-3")


@pytest.fixture
def vdir(in_tmp):
    args = ["--out", "v", "--count", "16", "--variants", "all"]
    assert runner.invoke(app, ["vectors", *args]).exit_code == 0
    return in_tmp / "v"


def engine_results(vdir) -> dict:
    manifest = json.loads((vdir / "manifest.json").read_text())
    out = {}
    for entry in manifest["cases"]:
        case = json.loads((vdir / entry["json"]).read_text())
        with np.errstate(all="ignore"):
            h, c = ports.float32_engine(case)
        assert h.dtype == np.float32 and c.dtype == np.float32
        out[entry["name"]] = {"h_next": h.tolist(), "c_next": c.tolist()}
    return {"format": "lstm-cell results", "format_version": 1, "cases": out}


def run_check(in_tmp, res, *extra: str):
    (in_tmp / "r.json").write_text(json.dumps(res))
    return runner.invoke(app, ["check", "--vectors", "v", "--results", "r.json", *extra])


def test_a_float32_engine_is_named_float32_first_and_alone(vdir, in_tmp):
    result = run_check(in_tmp, engine_results(vdir), "--json")
    assert result.exit_code == 1
    v = json.loads(result.stdout)
    failing = {c["name"] for c in v["cases"] if not c["ok"]}
    assert any("clip" in n for n in failing) and any("standard" not in n for n in failing)
    assert [d["culprit"] for d in v["diagnosis"]] == ["float32 arithmetic"]
    d = v["diagnosis"][0]
    assert d["matched"] is True and d["cases_explained"] == v["failed"]
    assert d["explains"].startswith("all 16 cases (clip, input_forget, onnx_all, peepholes")
    assert "Likely culprit: float32 arithmetic" in result.stderr
    assert "its equations" not in run_check(in_tmp, engine_results(vdir), "--pretty").stdout


def test_a_float32_engine_passes_with_float32_tolerances(vdir, in_tmp):
    result = run_check(in_tmp, engine_results(vdir), *F32, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["passed"] == 16


def test_the_function_form_gives_the_same_verdict(vdir):
    cases = load_vectors(vdir)
    manifest = json.loads((vdir / "manifest.json").read_text())
    by_name = {e["name"]: json.loads((vdir / e["json"]).read_text()) for e in manifest["cases"]}
    outcomes = []
    for case in cases:
        with np.errstate(all="ignore"):
            h, c = ports.float32_engine(by_name[case.name])
        outcomes.append(Outcome(h.astype(np.float64), c.astype(np.float64)))
    seed = SIGNATURES["seed"]
    result = check_outcomes("engine", seed, cases, outcomes, None, None)
    assert not result.ok
    assert [d.culprit for d in result.diagnoses] == ["float32 arithmetic"]
    assert check_outcomes("engine", seed, cases, outcomes, 1e-4, 1e-3).ok


def test_diagnoses_are_ranked_by_the_failing_cases_they_explain(vdir, in_tmp):
    res = engine_results(vdir)
    wrong_clip = float64_results(vdir, only={"clip"}, ignore_clip=True)["cases"]
    res["cases"].update(wrong_clip)
    v = json.loads(run_check(in_tmp, res, "--json").stdout)
    culprits = [d["culprit"] for d in v["diagnosis"]]
    assert culprits == ["float32 arithmetic", "variant clip: clip ignored"], culprits
    counts = [d["cases_explained"] for d in v["diagnosis"]]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[1] and sum(counts) == v["failed"]
    assert "input_forget cases" in v["diagnosis"][0]["explains"]
