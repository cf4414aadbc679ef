"""`lstm-cell check`: a correct cell passes; each classic mistake is caught and named."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.porting.check import SIGNATURES, check_function
from lstm_cli.porting.signatures import GATE_LETTERS
from lstm_cli.porting.vector_files import load_vectors
from lstm_cli.porting.vectors import build_cases, default_count

from . import ports
from .conftest import ROOT

runner = CliRunner()
CASES = build_cases(default_count(), seed=0)


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # tests.ports is importable as MODULE from here


def run_check(*args: str):
    return runner.invoke(app, ["check", *args])


def verdict(*args: str) -> dict:
    result = run_check(*args, "--json")
    assert "Traceback" not in result.output
    return json.loads(result.stdout)


def test_a_correct_cell_passes_with_exit_0(at_root):
    result = run_check("tests.ports:correct", "--json")
    assert result.exit_code == 0, result.output
    v = json.loads(result.stdout)
    assert v["ok"] is True and v["failed"] == 0 and v["passed"] == default_count()
    assert v["diagnosis"] == []
    kinds = {c["kind"] for c in v["cases"]}
    assert kinds == {"random", "edge", "extreme"}
    assert {c["dtype"] for c in v["cases"]} == {"float32", "float64"}
    assert {c["shape"].startswith("-") for c in v["cases"]} == {True, False}  # batch and not
    for c in v["cases"]:
        assert c["h_abs"] is not None and c["c_rel"] is not None


@pytest.mark.parametrize(
    ("function", "culprit"),
    [
        ("swapped_gates", "gate order: the forget and input gates are swapped"),
        ("concat_x_first", "concatenation order: u = [x_t, h_prev]"),
        (
            "mirror_concat",
            "concatenation: u = [h_prev, x_t] read with W's columns for [x_t, h_prev]",
        ),
        ("transposed_read", "W's (H, H + F) buffer read transposed"),
        ("naive_sigmoid_float32", "naive sigmoid/tanh: exp overflows on large pre-activations"),
        ("missing_forget_bias", "missing forget bias"),
        ("returns_c_h", "outputs swapped"),
        ("no_tanh_on_c", "missing tanh on c_next"),
        ("in_float32", "float32 arithmetic"),
        ("off_by_a_little", "h_next: output gate or tanh(c_next)"),
    ],
)
def test_each_broken_cell_fails_and_is_named(at_root, function, culprit):
    result = run_check(f"tests.ports:{function}", "--json")
    assert result.exit_code == 1, result.output
    v = json.loads(result.stdout)
    assert v["ok"] is False and v["failed"] > 0
    assert v["diagnosis"][0]["culprit"] == culprit
    assert culprit in result.stderr  # the one-line verdict on stderr names it too


def test_naive_sigmoid_fails_only_where_it_overflows_or_rounds(at_root):
    v = verdict("tests.ports:naive_sigmoid_float32")
    nonfinite = {c["name"] for c in v["cases"] if c["h_abs"] is None}
    assert nonfinite and all("overflow" in n for n in nonfinite)
    # it also computes in float32, and the checker says so
    assert "float32 arithmetic" in [d["culprit"] for d in v["diagnosis"]]
    notes = [n for c in v["cases"] for n in c["notes"]]
    assert any("overflow encountered in exp" in n for n in notes)


@pytest.mark.parametrize(
    "perm", [p for p in itertools.permutations(GATE_LETTERS) if p != GATE_LETTERS]
)
def test_every_gate_permutation_is_named_exactly(perm):
    src = dict(zip(GATE_LETTERS, perm, strict=True))

    def permuted(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
        W = {"f": Wf, "i": Wi, "o": Wo, "c": Wc}
        b = {"f": bf, "i": bi, "o": bo, "c": bc}
        s = src
        return ports.correct(
            x_t, h_prev, c_prev,
            W[s["f"]], W[s["i"]], W[s["o"]], W[s["c"]], b[s["f"]], b[s["i"]], b[s["o"]], b[s["c"]],
        )  # fmt: skip

    result = check_function(permuted, "permuted", CASES, SIGNATURES["seed"])
    assert not result.ok
    assert len(result.diagnoses) == 1
    d = result.diagnoses[0]
    assert d.culprit.startswith("gate order")
    assert d.explains == f"all {len(CASES)} cases"
    moved = [g for g in GATE_LETTERS if src[g] != g]
    act = {"i": "i_t", "f": "f_t", "o": "o_t", "c": "c_t_candidate"}
    for g in moved:
        assert f"{act[g]} with W{src[g]}, b{src[g]}" in d.detail


@pytest.mark.parametrize("gate", GATE_LETTERS)
def test_every_missing_bias_is_named(gate):
    def no_bias(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
        b = {"f": bf, "i": bi, "o": bo, "c": bc}
        b[gate] = np.zeros_like(b[gate])
        return ports.correct(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, b["f"], b["i"], b["o"], b["c"])

    result = check_function(no_bias, "no_bias", CASES, SIGNATURES["seed"])
    word = {"i": "input", "f": "forget", "o": "output", "c": "candidate"}[gate]
    assert [d.culprit for d in result.diagnoses] == [f"missing {word} bias"]


@pytest.mark.parametrize(
    ("layout", "function", "culprit"),
    [
        ("pytorch", "pytorch_correct", None),
        ("keras", "keras_correct", None),
        ("pytorch", "pytorch_ifog", "gate order: g and o blocks swapped"),
        ("pytorch", "pytorch_one_bias", "bias: uses bias_ih only"),
        ("onnx", "onnx_correct", None),
        ("onnx", "onnx_ifoc", "gate order: o and f blocks swapped"),
        ("onnx", "onnx_wb_only", "bias: uses Wb only"),
    ],
)
def test_framework_layouts(at_root, layout, function, culprit):
    result = run_check(f"tests.ports:{function}", "--layout", layout, "--json")
    v = json.loads(result.stdout)
    if culprit is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
        assert v["diagnosis"][0]["culprit"] == culprit
    if function == "pytorch_ifog":
        assert "(i, f, o, g); pytorch's order is (i, f, g, o)" in v["diagnosis"][0]["detail"]
    if function == "onnx_ifoc":
        assert "(i, f, o, c); onnx's order is (i, o, f, c)" in v["diagnosis"][0]["detail"]


def test_the_onnx_layout_gets_both_halves_of_b_nonzero():
    seen = {}

    def spy(x, h, c, W, R, B):
        seen.update(W=W, R=R, B=B, h=h)
        return ports.onnx_correct(x, h, c, W, R, B)

    assert check_function(spy, "spy", CASES[:3], SIGNATURES["onnx"]).ok
    H = seen["h"].shape[-1]
    assert seen["W"].ndim == 3 and seen["W"].shape[:2] == (1, 4 * H)
    assert seen["R"].shape == (1, 4 * H, H) and seen["B"].shape == (1, 8 * H)
    assert np.all(seen["B"] != 0)


def test_the_pytorch_layout_gets_two_nonzero_biases():
    seen = {}

    def spy(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        seen.update(bias_ih=bias_ih, bias_hh=bias_hh, w=weight_ih)
        return ports.pytorch_correct(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh)

    assert check_function(spy, "spy", CASES[:2], SIGNATURES["pytorch"]).ok
    assert np.all(seen["bias_ih"] != 0) and np.all(seen["bias_hh"] != 0)


def test_tolerances_are_the_users_to_loosen(at_root):
    assert run_check("tests.ports:in_float32").exit_code == 1
    result = run_check("tests.ports:in_float32", "--atol", "1e-4", "--rtol", "1e-3")
    assert result.exit_code == 0, result.output


def test_no_batch_runs_only_unbatched_cases(at_root):
    assert run_check("tests.ports:unbatched_only").exit_code == 1
    result = run_check("tests.ports:unbatched_only", "--no-batch", "--json")
    assert result.exit_code == 0, result.output
    assert all(c["shape"].startswith("-,") for c in json.loads(result.stdout)["cases"])


def test_pretty_report_names_worst_case_and_culprit(at_root):
    result = run_check("tests.ports:swapped_gates", "--pretty")
    assert result.exit_code == 1
    assert "Worst case: case_" in result.stdout
    assert "Likely culprit: gate order: the forget and input gates are swapped" in result.stdout
    assert "FAIL" in result.stdout


# --------------------------------------------------------------------------- importing


MODULE = """
import numpy as np
from tests.ports import correct

def lstm_step(*args):
    return correct(*args)
"""


def test_module_from_the_current_folder_like_python_m(in_tmp, monkeypatch):
    (in_tmp / "my_port_cwd.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(ROOT))  # for `from tests.ports import ...` in the module
    result = run_check("my_port_cwd:lstm_step", "--count", "3")
    assert result.exit_code == 0, result.output
    result = run_check("my_port_cwd.py:lstm_step", "--count", "3")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        ("no_such_module_xyz:f", 2, "cannot import 'no_such_module_xyz': no such module"),
        ("tests.ports:nope", 2, "'tests.ports' has no function 'nope'"),
        ("tests.ports:NOT_A_FUNCTION", 2, "int is not callable"),
        ("tests.ports", 2, "expected MODULE:FUNCTION"),
        ("missing_file.py:f", 2, "missing_file.py: no such file"),
        ("tests.ports:raises", 1, "tests.ports:raises raised ValueError: shapes not aligned"),
        ("tests.ports:returns_one_array", 1, "expected a pair (h_next, c_next)"),
        ("tests.ports:unbatched_only", 1, "raised ValueError"),
    ],
)
def test_import_and_call_errors_are_one_plain_line(at_root, target, code, message):
    result = run_check(target)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_module_that_raises_on_import(in_tmp):
    (in_tmp / "broken_port_on_import.py").write_text("import numpy\nraise RuntimeError('boom')\n")
    (in_tmp / "needs_dep_port.py").write_text("import not_installed_dep_xyz\n")
    result = run_check("broken_port_on_import:f")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: importing 'broken_port_on_import' failed: RuntimeError: boom"
    )
    result = run_check("needs_dep_port:f")
    assert result.exit_code == 1
    assert "No module named 'not_installed_dep_xyz'" in result.output


def test_usage_errors():
    assert run_check().exit_code == 2
    assert run_check("--vectors", "v").exit_code == 2
    assert run_check("a:b", "--vectors", "v", "--results", "r").exit_code == 2
    assert run_check("a:b", "--layout", "onnx9").exit_code == 2


# --------------------------------------------------------------------------- ports elsewhere


def port_results(vectors_dir, fn, nonfinite_as=None) -> dict:
    """What a port in another language does: read each case's JSON, compute, write results."""
    manifest = json.loads((vectors_dir / "manifest.json").read_text())
    out = {}
    for entry in manifest["cases"]:
        case = json.loads((vectors_dir / entry["json"]).read_text())
        dt = case["dtype"]
        args = [np.array(case["inputs"][k], dtype=dt) for k in ("x_t", "h_prev", "c_prev")]
        args += [np.array(case["params"][k], dtype=dt) for k in ("Wf", "Wi", "Wo", "Wc")]
        args += [np.array(case["params"][k], dtype=dt) for k in ("bf", "bi", "bo", "bc")]
        with np.errstate(all="ignore"):
            h, c = fn(*args)

        def enc(a):
            a = np.asarray(a, dtype=np.float64)
            if nonfinite_as is None or np.all(np.isfinite(a)):
                return a.tolist()
            return np.where(np.isfinite(a), a, np.nan).astype(object).tolist()

        out[entry["name"]] = {"h_next": enc(h), "c_next": enc(c)}
    return {"format": "lstm-cell results", "format_version": 1, "cases": out}


def dump(obj, nonfinite_as=None) -> str:
    text = json.dumps(obj)
    return text if nonfinite_as is None else text.replace("NaN", nonfinite_as)


@pytest.fixture
def vec_dir(in_tmp):
    result = runner.invoke(app, ["vectors", "--out", "v", "--count", "26", "--variants", "none"])
    assert result.exit_code == 0, result.output
    return in_tmp / "v"


def test_results_of_a_correct_port_pass(vec_dir, in_tmp):
    (in_tmp / "r.json").write_text(json.dumps(port_results(vec_dir, ports.correct)))
    result = run_check("--vectors", "v", "--results", "r.json", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["passed"] == 26


@pytest.mark.parametrize(
    ("function", "culprit"),
    [
        ("swapped_gates", "gate order: the forget and input gates are swapped"),
        ("concat_x_first", "concatenation order: u = [x_t, h_prev]"),
        (
            "mirror_concat",
            "concatenation: u = [h_prev, x_t] read with W's columns for [x_t, h_prev]",
        ),
        ("transposed_read", "W's (H, H + F) buffer read transposed"),
        ("missing_forget_bias", "missing forget bias"),
    ],
)
def test_results_of_a_broken_port_are_diagnosed(vec_dir, in_tmp, function, culprit):
    (in_tmp / "r.json").write_text(json.dumps(port_results(vec_dir, getattr(ports, function))))
    v = verdict("--vectors", "v", "--results", "r.json")
    assert v["diagnosis"][0]["culprit"] == culprit


@pytest.mark.parametrize("spelling", ["null", '"NaN"', "NaN"])
def test_nonfinite_results_may_be_written_several_ways(vec_dir, in_tmp, spelling):
    results = port_results(vec_dir, ports.naive_sigmoid_float32, nonfinite_as=spelling)
    (in_tmp / "r.json").write_text(dump(results, spelling))
    result = run_check("--vectors", "v", "--results", "r.json", "--json")
    assert result.exit_code == 1, result.output
    v = json.loads(result.stdout)
    assert v["diagnosis"][0]["culprit"].startswith("naive sigmoid")


def test_missing_cases_fail_and_wrong_shapes_are_noted(vec_dir, in_tmp):
    results = port_results(vec_dir, ports.correct)
    del results["cases"]["case_003_batch_wide_float64"]
    results["cases"]["case_001_small_float64"]["h_next"] = [0.0]
    (in_tmp / "r.json").write_text(json.dumps(results))
    result = run_check("--vectors", "v", "--results", "r.json", "--json")
    assert result.exit_code == 1
    by_name = {c["name"]: c for c in json.loads(result.stdout)["cases"]}
    assert by_name["case_003_batch_wide_float64"]["notes"] == [
        "no result for this case in the results file"
    ]
    assert "h_next has shape (1,), expected (2,)" in by_name["case_001_small_float64"]["notes"]
    assert sum(not c["ok"] for c in by_name.values()) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "malformed JSON"),
        ("[]", 'expected an object with "cases"'),
        ('{"cases": {"case_999_x": {}}}', "'case_999_x' is not in the vectors' manifest"),
        ('{"cases": {}, "extra": 1}', "unknown key 'extra'"),
        ('{"cases": {"case_000_notebook_float64": {"h_next": ["a"]}}}', "expected numbers"),
        ('{"cases": {"case_000_notebook_float64": {"h": []}}}', "must be"),
    ],
)
def test_bad_results_files_are_refused(vec_dir, in_tmp, content, message):
    (in_tmp / "r.json").write_text(content)
    result = run_check("--vectors", "v", "--results", "r.json")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("which", ["manifest", "case", "results"])
def test_check_vectors_obeys_the_input_limit(vec_dir, in_tmp, which):
    """--max-input-mb holds for the manifest, every case file and the results file: each is
    refused at 2 MB under a 1 MiB limit (and passes under the default one)."""
    (in_tmp / "r.json").write_text(json.dumps(port_results(vec_dir, ports.correct)))
    path = {
        "manifest": vec_dir / "manifest.json",
        "case": vec_dir / "case_001_small_float64.json",
        "results": in_tmp / "r.json",
    }[which]
    obj = json.loads(path.read_text())
    obj["implementation" if which == "results" else "padding"] = "x" * (2 << 20)
    path.write_text(json.dumps(obj))
    assert path.stat().st_size > 2 << 20
    result = run_check("--vectors", "v", "--results", "r.json", "--max-input-mb", "1")
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"Error: {path.relative_to(in_tmp)}: 2 MiB, over the 1 MiB input limit; "
        "raise it with --max-input-mb\n"
    )
    assert result.stdout == ""
    assert run_check("--vectors", "v", "--results", "r.json", "--json").exit_code == 0


def test_a_missing_vectors_folder_names_the_command_only_on_the_command_line(in_tmp):
    from lstm_cli.errors import Hint, InputError

    (in_tmp / "r.json").write_text("{}")
    result = run_check("--vectors", "nowhere", "--results", "r.json")
    assert result.exit_code == 2
    assert result.output == "Error: nowhere: no such folder (make one with: lstm-cell vectors)\n"
    with pytest.raises(InputError, match="no such folder") as info:
        load_vectors(in_tmp / "nowhere")
    assert info.value.hint is Hint.MAKE_VECTORS
    assert "lstm-cell" not in info.value.message


def test_vectors_variants_hook_skips_unknown_variants(vec_dir):
    manifest = json.loads((vec_dir / "manifest.json").read_text())
    manifest["cases"][1]["variant"] = "peephole_someday"
    (vec_dir / "manifest.json").write_text(json.dumps(manifest))
    names = [c.name for c in load_vectors(vec_dir)]
    assert len(names) == 25 and "case_001_small_float64" not in names


def test_the_seed_notebooks_own_function_passes_without_batches(at_root):
    """It prints and overflows exp (a warning, right values): the report stays clean JSON."""
    result = run_check("tests.ports:lstm_step")
    assert result.exit_code == 1
    assert "pass --no-batch" in result.output
    result = run_check("tests.ports:lstm_step", "--no-batch", "--json")
    assert result.exit_code == 0, result.output
    v = json.loads(result.stdout)  # nothing the function printed got in
    notes = [n for c in v["cases"] for n in c["notes"]]
    assert any("printed" in n for n in notes)
    assert any("overflow encountered in exp" in n for n in notes)


def test_two_bugs_at_once_are_not_misnamed():
    """Swapped gates and a missing tanh together match no single known mistake: the checker
    says where the difference starts instead of naming one of them."""

    def two_bugs(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
        return ports.no_tanh_on_c(x_t, h_prev, c_prev, Wi, Wf, Wo, Wc, bi, bf, bo, bc)

    result = check_function(two_bugs, "two_bugs", CASES, SIGNATURES["seed"])
    assert not result.ok
    assert [d.culprit for d in result.diagnoses] == ["c_next: input, forget or candidate gate"]
    assert "no known mistake matches" in result.diagnoses[0].explains


def test_pretty_report_fits_80_columns(at_root):
    result = runner.invoke(
        app, ["check", "tests.ports:naive_sigmoid_float32", "--pretty"], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 1
    assert "…" not in result.stdout  # no column cut short
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
