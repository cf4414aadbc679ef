"""Writing files atomically: a temporary file in the same folder, flushed and fsynced, then
renamed into place; never clobbering without ``force``; nothing partial left on failure."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError, LstmCellError, OutputError

STDOUT = "-"


def is_stdout(path: Path | str) -> bool:
    """True for ``-``: the result's bytes go to stdout."""
    return str(path) == STDOUT


def _target(path: Path) -> Path:
    """Where a write lands: a symbolic link is followed to the file it names (the link stays,
    the file it points to is written, or created if missing)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _kind(path: Path) -> str:
    """``missing``, ``regular``, ``directory``, ``device`` (character), ``fifo``, ``block``,
    ``socket``: what stands at ``path`` (symbolic links followed)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
    kinds = (
        (stat.S_ISREG, "regular"), (stat.S_ISDIR, "directory"), (stat.S_ISCHR, "device"),
        (stat.S_ISFIFO, "fifo"), (stat.S_ISBLK, "block"),
    )  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "socket")


def check_writable(path: Path, force: bool = False) -> None:
    """Refuse a path that cannot be written before any work is spent on what goes in it.

    A regular file is replaced only with ``force``; a character device (``/dev/null``) or a
    FIFO is written through, never replaced; a folder, a block device or a socket is refused;
    a missing file needs its folder. ``-`` is stdout, refused when it is a terminal.
    """
    if is_stdout(path):
        if sys.stdout.isatty():
            raise InputError("-: stdout is a terminal; redirect it to a file or a pipe")
        return
    target = _target(path)
    kind = _kind(target)
    if kind == "directory":
        raise InputError(f"{path}: is a directory; give a file path to write")
    if kind in ("block", "socket"):
        what = "a block device" if kind == "block" else "a socket"
        raise InputError(f"{path}: is {what}; refusing to write to it")
    if kind == "regular" and not force:
        raise InputError(f"{path}: already exists", Hint.FORCE)
    if kind == "missing" and not target.parent.is_dir():
        raise InputError(f"{path}: folder {target.parent} does not exist")


def atomic_write(
    path: Path, write: Callable[[IO[bytes]], None], force: bool = False, buffered: bool = True
) -> None:
    """Write ``path`` safely. A file: atomically (temp file in the same folder, fsync, then
    renamed into place), never clobbering without ``force``, nothing partial left on failure.
    A character device or a FIFO: written through (what ``> /dev/null`` means), never
    replaced. ``-``: stdout. See :func:`check_writable` for what is refused.

    Written through, the bytes are made in memory first (``buffered``), unless ``write``
    never seeks: with ``buffered=False`` it gets a stream that cannot seek or tell (zipfile
    then writes data descriptors), and its bytes go out as they come, in flat memory.
    """
    path = Path(path)
    check_writable(path, force)
    if is_stdout(path):
        return _write_through(path, write, sys.stdout.buffer, buffered)
    target = _target(path)
    if _kind(target) in ("device", "fifo"):
        return _write_through(path, write, None, buffered)
    try:
        import tempfile  # here, not at start-up: only writing commands need it

        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # the permissions a plain open() would give
        with os.fdopen(fd, "wb") as f:
            write(f)
            sync_file(f)
        _place(tmp, target, force)
    except LstmCellError:
        raise
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_folder(target.parent)


def _write_through(
    path: Path,
    write: Callable[[IO[bytes]], None],
    stream: IO[bytes] | None = None,
    buffered: bool = True,
) -> None:
    """Write into what is already there (a device, a FIFO, stdout): no temporary file, no
    rename. The bytes are made in memory first, so a writer that seeks (zipfile) never sees a
    device; unless not ``buffered``: then ``write`` gets an :class:`_Unseekable` stream. A
    reader that went away is an error like any other failed write."""
    import io

    if not buffered:
        return _write_unbuffered(path, write, stream)
    buffer = io.BytesIO()  # zipfile trusts tell() and seek(): /dev/null answers 0 to both
    write(buffer)
    try:
        if stream is not None:
            stream.write(buffer.getvalue())
            stream.flush()
            return
        with open(path, "wb") as f:  # a FIFO blocks here until its reader opens it
            f.write(buffer.getvalue())
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None


class _Unseekable:
    """A stream that only writes (no seek, no tell): a writer such as zipfile then writes
    straight through instead of coming back to patch what it wrote."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f

    def write(self, data: Any) -> int:
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


def _write_unbuffered(
    path: Path, write: Callable[[IO[bytes]], None], stream: IO[bytes] | None
) -> None:
    """``write`` into stdout, a device or a FIFO as it produces bytes."""
    try:
        if stream is not None:
            write(_Unseekable(stream))  # type: ignore[arg-type]
            stream.flush()
            return
        with open(path, "wb") as f:  # a FIFO blocks here until its reader opens it
            write(_Unseekable(f))  # type: ignore[arg-type]
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None


def sync_file(f: IO[bytes]) -> None:
    """Flush ``f`` and fsync it: its bytes are on disk before it is renamed into place."""
    f.flush()
    os.fsync(f.fileno())


def _place(tmp: str, path: Path, force: bool) -> None:
    """Move the finished temporary file to ``path``; without ``force``, never over a file."""
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile: never clobber
    except FileExistsError:
        raise InputError(f"{path}: already exists", Hint.FORCE) from None
    except OSError:  # no hard links on this filesystem
        if path.exists():
            raise InputError(f"{path}: already exists", Hint.FORCE) from None
        os.replace(tmp, path)


def _fsync_folder(folder: Path) -> None:
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # some filesystems cannot fsync a folder; the rename itself is done


def save_npz(path: Path, arrays: Mapping[str, Array], force: bool = False) -> None:
    """Save arrays as an uncompressed .npz at exactly ``path`` (no .npz appended)."""

    def write(f: IO[bytes]) -> None:
        np.savez(f, **dict(arrays))  # type: ignore[arg-type]

    atomic_write(path, write, force)


def write_bytes(path: Path, data: bytes, force: bool = False) -> None:
    """``data`` written atomically at exactly ``path``."""

    def write(f: IO[bytes]) -> None:
        f.write(data)

    atomic_write(path, write, force)


ARRAY_SUFFIXES = (".npz", ".json", ".safetensors")  # where result arrays can go
PARAM_SUFFIXES = (".npz", ".safetensors")  # where weights can go
FOREIGN_SUFFIXES = {".pt": "PyTorch", ".pth": "PyTorch", ".h5": "Keras", ".keras": "Keras"}


def output_suffix(path: Path | str, allowed: tuple[str, ...] = ARRAY_SUFFIXES) -> str:
    """The format an output path asks for, by its extension: one of ``allowed``; ``-``
    (stdout) and a name without an extension (a device, a FIFO) are .npz. Any other
    extension is refused, so that a file never holds a format its name denies; called before
    any work."""
    if is_stdout(path):
        return ".npz"
    suffix = Path(path).suffix.lower()
    if suffix == "":
        return ".npz"
    if suffix in allowed:
        return suffix
    known = ", ".join(allowed)
    framework = FOREIGN_SUFFIXES.get(suffix)
    what = (
        f"writing {framework}'s {suffix} files is not supported"
        if framework
        else (f"unknown output format {suffix!r}")
    )
    raise InputError(f"{path}: {what}; write one of {known}")
