"""Loaded arrays checked once: real numbers only, finite, and castable to the compute dtype."""

from __future__ import annotations

from typing import Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import InputError


def as_float_array(arr: Any, name: str, source: str) -> Array:
    """Check one loaded array and return it as floating point.

    Floating arrays are kept as they are, integer arrays are cast to float64; boolean,
    complex, string, object and structured arrays are refused, as are NaN and Infinity.
    """
    arr = np.asarray(arr)
    kind = arr.dtype.kind
    if kind in "iu":
        arr = arr.astype(np.float64)
    elif kind != "f":
        what = {
            "b": "boolean",
            "c": "complex",
            "O": "object",
            "V": "structured",
            "U": "string",
            "S": "bytes",
            "M": "datetime",
            "m": "timedelta",
        }.get(kind, str(arr.dtype))
        raise InputError(f"{source}: {name} has {what} dtype {arr.dtype}, expected real numbers")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        value = arr[tuple(bad)]
        where = f" at index {tuple(int(i) for i in bad)}" if arr.ndim else ""
        raise InputError(
            f"{source}: {name} contains {value}{where}; only finite numbers are allowed"
        )
    return arr


def cast_checked(arr: Array, dtype: str, name: str, source: str) -> Array:
    """``arr`` in ``dtype``, refusing values that do not fit it (1e300 in float32)."""
    with np.errstate(over="ignore"):
        out = arr.astype(dtype, copy=False)
    if not np.isfinite(out).all():
        raise InputError(f"{source}: {name} holds values too large for {dtype}")
    return out


# --------------------------------------------------------------------------- JSON
