"""What a port returned per case, how one case compares, and the tolerances it is held to."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstm_cli.core import Array

from .vectors import TOLERANCES, Case


@dataclass
class Outcome:
    """What the user's code returned for one case (None: no usable array)."""

    h_next: Array | None
    c_next: Array | None
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> bool:
        """No result at all for the case (neither h_next nor c_next)."""
        return self.h_next is None and self.c_next is None

    @property
    def finite(self) -> bool:
        """Both arrays present and finite."""
        return (
            self.h_next is not None
            and self.c_next is not None
            and bool(np.all(np.isfinite(self.h_next)))
            and bool(np.all(np.isfinite(self.c_next)))
        )


@dataclass
class CaseReport:
    """The comparison of one case. Errors are None when there is no array to compare."""

    name: str
    kind: str
    dtype: str
    shape: str  # "B,F,H", B "-" without a batch
    h_abs: float | None
    h_rel: float | None
    c_abs: float | None
    c_rel: float | None
    ok: bool
    notes: list[str]
    label: str = ""  # a short name for tables
    status: str = ""  # "ok", "disagree" or "no result" (the port gave nothing to compare)

    def worst_rel(self) -> float:
        vals = [v for v in (self.h_rel, self.c_rel) if v is not None]
        return max(vals) if len(vals) == 2 else float("inf")


def tolerance(case: Case, atol: float | None, rtol: float | None) -> tuple[float, float]:
    """The user's tolerances, or the case dtype's defaults (TOLERANCES)."""
    d = TOLERANCES[case.dtype]
    return (d["atol"] if atol is None else atol, d["rtol"] if rtol is None else rtol)


def match_tolerance(
    case: Case, atol: float | None, rtol: float | None, float32: bool = False
) -> tuple[float, float]:
    """The tolerance a known mistake's outputs are matched with: :func:`tolerance`, at least
    float32's for a float32 case or a float32 mistake."""
    a, r = tolerance(case, atol, rtol)
    if float32 or case.dtype == "float32":
        a, r = max(a, TOLERANCES["float32"]["atol"]), max(r, TOLERANCES["float32"]["rtol"])
    return a, r


def close(a: Array | None, b: Array, atol: float, rtol: float) -> bool:
    """``a`` present and within ``atol + rtol * |b|`` of ``b`` everywhere."""
    return a is not None and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def outcome_matches(outcome: Outcome, h: Array, c: Array, tol: tuple[float, float]) -> bool:
    """The outcome's h_next and c_next both close to ``h`` and ``c``."""
    return close(outcome.h_next, h, *tol) and close(outcome.c_next, c, *tol)
