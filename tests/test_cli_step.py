"""`lstm-cell step`: the notebook's numbers through every input path, the views, --out."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from tests.conftest import (
    NOTEBOOK_C_NEXT,
    NOTEBOOK_H_NEXT,
    PARAMS_DIR,
    ROOT,
    assert_notebook,
    notebook_arrays,
)

runner = CliRunner()
SEED42 = str(PARAMS_DIR / "seed42.npz")
X, H, C = (str(PARAMS_DIR / f"{n}.npy") for n in ("x_t", "h_prev", "c_prev"))
INPUTS_JSON = PARAMS_DIR / "inputs.json"


def run_json(args: list[str], stdin: str | bytes | None = None) -> dict:
    result = runner.invoke(app, ["step", *args], input=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        ([], None),  # built-in default cell and its example inputs
        (["--params", SEED42], None),  # example inputs stored in the file
        (["--params", SEED42, "--x", X, "--h", H, "--c", C], None),  # .npz + .npy
        (["--x", str(INPUTS_JSON), "--h", str(INPUTS_JSON), "--c", str(INPUTS_JSON)], None),
        (["--params", SEED42], INPUTS_JSON.read_text()),  # a JSON object on stdin
        (["--h", H, "--c", C, "--x", "-"], json.dumps(notebook_arrays()["x_t"].tolist())),
        (["--x", X, "--c", C, "--h", "-"], (PARAMS_DIR / "h_prev.npy").read_bytes()),  # .npy stdin
        ([], json.dumps({k: notebook_arrays()[k].tolist() for k in ("x_t", "h_prev", "c_prev")})),
        (
            [],
            json.dumps({k[0]: notebook_arrays()[k].tolist() for k in ("x_t", "h_prev", "c_prev")}),
        ),
    ],
    ids=[
        "default",
        "params-example",
        "npz+npy",
        "json-file",
        "stdin-object",
        "stdin-list",
        "stdin-npy",
        "stdin-object-inline",
        "stdin-aliases",
    ],
)
def test_notebook_numbers_through_every_input_path(args, stdin):
    out = run_json(args, stdin)
    assert_notebook(out["h_next"], out["c_next"])
    assert set(out["gates"]) == {"i_t", "f_t", "o_t", "c_t_candidate"}
    assert out["shapes"]["u"] == [14] and out["shapes"]["Wf"] == [4, 14]
    assert out["dtype"] == "float64"


def test_json_output_is_one_line_with_gate_values():
    result = runner.invoke(app, ["step", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    out = json.loads(result.stdout)
    a = notebook_arrays()
    u = np.concatenate([a["h_prev"], a["x_t"]])
    np.testing.assert_allclose(out["gates"]["f_t"], 1 / (1 + np.exp(-(a["Wf"] @ u + a["bf"]))))
    np.testing.assert_allclose(out["pre_activations"]["z_o"], a["Wo"] @ u + a["bo"])
    assert out["sources"]["x_t"].startswith("example in built-in")


def test_x_alone_means_zero_state():
    out = run_json(["--params", SEED42, "--x", X])
    assert out["sources"]["h_prev"] == "zeros" and out["sources"]["c_prev"] == "zeros"
    a = notebook_arrays()
    from lstm_cli import lstm_step

    h, _c = lstm_step(
        a["x_t"],
        np.zeros(4),
        np.zeros(4),
        *(a[k] for k in ("Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")),
    )
    np.testing.assert_allclose(out["h_next"], h, rtol=1e-15)


def test_explicit_option_wins_over_stdin_object():
    a = notebook_arrays()
    piped = json.dumps(
        {
            "x_t": (a["x_t"] * 0).tolist(),
            "h_prev": a["h_prev"].tolist(),
            "c_prev": a["c_prev"].tolist(),
        }
    )
    out = run_json(["--x", X], piped)
    assert out["sources"]["x_t"] == X and out["sources"]["h_prev"] == "stdin"
    assert_notebook(out["h_next"], out["c_next"])


def test_an_inputs_file_is_read_like_stdin():
    """--x inputs.json takes the h_prev and c_prev stored beside x_t, and says so."""
    out = run_json(["--x", str(INPUTS_JSON)])
    assert_notebook(out["h_next"], out["c_next"])
    assert {out["sources"][k] for k in ("x_t", "h_prev", "c_prev")} == {str(INPUTS_JSON)}


def test_an_option_wins_over_the_inputs_file_beside_it(in_tmp):
    np.save("h0.npy", np.zeros(4))
    out = run_json(["--x", str(INPUTS_JSON), "--h", "h0.npy"])
    assert out["sources"]["h_prev"] == "h0.npy" and out["sources"]["c_prev"] == str(INPUTS_JSON)
    assert not np.allclose(out["h_next"], NOTEBOOK_H_NEXT)


def test_an_inputs_file_wins_over_stdin():
    a = notebook_arrays()
    piped = json.dumps({"h_prev": (a["h_prev"] * 0).tolist()})
    out = run_json(["--x", str(INPUTS_JSON)], piped)
    assert out["sources"]["h_prev"] == str(INPUTS_JSON)
    assert_notebook(out["h_next"], out["c_next"])


@pytest.mark.parametrize("command", ["step", "grad"])
@pytest.mark.parametrize(
    ("stdin", "expect"),
    [("{}", "stdin: an empty JSON object"), ('{"input": [1]}', "unknown key 'input'")],
)
def test_no_silent_inputs_from_an_object(command, stdin, expect):
    result = runner.invoke(app, [command, "--json"], input=stdin)
    assert result.exit_code == 2
    assert result.stdout == "" and expect in result.stderr
    assert result.stderr.count("\n") == 1


def test_batch_in_json_is_batch_shaped_and_equals_rows():
    a = notebook_arrays()
    xs = np.stack([a["x_t"], -a["x_t"], 2 * a["x_t"]])
    out = run_json(
        [], json.dumps({"x": xs.tolist(), "h": a["h_prev"].tolist(), "c": a["c_prev"].tolist()})
    )
    assert np.shape(out["h_next"]) == (3, 4) and np.shape(out["gates"]["i_t"]) == (3, 4)
    assert_notebook(out["h_next"][0], out["c_next"][0])
    row2 = run_json(["--h", H, "--c", C, "--x", "-"], json.dumps(xs[2].tolist()))
    np.testing.assert_allclose(out["h_next"][2], row2["h_next"], rtol=1e-13)


def test_float32(in_tmp):
    out = run_json(["--dtype", "float32", "--out", "r.npz"])
    assert out["dtype"] == "float32"
    np.testing.assert_allclose(out["h_next"], NOTEBOOK_H_NEXT, atol=1e-5)
    np.testing.assert_allclose(out["c_next"], NOTEBOOK_C_NEXT, atol=1e-5)
    with np.load(in_tmp / "r.npz") as r:
        assert r["h_next"].dtype == np.float32 and r["i_t"].dtype == np.float32


def test_out_saves_every_array_of_the_result(in_tmp):
    out = run_json(["--out", "result.npz"])
    with np.load(in_tmp / "result.npz", allow_pickle=False) as r:
        assert {
            "x_t",
            "h_prev",
            "c_prev",
            "u",
            "z_i",
            "z_f",
            "z_o",
            "z_c",
            "i_t",
            "f_t",
            "o_t",
            "c_t_candidate",
            "c_next",
            "h_next",
        } <= set(r.files)
        assert_notebook(r["h_next"], r["c_next"])
        np.testing.assert_array_equal(r["f_t"], out["gates"]["f_t"])


def test_pretty_view_shows_shapes_and_gate_table():
    result = runner.invoke(app, ["step", "--pretty"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "No input given: using the example inputs" in text
    for expected in (
        "Shapes",
        "u = [h_prev, x_t]",
        "(14,)",
        "(4, 14)",
        "Gate activations",
        "candidate",
        "c_next",
        "h_next",
        "0.9378",
        "-2.0018",
        "+0.2938",
    ):
        assert expected in text, expected
    assert "h_next = [-0.24236866 -0.47552629 -0.61342184  0.2937933 ]" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_pretty_view_of_a_batch_shows_every_row():
    xs = np.stack([notebook_arrays()["x_t"]] * 3)
    result = runner.invoke(app, ["step", "--pretty", "--x", "-"], input=json.dumps(xs.tolist()))
    assert result.exit_code == 0, result.output
    for b in range(3):
        assert f"batch row {b}" in result.stdout


def test_python_dash_m_and_console_script_agree():
    """A real process: stdout is a pipe, so JSON; stdin is /dev/null, so example inputs."""
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_cli", "step"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert_notebook(out["h_next"], out["c_next"])
    assert proc.stderr == ""


def test_piped_json_through_a_real_pipe():
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_cli", "step", "--params", SEED42],
        input=INPUTS_JSON.read_text(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert_notebook(json.loads(proc.stdout)["h_next"], json.loads(proc.stdout)["c_next"])


def test_json_startup_does_not_import_rich():
    code = (
        "import sys; from lstm_cli.cli import app; sys.argv=['lstm-cell','step','--json'];\n"
        "try:\n    app(prog_name='lstm-cell')\nexcept SystemExit:\n    pass\n"
        "print('rich' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        check=False,
    )
    assert proc.stderr.strip() == "False", proc.stderr


@pytest.mark.parametrize(
    "command", ["", "init", "step", "run", "convert", "grad", "vectors", "check"]
)
def test_help_fits_80_columns_and_shows_its_examples(command, monkeypatch):
    """Each command's --help (its docstring) at 80 columns: nothing wider, examples unbroken."""
    monkeypatch.setenv("COLUMNS", "80")
    result = runner.invoke(app, [command, "--help"] if command else ["--help"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    for line in lines:  # an example is one line, never re-wrapped into two
        if line.strip().startswith(("lstm-cell ", "echo ")):
            assert not line.rstrip().endswith(("lstm-cell", "|")), line
