"""Naming the likely bug behind a port's failing cases.

Non-finite outputs where the reference is finite point at an overflowing exp (a naive sigmoid
or tanh). Then the known mistakes (:mod:`.mistakes`) are replayed, and those whose outputs
match the user's on every case are reported; when none does, the diagnosis says where the
difference first appears.

When ONNX-variant cases fail too, every mistake is first tried on every case family at once:
one that matches all of them (float32 arithmetic, for an engine such as onnxruntime that
computes the variants right in float32) is the whole verdict. Otherwise the diagnoses per
family are ranked by how many failing cases each explains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .mistakes import Hypothesis, hypotheses, variant_hypotheses
from .outcomes import CaseReport, Outcome, close, match_tolerance, outcome_matches, tolerance
from .signatures import Signature
from .vectors import Case


@dataclass
class Diagnosis:
    """A likely culprit. ``matched``: a known mistake reproduces the port's outputs on the
    cases ``explains`` names; otherwise ``explains`` only says which cases fail."""

    culprit: str
    detail: str
    explains: str
    matched: bool = True
    cases_explained: int = 0  # failing cases the mistake reproduces (0 when unmatched)


@dataclass(frozen=True)
class _Run:
    """The cases of one check, what the port returned, how each compared, the tolerances."""

    cases: Sequence[Case]
    outcomes: Sequence[Outcome]
    reports: Sequence[CaseReport]
    atol: float | None
    rtol: float | None

    def agrees(self, k: int, hyp: Hypothesis) -> bool:
        """The port's outputs on case ``k`` match what mistake ``hyp`` would produce."""
        case = self.cases[k]
        with np.errstate(all="ignore"):
            h, c = hyp.predict(case)
        tol = match_tolerance(case, self.atol, self.rtol, hyp.float32)
        return outcome_matches(self.outcomes[k], h, c, tol)


def diagnose(
    cases: Sequence[Case],
    outcomes: Sequence[Outcome],
    reports: Sequence[CaseReport],
    layout: Signature,
    atol: float | None,
    rtol: float | None,
) -> list[Diagnosis]:
    """Name the likely bug(s) behind the failing cases (empty when nothing fails)."""
    run = _Run(cases, outcomes, reports, atol, rtol)
    failing = [k for k, r in enumerate(reports) if not r.ok]
    if not failing:
        return []
    found = _diagnose_nonfinite(run, failing)
    everywhere = _diagnose_everywhere(run, layout, failing)
    if everywhere:
        return found + everywhere
    ranked = _merge(_diagnose_standard(run, layout) + _diagnose_variants(run, layout))
    return found + sorted(ranked, key=lambda d: -d.cases_explained)


def _merge(found: Sequence[Diagnosis]) -> list[Diagnosis]:
    """One diagnosis per matched culprit found in several families, its counts summed."""
    out: dict[str, Diagnosis] = {}
    for d in found:
        key = d.culprit if d.matched else f"{id(d)}"
        if key in out:
            prev = out[key]
            out[key] = Diagnosis(d.culprit, d.detail, f"{prev.explains}; {d.explains}",
                                 True, prev.cases_explained + d.cases_explained)  # fmt: skip
        else:
            out[key] = d
    return list(out.values())


def _diagnose_everywhere(run: _Run, layout: Signature, failing: Sequence[int]) -> list[Diagnosis]:
    """With failing variant cases: the first known mistake matching every usable case of
    every family (standard and variants alike)."""
    cases = run.cases
    if all(cases[k].variant == "standard" for k in failing):
        return []
    usable = [k for k in range(len(cases)) if run.outcomes[k].finite]
    explained = [k for k in failing if k in usable]
    if not explained:
        return []
    families = sorted({cases[k].variant for k in usable})
    for hyp in hypotheses(layout):
        if all(run.agrees(k, hyp) for k in usable):
            scope = f"all {len(usable)} cases ({', '.join(families)})"
            return [Diagnosis(hyp.culprit, hyp.detail, scope, cases_explained=len(explained))]
    return []


def _diagnose_nonfinite(run: _Run, failing: Sequence[int]) -> list[Diagnosis]:
    """Non-finite outputs where the reference is finite: an overflowing exp."""
    cases, outcomes = run.cases, run.outcomes
    nonfinite = [
        k for k in failing
        if any(a is not None and not np.all(np.isfinite(a))
               for a in (outcomes[k].h_next, outcomes[k].c_next))
    ]  # fmt: skip
    if not nonfinite:
        return []
    extreme = [k for k in nonfinite if cases[k].kind == "extreme"]
    warned = sorted({n for k in nonfinite for n in outcomes[k].notes if "overflow" in n})
    names = ", ".join(cases[k].name for k in nonfinite[:3])
    more = f" and {len(nonfinite) - 3} more" if len(nonfinite) > 3 else ""
    if extreme and len(extreme) == len(nonfinite):
        culprit = "naive sigmoid/tanh: exp overflows on large pre-activations"
        detail = (
            "NaN/inf only on the extreme cases, where |z| is large: exp(z) overflows "
            "(above ~88 in float32, ~709 in float64) and exp(z)/(1+exp(z)) or a tanh "
            "written with exp gives inf/inf = NaN; use 1/(1+exp(-z)) with the overflow "
            "silenced, or the piecewise stable form"
        )
    else:
        culprit = "non-finite outputs"
        detail = "NaN/inf where the reference is finite"
    if warned:
        detail += f" ({warned[0]})"
    return [Diagnosis(culprit, detail, f"{names}{more}", cases_explained=len(nonfinite))]


def _diagnose_standard(run: _Run, layout: Signature) -> list[Diagnosis]:
    """The known mistakes whose outputs match the user's on every comparable standard case
    (or, failing that, on at least half of the failing ones)."""
    cases, reports = run.cases, run.reports
    usable = [
        k for k in range(len(cases)) if run.outcomes[k].finite and cases[k].variant == "standard"
    ]
    usable_failing = [k for k in usable if not reports[k].ok]
    if not usable_failing:
        return []
    best: tuple[int, Hypothesis | None] = (0, None)
    matches = []
    for hyp in hypotheses(layout):
        hits = [k for k in usable if run.agrees(k, hyp)]
        failing_hits = sum(not reports[k].ok for k in hits)
        if len(hits) == len(usable):
            matches.append(hyp)
        elif failing_hits > best[0]:
            best = (failing_hits, hyp)
    n_f = len(usable_failing)
    scope = f"all {len(usable)} cases" + (
        " with finite outputs" if len(usable) < len(cases) else ""
    )
    found = [Diagnosis(hyp.culprit, hyp.detail, scope, cases_explained=n_f) for hyp in matches[:3]]
    if matches:
        return found
    if best[1] is not None and best[0] * 2 >= n_f:
        hyp = best[1]
        return [Diagnosis(
            f"partly: {hyp.culprit}", hyp.detail,
            f"{best[0]} of {n_f} failing cases (something else is wrong too)",
            cases_explained=best[0],
        )]  # fmt: skip
    return [_fallback(run, usable_failing)]


def _diagnose_variants(run: _Run, layout: Signature) -> list[Diagnosis]:
    """Per ONNX variant with failing cases: the known mistake matching all its cases (the
    variant's own mistakes first, then every other, float32 arithmetic included)."""
    cases, outcomes = run.cases, run.outcomes
    found = []
    for variant in sorted({c.variant for c in cases} - {"standard"}):
        ks = [k for k, c in enumerate(cases) if c.variant == variant]
        failing = [k for k in ks if not run.reports[k].ok]
        if not failing:
            continue
        missing = [k for k in failing if outcomes[k].h_next is None and outcomes[k].c_next is None]
        if len(missing) == len(failing):
            found.append(Diagnosis(
                f"variant {variant}: no results",
                "no usable h_next/c_next for this ONNX variant's cases; a port without "
                "ONNX's variants checks plain vectors (the default), or leaves these cases out",
                f"{len(failing)} {variant} cases have no result", matched=False,
            ))  # fmt: skip
            continue
        usable = [k for k in ks if outcomes[k].finite]
        own = variant_hypotheses(cases[ks[0]].cell.variant)
        match = next(
            (
                hyp
                for hyp in [*own, *hypotheses(layout)]
                if usable and all(run.agrees(k, hyp) for k in usable)
            ),
            None,
        )
        if match is not None:
            name = f"variant {variant}: {match.culprit}" if match in own else match.culprit
            found.append(Diagnosis(name, match.detail,
                                   f"all {len(usable)} {variant} cases",
                                   cases_explained=sum(k in usable for k in failing)))  # fmt: skip
        else:
            found.append(Diagnosis(
                f"variant {variant}: its equations",
                "no known mistake matches; compare with the manifest's equations for "
                f"{variant} (ONNX Runtime's order: peephole, clip, activation)",
                f"{len(failing)} of {len(ks)} {variant} cases fail", matched=False,
            ))  # fmt: skip
    return found


def _fallback(run: _Run, failing: Sequence[int]) -> Diagnosis:
    """No known mistake matches: say where the difference first appears."""
    cases = run.cases
    c_ok = all(
        close(run.outcomes[k].c_next, cases[k].expected["c_next"],
              *tolerance(cases[k], run.atol, run.rtol))
        for k in failing
    )  # fmt: skip
    zeros = [k for k in failing if cases[k].spec.name == "zeros"]
    where = (
        f" (also with zero input and state, where only the biases act: {cases[zeros[0]].name})"
        if zeros
        else ""
    )
    if c_ok:
        return Diagnosis(
            "h_next: output gate or tanh(c_next)",
            "c_next agrees but h_next does not: look at o_t = sigmoid(Wo @ u + bo) and "
            "h_next = o_t * tanh(c_next)",
            f"{len(failing)} failing cases",
            matched=False,
        )
    only32 = all(cases[k].dtype == "float32" for k in failing)
    small = all(run.reports[k].worst_rel() < 1e-3 for k in failing)
    if only32 and small:
        return Diagnosis(
            "float32 rounding",
            "only float32 cases differ, by little: the difference looks like rounding "
            "(accumulation order, a lower-precision exp); loosen --atol/--rtol if acceptable",
            f"{len(failing)} failing cases",
            matched=False,
        )
    return Diagnosis(
        "c_next: input, forget or candidate gate",
        "c_next already differs: look at i_t, f_t, c_t_candidate and "
        "c_next = f_t * c_prev + i_t * c_t_candidate" + where,
        f"{len(failing)} failing cases; no known mistake matches",
        matched=False,
    )
