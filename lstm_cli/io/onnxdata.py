"""An ONNX initializer stored in an external data file (what ``torch.onnx.export``'s default
exporter writes beside the model): its ``location`` resolved only inside the model's own
folder, its bytes read under the size limit, never more than the tensor holds."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError

from .safeload import mib

# ONNX TensorProto data types this tool reads from an external file, little-endian.
_DTYPES = {1: "<f4", 10: "<f2", 11: "<f8"}


def read_external(tensor: Any, name: str, label: str, folder: Path | None, max_bytes: int) -> Array:
    """The array of an initializer whose data lives in an external file. ``folder`` is the
    model's folder (None for a model read from a pipe: nothing beside it can be found)."""
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    where = f"{label}: {name} is stored in the external file {location!r}"
    if folder is None:
        raise InputError(f"{where}, which is read only beside a model opened by its path")
    path = _inside(folder, location, where)
    dtype = _DTYPES.get(tensor.data_type)
    if dtype is None:
        raise InputError(f"{where} with ONNX data type {tensor.data_type}; expected a float type")
    dims = tuple(int(d) for d in tensor.dims)
    if any(d < 0 for d in dims):
        raise InputError(f"{where} with negative dims {dims}")
    n_bytes = int(np.prod(dims, dtype=object)) * np.dtype(dtype).itemsize
    if n_bytes > max_bytes:
        raise InputError(
            f"{where}: {mib(n_bytes)}, over the {mib(max_bytes)} limit", Hint.RAISE_INPUT_LIMIT
        )
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else n_bytes
    except ValueError:
        raise InputError(f"{where} with a non-integer offset or length") from None
    if offset < 0 or length != n_bytes:
        raise InputError(
            f"{where} at offset {offset}, length {length}; dims {dims} hold {n_bytes} bytes"
        )
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(n_bytes)
    except OSError as e:
        raise InputError(f"{where}, which cannot be read: {e.strerror or e}") from None
    if len(data) != n_bytes:
        raise InputError(f"{where}, which ends before its {n_bytes} bytes at offset {offset}")
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype[1:])


def _inside(folder: Path, location: str, where: str) -> Path:
    """``location`` as a file inside ``folder``; an absolute path, a ``..`` or a symlink that
    leads out of the folder is refused."""
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if not location or posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise InputError(f"{where}: an external file must be a relative path in the model's folder")
    if ".." in posix.parts or ".." in windows.parts:
        raise InputError(f"{where}: '..' leads out of the model's folder; refused")
    root = folder.resolve()
    path = (root / Path(*windows.parts)).resolve()
    if root != path and root not in path.parents:
        raise InputError(f"{where}, which resolves outside the model's folder; refused")
    if not path.is_file():
        raise InputError(f"{where}, which is not a file beside the model")
    return path
