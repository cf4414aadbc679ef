"""lstm-cell inspect: every LSTM of a file, as JSON in a pipe and a table on a terminal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.init import init_params
from lstm_cli.io.paramfiles import save_param_set

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def inspect(*args: str):
    return runner.invoke(app, ["inspect", *args])


def test_a_stacked_bidirectional_torch_lstm(in_tmp):
    shutil.copy(DATA / "torch_lstm_2x2.pt", "m.pt")
    r = inspect("m.pt")
    assert r.exit_code == 0, r.output
    (lstm,) = json.loads(r.stdout)["lstms"]
    assert lstm == {
        "name": "", "layout": "pytorch", "framework": "nn.LSTM", "layers": 2, "directions": 2,
        "n_features": 3, "n_hidden": 2, "dtype": "float32", "variants": [], "proj_size": None,
        "cells": ["l0", "l0_reverse", "l1", "l1_reverse"],
    }  # fmt: skip
    view = inspect("m.pt", "--pretty").stdout
    assert "nn.LSTM" in view and "l0_reverse" in view and "--layer" in view


def test_several_lstms_named_as_key_prefix_takes_them(in_tmp):
    with np.load(DATA / "torch_lstm_2x2.npz") as f:
        arrays = {"enc." + k: v for k, v in f.items()}
    cell = init_params(5, 3, 0, "notebook", True, 2.0, False).params.all_arrays()
    arrays.update({"dec/" + k: v for k, v in cell.items()})
    np.savez("two.npz", **arrays)
    lstms = json.loads(inspect("two.npz", "--json").stdout)["lstms"]
    assert [(x["name"], x["framework"], x["n_features"], x["n_hidden"]) for x in lstms] == [
        ("dec/", "native", 5, 3),
        ("enc.", "nn.LSTM", 3, 2),
    ]
    assert lstms[0]["variants"] == ["peepholes"]
    assert "pick one with --key-prefix" in inspect("two.npz", "--pretty").stdout
    step = runner.invoke(app, ["step", "--params", "two.npz", "--key-prefix", "enc.", "--layer",
                               "1", "--direction", "reverse", "--x", "x.npy"])  # fmt: skip
    assert "x.npy: no such file" in step.stderr  # the cell was chosen; the input is missing


def test_variants_from_meta(in_tmp):
    save_param_set(Path("v.npz"), init_params(4, 2, 0, "notebook", False, 1.5, True))
    (lstm,) = json.loads(inspect("v.npz").stdout)["lstms"]
    assert lstm["variants"] == ["clip 1.5", "input_forget"]


def test_a_file_without_lstm_is_refused(in_tmp):
    np.savez("none.npz", a=np.ones(3))
    r = inspect("none.npz")
    assert r.exit_code == 2
    assert "none.npz: no LSTM found" in r.stderr
    assert inspect("missing.npz").exit_code == 2
