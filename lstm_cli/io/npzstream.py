"""A .npz of long arrays written as they are computed, in memory flat in their length.

The arrays' shapes are known in advance (``T`` steps of ``([B,] H)``); each arrives in chunks
along its first axis. Every chunk goes straight to a spill file (unnamed, in the output's
folder), so nothing grows in memory. :meth:`SpilledNpz.save` then streams each spill file
into one member of an uncompressed .npz (``zipfile``, ZIP64 when large), written atomically
through :func:`~lstm_cli.io.atomic.atomic_write`: a temporary file renamed into place, or
written through to a character device, a FIFO or stdout (as a zip with data descriptors,
which needs no seeking). The .npz is what ``np.savez`` writes, member for member.

A member can be saved with its first two axes swapped, ``(T, B, H) -> (B, T, H)`` (a
batch-first result): each row ``b`` is gathered from the spill file in blocks of steps, so
memory stays flat; the spill file is read once per row.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import OutputError

from .atomic import atomic_write, is_stdout

BLOCK_BYTES = 4 << 20  # copied from a spill file into the .npz this many bytes at a time


class SpilledNpz:
    """Arrays of known shape filled chunk by chunk along axis 0, saved as one .npz.

    Args:
        shapes: name -> shape ``(T, ...)`` of each long array, in the order of the .npz.
        dtype: their dtype.
        out: where the .npz will go (its folder holds the spill files; the system's
            temporary folder for ``-``, a device or a FIFO).
        swap: names saved with their first two axes swapped (``(T, B, H) -> (B, T, H)``).
    """

    def __init__(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        dtype: Any,
        out: Path,
        swap: frozenset[str] = frozenset(),
    ) -> None:
        import tempfile

        self.shapes = dict(shapes)
        self.dtype = np.dtype(dtype)
        self.swap = swap
        self.small: dict[str, Array] = {}
        self.filled = dict.fromkeys(self.shapes, 0)
        folder = None if is_stdout(out) else _spill_folder(Path(out))
        self.files: dict[str, IO[bytes]] = {}
        try:
            for name in self.shapes:
                spill = tempfile.TemporaryFile(dir=folder, prefix=".spill-")  # noqa: SIM115
                self.files[name] = spill  # owned until close()
        except OSError as e:
            self.close()
            raise OutputError(f"{out}: cannot write: {e.strerror or e}") from None

    def append(self, name: str, chunk: Array) -> None:
        """The next rows ``(n, ...)`` of array ``name``."""
        rows = np.ascontiguousarray(chunk, dtype=self.dtype)
        if rows.shape[1:] != self.shapes[name][1:]:
            raise ValueError(f"{name}: chunk {rows.shape} does not fit {self.shapes[name]}")
        if self.filled[name] + rows.shape[0] > self.shapes[name][0]:
            raise ValueError(f"{name}: more than {self.shapes[name][0]} rows")
        try:
            self.files[name].write(rows.data)
        except OSError as e:
            raise OutputError(f"cannot write {name}: {e.strerror or e}") from None
        self.filled[name] += rows.shape[0]

    def put(self, name: str, array: Array) -> None:
        """A small array saved as it is (after the long ones)."""
        self.small[name] = array

    def save(self, path: Path, force: bool = False) -> None:
        """Write the .npz at exactly ``path``; every long array must be complete."""
        missing = [k for k, n in self.filled.items() if n != self.shapes[k][0]]
        if missing:
            raise ValueError(f"incomplete arrays: {', '.join(missing)}")
        atomic_write(path, self._write_zip, force, buffered=False)

    def close(self) -> None:
        """Let the spill files go (they have no name: closing deletes them)."""
        for f in self.files.values():
            f.close()

    def __enter__(self) -> SpilledNpz:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_zip(self, f: IO[bytes]) -> None:
        import zipfile

        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name in self.shapes:
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    self._copy_member(name, member)
            for name, arr in self.small.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)

    def _copy_member(self, name: str, member: IO[bytes]) -> None:
        """The .npy header, then the spilled rows: as they are, or rows b of (T, B, ...)."""
        shape, spill = self.shapes[name], self.files[name]
        swapped = name in self.swap
        saved = (shape[1], shape[0], *shape[2:]) if swapped else shape
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": saved}  # fmt: skip
        np.lib.format.write_array_header_2_0(member, header)
        spill.flush()
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize
        steps = max(1, BLOCK_BYTES // max(row_bytes, 1))
        fd = spill.fileno()
        if not swapped:
            for lo in range(0, shape[0], steps):
                n = min(steps, shape[0] - lo)
                member.write(_pread(fd, n * row_bytes, lo * row_bytes))
            return
        for b in range(shape[1]):  # row b of every step: (T, ...) gathered block by block
            for lo in range(0, shape[0], steps):
                n = min(steps, shape[0] - lo)
                block = np.frombuffer(_pread(fd, n * row_bytes, lo * row_bytes), self.dtype)
                member.write(np.ascontiguousarray(block.reshape(n, *shape[1:])[:, b]).data)


def _pread(fd: int, n: int, offset: int) -> bytes:
    """Exactly ``n`` bytes of the spill file from ``offset``."""
    parts, got = [], 0
    while got < n:
        part = os.pread(fd, n - got, offset + got)
        if not part:
            raise OutputError("a spill file ended early")
        parts.append(part)
        got += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _spill_folder(out: Path) -> str | None:
    """The output's own folder for a regular file (same disk, no /tmp in memory); the
    system's temporary folder for a device or a FIFO."""
    target = Path(os.path.realpath(out))
    if target.exists() and not target.is_file():
        return None
    return str(target.parent)
