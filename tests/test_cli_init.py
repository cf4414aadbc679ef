"""`lstm-cell init`: the file it writes, what it shows, and what it refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.io.paramfiles import load_param_set
from tests.conftest import notebook_arrays

runner = CliRunner()


def test_init_seed_42_writes_the_notebook_cell(in_tmp):
    result = runner.invoke(app, ["init", "--seed", "42"])
    assert result.exit_code == 0, result.output
    path = in_tmp / "params.npz"
    expected = notebook_arrays()
    with np.load(path, allow_pickle=False) as npz:  # a plain .npz, no pickle needed
        for name, arr in expected.items():
            np.testing.assert_array_equal(npz[name], arr, err_msg=name)
        meta = json.loads(str(npz["meta"]))
    assert meta["seed"] == 42 and meta["scheme"] == "notebook" and meta["format_version"] == 1
    out = json.loads(result.stdout)  # not a terminal: JSON
    assert out["path"] == "params.npz" and out["shapes"]["Wf"] == [4, 14]
    assert sorted(p.name for p in in_tmp.iterdir()) == ["params.npz"]  # no temp file left


def test_init_out_is_exactly_the_path_given(in_tmp):
    result = runner.invoke(
        app, ["init", "--seed", "1", "--out", "cell", "--n-features", "3", "--n-hidden", "2"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in in_tmp.iterdir()) == ["cell"]
    ps = load_param_set(in_tmp / "cell")
    assert ps.params.n_features == 3 and ps.params.n_hidden == 2
    assert ps.example is not None and ps.example.x_t.shape == (3,)


def test_init_never_overwrites_without_force(in_tmp):
    assert runner.invoke(app, ["init", "--seed", "1"]).exit_code == 0
    before = (in_tmp / "params.npz").read_bytes()
    result = runner.invoke(app, ["init", "--seed", "2"])
    assert result.exit_code == 2
    assert "params.npz: already exists; pass --force" in result.stderr
    assert "Traceback" not in result.output
    assert (in_tmp / "params.npz").read_bytes() == before
    result = runner.invoke(app, ["init", "--seed", "2", "--force"])
    assert result.exit_code == 0, result.output
    assert (in_tmp / "params.npz").read_bytes() != before
    assert load_param_set(in_tmp / "params.npz").meta["seed"] == 2


def test_init_pretty_shows_path_and_shapes_table(in_tmp):
    result = runner.invoke(app, ["init", "--seed", "42", "--pretty"])
    assert result.exit_code == 0, result.output
    assert "Wrote params.npz" in result.stdout
    assert "seed=42" in result.stdout
    for row in ("Wf", "(4, 14)", "bc", "(4,)", "x_t", "(10,)"):
        assert row in result.stdout


@pytest.mark.parametrize("scheme", ["pytorch", "keras"])
def test_init_other_schemes(in_tmp, scheme):
    result = runner.invoke(app, ["init", "--seed", "3", "--scheme", scheme, "--n-hidden", "6"])
    assert result.exit_code == 0, result.output
    ps = load_param_set(in_tmp / "params.npz")
    assert ps.meta["scheme"] == scheme and ps.params.n_hidden == 6


def test_init_without_seed_records_a_fresh_one(in_tmp):
    assert runner.invoke(app, ["init", "--out", "a.npz"]).exit_code == 0
    assert runner.invoke(app, ["init", "--out", "b.npz"]).exit_code == 0
    a, b = load_param_set(in_tmp / "a.npz"), load_param_set(in_tmp / "b.npz")
    assert isinstance(a.meta["seed"], int) and a.meta["seed"] != b.meta["seed"]
    assert not np.array_equal(a.params.Wf, b.params.Wf)
    # the recorded seed reproduces the file
    assert (
        runner.invoke(app, ["init", "--out", "c.npz", "--seed", str(a.meta["seed"])]).exit_code == 0
    )
    np.testing.assert_array_equal(load_param_set(in_tmp / "c.npz").params.Wf, a.params.Wf)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n-hidden", "0"], "--n-hidden"),
        (["--n-features", "-3"], "--n-features"),
        (["--seed", "-1"], "--seed"),
        (["--scheme", "xavier"], "--scheme"),
        (["--out", "."], "is a directory"),
        (["--out", "no/such/dir/p.npz"], "does not exist"),
        (["--json", "--pretty"], "exclude each other"),
    ],
)
def test_init_refuses_bad_options(in_tmp, args, message):
    result = runner.invoke(app, ["init", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(in_tmp.iterdir()) == []  # nothing written
