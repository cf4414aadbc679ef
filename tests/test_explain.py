"""`step --explain`: every equation in order, with the step's numbers, fitting the width."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import init_params, notebook_default
from lstm_cli.cli import app
from lstm_cli.explain import explain_lines, explain_text, num, wrap
from lstm_cli.fileio import save_param_set

runner = CliRunner()
ANSI = re.compile(r"\x1b\[")

FORMULAS = [
    "u = concat(h_prev, x_t)",
    "i_t = sigmoid(Wi @ u + bi)",
    "f_t = sigmoid(Wf @ u + bf)",
    "o_t = sigmoid(Wo @ u + bo)",
    "c_t_candidate = tanh(Wc @ u + bc)",
    "c_next = f_t * c_prev + i_t * c_t_candidate",
    "h_next = o_t * tanh(c_next)",
]


def explain(*args: str, columns: int = 80):
    result = runner.invoke(app, ["step", "--explain", *args], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def assert_width(text: str, width: int) -> None:
    long = [line for line in text.splitlines() if len(line) > width]
    assert not long, f"{len(long)} lines over {width} columns, e.g. {long[0]!r}"


def test_notebook_cell_every_equation_in_order_ending_in_the_notebook_numbers():
    out = explain()
    positions = [out.index(f) for f in FORMULAS]
    assert positions == sorted(positions)
    assert "h_next = [-0.24236866 -0.47552629 -0.61342184  0.2937933 ]" in out
    assert "c_next = [-2.00175213 -0.54923161 -1.26657864  0.33225723]" in out
    assert out.rstrip().splitlines()[-1].strip().startswith("c_next = [")
    assert not ANSI.search(out)  # plain text in a pipe
    assert_width(out, 80)


def test_the_numbers_plugged_in_are_the_steps_own():
    cell = notebook_default()
    assert cell.example is not None
    r = cell.params.step(**cell.example.arrays())
    out = explain()
    # the first product of z_i[0], every z and every activation, as printed
    w, u = cell.params.Wi[0, 0], r.u[0]
    assert "z_i[0] = Wi[0] . u + bi[0]" in out
    assert f"({num(w)})*({num(u)})" in out
    for g, act in (("i", "i_t"), ("f", "f_t"), ("o", "o_t"), ("c", "c_t_candidate")):
        for j in range(4):
            z = getattr(r, f"z_{g}")[j]
            assert f"= {num(z)}\n" in out, (g, j)
            assert re.search(rf"{act}\[{j}\] = .*= {re.escape(num(getattr(r, act)[j]))}", out)
    for j in range(4):
        assert re.search(rf"c_next\[{j}\] = .* = {re.escape(num(r.c_next[j]))}$", out, re.M)
        assert re.search(rf"h_next\[{j}\] = .* = {re.escape(num(r.h_next[j]))}$", out, re.M)


def test_small_cell_is_written_out_in_full():
    out = explain()
    # all 14 products of every dot product: count the products of z_f[2]
    block = out.split("z_f[2] = Wf[2] . u + bf[2]")[1].split("f_t[2]")[0]
    assert block.count("*") == 14
    assert "more terms" not in out and "more units" not in out


@pytest.mark.parametrize("columns", [80, 60, 100])
def test_large_cell_is_summarised_and_fits(in_tmp, columns):
    save_param_set(in_tmp / "big.npz", init_params(30, 20, seed=3))
    x = np.linspace(-2, 2, 60).reshape(2, 30)
    (in_tmp / "x.json").write_text(json.dumps(x.tolist()))
    out = explain("--params", "big.npz", "--x", "x.json", columns=columns)
    assert "A batch of 2: showing batch row 0." in out
    assert "(46 more terms)" in out
    assert "and 18 more units" in out
    assert [out.index(f) for f in FORMULAS] == sorted(out.index(f) for f in FORMULAS)
    assert_width(out, columns)


def test_extreme_magnitudes_use_scientific_notation_and_still_fit(in_tmp):
    (in_tmp / "x.json").write_text(json.dumps([1e6, -3e-7, 2.5e8, 0, 0, 0, 0, 0, 0, 1]))
    out = explain("--x", "x.json")
    assert "1.000e+06" in out
    assert_width(out, 80)


def test_pretty_view_fits_80_columns_too():
    out = explain("--pretty")
    assert "h_next = o_t * tanh(c_next)" in out
    assert_width(ANSI.sub("", out), 80)


def test_explain_excludes_json():
    result = runner.invoke(app, ["step", "--explain", "--json"])
    assert result.exit_code == 2
    assert "--explain" in result.output


def test_explain_text_from_the_library_matches_the_lines():
    cell = notebook_default()
    assert cell.example is not None
    r = cell.params.step(**cell.example.arrays())
    lines = explain_lines(r, cell.params, width=72)
    assert explain_text(r, cell.params, width=72) == "\n".join(t for _, t in lines)
    assert {style for style, _ in lines} <= {"title", "formula", "result", "note", ""}
    assert all(len(t) <= 72 for _, t in lines)


def test_wrap_breaks_between_pieces_and_keeps_the_indent():
    lines = wrap("  z = ", [f"term{k} +" for k in range(20)] + ["end"], 30)
    assert all(len(line) <= 30 for line in lines)
    assert all(line.startswith(" " * 6) for line in lines[1:])
    assert " ".join(" ".join(lines).split()) == "z = " + " ".join(
        [f"term{k} +" for k in range(20)] + ["end"]
    )


def test_num_formats():
    assert num(0) == "0"
    assert num(0.5) == "0.5000"
    assert num(-1e-9) == "-1.000e-09"
    assert num(-0.00001) == "-1.000e-05"
    assert num(12345.6) == "1.235e+04"


def test_step_json_still_does_not_import_rich():
    """The new commands register at import time; they must not make `step --json` slower."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lstm_cli", "step", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines()]
    assert "lstm_cli.cli_learn" in imported
    assert not [m for m in imported if m.startswith("rich")]
    heavy = ("lstm_cli.backward", "lstm_cli.check", "lstm_cli.vectors", "lstm_cli.explain")
    assert not [m for m in imported if m in heavy]
