"""Every kind of file a shell can hand over, in real processes: regular files, folders, FIFOs,
process substitution (``<(cat f)``), ``/dev/stdin`` on a pipe, device nodes, dangling symbolic
links, unreadable files; for reading (--params, --x/--h/--c, --xs, --dh-next, convert's IN) and
for writing (--out of init/step/run/grad, convert's OUT, vectors --out).

Device nodes are scratch nodes made with os.mknod in tmp_path (root only); the system's /dev
is never touched, and a block device node is never opened.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from tests.conftest import NOTEBOOK_H_NEXT, PARAMS_DIR

pytestmark = pytest.mark.slow

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="os.mknod of a device node needs root")
LSTM = f"{shlex.quote(sys.executable)} -m lstm_cli"
XS = PARAMS_DIR / "xs.npy"
runner = CliRunner()


def cli(*args: str | Path, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstm_cli", *map(str, args)],
        cwd=cwd, input=stdin, capture_output=True, timeout=60,
    )  # fmt: skip


def sh(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """``script`` in bash, with $LSTM the command line of this environment's lstm-cell."""
    env = {**os.environ, "LSTM": LSTM}
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, timeout=60)


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, r.stderr.decode()
    assert b"Traceback" not in r.stderr
    return r


def refused(r: subprocess.CompletedProcess, message: str, code: int = 2) -> None:
    err = r.stderr.decode()
    assert r.returncode == code, (r.returncode, err)
    assert message in err, err
    assert "Traceback" not in err
    assert r.stdout == b""


def h_next(r: subprocess.CompletedProcess) -> np.ndarray:
    return np.array(json.loads(ok(r).stdout)["h_next"])


def npz_keys(data: bytes) -> list[str]:
    with np.load(io.BytesIO(data)) as z:
        return sorted(z.files)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """p.npz (init --seed 42), x.json, h.npy, c.npy, xs.json, and two scripts making xs."""
    w = tmp_path_factory.mktemp("work")
    ok(cli("init", "--seed", "42", "--out", "p.npz", "--json", cwd=w))
    with np.load(w / "p.npz") as z:
        (w / "x.json").write_text(json.dumps(z["x_t"].tolist()))
        np.save(w / "h.npy", z["h_prev"])
        np.save(w / "c.npy", z["c_prev"])
    xs = np.load(XS)[:5]
    np.save(w / "xs5.npy", xs)
    (w / "xs.json").write_text(json.dumps(xs.tolist()))
    (w / "make_xs.py").write_text(f"import json\nprint(json.dumps({xs.tolist()!r}))\n")
    (w / "make_xs_npy.py").write_text(
        "import io, sys\nimport numpy as np\n"
        f"buf = io.BytesIO(); np.save(buf, np.array({xs.tolist()!r}))\n"
        "sys.stdout.buffer.write(buf.getvalue())\n"
    )
    return w


@pytest.fixture(scope="module")
def expected(work) -> dict[str, np.ndarray]:
    """The answers from regular files, which every other kind of file must reproduce."""
    return {
        "step": h_next(cli("step", "--params", "p.npz", "--json", cwd=work)),
        "run": h_next(cli("run", "--xs", "xs5.npy", "--json", cwd=work)),
        "step-xhc": h_next(
            cli("step", "--x", "x.json", "--h", "h.npy", "--c", "c.npy", "--json", cwd=work)
        ),
    }


# ---------------------------------------------------------------- reading: the headline cases


def test_step_params_from_process_substitution(work):
    got = h_next(sh("$LSTM step --params <(cat p.npz) --json", work))
    assert got[0] == pytest.approx(-0.24236866)
    np.testing.assert_allclose(got, NOTEBOOK_H_NEXT, atol=1e-8)


@pytest.mark.parametrize("script", ["make_xs.py", "make_xs_npy.py"])
def test_run_xs_from_process_substitution_of_a_script(work, expected, script):
    got = h_next(sh(f"$LSTM run --xs <({shlex.quote(sys.executable)} {script}) --json", work))
    np.testing.assert_allclose(got, expected["run"], atol=1e-12)


def test_run_xs_npy_from_dev_stdin(work, expected):
    got = h_next(sh("cat xs5.npy | $LSTM run --xs /dev/stdin --json", work))
    np.testing.assert_allclose(got, expected["run"], atol=1e-12)


def test_step_out_dash_pipes_the_npz(work):
    r = ok(sh(
        "$LSTM step --out - | " + shlex.quote(sys.executable) + " -c "
        + shlex.quote(
            "import io, sys, numpy as np; z = np.load(io.BytesIO(sys.stdin.buffer.read())); "
            "print(repr(z['h_next'][0]), sorted(z.files) == sorted(set(z.files)))"
        ),
        work,
    ))  # fmt: skip
    value, _ = r.stdout.decode().split()
    assert float(value.removeprefix("np.float64(").rstrip(")")) == pytest.approx(-0.24236866)


def test_out_dash_writes_only_the_file_and_no_json(work):
    for args in (
        ["step", "--out", "-"], ["run", "--xs", "xs5.npy", "--out", "-"], ["grad", "--out", "-"],
        ["init", "--seed", "1", "--out", "-"], ["convert", "p.npz", "-", "--to", "pytorch"],
    ):  # fmt: skip
        r = ok(cli(*args, "--json", cwd=work))
        assert r.stdout.startswith(b"PK\x03\x04"), args
        assert npz_keys(r.stdout), args  # the whole archive, no JSON after it
        assert not r.stdout.rstrip().endswith(b"}"), args


def test_out_dash_refused_on_a_terminal(work):
    import pty

    leader, follower = pty.openpty()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "lstm_cli", "step", "--out", "-"],
            cwd=work, stdout=follower, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
    finally:
        os.close(follower)
        os.close(leader)
    assert r.returncode == 2
    assert b"stdout is a terminal" in r.stderr
    assert b"Traceback" not in r.stderr


# ---------------------------------------------------------------- reading: every option, pipes


def fifo_fed(path: Path, data: bytes) -> threading.Thread:
    """A FIFO at ``path`` whose writer (a thread) hands over ``data`` once a reader opens it."""
    os.mkfifo(path)

    def feed() -> None:
        with open(path, "wb") as f:
            f.write(data)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return t


def test_fifo_inputs(work, expected, tmp_path):
    cases = [
        (["step", "--params", "{f}", "--json"], "p.npz", "step"),
        (["step", "--x", "{f}", "--h", "h.npy", "--c", "c.npy", "--json"], "x.json", "step-xhc"),
        (["step", "--x", "x.json", "--h", "{f}", "--c", "c.npy", "--json"], "h.npy", "step-xhc"),
        (["step", "--x", "x.json", "--h", "h.npy", "--c", "{f}", "--json"], "c.npy", "step-xhc"),
        (["run", "--xs", "{f}", "--json"], "xs5.npy", "run"),
        (["run", "--xs", "{f}", "--json"], "xs.json", "run"),
    ]
    for k, (args, source, answer) in enumerate(cases):
        fifo = tmp_path / f"fifo{k}"
        feeder = fifo_fed(fifo, (work / source).read_bytes())
        got = h_next(cli(*[a.replace("{f}", str(fifo)) for a in args], cwd=work))
        feeder.join(5)
        np.testing.assert_allclose(got, expected[answer], atol=1e-12, err_msg=str(args))
        assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_process_substitution_and_dev_stdin_for_every_input(work, expected):
    cases = [
        ("$LSTM step --x <(cat x.json) --h <(cat h.npy) --c <(cat c.npy) --json", "step-xhc"),
        ("cat h.npy | $LSTM step --x x.json --h /dev/stdin --c c.npy --json", "step-xhc"),
        ("cat p.npz | $LSTM step --params /dev/stdin --json", "step"),
        ("$LSTM run --xs <(cat xs.json) --json", "run"),
        ("cat xs.json | $LSTM run --xs /dev/stdin --json", "run"),
    ]
    for script, answer in cases:
        np.testing.assert_allclose(
            h_next(sh(script, work)), expected[answer], atol=1e-12, err_msg=script
        )


def test_grad_and_convert_read_pipes(work, tmp_path):
    plain = json.loads(ok(cli("grad", "--dh-next", "h.npy", "--json", cwd=work)).stdout)
    for script in (
        "$LSTM grad --dh-next <(cat h.npy) --json",
        "cat h.npy | $LSTM grad --x x.json --h h.npy --c c.npy --dh-next /dev/stdin --json",
    ):
        got = json.loads(ok(sh(script, work)).stdout)
        if "--x" in script:
            continue  # other inputs than the example: only that it reads
        assert got["grads"] == plain["grads"], script
    ok(sh(f"$LSTM convert <(cat p.npz) {tmp_path}/pt.npz --to pytorch --json", work))
    ok(cli("convert", "p.npz", tmp_path / "pt2.npz", "--to", "pytorch", "--json", cwd=work))
    assert npz_keys((tmp_path / "pt.npz").read_bytes()) == npz_keys(
        (tmp_path / "pt2.npz").read_bytes()
    )


# ---------------------------------------------------------------- reading: refusals

READERS = [
    ["step", "--params", "{p}"],
    ["step", "--x", "{p}"],
    ["step", "--x", "x.json", "--h", "{p}"],
    ["run", "--xs", "{p}"],
    ["run", "--xs", "xs5.npy", "--c", "{p}"],
    ["grad", "--dh-next", "{p}"],
    ["grad", "--xs", "{p}"],
    ["convert", "{p}", "out.npz", "--to", "native"],
]


def refuse_every_reader(work: Path, path: Path, message: str) -> None:
    before = sorted(os.listdir(work))
    for args in READERS:
        r = cli(*[a.replace("{p}", str(path)) for a in args], cwd=work)
        refused(r, message)
    assert sorted(os.listdir(work)) == before  # nothing written


def test_reading_a_directory_is_refused(work, tmp_path):
    refuse_every_reader(work, tmp_path, "is a directory, expected a file")


def test_reading_a_dangling_symlink_is_refused(work, tmp_path):
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere.npz")
    refuse_every_reader(work, link, f"a symbolic link to {tmp_path / 'nowhere.npz'}, which does")


@needs_root
def test_reading_a_block_device_is_refused(work, tmp_path):
    node = tmp_path / "loop"
    os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    refuse_every_reader(work, node, "is a block device, not a file to read")
    assert stat.S_ISBLK(node.stat().st_mode)


@needs_root
def test_reading_a_char_device_is_empty_input(work, tmp_path):
    """A scratch /dev/null-like node reads as empty: refused as empty, never hangs."""
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    refused(cli("step", "--x", node, cwd=work), "empty, expected x_t")
    refused(cli("step", "--params", node, cwd=work), "not a params file")


# Unreadable files: tests run as root here, and root reads a chmod 000 file; the refusal is
# proven by making the operating system's answer a PermissionError, once at stat and once at
# open, for each way a path is read (array, sequence, params).
UNREADABLE_CASES = [
    ["step", "--x", "{p}"],
    ["run", "--xs", "{p}"],
    ["step", "--params", "{p}"],
    ["grad", "--dh-next", "{p}"],
    ["convert", "{p}", "out.npz", "--to", "native"],
]


@pytest.mark.parametrize("where", ["stat", "open"])
@pytest.mark.parametrize("args", UNREADABLE_CASES, ids=lambda a: "-".join(a[:2]))
def test_reading_an_unreadable_file_is_refused(work, tmp_path, monkeypatch, where, args):
    import builtins

    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "secret.npy"
    source = work / ("p.npz" if "--params" in args or "convert" in args else "h.npy")
    if args[:2] == ["step", "--x"]:
        source = work / "x.json"
    if args[:2] == ["run", "--xs"]:
        source = work / "xs5.npy"
    secret.write_bytes(source.read_bytes())
    secret.chmod(0)
    real_stat, real_open = Path.stat, builtins.open

    def denied_stat(self, *a, **k):
        if self.name == secret.name:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *a, **k)

    def denied_open(file, *a, **k):
        if str(file).endswith(secret.name):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)

    if where == "stat":
        monkeypatch.setattr(Path, "stat", denied_stat)
    else:
        monkeypatch.setattr(builtins, "open", denied_open)
    result = runner.invoke(app, [a.replace("{p}", str(secret)) for a in args])
    assert result.exit_code == 2, result.output
    assert "permission denied" in result.stderr.lower(), result.stderr
    assert "internal error" not in result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.npy"]


# ---------------------------------------------------------------- writing

WRITERS = [
    ["init", "--seed", "3", "--out", "{o}"],
    ["step", "--out", "{o}"],
    ["run", "--xs", str(XS), "--out", "{o}"],
    ["grad", "--out", "{o}"],
    ["convert", str(PARAMS_DIR / "seed42.npz"), "{o}", "--to", "pytorch"],
]
WRITER_IDS = [w[0] for w in WRITERS]


def write(args: list[str], out: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli(*[a.replace("{o}", str(out)) for a in args], "--json", *extra, cwd=cwd)


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@needs_root
@pytest.mark.parametrize("force", [False, True])
def test_writing_to_a_char_device_writes_through(tmp_path, force):
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    inode = node.stat().st_ino
    for args in WRITERS:
        ok(write(args, node, tmp_path, *(["--force"] if force else [])))
        st = node.stat()
        assert stat.S_ISCHR(st.st_mode) and st.st_ino == inode, args
        assert st.st_rdev == os.makedev(1, 3)
        assert listing(tmp_path) == ["null"], args  # no temporary file left beside it


@needs_root
def test_run_out_char_device_force_headline(tmp_path):
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    inode = node.stat().st_ino
    r = ok(cli("run", "--xs", XS, "--out", node, "--force", "--json", cwd=tmp_path))
    assert json.loads(r.stdout)["out"] == str(node)
    assert stat.S_ISCHR(node.stat().st_mode) and node.stat().st_ino == inode


def test_writing_to_dev_null(tmp_path):
    """The real /dev/null, only written to (as `> /dev/null` does): it stays a device."""
    for args in WRITERS:
        ok(write(args, Path(os.devnull), tmp_path))
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("args", WRITERS, ids=WRITER_IDS)
def test_writing_to_a_fifo_writes_through(tmp_path, args):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    inode = fifo.stat().st_ino
    received: list[bytes] = []

    def drain() -> None:
        with open(fifo, "rb") as f:
            received.append(f.read())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    ok(write(args, fifo, tmp_path))
    reader.join(10)
    assert not reader.is_alive()
    assert received and npz_keys(received[0]), args
    assert stat.S_ISFIFO(fifo.stat().st_mode) and fifo.stat().st_ino == inode
    assert listing(tmp_path) == ["fifo"]


def test_writing_to_a_fifo_through_a_background_cat(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = ok(sh(f"cat {fifo} > got.npz & $LSTM init --seed 42 --out {fifo} --force --json; wait",
              tmp_path))  # fmt: skip
    assert json.loads(r.stdout)["path"] == str(fifo)
    assert "Wf" in npz_keys((tmp_path / "got.npz").read_bytes())
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def refuse_every_writer(tmp_path: Path, out: Path, message: str) -> None:
    before = listing(tmp_path)
    for args in WRITERS:
        for extra in ([], ["--force"]):
            refused(write(args, out, tmp_path, *extra), message)
    assert listing(tmp_path) == before


def test_writing_to_a_directory_is_refused(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    inode = folder.stat().st_ino
    refuse_every_writer(tmp_path, folder, "is a directory; give a file path to write")
    assert folder.is_dir() and folder.stat().st_ino == inode and listing(folder) == []


@needs_root
def test_writing_to_a_block_device_is_refused(tmp_path):
    node = tmp_path / "loop"
    os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    refuse_every_writer(tmp_path, node, "is a block device; refusing to write to it")
    assert stat.S_ISBLK(node.stat().st_mode) and node.stat().st_rdev == os.makedev(7, 0)


def test_writing_to_a_socket_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short relative name: sockets' paths are short
    with socket.socket(socket.AF_UNIX) as s:
        s.bind("sock")
        refuse_every_writer(tmp_path, Path("sock"), "is a socket; refusing to write to it")
        assert stat.S_ISSOCK((tmp_path / "sock").stat().st_mode)


def test_writing_to_a_regular_file_needs_force_and_is_atomic(tmp_path):
    out = tmp_path / "out.npz"
    for args in WRITERS:
        out.write_bytes(b"old")
        refused(write(args, out, tmp_path), "already exists; pass --force")
        assert out.read_bytes() == b"old"
        inode = out.stat().st_ino
        ok(write(args, out, tmp_path, "--force"))
        assert npz_keys(out.read_bytes()), args
        assert out.stat().st_ino != inode  # replaced by a rename, not written in place
        assert listing(tmp_path) == ["out.npz"]


def test_writing_through_a_symlink_follows_it(tmp_path):
    target = tmp_path / "real.npz"
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    for args in WRITERS:  # a dangling link: its target is created
        target.unlink(missing_ok=True)
        ok(write(args, link, tmp_path))
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert npz_keys(target.read_bytes()), args
        assert listing(tmp_path) == ["link.npz", "real.npz"]
        refused(write(args, link, tmp_path), "already exists; pass --force")
        ok(write(args, link, tmp_path, "--force"))  # the file it points to is replaced
        assert link.is_symlink() and npz_keys(target.read_bytes())


def test_vectors_out_refuses_everything_but_a_folder(tmp_path):
    (tmp_path / "file").write_bytes(b"keep")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")  # refused from its stat, never opened: cannot block
    kinds = ["file", "dangling", "fifo"]
    if IS_ROOT:
        os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.mknod(tmp_path / "loop", stat.S_IFBLK | 0o600, os.makedev(7, 0))
        kinds += ["null", "loop"]
    before = listing(tmp_path)
    for kind in kinds:
        r = cli("vectors", "--count", "1", "--out", tmp_path / kind, "--json", cwd=tmp_path)
        refused(r, "a symbolic link to" if kind == "dangling" else "exists and is not a folder")
    assert listing(tmp_path) == before
    assert (tmp_path / "file").read_bytes() == b"keep"
    assert stat.S_ISFIFO((tmp_path / "fifo").stat().st_mode)


# ---------------------------------------------------------------- the last-resort handler


def test_unexpected_error_is_one_line_not_a_traceback(monkeypatch):
    from lstm_cli.params import LSTMParams

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(LSTMParams, "step", boom)
    monkeypatch.delenv("LSTM_CELL_DEBUG", raising=False)
    result = runner.invoke(app, ["step", "--json"])
    assert result.exit_code == 1
    assert "internal error: RuntimeError: boom" in result.output
    assert "LSTM_CELL_DEBUG=1" in result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""

    monkeypatch.setenv("LSTM_CELL_DEBUG", "1")
    result = runner.invoke(app, ["step", "--json"])
    assert isinstance(result.exception, RuntimeError)
    assert str(result.exception) == "boom"


@pytest.mark.parametrize("debug", [False, True])
def test_unexpected_error_in_a_real_process(tmp_path, debug):
    code = (
        "import sys\nfrom lstm_cli.params import LSTMParams\n"
        "def boom(*a, **k):\n    raise RuntimeError('boom')\n"
        "LSTMParams.step = boom\nfrom lstm_cli.cli import main\nmain()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LSTM_CELL_DEBUG"}
    if debug:
        env["LSTM_CELL_DEBUG"] = "1"
    r = subprocess.run(
        [sys.executable, "-c", code, "step", "--json"],
        cwd=tmp_path, env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    err = r.stderr.decode()
    assert r.returncode == 1, err
    if debug:
        assert "Traceback" in err and "RuntimeError: boom" in err
    else:
        assert err.startswith("internal error: RuntimeError: boom\n"), err
        assert "Traceback" not in err
    assert r.stdout == b""
