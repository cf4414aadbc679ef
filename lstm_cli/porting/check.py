"""Check someone's LSTM cell against the reference: run it on golden vectors, compare h_next
and c_next per case, and when it disagrees, name the likely bug (:mod:`.diagnose`, with the
catalogue of known mistakes in :mod:`.mistakes`).

How the user's function is called per ``--layout`` is in :mod:`.signatures`; what it
returned per case is an :class:`~.outcomes.Outcome`, and its comparison a
:class:`~.outcomes.CaseReport`.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import Hint, UserCodeError

from .diagnose import Diagnosis, diagnose
from .outcomes import CaseReport, Outcome, outcome_matches, tolerance
from .signatures import GATE_LETTERS, SIGNATURES, Signature
from .vectors import TOLERANCES, Case

__all__ = [
    "GATE_LETTERS",
    "SIGNATURES",
    "CheckResult",
    "Signature",
    "check_function",
    "check_outcomes",
    "compare",
    "run_function",
]


def _as_output(value: Any, name: str, want: tuple[int, ...], notes: list[str]) -> Array | None:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as e:
        notes.append(f"{name} is not an array of numbers ({type(e).__name__})")
        return None
    if arr.shape != want:
        notes.append(f"{name} has shape {arr.shape}, expected {want}")
        return None
    return arr


def run_function(fn: Callable[..., Any], label: str, case: Case, layout: Signature) -> Outcome:
    """Call ``fn`` on one case (copies of the arrays); an exception: UserCodeError (exit 1)."""
    args = tuple(np.array(a, copy=True) for a in layout.args(case))
    printed = io.StringIO()  # the seed's own function prints: keep stdout for the report
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        warnings.simplefilter("always")
        try:
            out = fn(*args)
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            shapes = ", ".join(f"{k} {v.shape}" for k, v in case.inputs.items())
            message = str(e).splitlines()[0] if str(e) else ""
            raise UserCodeError(
                f"{label} raised {type(e).__name__}: {message} (on {case.name}: {shapes})",
                Hint.NO_BATCH if case.batch else Hint.BATCH_ONLY,
            ) from None
    notes = []
    if printed.getvalue():
        notes.append(f"it printed {len(printed.getvalue().splitlines())} line(s) (not shown)")
    seen = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    notes += [f"it warned {s}" for s in seen]
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise UserCodeError(
            f"{label} returned {type(out).__name__}, expected a pair (h_next, c_next) "
            f"(on {case.name})"
        )
    want = case.expected["h_next"].shape
    h = _as_output(out[0], "h_next", want, notes)
    c = _as_output(out[1], "c_next", want, notes)
    return Outcome(h, c, notes)


def _errors(mine: Array | None, ref: Array) -> tuple[float | None, float | None]:
    """Max absolute error and max|mine - ref| / max|ref| (None if not comparable/finite)."""
    if mine is None or not np.all(np.isfinite(mine)):
        return None, None
    diff = float(np.max(np.abs(mine - ref))) if ref.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return diff, (diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf")))


def compare(case: Case, outcome: Outcome, atol: float | None, rtol: float | None) -> CaseReport:
    a, r = tolerance(case, atol, rtol)
    ref_h, ref_c = case.expected["h_next"], case.expected["c_next"]
    h_abs, h_rel = _errors(outcome.h_next, ref_h)
    c_abs, c_rel = _errors(outcome.c_next, ref_c)
    notes = list(outcome.notes)
    for name, arr in (("h_next", outcome.h_next), ("c_next", outcome.c_next)):
        if arr is not None and not np.all(np.isfinite(arr)):
            notes.append(f"{name} is not finite ({_nonfinite(arr)})")
    ok = outcome_matches(outcome, ref_h, ref_c, (a, r))
    shape = f"{'-' if case.batch is None else case.batch},{case.n_features},{case.n_hidden}"
    status = "ok" if ok else ("no result" if outcome.missing else "disagree")
    return CaseReport(case.name, case.kind, case.dtype, shape, h_abs, h_rel, c_abs, c_rel, ok,
                      notes, label=_short(case.name), status=status)  # fmt: skip


def _short(name: str) -> str:
    """``case_003_batch_wide_float64`` -> ``batch_wide`` (the dtype has its own column)."""
    return re.sub(r"_float(32|64)$", "", re.sub(r"^case_\d+_", "", name))


def _nonfinite(arr: Array) -> str:
    n_nan, n_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
    return ", ".join(p for p in (f"{n_nan} NaN" * bool(n_nan), f"{n_inf} inf" * bool(n_inf)) if p)


@dataclass
class CheckResult:
    target: str
    layout: str
    reports: list[CaseReport]
    diagnoses: list[Diagnosis]
    atol: float | None
    rtol: float | None

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    def worst(self) -> CaseReport:
        """The worst disagreeing case (a case with no result only when none disagrees)."""
        return max(self.reports, key=lambda r: (r.status == "disagree", not r.ok, r.worst_rel()))

    def count(self, status: str) -> int:
        """How many cases have ``status`` (``ok``, ``disagree``, ``no result``)."""
        return sum(r.status == status for r in self.reports)

    def summary(self) -> str:
        """One line: how many cases disagree and how many have no result."""
        n = len(self.reports)
        if self.ok:
            return f"All {n} cases agree."
        parts = []
        if self.count("disagree"):
            parts.append(f"{self.count('disagree')} of {n} cases disagree")
        if self.count("no result"):
            parts.append(f"{self.count('no result')} of {n} cases have no result")
        return "; ".join(parts) + "."

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "target": self.target,
            "layout": self.layout,
            "tolerance": {
                "atol": self.atol,
                "rtol": self.rtol,
                "defaults": TOLERANCES,
            },
            "passed": sum(r.ok for r in self.reports),
            "failed": sum(not r.ok for r in self.reports),
            "disagree": self.count("disagree"),
            "no_result": self.count("no result"),
            "summary": self.summary(),
            "worst": self.worst().name,
            "errors": "abs: max|yours - ref|; rel: max|yours - ref| / max|ref|; null: no finite "
            "array to compare",
            "cases": [vars(r) for r in self.reports],
            "diagnosis": [vars(d) for d in self.diagnoses],
        }


def check_outcomes(
    target: str,
    layout: Signature,
    cases: Sequence[Case],
    outcomes: Sequence[Outcome],
    atol: float | None,
    rtol: float | None,
) -> CheckResult:
    reports = [compare(c, o, atol, rtol) for c, o in zip(cases, outcomes, strict=True)]
    diagnoses = diagnose(cases, outcomes, reports, layout, atol, rtol)
    return CheckResult(target, layout.name, reports, diagnoses, atol, rtol)


def check_function(
    fn: Callable[..., Any],
    label: str,
    cases: Sequence[Case],
    layout: Signature,
    atol: float | None = None,
    rtol: float | None = None,
) -> CheckResult:
    """Run ``fn`` on every case and compare (see module docstring)."""
    outcomes = [run_function(fn, label, c, layout) for c in cases]
    return check_outcomes(label, layout, cases, outcomes, atol, rtol)
