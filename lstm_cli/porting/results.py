"""The results file of a port in another language, for ``check --vectors DIR --results FILE``.

Format (JSON)::

    {
      "format": "lstm-cell results",          # optional
      "format_version": 1,                    # optional
      "implementation": "my C port, -O2",     # optional, free text
      "cases": {
        "case_000_notebook_float64": {"h_next": [...], "c_next": [...]},
        ...
      }
    }

One entry per case name of the manifest, each ``h_next`` and ``c_next`` shaped like the case's
(H,) or (B, H) (nested lists). A non-finite value may be written as ``null``, ``"NaN"``,
``"Infinity"``, ``"-Infinity"`` (or the bare NaN/Infinity many JSON writers emit): it is a
wrong answer to diagnose, not a malformed file. A case left out is reported as failing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstm_cli.errors import InputError
from lstm_cli.io.jsonio import parse_json
from lstm_cli.io.reader import read_file

from .outcomes import Outcome
from .vectors import Case

MAX_RESULTS_BYTES = 256 * 1024 * 1024
NONFINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
TOP_KEYS = {"format", "format_version", "implementation", "cases"}


def _numbers(obj: Any, name: str, source: str, depth: int = 0) -> Any:
    """Nested lists of numbers with null/"NaN"/"Infinity" as floats; anything else refused."""
    if depth > 8:
        raise InputError(f"{source}: {name} is nested too deeply")
    if isinstance(obj, list):
        return [_numbers(v, name, source, depth + 1) for v in obj]
    if obj is None:
        return float("nan")
    if isinstance(obj, str) and obj in NONFINITE:
        return NONFINITE[obj]
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        raise InputError(
            f"{source}: {name} holds {json.dumps(obj)[:40]}, expected numbers "
            '(or null, "NaN", "Infinity", "-Infinity")'
        )
    return float(obj)


def _array(obj: Any, name: str, source: str) -> np.ndarray:
    values = _numbers(obj, name, source)
    try:
        arr = np.array(values, dtype=np.float64)
    except ValueError:
        raise InputError(f"{source}: {name} is ragged (rows of different lengths)") from None
    return arr


def load_results(
    path: Path, cases: Sequence[Case], max_bytes: int = MAX_RESULTS_BYTES
) -> list[Outcome]:
    """One :class:`Outcome` per case (empty, with a note, when the file lacks that case)."""
    source = str(path)
    data = read_file(path, max_bytes)
    # NaN / Infinity literals are allowed here: a port's non-finite output is a wrong answer
    # to diagnose, not a broken file. Duplicate keys and malformed JSON are refused.
    obj = parse_json(data, source, allow_nonfinite=True)
    if not isinstance(obj, dict) or not isinstance(obj.get("cases"), dict):
        raise InputError(f'{source}: expected an object with "cases": {{NAME: {{...}}}}')
    unknown = sorted(set(obj) - TOP_KEYS)
    if unknown:
        raise InputError(
            f"{source}: unknown key {unknown[0]!r}; expected {', '.join(sorted(TOP_KEYS))}"
        )
    by_name = {c.name: c for c in cases}
    for name in obj["cases"]:
        if name not in by_name:
            raise InputError(f"{source}: case {name!r} is not in the vectors' manifest")
    outcomes = []
    for case in cases:
        entry = obj["cases"].get(case.name)
        if entry is None:
            outcomes.append(Outcome(None, None, ["no result for this case in the results file"]))
            continue
        if not isinstance(entry, dict) or set(entry) - {"h_next", "c_next"}:
            raise InputError(
                f'{source}: case {case.name!r} must be {{"h_next": [...], "c_next": [...]}}'
            )
        notes: list[str] = []
        arrays: list[np.ndarray | None] = []
        want = case.expected["h_next"].shape
        for key in ("h_next", "c_next"):
            if key not in entry:
                notes.append(f"{key} is missing")
                arrays.append(None)
                continue
            arr = _array(entry[key], f"{case.name}.{key}", source)
            if arr.shape != want:
                notes.append(f"{key} has shape {arr.shape}, expected {want}")
                arrays.append(None)
            else:
                arrays.append(arr)
        outcomes.append(Outcome(arrays[0], arrays[1], notes))
    return outcomes
