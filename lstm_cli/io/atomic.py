"""Writing files atomically: a temporary file in the same folder, flushed and fsynced, then
renamed into place; never clobbering without ``force``; nothing partial left on failure."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError, LstmCellError, OutputError


def check_writable(path: Path, force: bool = False) -> None:
    """Refuse a path that cannot be written (a folder, an existing file without ``force``, a
    missing parent folder) before any work is spent on what goes in it."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file path to write")
    if path.exists() and not force:
        raise InputError(f"{path}: already exists", Hint.FORCE)
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist")


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], force: bool = False) -> None:
    """Write ``path`` atomically: temp file in the same folder, fsync, then rename into place.

    Without ``force`` an existing file is never replaced (checked again at the final,
    atomic step with a hard link). On any failure no partial file is left behind.
    """
    path = Path(path)
    check_writable(path, force)
    try:
        import tempfile  # here, not at start-up: only writing commands need it

        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # the permissions a plain open() would give
        with os.fdopen(fd, "wb") as f:
            write(f)
            sync_file(f)
        _place(tmp, path, force)
    except LstmCellError:
        raise
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_folder(path.parent)


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
