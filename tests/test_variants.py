"""ONNX's variants in the core: peepholes, clip, coupled input-forget; off by default."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import init_params, lstm_step_detailed, notebook_default
from lstm_cli.cli import app
from lstm_cli.core import lstm_step_variant
from lstm_cli.errors import InputError
from lstm_cli.io import paramfiles
from lstm_cli.params import LSTMParams, ParamSet, Variant

from .conftest import assert_notebook, random_cell

runner = CliRunner()


def _sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def onnx_reference(x, h, c, p, P=None, clip=None, input_forget=False):
    """ONNX's LSTM equations, one scalar at a time, written from the ONNX spec."""
    u = [float(v) for v in h] + [float(v) for v in x]
    H = len(p["bf"])

    def pre(gate: str, j: int) -> float:
        return float(p[f"b{gate}"][j]) + sum(
            float(p[f"W{gate}"][j, k]) * u[k] for k in range(len(u))
        )

    def cl(z: float) -> float:
        return z if clip is None else min(max(z, -clip), clip)

    out = {"i": [], "f": [], "o": [], "g": [], "c": [], "h": []}
    for j in range(H):
        zi = pre("i", j) + (P["Pi"][j] * c[j] if P else 0.0)
        i = _sig(cl(zi))
        f = 1.0 - i if input_forget else _sig(cl(pre("f", j) + (P["Pf"][j] * c[j] if P else 0.0)))
        g = math.tanh(cl(pre("c", j)))
        cn = f * float(c[j]) + i * g
        o = _sig(cl(pre("o", j) + (P["Po"][j] * cn if P else 0.0)))
        for k, v in zip("ifogch", (i, f, o, g, cn, o * math.tanh(cn)), strict=True):
            out[k].append(v)
    return out


def _case(seed: int, F: int = 4, H: int = 3):
    rng = np.random.default_rng(seed)
    p = random_cell(rng, F, H, scale=1.5)
    P = {k: rng.standard_normal(H) for k in ("Pi", "Pf", "Po")}
    return rng.standard_normal(F), rng.standard_normal(H), rng.standard_normal(H), p, P


@pytest.mark.parametrize(
    ("peep", "clip", "input_forget"),
    [(True, None, False), (False, 0.8, False), (False, None, True), (True, 0.8, True)],
)
def test_variants_match_the_onnx_equations(peep, clip, input_forget):
    x, h, c, p, P = _case(1)
    r = lstm_step_variant(x, h, c, **p, **(P if peep else {}), clip=clip, input_forget=input_forget)
    ref = onnx_reference(x, h, c, p, P if peep else None, clip, input_forget)
    for ours, key in ((r.i_t, "i"), (r.f_t, "f"), (r.o_t, "o"), (r.c_t_candidate, "g")):
        np.testing.assert_allclose(ours, ref[key], rtol=0, atol=1e-13)
    np.testing.assert_allclose(r.c_next, ref["c"], rtol=0, atol=1e-13)
    np.testing.assert_allclose(r.h_next, ref["h"], rtol=0, atol=1e-13)


def test_defaults_are_the_seed_equations():
    cell = notebook_default()
    r = cell.params.step(**cell.example.arrays())
    assert_notebook(r.h_next, r.c_next)
    assert cell.params.is_plain and "Pi" not in cell.params.all_arrays()
    assert type(cell.params) is LSTMParams


def test_clip_bounds_every_pre_activation_and_is_active():
    x, h, c, p, _ = _case(2)
    plain = lstm_step_detailed(x, h, c, **p)
    assert max(np.max(np.abs(z)) for z in plain.pre_activations.values()) > 0.5
    r = lstm_step_variant(x, h, c, **p, clip=0.5)
    for z in r.pre_activations.values():
        assert np.max(np.abs(z)) <= 0.5
    assert not np.allclose(r.h_next, plain.h_next)
    huge = lstm_step_variant(x, h, c, **p, clip=1e300)
    np.testing.assert_array_equal(huge.h_next, plain.h_next)


def test_input_forget_couples_the_gates_and_ignores_wf():
    x, h, c, p, _ = _case(3)
    r = lstm_step_variant(x, h, c, **p, input_forget=True)
    np.testing.assert_array_equal(r.f_t, 1.0 - r.i_t)
    np.testing.assert_array_equal(r.z_f, -r.z_i)
    other = dict(p, Wf=p["Wf"] + 5.0, bf=p["bf"] - 3.0)
    np.testing.assert_array_equal(
        lstm_step_variant(x, h, c, **other, input_forget=True).h_next, r.h_next
    )


def test_peepholes_batched_and_float32():
    x, h, c, p, P = _case(4)
    X = np.stack([x, -x, 2 * x])
    r = lstm_step_variant(X, h, c, **p, **P)
    for b in range(3):
        rb = lstm_step_variant(X[b], h, c, **p, **P)
        np.testing.assert_allclose(r.h_next[b], rb.h_next, rtol=0, atol=1e-15)
    cell = LSTMParams.from_mapping({**p, **P}, clip=2.0).astype("float32")
    r32 = cell.step(X.astype("float32"), h.astype("float32"), c.astype("float32"))
    assert r32.h_next.dtype == np.float32 and r32.z_o.dtype == np.float32
    np.testing.assert_allclose(r32.h_next, cell.astype("float64").step(X, h, c).h_next, atol=1e-5)


def test_zero_peepholes_are_the_plain_cell():
    x, h, c, p, _ = _case(5)
    zeros = {k: np.zeros(3) for k in ("Pi", "Pf", "Po")}
    np.testing.assert_allclose(
        lstm_step_variant(x, h, c, **p, **zeros).h_next,
        lstm_step_detailed(x, h, c, **p).h_next,
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"Pi": np.ones(3)}, "peepholes need all of Pi, Pf, Po"),
        ({"Pi": np.ones(2), "Pf": np.ones(2), "Po": np.ones(2)}, "Pi must have shape (3,)"),
        ({"clip": 0.0}, "clip must be a finite number > 0"),
        ({"clip": -1.0}, "clip must be a finite number > 0"),
        ({"clip": float("inf")}, "clip must be a finite number > 0"),
        ({"clip": float("nan")}, "clip must be a finite number > 0"),
    ],
)
def test_bad_variants_are_refused(kwargs, message):
    x, h, c, p, _ = _case(6)
    with pytest.raises(ValueError, match=re.escape(message)):
        lstm_step_variant(x, h, c, **p, **kwargs)


def test_from_mapping_refuses_partial_peepholes():
    _, _, _, p, P = _case(7)
    with pytest.raises(InputError, match="peepholes need all of Pi, Pf, Po"):
        LSTMParams.from_mapping({**p, "Pi": P["Pi"], "Po": P["Po"]}, "f.npz")
    with pytest.raises(InputError, match=r"f.npz: Pf has shape \(4,\), expected \(3,\)"):
        LSTMParams.from_mapping({**p, **P, "Pf": np.ones(4)}, "f.npz")


def test_init_peepholes_keep_the_other_draws():
    plain = init_params(seed=5)
    peep = init_params(seed=5, peepholes=True, clip=3.0, input_forget=True)
    for k, v in plain.params.arrays().items():
        np.testing.assert_array_equal(peep.params.arrays()[k], v)
    assert peep.params.peepholes is not None and peep.params.peepholes["Pi"].shape == (4,)
    assert isinstance(peep.params.variant, Variant) and not peep.params.is_plain
    assert plain.params.variant.is_plain
    assert peep.meta["clip"] == 3.0 and peep.meta["input_forget"] is True
    assert "clip" not in plain.meta and "input_forget" not in plain.meta


def test_variant_params_is_a_deprecated_alias_of_lstm_params():
    import lstm_cli.params

    with pytest.warns(DeprecationWarning, match="VariantParams is deprecated"):
        alias = lstm_cli.params.VariantParams
    assert alias is LSTMParams


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_the_file_carries_its_semantics(tmp_path: Path, suffix: str):
    ps = init_params(seed=8, n_features=3, n_hidden=2, peepholes=True, clip=1.25, input_forget=True)
    path = tmp_path / f"cell{suffix}"
    paramfiles.save_param_set(path, ps)
    back = paramfiles.load_param_set(path)
    assert back.params.variant.switches() == {"peepholes": True, "clip": 1.25, "input_forget": True}
    for k, v in ps.params.all_arrays().items():
        assert back.params.all_arrays()[k].tobytes() == v.tobytes()


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"clip": "big"}, "meta clip is 'big'"),
        ({"clip": -2}, "meta clip is -2"),
        ({"clip": True}, "meta clip is True"),
        ({"input_forget": 1}, "meta input_forget is 1"),
    ],
)
def test_bad_variant_metadata_is_refused(tmp_path: Path, meta, message):
    ps = init_params(seed=1, n_features=2, n_hidden=2)
    path = tmp_path / "bad.npz"
    paramfiles.save_param_set(path, ParamSet(ps.params, ps.example, {}))
    with np.load(path) as z:
        arrays = dict(z)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(InputError, match="bad.npz") as e:
        paramfiles.load_param_set(path)
    assert message in str(e.value)


# --------------------------------------------------------------------------- CLI


def test_cli_init_and_step_with_variants(in_tmp: Path):
    result = runner.invoke(
        app, ["init", "--seed", "3", "--peepholes", "--clip", "1.5", "--input-forget", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["meta"]["clip"] == 1.5 and out["shapes"]["Pi"] == [4]
    result = runner.invoke(app, ["step", "--params", "params.npz", "--json"])
    assert result.exit_code == 0, result.output
    step = json.loads(result.output)
    assert step["variant"] == {"peepholes": True, "clip": 1.5, "input_forget": True}
    assert step["shapes"]["Po"] == [4]
    np.testing.assert_allclose(step["gates"]["f_t"], 1 - np.array(step["gates"]["i_t"]))
    assert max(abs(v) for z in step["pre_activations"].values() for v in z) <= 1.5
    ps = paramfiles.load_param_set(Path("params.npz"))
    assert ps.example is not None
    r = ps.params.step(**ps.example.arrays())
    np.testing.assert_allclose(step["h_next"], r.h_next, rtol=0, atol=0)


def test_cli_step_overrides_the_files_variant(in_tmp: Path):
    runner.invoke(app, ["init", "--seed", "3", "--peepholes", "--clip", "1.5", "--input-forget"])
    args = ["step", "--params", "params.npz", "--json"]
    off = json.loads(
        runner.invoke(app, [*args, "--no-clip", "--no-input-forget", "--no-peepholes"]).output
    )
    assert off["variant"] == {"peepholes": False, "clip": None, "input_forget": False}
    plain = init_params(seed=3)
    assert plain.example is not None
    r = plain.params.step(**plain.example.arrays())
    np.testing.assert_allclose(off["h_next"], r.h_next, rtol=0, atol=0)
    on = json.loads(
        runner.invoke(app, ["step", "--clip", "0.25", "--input-forget", "--json"]).output
    )
    assert on["variant"] == {"peepholes": False, "clip": 0.25, "input_forget": True}


def test_cli_pretty_step_names_the_variant(in_tmp: Path):
    runner.invoke(app, ["init", "--seed", "3", "--clip", "2"])
    result = runner.invoke(app, ["step", "--params", "params.npz", "--pretty"])
    assert result.exit_code == 0, result.output
    assert "ONNX variant: clip 2" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["step", "--clip", "0"], "clip must be a finite number > 0"),
        (["step", "--clip", "-3"], "clip must be a finite number > 0"),
        (["step", "--clip", "1", "--no-clip"], "--clip and --no-clip exclude each other"),
        (["init", "--clip", "-1"], "clip must be a finite number > 0"),
    ],
)
def test_cli_refuses_bad_variant_options(in_tmp: Path, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(in_tmp.iterdir()) == []


def test_explain_explains_a_variant_cell(in_tmp: Path):
    runner.invoke(app, ["init", "--seed", "3", "--clip", "2"])
    result = runner.invoke(app, ["step", "--params", "params.npz", "--explain"])
    assert result.exit_code == 0, result.output
    assert "ONNX variant: clip 2" in result.output  # details in tests/test_explain.py
    result = runner.invoke(app, ["step", "--params", "params.npz", "--explain", "--no-clip"])
    assert result.exit_code == 0, result.output
    assert "ONNX variant" not in result.output
