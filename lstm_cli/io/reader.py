"""The one reader of inputs: a path or ``-`` (stdin) to bytes under one size limit, and bytes
(.npy or JSON) to one validated array.

Every command reads its arrays through :func:`read_array` (or :func:`read_source` for the
raw bytes), so one limit (``max_bytes``, the CLI's ``--max-input-mb``) applies everywhere.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError

from . import safeload
from .arrays import as_float_array
from .jsonio import inputs_from_json_object, json_to_array, parse_json

NPY_MAGIC = safeload.NPY_MAGIC
ZIP_MAGIC = b"PK\x03\x04"
STDIN = "-"
DEFAULT_MAX_INPUT_BYTES = safeload.DEFAULT_MAX_BYTES


def stdin_is_piped() -> bool:
    """True when stdin is a pipe or a file (something to read), not a terminal or /dev/null."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return False
    try:
        if stdin.isatty():
            return False
        mode = os.fstat(stdin.fileno()).st_mode
    except (OSError, ValueError, io.UnsupportedOperation):
        return _in_memory_has_data(stdin)  # tests, embedding: empty counts as /dev/null
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def _in_memory_has_data(stdin: object) -> bool:
    """True when an in-memory stdin has bytes left to read (it is peeked, not consumed).

    An empty one stands for a process given nothing, like ``< /dev/null``; an empty *pipe*
    of a real process is still read (and refused where stdin is the only input).
    """
    buf = getattr(stdin, "buffer", None)
    try:
        if buf is None or not buf.seekable():
            return True
        pos = buf.tell()
        has_data = bool(buf.read(1))
        buf.seek(pos)
    except (OSError, ValueError):
        return True
    return has_data


def read_stdin(limit: int = DEFAULT_MAX_INPUT_BYTES) -> bytes:
    """All of stdin, refusing a terminal (it would block) and more than ``limit`` bytes."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise InputError("stdin: closed, nothing to read")
    if stdin.isatty():
        raise InputError("stdin: is a terminal; pipe JSON or .npy data in, or pass a file")
    data = stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"stdin: more than {safeload.mib(limit)}, over the input limit",
            Hint.RAISE_INPUT_LIMIT,
        )
    return data


def check_readable(path: Path, max_bytes: int | None = None) -> None:
    """Refuse a missing path, a folder, or a file larger than ``max_bytes``, before reading."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            target = os.readlink(path)
            raise InputError(f"{path}: a symbolic link to {target}, which does not exist") from None
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a directory, expected a file")
    if stat.S_ISBLK(st.st_mode):
        raise InputError(f"{path}: is a block device, not a file to read")
    if max_bytes is not None and stat.S_ISREG(st.st_mode) and st.st_size > max_bytes:
        raise InputError(
            f"{path}: {safeload.mib(st.st_size)}, over the {safeload.mib(max_bytes)} input limit",
            Hint.RAISE_INPUT_LIMIT,
        )


def is_regular_file(path: Path) -> bool:
    """True for a regular file (seekable, with a size); False for a pipe, a FIFO, a process
    substitution (``/dev/fd/63``), ``/dev/stdin`` on a pipe or a character device."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def read_file(path: Path, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> bytes:
    check_readable(path, max_bytes)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(data) > max_bytes:  # a device or a file that grew: never read it all
        raise InputError(
            f"{path}: over the {safeload.mib(max_bytes)} input limit",
            Hint.RAISE_INPUT_LIMIT,
        )
    return data


def _npy_from_bytes(
    data: bytes, name: str, source: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> Array:
    arr = safeload.read_npy_bytes(data, name, source, max_bytes)
    return as_float_array(arr, name, source)


def array_from_bytes(
    data: bytes, name: str, source: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> Array:
    """One array from the bytes of a .npy file or of JSON (a list, or an object holding it)."""
    if data.startswith(NPY_MAGIC):
        return _npy_from_bytes(data, name, source, max_bytes)
    if data.startswith(ZIP_MAGIC):
        raise InputError(f"{source}: is a .npz archive; {name} takes a .npy or .json file")
    if not data.strip():
        raise InputError(f"{source}: empty, expected {name} as .npy or JSON")
    obj = parse_json(data, source)
    if isinstance(obj, dict):
        arrays = inputs_from_json_object(obj, source)
        if name not in arrays:
            raise InputError(f"{source}: the JSON object has no {name}")
        return arrays[name]
    return json_to_array(obj, name, source)


def load_array(path: Path, name: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> Array:
    """Read ``name`` from a .npy or .json file."""
    return array_from_bytes(read_file(path, max_bytes), name, str(path), max_bytes)


def read_source(spec: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> tuple[bytes, str]:
    """The bytes behind ``spec`` (a path, or ``-`` for stdin) and its label for messages."""
    if spec == STDIN:
        return read_stdin(max_bytes), "stdin"
    return read_file(Path(spec), max_bytes), spec


def read_array(spec: str, name: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> Array:
    """Array ``name`` from ``spec`` (a .npy or JSON path, or ``-``), under ``max_bytes``."""
    data, source = read_source(spec, max_bytes)
    return array_from_bytes(data, name, source, max_bytes)
