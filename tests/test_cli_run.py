"""`lstm-cell run`: equal to T `step`s, batches, batch-first, streaming .npy, JSON, --out, and
every refused input (exit code, message, nothing written)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import LSTMParams, init_params, run_sequence
from lstm_cli.cli import app
from lstm_cli.io.atomic import save_npz
from lstm_cli.io.paramfiles import save_param_set
from tests.conftest import ROOT

runner = CliRunner()
F, H = 5, 3


@pytest.fixture
def params(in_tmp) -> Path:
    path = in_tmp / "p.npz"
    save_param_set(path, init_params(F, H, seed=3))
    return path


def load_cell(path: Path) -> LSTMParams:
    with np.load(path) as z:
        return LSTMParams(**{k: z[k] for k in ("Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")})


def run(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, ["run", *args], input=input)


def ok(*args: str, input: str | bytes | None = None) -> dict:
    result = run(*args, input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "variant",
    [[], ["--clip", "0.4"], ["--input-forget"], ["--clip", "1", "--input-forget"]],
    ids=["plain", "clip", "input-forget", "both"],
)
def test_run_equals_t_step_commands(params, in_tmp, variant):
    xs = np.random.default_rng(0).standard_normal((6, F)) * 2
    np.save("xs.npy", xs)
    h = c = None
    for t, x in enumerate(xs):
        np.save(f"x{t}.npy", x)
        args = ["step", "--params", str(params), "--x", f"x{t}.npy", "--json", *variant]
        if h is not None:
            args += ["--h", "h.json", "--c", "c.json"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        h, c = out["h_next"], out["c_next"]
        Path("h.json").write_text(json.dumps(h))
        Path("c.json").write_text(json.dumps(c))
    got = ok("--params", str(params), "--xs", "xs.npy", "--json", *variant)
    np.testing.assert_allclose(got["h_next"], h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got["c_next"], c, rtol=1e-12, atol=1e-14)
    assert got["steps"] == 6 and got["batch"] is None and got["dtype"] == "float64"


def test_peepholes_in_the_file_are_computed(in_tmp):
    path = in_tmp / "peep.npz"
    cell = init_params(F, H, seed=4, peepholes=True).params
    save_param_set(path, init_params(F, H, seed=4, peepholes=True))
    xs = np.random.default_rng(1).standard_normal((5, F))
    np.save("xs.npy", xs)
    h, c = np.zeros(H), np.zeros(H)
    for x in xs:
        r = cell.step(x, h, c)
        h, c = r.h_next, r.c_next
    np.testing.assert_allclose(ok("--params", str(path), "--xs", "xs.npy")["h_next"], h,
                               rtol=1e-12, atol=1e-14)  # fmt: skip
    plain = ok("--params", str(path), "--xs", "xs.npy", "--no-peepholes")["h_next"]
    assert not np.allclose(plain, h)


def test_batch_and_batch_first_and_initial_state(params, in_tmp):
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((9, 4, F))
    h0, c0 = rng.standard_normal((4, H)), rng.standard_normal(H)
    np.save("xs.npy", xs)
    np.save("xsbf.npy", xs.transpose(1, 0, 2))  # (B, T, F)
    np.save("xsbf_fortran.npy", np.asfortranarray(xs.transpose(1, 0, 2)))
    np.save("xs_fortran.npy", np.asfortranarray(xs))
    np.save("xs_big_endian.npy", xs.astype(">f8"))
    np.save("h0.npy", h0)
    Path("c0.json").write_text(json.dumps(c0.tolist()))
    want = run_sequence(load_cell(params), xs, h0, c0)
    state = ["--h", "h0.npy", "--c", "c0.json", "--params", str(params), "--json"]
    for xs_args in (
        ["--xs", "xs.npy"],
        ["--xs", "xsbf.npy", "--batch-first"],
        ["--xs", "xsbf_fortran.npy", "--batch-first", "--chunk-steps", "2"],
        ["--xs", "xs_fortran.npy", "--chunk-steps", "4"],
        ["--xs", "xs_big_endian.npy"],
    ):
        got = ok(*xs_args, *state)
        assert got["batch"] == 4 and got["steps"] == 9, xs_args
        np.testing.assert_allclose(got["h_next"], want.h_next, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got["c_next"], want.c_next, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("chunk", ["1", "7", "23"])
def test_streaming_chunk_sizes_give_the_same_sequences(params, in_tmp, chunk):
    xs = np.random.default_rng(2).standard_normal((23, 2, F))
    np.save("xs.npy", xs)
    want = run_sequence(load_cell(params), xs, return_sequences=True, return_gates=True)
    ok("--params", str(params), "--xs", "xs.npy", "--chunk-steps", chunk, "--out", "o.npz",
       "--gates")  # fmt: skip
    with np.load("o.npz") as z:
        assert sorted(z.files) == sorted(
            ["h_seq", "c_seq", "h_next", "c_next", "i_t", "f_t", "o_t", "c_t_candidate"]
        )
        np.testing.assert_allclose(z["h_seq"], want.h_seq, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(z["c_seq"], want.c_seq, rtol=1e-12, atol=1e-14)
        assert want.gates is not None
        np.testing.assert_allclose(z["o_t"], want.gates["o_t"], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(z["h_next"], want.h_next, rtol=1e-12, atol=1e-14)


def test_out_is_batch_first_with_batch_first(params, in_tmp):
    xs = np.random.default_rng(3).standard_normal((3, 8, F))  # (B, T, F)
    np.save("xs.npy", xs)
    ok("--params", str(params), "--xs", "xs.npy", "--batch-first", "--out", "o.npz")
    with np.load("o.npz") as z:
        assert z["h_seq"].shape == (3, 8, H) and z["h_next"].shape == (3, H)
        assert "i_t" not in z.files
        np.testing.assert_array_equal(z["h_seq"][:, -1], z["h_next"])


def test_json_on_stdin_and_in_a_file(params, in_tmp):
    rng = np.random.default_rng(4)
    xs, h0 = rng.standard_normal((5, F)), rng.standard_normal(H)
    want = run_sequence(load_cell(params), xs, h0)
    doc = json.dumps({"xs": xs.tolist(), "h_prev": h0.tolist()})
    got = ok("--params", str(params), input=doc)
    assert got["sources"]["xs"] == "stdin" and got["sources"]["c_prev"] == "zeros"
    np.testing.assert_allclose(got["h_next"], want.h_next, rtol=1e-12, atol=1e-14)
    Path("in.json").write_text(doc)
    got = ok("--params", str(params), "--xs", "in.json")
    np.testing.assert_allclose(got["h_next"], want.h_next, rtol=1e-12, atol=1e-14)
    got = ok("--params", str(params), input=json.dumps(xs.tolist()))  # a bare list is xs
    np.testing.assert_allclose(
        got["h_next"], run_sequence(load_cell(params), xs).h_next, rtol=1e-12, atol=1e-14
    )


def test_npy_streamed_from_stdin(params, in_tmp):
    xs = np.random.default_rng(5).standard_normal((40, F))
    np.save("xs.npy", xs)
    got = ok("--params", str(params), "--xs", "-", "--chunk-steps", "3",
             input=Path("xs.npy").read_bytes())  # fmt: skip
    np.testing.assert_allclose(
        got["h_next"], run_sequence(load_cell(params), xs).h_next, rtol=1e-12, atol=1e-14
    )


def test_float32(params, in_tmp):
    xs = np.random.default_rng(6).standard_normal((10, 2, F))
    np.save("xs.npy", xs)
    got = ok("--params", str(params), "--xs", "xs.npy", "--dtype", "float32", "--out", "o.npz")
    assert got["dtype"] == "float32"
    with np.load("o.npz") as z:
        assert z["h_seq"].dtype == np.float32 and z["c_next"].dtype == np.float32
    want = run_sequence(load_cell(params), xs)
    np.testing.assert_allclose(got["h_next"], want.h_next, atol=1e-5)


def test_default_cell_is_the_notebooks(in_tmp):
    xs = np.random.default_rng(7).standard_normal((4, 10))
    np.save("xs.npy", xs)
    got = ok("--xs", "xs.npy")
    assert got["sources"]["params"] == "built-in seed-42 cell"
    assert len(got["h_next"]) == 4


def test_pretty_view_shows_every_gate_over_time(params, in_tmp):
    np.save("short.npy", np.random.default_rng(8).standard_normal((30, F)))
    np.save("long.npy", np.random.default_rng(8).standard_normal((3000, 2, F)))
    result = run("--params", str(params), "--xs", "short.npy", "--pretty")
    assert result.exit_code == 0, result.output
    assert "Gates and states over 30 steps" in result.stdout
    for words in ("input gate", "forget gate", "output gate", "candidate", "cell state"):
        assert words in result.stdout
    assert "unit 2" in result.stdout and "the last" not in result.stdout
    result = run("--params", str(params), "--xs", "long.npy", "--pretty")
    assert result.exit_code == 0, result.output
    assert "the last" in result.stdout and "of 3000 steps (t = " in result.stdout
    assert "batch row 0 of 2" in result.stdout
    assert "Over all 3000 steps" in result.stdout and "> 0.99" in result.stdout


def test_the_trace_keeps_the_last_steps_and_exact_statistics():
    """RunTrace against plain NumPy over the whole run, added in uneven chunks."""
    from lstm_cli.render.run import QUANTITIES, RunTrace

    rng = np.random.default_rng(3)
    full = {q: rng.uniform(0, 1, (1000, 3)) for q, _, _ in QUANTITIES}
    trace = RunTrace(1000, 3, 64)
    for a, b in ((0, 7), (7, 500), (500, 999), (999, 1000)):
        trace.add({q: v[a:b] for q, v in full.items()})
    assert trace.seen == 1000 and trace.first_shown == 936
    for q, _, gate in QUANTITIES:
        np.testing.assert_array_equal(trace.tail[q], full[q][-64:])
        np.testing.assert_array_equal(trace.mins[q], full[q].min(axis=0))
        np.testing.assert_allclose(trace.sums[q], full[q].sum(axis=0))
        if gate:
            np.testing.assert_array_equal(trace.open[q], (full[q] > 0.99).sum(axis=0))
            np.testing.assert_array_equal(trace.closed[q], (full[q] < 0.01).sum(axis=0))


def test_no_progress_bar_in_a_pipe(params, in_tmp):
    np.save("xs.npy", np.zeros((30_000, F)))  # long enough for a bar on a terminal
    result = run("--params", str(params), "--xs", "xs.npy", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


# --------------------------------------------------------------------------- refusals


def refused(args, expect: str, code: int = 2, input: str | bytes | None = None) -> None:
    before = sorted(os.listdir("."))
    result = run(*args, "--out", "new.npz", input=input)
    assert result.exit_code == code, result.output
    assert expect in result.stderr, result.stderr
    assert result.stderr.count("\n") <= 2 and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert sorted(os.listdir(".")) == before  # nothing written, no temp file left


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (lambda: np.save("bad.npy", np.zeros((4, 6))), "bad.npy: xs has shape (4, 6), expected"),
        (lambda: np.save("bad.npy", np.zeros(5)), "xs has shape (5,), expected (T, 5)"),
        (lambda: np.save("bad.npy", np.zeros((2, 2, 2, 5))), "xs has shape (2, 2, 2, 5)"),
        (lambda: np.save("bad.npy", np.zeros((0, 5))), "no steps to run"),
        (lambda: np.save("bad.npy", np.zeros((3, 0, 5))), "no steps to run"),
        (lambda: np.save("bad.npy", np.ones((3, 5), bool)), "boolean dtype"),
        (lambda: np.save("bad.npy", np.ones((3, 5), complex)), "complex dtype"),
        (
            lambda: np.save("bad.npy", np.array([[None] * 5], dtype=object), allow_pickle=True),
            "object (pickled) array",
        ),
        (lambda: np.save("bad.npy", np.array([[1, 2, 3, 4, np.nan]])), "nan at index (0, 4)"),
        (
            lambda: np.save("bad.npy", np.r_[np.zeros((9, 5)), [[0, np.inf, 0, 0, 0]]]),
            "inf at index (9, 1)",
        ),
        (lambda: Path("bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage"), "corrupt .npy header"),
        (lambda: save_npz(Path("bad.npy"), {"xs": np.zeros((3, 5))}), "is a .npz archive"),
        (lambda: Path("bad.npy").write_text(""), "empty"),
        (lambda: Path("bad.npy").write_text("[[1, 2], [3]]"), "ragged"),
        (lambda: Path("bad.npy").write_text('{"xs": [[NaN, 1, 2, 3, 4]]}'), "NaN is not allowed"),
        (lambda: Path("bad.npy").write_text('{"x_s": [[1, 2, 3, 4, 5]]}'), "unknown key 'x_s'"),
        (lambda: Path("bad.npy").write_text('{"h": [1, 2, 3]}'), "has no xs"),
        (lambda: Path("bad.npy").write_text('[["1", 2, 3, 4, 5]]'), "holds a string"),
    ],
)
def test_refused_xs(params, in_tmp, make, expect):
    make()
    refused(["--params", str(params), "--xs", "bad.npy"], expect)


def test_truncated_npy_is_refused_before_running(params, in_tmp):
    np.save("xs.npy", np.zeros((100, F)))
    data = Path("xs.npy").read_bytes()
    Path("xs.npy").write_bytes(data[:-8])
    refused(["--params", str(params), "--xs", "xs.npy"], "truncated .npy file")
    refused(["--params", str(params), "--xs", "-"], "truncated .npy data", input=data[:-8])


def test_refused_states_and_options(params, in_tmp):
    np.save("xs.npy", np.zeros((4, 2, F)))
    np.save("xs1.npy", np.zeros((4, F)))
    np.save("h_bad.npy", np.zeros((3, H)))
    np.save("h_batch.npy", np.zeros((2, H)))
    base = ["--params", str(params)]
    refused([*base, "--xs", "xs.npy", "--h", "h_bad.npy"],
            "h_bad.npy: h_prev has shape (3, 3), expected (3,) or (2, 3)")  # fmt: skip
    refused([*base, "--xs", "xs1.npy", "--c", "h_batch.npy"],
            "h_batch.npy: c_prev has shape (2, 3), expected (3,)")  # fmt: skip
    refused([*base, "--xs", "-", "--h", "-"], "only one input can come from stdin", input="[]")
    refused([*base, "--xs", "missing.npy"], "missing.npy: no such file")
    refused([*base, "--xs", "."], "is a directory")
    refused(["--params", "nope.npz", "--xs", "xs.npy"], "nope.npz: no such file")
    Path("big.json").write_text(json.dumps([1e300] * H))  # fine in float64, not in float32
    refused([*base, "--xs", "xs.npy", "--dtype", "float32", "--h", "big.json"],
            "big.json: h_prev holds values too large for float32")  # fmt: skip
    np.save("big_xs.npy", np.full((4, F), 1e300))
    refused([*base, "--xs", "big_xs.npy", "--dtype", "float32"],
            "big_xs.npy: xs holds values too large for float32")  # fmt: skip
    # an empty in-memory stdin stands for nothing handed over (< /dev/null); a real empty
    # pipe says "stdin: empty" (tests/test_process.py::test_empty_pipe_on_stdin_is_refused...)
    refused([*base], "xs is missing", input="")


def test_json_and_pretty_exclude_each_other(params, in_tmp):
    np.save("xs.npy", np.zeros((4, F)))
    result = run("--params", str(params), "--xs", "xs.npy", "--json", "--pretty")
    assert result.exit_code == 2, result.output
    assert "--json and --pretty exclude each other" in result.stderr
    assert result.stdout == ""


def test_gates_need_out(params, in_tmp):
    np.save("xs.npy", np.zeros((4, F)))
    result = run("--params", str(params), "--xs", "xs.npy", "--gates")
    assert result.exit_code == 2, result.output
    assert "--gates" in result.output and "needs --out" in result.output


def test_out_not_overwritten_without_force(params, in_tmp):
    np.save("xs.npy", np.zeros((4, F)))
    Path("o.npz").write_bytes(b"keep me")
    result = run("--params", str(params), "--xs", "xs.npy", "--out", "o.npz")
    assert result.exit_code == 2, result.output
    assert "o.npz: already exists; pass --force" in result.stderr
    assert Path("o.npz").read_bytes() == b"keep me"
    result = run("--params", str(params), "--xs", "xs.npy", "--out", "o.npz", "--force")
    assert result.exit_code == 0, result.output
    with np.load("o.npz") as z:
        assert z["h_seq"].shape == (4, H)
    result = run("--params", str(params), "--xs", "xs.npy", "--out", "no/such/o.npz")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_interrupt_exits_130_and_writes_nothing(params, in_tmp, monkeypatch):
    np.save("xs.npy", np.zeros((50, F)))
    import lstm_cli.sequence as sequence

    calls = {"n": 0}
    real = sequence._run_chunk

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sequence, "_run_chunk", interrupted)
    result = run("--params", str(params), "--xs", "xs.npy", "--chunk-steps", "5", "--out", "o.npz")
    assert result.exit_code == 130, result.output
    assert "Interrupted." in result.stderr and result.stdout == ""
    assert not Path("o.npz").exists()
    assert [p for p in os.listdir(".") if p.startswith(".")] == []


def test_ctrl_c_on_a_real_process(params, in_tmp):
    """SIGINT to a long streamed run: exit 130, one line, no output file."""
    T = 3_000_000  # tens of seconds of stepping: certainly still running after a second
    with open("long.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (T, 1)}
        )
        f.truncate(f.tell() + 8 * T)  # zeros, without holding them in memory
    save_param_set(Path("p1.npz"), init_params(1, 2, seed=0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstm_cli", "run", "--params", "p1.npz", "--xs", "long.npy",
         "--out", "o.npz", "--backend", "numpy"],  # numpy: seconds of stepping
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "Interrupted." and out == ""
    assert not Path("o.npz").exists()
