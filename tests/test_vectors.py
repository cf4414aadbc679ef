"""`lstm-cell vectors`: deterministic golden vectors with every intermediate, a manifest,
safe writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.porting import vector_files
from lstm_cli.porting.vector_files import load_vectors
from lstm_cli.porting.vectors import SPECS, build_cases, default_count

from .conftest import assert_notebook
from .reference import reference_step

runner = CliRunner()


def write(out: str, *args: str):
    """``lstm-cell vectors``; standard cases only unless ``--variants`` is given."""
    if "--variants" not in args:
        args = (*args, "--variants", "none")
    result = runner.invoke(app, ["vectors", "--out", out, *args])
    return result


def files(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_deterministic_for_a_seed(in_tmp):
    for out in ("a", "b"):
        result = write(out, "--seed", "7", "--count", "13")
        assert result.exit_code == 0, result.output
    assert files(in_tmp / "a") == files(in_tmp / "b")
    assert len(files(in_tmp / "a")) == 2 * 13 + 1
    result = write("c", "--seed", "8", "--count", "13")
    assert result.exit_code == 0, result.output
    a, c = files(in_tmp / "a"), files(in_tmp / "c")
    assert a["case_001_small_float64.json"] != c["case_001_small_float64.json"]


def test_a_case_does_not_depend_on_the_count():
    few, many = build_cases(5, seed=3), build_cases(30, seed=3)
    for a, b in zip(few, many[:5], strict=True):
        assert a.name == b.name
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])


def test_default_cases_cover_shapes_magnitudes_and_dtypes():
    cases = build_cases(default_count(), seed=0)
    assert {c.dtype for c in cases} == {"float32", "float64"}
    assert any(c.batch is not None and c.batch > 1 for c in cases)
    assert any(c.batch is None for c in cases)
    assert any(c.n_hidden > c.n_features for c in cases)
    assert any(c.n_hidden < c.n_features for c in cases)
    assert {c.kind for c in cases} == {"random", "edge", "extreme"}
    # every spec in both dtypes
    assert {(c.spec.name, c.dtype) for c in cases} == {
        (s.name, d) for s in SPECS for d in ("float32", "float64")
    }

    def zmax(c):
        return max(float(np.abs(c.expected[z]).max()) for z in ("z_i", "z_f", "z_o", "z_c"))

    tiny = [c for c in cases if c.spec.name == "tiny"]
    assert tiny and all(float(np.abs(c.inputs["x_t"]).max()) < 1e-3 for c in tiny)
    assert any(zmax(c) > 709 for c in cases if c.dtype == "float64")  # exp overflows float64
    assert any(zmax(c) > 89 for c in cases if c.dtype == "float32")
    zeros = [c for c in cases if c.spec.name == "zeros"]
    assert zeros and all(not np.any(c.inputs["x_t"]) for c in zeros)


def test_case_json_holds_every_intermediate_and_matches_the_reference(in_tmp):
    result = write("v", "--count", "26")
    assert result.exit_code == 0, result.output
    manifest = json.loads((in_tmp / "v" / "manifest.json").read_text())
    assert len(manifest["cases"]) == 26
    for entry in manifest["cases"]:
        case = json.loads((in_tmp / "v" / entry["json"]).read_text())
        assert case["dtype"] == entry["dtype"]
        assert set(case["params"]) == {"Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc"}
        assert set(case["inputs"]) == {"x_t", "h_prev", "c_prev"}
        assert set(case["pre_activations"]) == {"z_i", "z_f", "z_o", "z_c"}
        assert set(case["gates"]) == {"i_t", "f_t", "o_t", "c_t_candidate"}
        assert set(case["outputs"]) == {"h_next", "c_next"}
        if case["dtype"] == "float32":  # exactly representable: a float32 port reads the same
            w = np.array(case["params"]["Wf"])
            np.testing.assert_array_equal(w.astype(np.float32).astype(np.float64), w)
        # the independent scalar reference, one batch row at a time
        x = np.atleast_2d(case["inputs"]["x_t"])
        h = np.atleast_2d(case["inputs"]["h_prev"])
        c = np.atleast_2d(case["inputs"]["c_prev"])
        p = {k: np.array(v) for k, v in case["params"].items()}
        for row in range(x.shape[0]):
            ref = reference_step(x[row], h[row], c[row], **p)
            for key, name in (("h_next", "h_next"), ("c_next", "c_next")):
                got = np.atleast_2d(case["outputs"][name])[row]
                np.testing.assert_allclose(got, ref[key], rtol=1e-12, atol=1e-15)
            got_f = np.atleast_2d(case["gates"]["f_t"])[row]
            np.testing.assert_allclose(got_f, ref["f"], rtol=1e-12, atol=1e-300)
        with np.load(in_tmp / "v" / entry["npz"]) as npz:
            np.testing.assert_array_equal(npz["h_next"], np.array(case["outputs"]["h_next"]))
            np.testing.assert_array_equal(npz["z_c"], np.array(case["pre_activations"]["z_c"]))
            assert str(npz["Wf"].dtype) == case["dtype"]


def test_case_zero_is_the_notebooks_cell(in_tmp):
    assert write("v", "--count", "1").exit_code == 0
    case = json.loads((in_tmp / "v" / "case_000_notebook_float64.json").read_text())
    assert_notebook(case["outputs"]["h_next"], case["outputs"]["c_next"])


def test_manifest_states_equations_gate_order_and_dtypes(in_tmp):
    assert write("v", "--count", "3", "--seed", "5").exit_code == 0
    m = json.loads((in_tmp / "v" / "manifest.json").read_text())
    assert m["seed"] == 5 and m["count"] == 3
    assert "c_next = f_t * c_prev + i_t * c_t_candidate" in m["equations"]
    assert "concat(h_prev, x_t)" in m["gate_order"]
    assert set(m["tolerances"]) == {"float32", "float64"}
    assert [c["dtype"] for c in m["cases"]] == ["float64", "float64", "float32"]
    assert all((in_tmp / "v" / c["json"]).is_file() for c in m["cases"])
    assert "results" in m["results_file"]


def test_refuses_to_clobber_without_force(in_tmp):
    assert write("v", "--count", "2").exit_code == 0
    before = files(in_tmp / "v")
    result = write("v", "--count", "2", "--seed", "9")
    assert result.exit_code == 2
    assert "--force" in result.output and "Traceback" not in result.output
    assert files(in_tmp / "v") == before
    result = write("v", "--count", "2", "--seed", "9", "--force")
    assert result.exit_code == 0, result.output
    assert files(in_tmp / "v") != before


def test_other_files_in_the_folder_are_left_alone(in_tmp):
    (in_tmp / "v").mkdir()
    (in_tmp / "v" / "notes.txt").write_text("mine")
    assert write("v", "--count", "1").exit_code == 0
    assert (in_tmp / "v" / "notes.txt").read_text() == "mine"


def test_bad_output_paths(in_tmp):
    (in_tmp / "afile").write_text("x")
    result = write("afile")
    assert result.exit_code == 2 and "not a folder" in result.output
    result = write("missing/v")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_a_failed_write_leaves_nothing_behind(in_tmp, monkeypatch):
    (in_tmp / "v").mkdir()
    calls = []
    real = os.replace

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(vector_files.os, "replace", flaky)
    result = write("v", "--count", "2")
    assert result.exit_code == 1
    assert "No space left" in result.output
    assert list((in_tmp / "v").iterdir()) == []
    assert [p.name for p in in_tmp.iterdir()] == ["v"]  # no temporary folder left


def test_load_vectors_reads_back_the_same_cases(in_tmp):
    assert write("v", "--count", "14", "--seed", "2").exit_code == 0
    loaded = load_vectors(in_tmp / "v")
    built = build_cases(14, seed=2)
    assert [c.name for c in loaded] == [c.name for c in built]
    for a, b in zip(loaded, built, strict=True):
        assert a.dtype == b.dtype
        for k in b.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
            assert a.params[k].dtype == b.params[k].dtype
        for k in b.inputs:
            np.testing.assert_array_equal(a.inputs[k], b.inputs[k])
        np.testing.assert_array_equal(a.expected["h_next"], b.expected["h_next"])


def _edit(path, name, value) -> None:
    case = json.loads(path.read_text())
    case["params"][name][0] = value
    path.write_text(json.dumps(case))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "manifest.json").unlink(), "manifest.json: no such file"),
        (lambda d: (d / "case_000_notebook_float64.json").write_text("{"), "malformed JSON"),
        (lambda d: _edit(d / "case_001_small_float64.json", "Wf", True), "Wf holds true"),
        (lambda d: _edit(d / "case_001_small_float64.json", "bf", None), "bf holds null"),
    ],
)
def test_damaged_vectors_are_refused_with_one_line(in_tmp, damage, message):
    assert write("v", "--count", "2").exit_code == 0
    damage(in_tmp / "v")
    (in_tmp / "r.json").write_text('{"cases": {}}')
    result = runner.invoke(app, ["check", "--vectors", "v", "--results", "r.json"])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_folder_and_files_honour_the_umask(in_tmp):
    old = os.umask(0o022)
    try:
        assert write("v", "--count", "2").exit_code == 0
    finally:
        os.umask(old)
    assert (in_tmp / "v").stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in (in_tmp / "v").iterdir())


def test_force_replaces_every_vector_file_and_leaves_no_stale_case(in_tmp):
    assert write("v", "--count", "26").exit_code == 0
    (in_tmp / "v" / "notes.txt").write_text("mine")
    assert write("v", "--count", "3", "--force").exit_code == 0
    names = sorted(p.name for p in (in_tmp / "v").iterdir())
    assert len([n for n in names if n.startswith("case_")]) == 6  # 3 cases, .json and .npz
    assert "notes.txt" in names  # not a vector file: left alone
    assert json.loads((in_tmp / "v" / "manifest.json").read_text())["count"] == 3


def test_a_failed_forced_write_puts_the_old_vectors_back(in_tmp, monkeypatch):
    assert write("v", "--count", "3").exit_code == 0
    before = {p.name: p.read_bytes() for p in (in_tmp / "v").iterdir()}
    calls = []
    real = os.replace

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 9:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(vector_files.os, "replace", flaky)
    result = write("v", "--count", "2", "--seed", "4", "--force")
    assert result.exit_code == 1
    assert {p.name: p.read_bytes() for p in (in_tmp / "v").iterdir()} == before


@pytest.mark.parametrize(
    ("args", "written"),
    [((), 26), (("--variants", "all"), 38), (("--variants", "all", "--count", "26"), 26),
     (("--variants", "clip", "--count", "5"), 5)],
)
def test_count_is_the_number_of_cases_written(in_tmp, args, written):
    result = runner.invoke(app, ["vectors", "--out", "v", "--json", *args])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["cases"]) == written
    assert len(list((in_tmp / "v").glob("case_*.json"))) == written


def test_plain_cases_by_default(in_tmp):
    result = runner.invoke(app, ["vectors", "--out", "v", "--json"])
    assert json.loads(result.stdout)["variants"] == []
