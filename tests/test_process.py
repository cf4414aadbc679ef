"""The CLI as a real process: killed mid-write, interrupted, piped into `head`, run with
NO_COLOR / TERM=dumb / COLUMNS=20, and given a terminal on stdin."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PARAMS_DIR, ROOT

pytestmark = pytest.mark.slow  # real processes, some killed after a delay
LSTM = [sys.executable, "-m", "lstm_cli"]
# about 216 MB of weights: a second or two of drawing and writing to interrupt
BIG_INIT = ["init", "--n-features", "3000", "--n-hidden", "1500", "--force", "--json"]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def seed_of(path: Path) -> int:
    with np.load(path, allow_pickle=False) as npz:
        _ = npz["Wc"].sum(), npz["bc"].sum()  # every array is complete and readable
        return int(json.loads(str(npz["meta"]))["seed"])


@pytest.mark.parametrize("delay", [0.2, 0.5, 0.8, 1.1, 1.5])
def test_killed_mid_write_leaves_old_or_new_file_never_a_torn_one(tmp_path, delay):
    out = tmp_path / "p.npz"
    subprocess.run(
        [*LSTM, "init", "--seed", "1", "--out", str(out)],
        check=True,
        env=env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    proc = subprocess.Popen(
        [*LSTM, *BIG_INIT, "--seed", "2", "--out", str(out)],
        env=env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert seed_of(out) in (1, 2)  # the old file or the new one, complete
    visible = [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert visible == ["p.npz"]


def test_ctrl_c_exits_130_and_cleans_up(tmp_path):
    out = tmp_path / "p.npz"
    proc = subprocess.Popen(
        [*LSTM, *BIG_INIT, "--seed", "2", "--out", str(out)],
        env=env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.6)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Interrupted." in stderr
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []  # no temp file, no partial output


@pytest.mark.parametrize(
    "command",
    [
        "step --x {tmp}/xs.npy",
        "step --x {tmp}/xs.npy --pretty",
        "step --explain --x {tmp}/xs.npy",
        "run --xs {tmp}/seq.npy",
        "run --xs {tmp}/seq.npy --pretty",
        "grad --x {tmp}/xs.npy --json",
        "grad --check --pretty",
        "convert {params} {tmp}/t.npz --to pytorch --json",
        "check --vectors {tmp}/v --results {tmp}/missing.json",
        "--help",
    ],
)
def test_broken_pipe_exits_quietly(tmp_path, command):
    """stdout closed after 10 bytes (`| head -c 10`): no traceback, no noise, exit 0 or 1."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "xs.npy", rng.standard_normal((20000, 10)))  # megabytes of JSON out
    np.save(tmp_path / "seq.npy", rng.standard_normal((3000, 64, 10)))  # a wide heatmap
    args = command.format(tmp=tmp_path, params=PARAMS_DIR / "seed42.npz")
    cmd = f"{sys.executable} -m lstm_cli {args} | head -c 10"
    proc = subprocess.run(
        ["bash", "-c", "set -o pipefail; " + cmd],
        capture_output=True,
        text=True,
        env=env(COLUMNS="80", PYTHONUNBUFFERED="1"),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    if proc.returncode in (0, 1) and "Error:" not in proc.stderr:
        assert len(proc.stdout) == 10 or proc.stdout == "", proc.stdout
    assert proc.returncode in (0, 1, 2), proc.stderr
    if command in ("step --x {tmp}/xs.npy", "grad --x {tmp}/xs.npy --json"):
        # megabytes of JSON into a closed pipe: noticed (exit 1 under pipefail), not truncated
        # silently, even with PYTHONUNBUFFERED (set here) making stdout a raw file
        assert proc.returncode == 1, proc.stderr


CLI_CASES = [
    (["step"], 0),
    (["step", "--pretty"], 0),
    (["step", "--pretty", "--x", str(PARAMS_DIR / "inputs.json")], 0),
    (["step", "--params", str(PARAMS_DIR / "seed42.npz"), "--x", str(PARAMS_DIR / "x_t.npy")], 0),
    (["init", "--pretty", "--seed", "3", "--out", "{tmp}/p.npz"], 0),
    (["step", "--params", "missing.npz"], 2),
    (["step", "--x", str(PARAMS_DIR / "seed42.npz")], 2),
    (["step", "--bogus"], 2),
    (["run", "--pretty", "--xs", "{tmp}/xs.npy"], 0),
    (["run", "--xs", "{tmp}/xs.npy", "--out", "{tmp}/r.npz", "--gates"], 0),
    (["grad", "--pretty", "--check"], 0),
    (["step", "--explain"], 0),
    (["vectors", "--count", "2", "--out", "{tmp}/vec", "--force", "--pretty"], 0),
    (["check", "nosuchmodule:f"], 2),
    (["run", "--xs", "missing.npy"], 2),
    (["inspect", "--pretty", str(PARAMS_DIR / "seed42.npz")], 0),
    (["inspect", str(PARAMS_DIR / "xs.npy")], 2),
    (["--help"], 0),
    (["step", "--help"], 0),
]


@pytest.mark.parametrize(
    "extra_env",
    [{"NO_COLOR": "1"}, {"TERM": "dumb"}, {"COLUMNS": "20"}, {"COLUMNS": "20", "TERM": "dumb"}],
    ids=["NO_COLOR", "TERM=dumb", "COLUMNS=20", "both"],
)
def test_hostile_terminal_settings(tmp_path, extra_env):
    np.save(tmp_path / "xs.npy", np.random.default_rng(0).standard_normal((50, 2, 10)))
    for args, code in CLI_CASES:
        args = [a.replace("{tmp}", str(tmp_path)) for a in args]
        proc = subprocess.run(
            [*LSTM, *args],
            capture_output=True,
            text=True,
            env=env(**extra_env),
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert proc.returncode == code, (args, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout, args
        assert "\x1b[" not in proc.stdout or "NO_COLOR" not in extra_env, args
        for out in ("p.npz", "r.npz"):
            (tmp_path / out).unlink(missing_ok=True)


def run_with_tty_stdin(args: list[str], timeout: float = 20) -> tuple[int, str]:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [*LSTM, *args],
            stdin=follower,
            capture_output=True,
            text=True,
            env=env(),
            timeout=timeout,
        )
    finally:
        os.close(follower)
        os.close(leader)
    return proc.returncode, proc.stderr


def test_terminal_on_stdin_when_input_is_needed_exits_at_once():
    start = time.monotonic()
    code, stderr = run_with_tty_stdin(["step", "--x", "-"])
    assert code == 2
    assert "stdin: is a terminal" in stderr
    assert time.monotonic() - start < 15  # did not wait for typing


def test_terminal_on_stdin_is_not_read_when_not_needed():
    code, stderr = run_with_tty_stdin(["step", "--json"])
    assert code == 0, stderr


@pytest.mark.parametrize("command", [["step"], ["grad"], ["run"]])
def test_empty_pipe_on_stdin_is_refused_not_the_example(tmp_path, command):
    """`printf '' | lstm-cell step`: a broken upstream script must not get numbers back."""
    proc = subprocess.run(
        [*LSTM, *command, "--json"], input=b"", capture_output=True, env=env(), cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == b""
    assert b"stdin: empty" in proc.stderr and proc.stderr.count(b"\n") == 1


def test_nothing_on_stdin_still_uses_the_example(tmp_path):
    proc = subprocess.run(
        [*LSTM, "step", "--json"], stdin=subprocess.DEVNULL, capture_output=True, env=env()
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sources"]["x_t"].startswith("example")
