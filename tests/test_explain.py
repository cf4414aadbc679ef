"""`step --explain`: every equation in order, with the step's numbers, fitting the width."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import init_params, notebook_default
from lstm_cli.cli import app
from lstm_cli.io.paramfiles import save_param_set
from lstm_cli.render.explain import explain_lines, explain_text, num, wrap

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
    """Commands are imported only when invoked: `step --json` never loads the others."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from lstm_cli.cli import app\n"
        "sys.argv = ['lstm-cell', 'step', '--json']\n"
        "try:\n    app(prog_name='lstm-cell')\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    imported = proc.stderr.split()
    assert "lstm_cli.cli.step" in imported
    assert not [m for m in imported if m.startswith("rich")]
    heavy = (
        "lstm_cli.backward",
        "lstm_cli.sequence",
        "lstm_cli.porting.check",
        "lstm_cli.porting.vectors",
        "lstm_cli.render.explain",
        "lstm_cli.cli.grad",
        "lstm_cli.cli.check",
        "lstm_cli.cli.run",
    )
    assert not [m for m in imported if m in heavy]


# --------------------------------------------------------------------------- ONNX's variants

VARIANTS = {
    "peepholes": {"peepholes": True},
    "clip": {"clip": 1.5},
    "input_forget": {"input_forget": True},
    "all": {"peepholes": True, "clip": 1.5, "input_forget": True},
}
# in the order the variant cell computes them: o after c_next (its peephole reads c_next)
VARIANT_ORDER = [
    "u = concat(h_prev, x_t)",
    "i_t = sigmoid(",
    "f_t = ",
    "c_t_candidate = tanh(",
    "c_next = f_t * c_prev + i_t * c_t_candidate",
    "o_t = sigmoid(",
    "h_next = o_t * tanh(c_next)",
]


def assert_variant_order(out: str) -> None:
    positions = [out.index("\n  " + f) for f in VARIANT_ORDER]  # the formula lines
    assert positions == sorted(positions)


VALUE = re.compile(r"= (-?\d+\.\d{4}|-?\d\.\d{3}e[+-]\d+|0)$")


def printed_values(out: str) -> dict[str, str]:
    """The last '= number' of each 'name[j] = ...' statement (continuation lines included)."""
    values: dict[str, str] = {}
    current = None
    for line in out.splitlines():
        m = re.match(r"  (\w+)\[(\d+)\] ", line)
        if m:
            current = f"{m[1]}[{m[2]}]"
        elif not line.startswith("   "):
            current = None
        v = VALUE.search(line)
        if current and v:
            values[current] = v[1]
    return values


def _par(v: float) -> str:
    s = num(v)
    return f"({s})" if s.startswith("-") else s


def variant_cell(in_tmp, settings, F: int = 5, H: int = 3, seed: int = 11):
    cell = init_params(F, H, seed=seed, **settings)
    save_param_set(in_tmp / "v.npz", cell)
    assert cell.example is not None
    return cell.params, cell.params.step(**cell.example.arrays())


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_cell_explained_in_its_order_with_its_own_numbers(in_tmp, name):
    settings = VARIANTS[name]
    params, r = variant_cell(in_tmp, settings)
    assert not params.is_plain
    out = explain("--params", "v.npz")
    assert not ANSI.search(out)  # plain text in a pipe
    assert_width(out, 80)
    assert_variant_order(out)
    header = out.split("\n\n")[0]
    assert "ONNX variant:" in header
    assert ("peepholes" in header) == ("peepholes" in settings)
    assert ("clip 1.5" in header) == ("clip" in settings)
    assert ("input_forget" in header) == ("input_forget" in settings)

    values = printed_values(out)
    gates = [("i", "i_t"), ("o", "o_t"), ("c", "c_t_candidate")]
    if not params.coupled:
        gates.append(("f", "f_t"))
    for j in range(params.n_hidden):
        for g, act in gates:
            for key, v in (
                (f"z_{g}[{j}]", getattr(r, f"z_{g}")[j]),
                (f"{act}[{j}]", getattr(r, act)[j]),
            ):
                assert values[key] == num(v), key  # the StepResult's own value, 4 decimals
                assert float(values[key]) == pytest.approx(v, abs=5e-5), key
        for key, v in (
            (f"f_t[{j}]", r.f_t[j]),
            (f"c_next[{j}]", r.c_next[j]),
            (f"h_next[{j}]", r.h_next[j]),
        ):
            assert values[key] == num(v), key
            assert float(values[key]) == pytest.approx(v, abs=5e-5), key
    if params.coupled:
        assert "f_t = 1 - i_t" in out
        assert not [k for k in values if k.startswith("z_f[")]  # Wf, bf unused: no z_f
        for j in range(params.n_hidden):
            assert f"f_t[{j}] = 1 - {_par(r.i_t[j])} = {num(r.f_t[j])}" in out


@pytest.mark.parametrize("name", ["peepholes", "all"])
def test_every_peephole_term_is_written_out_with_its_numbers(in_tmp, name):
    params, r = variant_cell(in_tmp, VARIANTS[name])
    assert params.peepholes is not None
    out = explain("--params", "v.npz")
    gates = ["i", "o"] if params.coupled else ["i", "f", "o"]
    for g in gates:
        state, state_name = (r.c_next, "c_next") if g == "o" else (r.c_prev, "c_prev")
        P = params.peepholes[f"P{g}"]
        assert f"P{g} * {state_name}" in out
        for j in range(params.n_hidden):
            assert f"+ P{g}[{j}]*{state_name}[{j}]" in out
            assert f"+ {_par(P[j])}*{_par(state[j])} (P{g}[{j}]*{state_name}[{j}])" in out
    # the output gate's peephole is explained after c_next has been computed
    assert out.index("c_next[0] = ") < out.index("Po[0]*c_next[0]")


@pytest.mark.parametrize("name", ["clip", "all"])
def test_a_clip_that_bites_is_shown_and_one_that_does_not_is_not(in_tmp, name):
    settings = VARIANTS[name]
    params, r = variant_cell(in_tmp, settings)
    clip = settings["clip"]
    out = explain("--params", "v.npz")
    u, c_prev, c_next = r.u, r.c_prev, r.c_next
    peep = params.peepholes or {}
    gates = ["i", "o", "c"] if params.coupled else ["i", "f", "o", "c"]
    bit = 0
    for g in gates:
        W, b = getattr(params, f"W{g}"), getattr(params, f"b{g}")
        pre = W @ u + b  # before the clip, computed here independently
        if f"P{g}" in peep:
            pre = pre + peep[f"P{g}"] * (c_next if g == "o" else c_prev)
        for j in range(params.n_hidden):
            line = f"  z_{g}[{j}] = clip({num(pre[j])}, -1.5, 1.5) = "
            if abs(pre[j]) > clip:
                bit += 1
                z = getattr(r, f"z_{g}")[j]
                assert z == np.sign(pre[j]) * clip
                assert f"{line}{num(z)}" in out, (g, j)
            else:
                assert f"z_{g}[{j}] = clip(" not in out, (g, j)
    assert bit >= 2  # the cell was chosen so that the clip bites
    assert "clip(Wc @ u + bc, -1.5, 1.5)" in out


@pytest.mark.parametrize("columns", [60, 80])
def test_large_variant_cell_is_summarised_and_fits(in_tmp, columns):
    save_param_set(
        in_tmp / "big.npz",
        init_params(30, 20, seed=3, peepholes=True, clip=0.5, input_forget=True),
    )
    x = np.linspace(-2, 2, 60).reshape(2, 30)
    (in_tmp / "x.json").write_text(json.dumps(x.tolist()))
    out = explain("--params", "big.npz", "--x", "x.json", columns=columns)
    assert "A batch of 2: showing batch row 0." in out
    assert "(46 more terms)" in out and "and 18 more units" in out
    assert re.search(r"The clip changed \d+ of the 20\s+pre-activations", out)
    assert_variant_order(out)
    assert_width(out, columns)
    assert not ANSI.search(out)


def test_variant_pretty_view_fits_80_columns(in_tmp):
    variant_cell(in_tmp, VARIANTS["all"])
    out = explain("--params", "v.npz", "--pretty")
    assert "ONNX variant:" in out and "f_t = 1 - i_t" in out
    assert_width(ANSI.sub("", out), 80)


def test_variant_switched_on_from_the_command_line_is_explained():
    out = explain("--clip", "0.5")  # the notebook's cell, clipped
    assert "ONNX variant: clip 0.5" in out
    assert "i_t = sigmoid(clip(Wi @ u + bi, -0.5, 0.5))" in out
    assert "= clip(" in out
    assert_width(out, 80)


def test_explain_draws_the_cell_when_it_fits():
    from lstm_cli.render.explain import CELL_DIAGRAM

    cell = notebook_default()
    r = cell.params.step(**cell.example.arrays())
    wide = explain_text(r, cell.params, width=80)
    assert "u = [h_prev, x_t]  (h_prev first)" in wide and "[sigmoid]" in wide
    assert CELL_DIAGRAM.strip("\n").splitlines()[0] in wide.splitlines()
    narrow = explain_text(r, cell.params, width=50)
    assert "(h_prev first)" not in narrow  # 61 columns wide: left out rather than cut
