"""Reading .npy and .npz without trusting them: the header is checked before anything is
allocated or decompressed.

``np.load(..., allow_pickle=False)`` never unpickles, but it trusts the header's shape: a
100-byte file that declares a (10**12,) array, or a zip member that inflates to gigabytes, is
allocated first and refused later (or not at all). Here the header is parsed on its own, the
dtype and the size it declares are checked against a cap and against the bytes really there,
and only then is the data read.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import IO, Any

import numpy as np

from lstm_cli.errors import Hint, InputError

NPY_MAGIC = b"\x93NUMPY"
DEFAULT_MAX_BYTES = 256 << 20  # per array and per input stream (the one input limit)
MAX_HEADER_BYTES = 10_000  # numpy's own default cap on a .npy header
MAX_NPZ_MEMBERS = 4096


def mib(n_bytes: int) -> str:
    return f"{n_bytes / (1 << 20):.0f} MiB" if n_bytes >= 1 << 20 else f"{n_bytes} bytes"


def read_npy_header(
    f: IO[bytes] | io.RawIOBase, name: str, source: str
) -> tuple[tuple[int, ...], bool, Any]:
    """Parse a .npy header from ``f``: (shape, fortran_order, dtype), refusing pickles."""
    import zipfile  # imported on use: start-up stays fast

    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                f, max_header_size=MAX_HEADER_BYTES
            )
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                f, max_header_size=MAX_HEADER_BYTES
            )
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except zipfile.BadZipFile:
        raise  # a damaged archive, not a bad header: the archive reader says so
    except Exception as e:  # a hostile header can raise many things: all mean "corrupt"
        raise InputError(f"{source}: {name}: corrupt .npy header ({_short(e)})") from None
    if dtype.hasobject:
        raise InputError(f"{source}: {name} is an object (pickled) array, which is never loaded")
    if dtype.names is not None or dtype.subdtype is not None:
        raise InputError(f"{source}: {name} has structured dtype {dtype}, expected real numbers")
    return shape, fortran, dtype


def _short(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:120]


def read_npy(
    f: IO[bytes] | io.RawIOBase,
    name: str,
    source: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    available: int | None = None,
) -> np.ndarray:
    """Read one .npy array from ``f`` after checking its header.

    ``available``: the number of bytes left in ``f`` when known (a file's or a zip member's
    size), so that a header declaring more data than exists is refused before reading.
    """
    start = f.tell() if available is not None else 0
    shape, fortran, dtype = read_npy_header(f, name, source)
    n_items = math.prod(shape)
    n_bytes = n_items * dtype.itemsize
    if n_bytes > max_bytes:
        raise InputError(
            f"{source}: {name} declares shape {shape} {dtype} ({mib(n_bytes)}), over the "
            f"{mib(max_bytes)} limit",
            Hint.RAISE_INPUT_LIMIT,
        )
    if available is not None:
        left = available - (f.tell() - start)
        if n_bytes > left:
            raise InputError(
                f"{source}: {name} is truncated: its header declares {n_bytes} bytes of data, "
                f"the file holds {max(left, 0)}"
            )
    data = f.read(n_bytes)
    if len(data) != n_bytes:
        raise InputError(
            f"{source}: {name} is truncated: expected {n_bytes} bytes of data, got {len(data)}"
        )
    try:
        arr = np.frombuffer(data, dtype=dtype, count=n_items)
        if fortran:
            return arr.reshape(shape[::-1]).transpose().copy()
        return arr.reshape(shape).copy()
    except Exception as e:
        raise InputError(f"{source}: {name}: unreadable data ({_short(e)})") from None


def read_npy_bytes(data: bytes, name: str, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    return read_npy(io.BytesIO(data), name, source, max_bytes, available=len(data))


class NpzReader:
    """The arrays of a .npz archive, read one at a time, each checked before inflating.

    Use as a context manager; ``names`` lists the arrays, ``read(name)`` returns one.
    """

    def __init__(
        self, path: Path | IO[bytes], max_bytes: int = DEFAULT_MAX_BYTES, source: str = ""
    ) -> None:
        import zipfile

        self.source = source or str(path)
        self.max_bytes = max_bytes
        try:
            self._zip = zipfile.ZipFile(path)
        except Exception as e:  # zipfile raises BadZipFile, NotImplementedError, ValueError...
            raise InputError(
                f"{self.source}: not a .npz archive (not a readable zip: {_short(e)})"
            ) from None
        infos = self._zip.infolist()
        if len(infos) > MAX_NPZ_MEMBERS:
            self._zip.close()
            raise InputError(
                f"{self.source}: a .npz with {len(infos)} members is not a params file"
            )
        self._members = {
            i.filename[: -len(".npy")]: i for i in infos if i.filename.endswith(".npy")
        }

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zip.close()

    @property
    def names(self) -> list[str]:
        return list(self._members)

    def read(self, name: str) -> np.ndarray:
        info = self._members[name]
        # A zip member's declared size is what zipfile will inflate at most (it stops there
        # and checks the CRC), so it bounds the memory before anything is decompressed.
        if info.file_size > self.max_bytes + MAX_HEADER_BYTES:
            raise InputError(
                f"{self.source}: {name} inflates to {mib(info.file_size)}, over the "
                f"{mib(self.max_bytes)} limit",
                Hint.RAISE_INPUT_LIMIT,
            )
        try:
            with self._zip.open(info) as f:
                return read_npy(_Counted(f), name, self.source, self.max_bytes, info.file_size)
        except InputError:
            raise
        except Exception as e:  # zlib.error, BadZipFile (CRC), EOFError, OSError, ...
            raise InputError(f"{self.source}: {name} is corrupt ({_short(e)})") from None


class _Counted(io.RawIOBase):
    """A read-only stream that knows its position (zip members cannot always tell)."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._pos += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self._pos
