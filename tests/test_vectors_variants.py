"""Golden vectors with ONNX's variants (peepholes, clip, input_forget, all three), and
``check --vectors`` comparing and diagnosing them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.porting.vector_files import load_vectors
from lstm_cli.porting.vectors import VARIANT_SPECS, build_cases

from .test_variants import onnx_reference

runner = CliRunner()
VARIANTS = ("peepholes", "clip", "input_forget", "onnx_all")


def _sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for any z


def port(case: dict, po_on_c_prev=False, ignore_clip=False, ignore_input_forget=False):
    """A porter's ONNX-variant cell, written from the manifest's equations (float64)."""
    p = {k: np.array(v) for k, v in case["params"].items()}
    x, h, c = (np.array(case["inputs"][k]) for k in ("x_t", "h_prev", "c_prev"))
    st = case.get("settings", {})
    clip = None if ignore_clip else st.get("clip")
    peep = st.get("peepholes", False)

    def cl(z):
        return z if clip is None else np.clip(z, -clip, clip)

    u = np.concatenate((h, x), axis=-1)
    zi = u @ p["Wi"].T + p["bi"] + (p["Pi"] * c if peep else 0)
    i = _sig(cl(zi))
    if st.get("input_forget") and not ignore_input_forget:
        f = 1 - i
    else:
        f = _sig(cl(u @ p["Wf"].T + p["bf"] + (p["Pf"] * c if peep else 0)))
    g = np.tanh(cl(u @ p["Wc"].T + p["bc"]))
    cn = f * c + i * g
    o = _sig(cl(u @ p["Wo"].T + p["bo"] + (p["Po"] * (c if po_on_c_prev else cn) if peep else 0)))
    return o * np.tanh(cn), cn


def results(vdir, only=None, **mistake) -> dict:
    manifest = json.loads((vdir / "manifest.json").read_text())
    out = {}
    for entry in manifest["cases"]:
        if only is not None and entry["variant"] not in only:
            continue
        case = json.loads((vdir / entry["json"]).read_text())
        with np.errstate(all="ignore"):
            h, c = port(case, **mistake)
        out[entry["name"]] = {"h_next": h.tolist(), "c_next": c.tolist()}
    return {"format": "lstm-cell results", "format_version": 1, "cases": out}


@pytest.fixture
def vdir(in_tmp):
    args = ["--out", "v", "--count", "16", "--variants", "all", "--json"]
    result = runner.invoke(app, ["vectors", *args])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["variants"] == list(VARIANTS)
    return in_tmp / "v"


def test_default_vectors_hold_every_variant_with_its_equations(vdir):
    m = json.loads((vdir / "manifest.json").read_text())
    assert set(m["variants"]) == set(VARIANTS)
    assert any("Po * c_next" in line for line in m["variants"]["peepholes"]["equations"])
    assert m["variants"]["clip"]["settings"]["clip"] == 1.5
    by_variant: dict[str, list] = {}
    for entry in m["cases"]:
        by_variant.setdefault(entry["variant"], []).append(entry)
    assert len(by_variant["standard"]) == 4
    for v in VARIANTS:
        assert len(by_variant[v]) == len(VARIANT_SPECS[v]) == 3
        assert {e["dtype"] for e in by_variant[v]} == {"float32", "float64"}
        assert any(e["B"] is not None for e in by_variant[v])


def test_variant_cases_match_the_independent_onnx_reference(vdir):
    m = json.loads((vdir / "manifest.json").read_text())
    clipped = 0
    for entry in m["cases"]:
        if entry["variant"] == "standard":
            continue
        case = json.loads((vdir / entry["json"]).read_text())
        st = case["settings"]
        assert st == entry["settings"]
        p = {k: np.array(v) for k, v in case["params"].items()}
        assert ({"Pi", "Pf", "Po"} <= set(p)) == st["peepholes"]
        P = {k: p[k] for k in ("Pi", "Pf", "Po")} if st["peepholes"] else None
        x = np.atleast_2d(case["inputs"]["x_t"])
        h, c = np.atleast_2d(case["inputs"]["h_prev"]), np.atleast_2d(case["inputs"]["c_prev"])
        for row in range(x.shape[0]):
            ref = onnx_reference(x[row], h[row], c[row], p, P, st["clip"], st["input_forget"])
            got_h = np.atleast_2d(case["outputs"]["h_next"])[row]
            got_c = np.atleast_2d(case["outputs"]["c_next"])[row]
            np.testing.assert_allclose(got_h, ref["h"], rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(got_c, ref["c"], rtol=1e-12, atol=1e-15)
        if st["clip"] is not None:
            z = np.abs(np.array(case["pre_activations"]["z_c"]))
            assert np.all(z <= st["clip"])
            clipped += int(np.sum(z == st["clip"]))
    assert clipped > 0  # the clip cases do clip


def test_variants_option_picks_and_refuses(in_tmp):
    result = runner.invoke(
        app, ["vectors", "--out", "v", "--count", "7", "--variants", "clip, peepholes", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["variants"] == ["peepholes", "clip"] and len(out["cases"]) == 7
    result = runner.invoke(app, ["vectors", "--out", "w", "--variants", "peephole"])
    assert result.exit_code == 2
    assert "unknown variant 'peephole'" in result.output
    assert not (in_tmp / "w").exists()


def test_variant_cases_do_not_depend_on_count_or_other_variants():
    a = build_cases(2, seed=4, variants=("clip",))
    b = build_cases(9, seed=4, variants=("peepholes", "clip"))
    ca, cb = a[-3:], b[-3:]
    for x, y in zip(ca, cb, strict=True):
        assert x.spec == y.spec and x.settings == y.settings
        for k in x.params:
            np.testing.assert_array_equal(x.params[k], y.params[k])


def test_load_vectors_reads_variant_cases_back(vdir):
    loaded = load_vectors(vdir)
    built = build_cases(4, seed=0, variants=VARIANTS)
    assert [c.name for c in loaded] == [c.name for c in built]
    for a, b in zip(loaded, built, strict=True):
        assert a.settings == b.settings and a.variant == b.variant
        assert set(a.params) == set(b.params)
        np.testing.assert_array_equal(a.expected["h_next"], b.expected["h_next"])


def check(vdir, in_tmp, res) -> tuple[int, dict]:
    (in_tmp / "r.json").write_text(json.dumps(res))
    result = runner.invoke(app, ["check", "--vectors", "v", "--results", "r.json", "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_a_correct_variant_port_passes(vdir, in_tmp):
    code, v = check(vdir, in_tmp, results(vdir))
    assert code == 0, v["diagnosis"]
    assert v["passed"] == 4 + 12


@pytest.mark.parametrize(
    ("mistake", "culprit"),
    [
        ({"po_on_c_prev": True}, "variant onnx_all: output peephole reads c_prev"),
        ({"ignore_clip": True}, "variant clip: clip ignored"),
        ({"ignore_input_forget": True}, "variant input_forget: input_forget ignored"),
    ],
)
def test_variant_mistakes_are_named(vdir, in_tmp, mistake, culprit):
    code, v = check(vdir, in_tmp, results(vdir, **mistake))
    assert code == 1
    culprits = [d["culprit"] for d in v["diagnosis"]]
    assert culprit in culprits, culprits
    assert all(c["ok"] for c in v["cases"] if c["name"].split("_")[2] in ("notebook", "small"))


def test_a_plain_port_on_variant_vectors_is_told_about_variants_none(vdir, in_tmp):
    code, v = check(vdir, in_tmp, results(vdir, only={"standard"}))
    assert code == 1
    assert v["passed"] == 4 and v["failed"] == 12
    first = v["diagnosis"][0]
    assert first["culprit"].endswith("no results")
    assert "leaves these cases out" in first["detail"]  # no option text in library code
    assert v["no_result"] == 12 and v["disagree"] == 0


def test_damaged_variant_settings_are_refused(vdir, in_tmp):
    m = json.loads((vdir / "manifest.json").read_text())
    entry = next(e for e in m["cases"] if e["variant"] == "peepholes")
    path = vdir / entry["json"]
    case = json.loads(path.read_text())
    case["settings"]["peepholes"] = False
    path.write_text(json.dumps(case))
    code_res = runner.invoke(app, ["check", "--vectors", "v", "--results", "r.json"])
    assert code_res.exit_code == 2
    assert "settings say peepholes False but the params hold Pi, Pf, Po" in code_res.output
    case["settings"] = {"peepholes": True, "clip": -1, "input_forget": False}
    path.write_text(json.dumps(case))
    code_res = runner.invoke(app, ["check", "--vectors", "v", "--results", "r.json"])
    assert code_res.exit_code == 2 and "clip is -1" in code_res.output
