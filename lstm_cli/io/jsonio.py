"""Strict JSON: no NaN/Infinity literals, no duplicate keys, bounded nesting, no ragged lists;
and compact strict JSON out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import InputError

from .arrays import as_float_array

MAX_JSON_DEPTH = 8  # arrays here are at most (T, B, F): 8 levels is plenty

# Names accepted in a JSON object of inputs, with their short aliases.
INPUT_ALIASES = {
    "x_t": "x_t",
    "x": "x_t",
    "h_prev": "h_prev",
    "h": "h_prev",
    "c_prev": "c_prev",
    "c": "c_prev",
}


def reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not allowed (JSON numbers must be finite)")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(data: bytes | str, source: str, allow_nonfinite: bool = False) -> Any:
    """Parse JSON strictly: no duplicate keys, bounded nesting, and no NaN/Infinity literals
    unless ``allow_nonfinite`` (for outputs under test, where NaN is an answer to judge)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(
            text,
            parse_constant=None if allow_nonfinite else reject_constant,
            object_pairs_hook=_no_duplicate_keys,
        )
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text, so not JSON (nor a .npy file)") from None
    except RecursionError:
        raise InputError(f"{source}: JSON nested too deeply") from None
    except json.JSONDecodeError as e:
        raise InputError(
            f"{source}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except ValueError as e:
        raise InputError(f"{source}: invalid JSON: {e}") from None


def _describe(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, str):
        return "a string"
    return "an object" if isinstance(obj, dict) else type(obj).__name__


def _json_shape(obj: Any, name: str, source: str, depth: int = 0) -> tuple[int, ...]:
    """Shape of a nested list of numbers; refuses strings, booleans, nulls and ragged lists."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, dict)):
        raise InputError(f"{source}: {name} holds {_describe(obj)}, expected numbers")
    if isinstance(obj, (int, float)):
        return ()
    if not isinstance(obj, list):
        raise InputError(f"{source}: {name} holds {type(obj).__name__}, expected numbers")
    if depth >= MAX_JSON_DEPTH:
        raise InputError(f"{source}: {name} is nested more than {MAX_JSON_DEPTH} levels deep")
    if not obj:
        return (0,)
    first = _json_shape(obj[0], name, source, depth + 1)
    for k, item in enumerate(obj[1:], start=1):
        if _json_shape(item, name, source, depth + 1) != first:
            raise InputError(f"{source}: {name} is ragged: row {k} differs in length from row 0")
    return (len(obj),) + first


def json_to_array(obj: Any, name: str, source: str) -> Array:
    """A (nested) JSON list of numbers as a float64 array, validated."""
    _json_shape(obj, name, source)
    try:
        arr = np.array(obj, dtype=np.float64)
    except OverflowError:
        raise InputError(f"{source}: {name} holds a number too large for float64") from None
    return as_float_array(arr, name, source)


def inputs_from_json_object(obj: Mapping[str, Any], source: str) -> dict[str, Array]:
    """``{"x_t": [...], "h_prev": [...], "c_prev": [...]}`` (aliases x, h, c) as arrays."""
    out: dict[str, Array] = {}
    for key, value in obj.items():
        name = INPUT_ALIASES.get(key)
        if name is None:
            raise InputError(
                f"{source}: unknown key {key!r}; expected x_t, h_prev, c_prev (or x, h, c)"
            )
        if name in out:
            raise InputError(f"{source}: {name} is given twice (as {name} and an alias)")
        out[name] = json_to_array(value, name, source)
    return out


# --------------------------------------------------------------------------- stdin


def json_list(arr: Array) -> Any:
    """An array as (nested) lists for JSON; values beyond the dtype's range (a pre-activation
    that overflowed to +-inf) become null, since JSON has no Infinity."""
    if np.isfinite(arr).all():
        return arr.tolist()
    obj = arr.astype(object)
    obj[~np.isfinite(arr)] = None
    return obj.tolist()


def dumps(obj: Any) -> str:
    """Compact, strict JSON (no NaN/Infinity) on one line."""
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


# --------------------------------------------------------------------------- step inputs
