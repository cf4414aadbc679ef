"""Sequences read in chunks along their time axis: a .npy file or pipe is never loaded whole.

Its header is parsed with :mod:`numpy.lib.format` (never unpickling) and the data read in
chunks of steps with ``readinto`` into one reused buffer, so memory stays flat however long
the sequence. A sequence given as JSON is small by nature and is parsed whole.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError

from . import safeload
from .reader import (
    DEFAULT_MAX_INPUT_BYTES,
    NPY_MAGIC,
    STDIN,
    check_readable,
    is_regular_file,
    read_file,
)


class _Prefixed:
    """A binary stream with ``prefix`` (bytes already read from it) put back in front."""

    def __init__(self, prefix: bytes, raw: IO[bytes]) -> None:
        self.prefix, self.raw = prefix, raw

    def read(self, n: int = -1) -> bytes:
        head, self.prefix = (self.prefix, b"") if n < 0 else (self.prefix[:n], self.prefix[n:])
        rest = self.raw.read(-1 if n < 0 else n - len(head)) if n < 0 or len(head) < n else b""
        return head + rest

    def readinto(self, buf: memoryview) -> int:
        if self.prefix:
            k = min(len(self.prefix), len(buf))
            buf[:k] = self.prefix[:k]
            self.prefix = self.prefix[k:]
            return k
        return self.raw.readinto(buf)  # type: ignore[attr-defined]


def _stream_dtype_ok(dtype: np.dtype[Any], name: str, source: str) -> None:
    """Refuse what :func:`as_float_array` refuses, from the header alone (before any data)."""
    if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
        what = {"b": "boolean", "c": "complex", "O": "object (pickled)", "V": "structured"}
        desc = what.get(dtype.kind, "non-numeric")
        raise InputError(f"{source}: {name} has {desc} dtype {dtype}, expected real numbers")


class NpyStream:
    """A .npy array read in chunks along its time axis, never all at once.

    The header is parsed with :mod:`numpy.lib.format` (``allow_pickle`` never: object dtypes
    are refused from the header). ``shape`` and ``dtype`` are the stored array's.
    """

    def __init__(
        self,
        f: IO[bytes] | _Prefixed,
        name: str,
        source: str,
        seekable: bool,
        max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    ) -> None:
        self.f, self.name, self.source, self.seekable = f, name, source, seekable
        self.owned: IO[bytes] | None = None  # a pipe opened by path, closed with the stream
        self.max_bytes = max_bytes  # only for what cannot be streamed (see _load_into_memory)
        shape, fortran_order, dtype = safeload.read_npy_header(f, name, source)  # type: ignore[arg-type]
        self.shape: tuple[int, ...] = tuple(int(d) for d in shape)
        self.fortran_order: bool = bool(fortran_order)
        self.dtype: np.dtype[Any] = np.dtype(dtype)
        _stream_dtype_ok(self.dtype, name, source)
        self.offset = f.tell() if seekable else 0  # type: ignore[union-attr]
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        if seekable:
            size = os.fstat(f.fileno()).st_size  # type: ignore[union-attr]
            if size < self.offset + self.nbytes:
                raise InputError(
                    f"{source}: truncated .npy file: {name} {self.shape} needs "
                    f"{self.nbytes} bytes of data, the file holds {max(size - self.offset, 0)}"
                )

    def close(self) -> None:
        close = getattr(self.f, "close", None)
        if self.seekable and close is not None:
            close()
        if self.owned is not None:
            self.owned.close()

    def _read_exactly(self, view: memoryview) -> None:
        got = 0
        while got < len(view):
            k = self.f.readinto(view[got:])  # type: ignore[union-attr]
            if not k:
                raise InputError(f"{self.source}: truncated .npy data: {self.name} ends early")
            got += k

    def _load_into_memory(self) -> None:
        """A pipe cannot seek: read the whole (capped) payload when chunks are not contiguous."""
        if self.nbytes > self.max_bytes:
            raise InputError(
                f"{self.source}: a batch-first or Fortran-order {self.name} is streamed only "
                f"from a file; from a pipe it is read whole, and {safeload.mib(self.nbytes)} is "
                f"over the {safeload.mib(self.max_bytes)} input limit",
                Hint.RAISE_INPUT_LIMIT,
            )
        data = bytearray(self.nbytes)
        self._read_exactly(memoryview(data))
        self.f, self.offset, self.seekable = io.BytesIO(data), 0, True

    def chunks(self, steps: int, batch_first: bool) -> Iterator[Array]:
        """Yield consecutive (n, F) or (n, B, F) float arrays, time first, ``n <= steps``.

        The time axis is 0, or 1 with ``batch_first`` for a 3-D array. Each chunk is checked
        (finite numbers only) and cast to float64 if stored as integers. A yielded chunk may
        share memory with the next read: use it before asking for the next.
        """
        ndim = len(self.shape)
        t_axis = 1 if (batch_first and ndim == 3) else 0
        # The file's bytes in C order: a Fortran-order array is stored as its transpose.
        c_shape = self.shape[::-1] if self.fortran_order else self.shape
        k = ndim - 1 - t_axis if self.fortran_order else t_axis  # time axis within c_shape
        outer = int(np.prod(c_shape[:k], dtype=np.int64))
        inner = int(np.prod(c_shape[k + 1 :], dtype=np.int64))
        T, item = self.shape[t_axis], self.dtype.itemsize
        if outer > 1 and not self.seekable:
            self._load_into_memory()
        steps = max(1, min(steps, T))
        buf = bytearray(steps * outer * inner * item)
        for t0 in range(0, T, steps):
            n = min(steps, T - t0)
            block = n * inner * item
            view = memoryview(buf)[: outer * block]
            for j in range(outer):
                if outer > 1 or self.seekable:
                    self.f.seek(self.offset + (j * T + t0) * inner * item)  # type: ignore[union-attr]
                self._read_exactly(view[j * block : (j + 1) * block])
            stored = c_shape[:k] + (n,) + c_shape[k + 1 :]
            arr = np.frombuffer(view, dtype=self.dtype).reshape(stored)
            if self.fortran_order:
                arr = arr.T  # the stored array's own axis order
            chunk = np.moveaxis(arr, t_axis, 0)  # (n, ...): time first
            yield self._checked(chunk, t0, t_axis)

    def _checked(self, chunk: Array, t0: int, t_axis: int) -> Array:
        if chunk.dtype.kind in "iu":
            return chunk.astype(np.float64)
        finite = np.isfinite(chunk)
        if not finite.all():
            bad = [int(i) for i in np.argwhere(~finite)[0]]
            value = chunk[tuple(bad)]
            bad[0] += t0
            bad.insert(t_axis, bad.pop(0))  # back to the file's axis order
            raise InputError(
                f"{self.source}: {self.name} contains {value} at index {tuple(bad)}; "
                "only finite numbers are allowed"
            )
        return chunk


class ArraySequence:
    """An xs already in memory (from JSON), with the interface of :class:`NpyStream`."""

    def __init__(self, xs: Array) -> None:
        self.xs = xs
        self.shape: tuple[int, ...] = tuple(xs.shape)

    def chunks(self, steps: int, batch_first: bool) -> Iterator[Array]:
        xs = np.swapaxes(self.xs, 0, 1) if (batch_first and self.xs.ndim == 3) else self.xs
        for t0 in range(0, xs.shape[0], max(1, steps)):
            yield xs[t0 : t0 + steps]

    def close(self) -> None:
        pass


def open_sequence(
    spec: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> tuple[NpyStream | None, bytes, str]:
    """A sequence from a path or ``-`` (stdin): ``(stream, b"", label)`` for a .npy file (read
    in chunks, any length), else ``(None, data, label)`` with at most ``max_bytes`` of data
    (JSON, parsed by the caller). The caller closes the stream."""
    if spec == STDIN:
        return _open_stdin_sequence(max_bytes)
    path = Path(spec)
    check_readable(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 (a stream owns it; closed by the caller)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if not is_regular_file(path):  # a pipe, FIFO or /dev/stdin: peek, never seek
        return _open_stream_sequence(f, spec, max_bytes, owned=True)
    head = f.read(len(NPY_MAGIC))
    f.seek(0)
    if head == NPY_MAGIC:
        try:
            return NpyStream(f, "xs", spec, True, max_bytes), b"", spec
        except BaseException:
            f.close()
            raise
    f.close()
    return None, read_file(path, max_bytes), spec


def _open_stream_sequence(
    raw: IO[bytes], source: str, max_bytes: int, owned: bool
) -> tuple[NpyStream | None, bytes, str]:
    """A sequence from a stream that cannot seek: the magic bytes are read and put back in
    front, a .npy is streamed, anything else (JSON) is read whole under ``max_bytes``."""
    try:
        head = raw.read(len(NPY_MAGIC))
        if head == NPY_MAGIC:
            stream = NpyStream(_Prefixed(head, raw), "xs", source, False, max_bytes)
            stream.owned = raw if owned else None
            return stream, b"", source
        data = head + raw.read(max_bytes + 1 - len(head))
    except BaseException:
        if owned:
            raw.close()
        raise
    if owned:
        raw.close()
    if len(data) > max_bytes:
        raise InputError(
            f"{source}: more than {safeload.mib(max_bytes)} of JSON, over the input limit",
            Hint.RAISE_INPUT_LIMIT_OR_STREAM,
        )
    return None, data, source


def _open_stdin_sequence(max_bytes: int) -> tuple[NpyStream | None, bytes, str]:
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise InputError("stdin: closed, nothing to read")
    if stdin.isatty():
        raise InputError("stdin: is a terminal; pipe JSON or .npy data in, or name a file")
    return _open_stream_sequence(stdin.buffer, "stdin", max_bytes, owned=False)
