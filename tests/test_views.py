"""The terminal views read anywhere: whole numbers at 60 columns, headers that never wrap
from 80 on, gates before shapes, legends in words without colour."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from tests.conftest import PARAMS_DIR

runner = CliRunner()
NUMBER = re.compile(r"[+-]?\d+\.\d{4}\b")
COLOUR_WORDS = ("red", "blue", "green", "orange", "grey", "yellow", "cyan")


def view(args: list[str], columns: int, **env: str) -> str:
    result = runner.invoke(app, [*args, "--pretty"], env={"COLUMNS": str(columns), **env})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("columns", [60, 80, 100, 200])
def test_step_numbers_stay_whole_at_every_width(columns):
    out = view(["step"], columns)
    assert "…" not in out
    table = out[out.index("Gate activations") : out.index("h_next =")]
    numbers = NUMBER.findall(table)
    assert len(numbers) == 4 * 6  # every unit's six values, all with their four decimals
    assert "0.3854" in numbers and "-0.2424" in numbers  # the notebook's i_t[0], h_next[0]


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_step_headers_fit_on_one_line_with_words(columns):
    out = view(["step"], columns)
    header = next(line for line in out.splitlines() if line.strip().startswith("unit"))
    for words in ("input i_t", "forget f_t", "output o_t", "candidate", "c_next", "h_next"):
        assert words in header


def test_step_shows_gates_before_shapes_within_a_24_line_screen():
    out = view(["step"], 80)
    lines = out.splitlines()
    assert out.index("Gate activations") < out.index("Shapes")
    last_gate_row = max(k for k, line in enumerate(lines) if line.strip().startswith("3 "))
    assert last_gate_row < 24


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_legends_are_words_without_colour(env, tmp_path):
    np.save(tmp_path / "xs.npy", np.random.default_rng(0).standard_normal((20, 10)))
    out = view(["run", "--xs", str(tmp_path / "xs.npy")], 100, **env)
    legend = [line for line in out.splitlines() if line.startswith(("gates:", "candidate,"))]
    assert len(legend) == 2 and "closed" in legend[0] and "open" in legend[0]
    assert not any(word in line for line in legend for word in COLOUR_WORDS)


def test_legends_name_colours_when_they_are_shown(tmp_path):
    np.save(tmp_path / "xs.npy", np.random.default_rng(0).standard_normal((20, 10)))
    out = view(["run", "--xs", str(tmp_path / "xs.npy")], 100, TERM="xterm-256color")
    assert "green open" in out


@pytest.mark.parametrize("columns", [60, 100, 200])
def test_run_numbers_stay_whole(columns):
    out = view(["run", "--params", str(PARAMS_DIR / "seed42.npz"), "--xs",
                str(PARAMS_DIR / "xs.npy")], columns)  # fmt: skip
    assert "…" not in out
    summary = out[out.index("Over all 50 steps") : out.index("Final state")]
    assert len(NUMBER.findall(summary)) == 6 * 3


# --------------------------------------------------------------------------- --export-view

XS = str(PARAMS_DIR / "xs.npy")
EXPORTING = {
    "step": (["step"], "Gate activations"),
    "explain": (["step", "--explain"], "One LSTM step, explained"),
    "run": (["run", "--params", str(PARAMS_DIR / "seed42.npz"), "--xs", XS], "forget gate"),
    "grad": (["grad"], "Gradients"),
    "check": (["check", "tests.ports:correct"], "agree"),
}


@pytest.mark.parametrize("name", list(EXPORTING))
@pytest.mark.parametrize("suffix", [".txt", ".svg", ".html"])
def test_export_view_saves_what_the_terminal_shows(name, suffix, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(PARAMS_DIR.parent))
    args, expected = EXPORTING[name]
    result = runner.invoke(app, [*args, "--export-view", f"view{suffix}"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    text = (tmp_path / f"view{suffix}").read_text()
    start = {".txt": "", ".svg": "<svg", ".html": "<!DOCTYPE html>"}[suffix]
    assert text.lstrip().startswith(start)
    if suffix == ".txt":
        assert expected in text and "\x1b[" not in text  # the words, no escape codes
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"view{suffix}"]


def test_export_view_text_is_the_terminal_view(tmp_path):
    path = tmp_path / "v.txt"
    shown = runner.invoke(app, ["step", "--pretty"], env={"COLUMNS": "90", "NO_COLOR": "1"})
    saved = runner.invoke(
        app, ["step", "--json", "--export-view", str(path)], env={"COLUMNS": "90"}
    )
    assert shown.exit_code == 0 and saved.exit_code == 0, saved.output
    strip = [line.rstrip() for line in shown.stdout.splitlines()]
    assert [line.rstrip() for line in path.read_text().splitlines()] == strip


@pytest.mark.parametrize(("name", "message"), [("v.png", "not '.png'"), ("v", "no extension")])
def test_export_view_refuses_other_formats_before_any_work(name, message, tmp_path):
    result = runner.invoke(app, ["step", "--export-view", str(tmp_path / name), "--out",
                                 str(tmp_path / "r.npz")])  # fmt: skip
    assert result.exit_code == 2 and message in result.output
    assert list(tmp_path.iterdir()) == []


def test_export_view_never_clobbers_without_force(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("mine")
    result = runner.invoke(app, ["step", "--export-view", str(path)])
    assert result.exit_code == 2 and "already exists; pass --force" in result.output
    assert path.read_text() == "mine"
    result = runner.invoke(app, ["step", "--export-view", str(path), "--force"])
    assert result.exit_code == 0 and "Gate activations" in path.read_text()


# --------------------------------------------------------------------------- --plot

MAGIC = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}


@pytest.mark.parametrize("suffix", list(MAGIC))
def test_run_plot_draws_every_gate_over_time(suffix, tmp_path):
    path = tmp_path / f"gates{suffix}"
    result = runner.invoke(app, ["run", "--params", str(PARAMS_DIR / "seed42.npz"), "--xs", XS,
                                 "--plot", str(path), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = path.read_bytes()
    assert data.startswith(MAGIC[suffix])
    if suffix == ".svg":
        for words in ("input gate", "forget gate", "output gate", "candidate", "cell state"):
            assert words in data.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_plot_buckets_are_whole_steps_and_exact_means():
    from lstm_cli.render.plot import BucketMeans
    from lstm_cli.render.run import QUANTITIES

    rng = np.random.default_rng(1)
    full = {q: rng.standard_normal((4503, 2)) for q, _, _ in QUANTITIES}
    buckets = BucketMeans(4503, 2, max_columns=1000)
    assert buckets.per_bucket == 5 and buckets.n_buckets == 901
    for a, b in ((0, 3), (3, 4000), (4000, 4503)):
        buckets.add({q: v[a:b] for q, v in full.items()})
    means = buckets.means("h")
    np.testing.assert_allclose(means[:, 0], full["h"][:5].mean(axis=0))
    np.testing.assert_allclose(means[:, -1], full["h"][4500:].mean(axis=0))  # 3 steps


def test_plot_names_the_extra_when_matplotlib_is_missing(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = runner.invoke(app, ["run", "--xs", XS, "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 2, result.output
    assert "plotting needs matplotlib, the optional extra plot" in result.output
    assert "pip install '.[plot]'" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("columns", [60, 100])
def test_check_view_keeps_numbers_whole(columns):
    result = runner.invoke(
        app, ["check", "tests.ports:swapped_gates", "--pretty"], env={"COLUMNS": str(columns)}
    )
    out = result.stdout
    assert result.exit_code == 1 and "…" not in out and "FAIL" in out
    assert re.search(r"\d\.\de[+-]\d\d", out)  # the relative errors, in full
