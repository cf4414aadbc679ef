"""Written from the survivors of mutation testing of lstm_cli/porting/diagnose.py
(docs/mutation.md): when no known mistake matches, the diagnosis says where the difference
first appears, word for word, with the number of failing cases and ``matched`` False; and
the edges: the user's tolerances, 3 or 4 non-finite cases, exactly half explained, a tie,
at most three matches, a relative error of exactly 1e-3, variant families, huge inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from lstm_cli.core import lstm_step
from lstm_cli.porting import diagnose as diagnose_module
from lstm_cli.porting.check import SIGNATURES, check_function, check_outcomes, compare
from lstm_cli.porting.diagnose import Diagnosis, _fallback, _merge, _Run
from lstm_cli.porting.mistakes import Hypothesis, hypotheses, variant_hypotheses
from lstm_cli.porting.outcomes import Outcome
from lstm_cli.porting.vectors import build_cases

from . import ports

CASES = build_cases(12, seed=0)


def only_diagnosis(fn, name: str) -> tuple[Diagnosis, list[str]]:
    result = check_function(fn, name, CASES, SIGNATURES["seed"])
    assert not result.ok and len(result.diagnoses) == 1
    return result.diagnoses[0], [r.name for r in result.reports if not r.ok]


def test_h_next_alone_differing_points_at_the_output_gate():
    d, failing = only_diagnosis(ports.off_by_a_little, "off_by_a_little")
    assert d == Diagnosis(
        "h_next: output gate or tanh(c_next)",
        "c_next agrees but h_next does not: look at o_t = sigmoid(Wo @ u + bo) and "
        "h_next = o_t * tanh(c_next)",
        f"{len(failing)} failing cases",
        matched=False,
    )


def test_c_next_differing_points_at_the_cell_update_and_the_zero_case():
    def two_bugs(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):  # swapped, no tanh
        return ports.no_tanh_on_c(x_t, h_prev, c_prev, Wi, Wf, Wo, Wc, bi, bf, bo, bc)

    d, failing = only_diagnosis(two_bugs, "two_bugs")
    zeros = [c.name for c in CASES if c.spec.name == "zeros" and c.name in failing]
    assert zeros  # the biases alone already show the swap
    assert d == Diagnosis(
        "c_next: input, forget or candidate gate",
        "c_next already differs: look at i_t, f_t, c_t_candidate and "
        "c_next = f_t * c_prev + i_t * c_t_candidate (also with zero input and state, where "
        f"only the biases act: {zeros[0]})",
        f"{len(failing)} failing cases; no known mistake matches",
        matched=False,
    )


def test_a_small_float32_only_difference_is_called_rounding():
    def nudged(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
        h, c = ports.correct(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)
        if np.asarray(x_t).dtype != np.float32:
            return h, c
        return h * np.float32(1 + 2e-4), c * np.float32(1 + 2e-4)

    d, failing = only_diagnosis(nudged, "nudged")
    assert failing and all(c.dtype == "float32" for c in CASES if c.name in failing)
    assert d == Diagnosis(
        "float32 rounding",
        "only float32 cases differ, by little: the difference looks like rounding "
        "(accumulation order, a lower-precision exp); loosen --atol/--rtol if acceptable",
        f"{len(failing)} failing cases",
        matched=False,
    )


def test_a_known_mistake_explains_every_failing_case():
    result = check_function(ports.swapped_gates, "swapped", CASES, SIGNATURES["seed"])
    failing = [r for r in result.reports if not r.ok]
    d = result.diagnoses[0]
    assert d.culprit == "gate order: the forget and input gates are swapped"
    assert d.explains == f"all {len(CASES)} cases" and d.matched
    assert d.cases_explained == len(failing) > 0


def test_non_finite_outputs_name_the_cases_and_the_warning():
    result = check_function(ports.naive_sigmoid_float32, "naive", CASES, SIGNATURES["seed"])
    nonfinite = [r.name for r in result.reports if not r.ok and r.h_abs is None]
    d = result.diagnoses[0]
    assert d.culprit == "naive sigmoid/tanh: exp overflows on large pre-activations"
    assert d.detail == (
        "NaN/inf only on the extreme cases, where |z| is large: exp(z) overflows (above ~88 "
        "in float32, ~709 in float64) and exp(z)/(1+exp(z)) or a tanh written with exp gives "
        "inf/inf = NaN; use 1/(1+exp(-z)) with the overflow silenced, or the piecewise stable "
        "form (it warned RuntimeWarning: overflow encountered in exp)"
    )
    more = f" and {len(nonfinite) - 3} more" if len(nonfinite) > 3 else ""
    assert d.explains == ", ".join(nonfinite[:3]) + more
    assert d.matched and d.cases_explained == len(nonfinite) > 0


def test_a_culprit_found_in_several_families_is_merged_and_unmatched_ones_are_kept():
    found = [
        Diagnosis("a", "detail a", "std", True, 2),
        Diagnosis("u", "detail u", "clip", matched=False),
        Diagnosis("a", "detail a", "clip", True, 3),
        Diagnosis("u", "detail u", "peepholes", matched=False),
    ]
    assert _merge(found) == [
        Diagnosis("a", "detail a", "std; clip", True, 5),
        found[1],
        found[3],
    ]


def test_non_finite_outputs_beyond_the_extreme_cases_are_named_as_such():
    def nan_port(x_t, h_prev, *rest):
        nan = np.full(np.shape(h_prev), np.nan)
        return nan, nan

    d, failing = only_diagnosis(nan_port, "nan")
    assert len(failing) == len(CASES) > 3
    assert d == Diagnosis(
        "non-finite outputs",
        "NaN/inf where the reference is finite",
        ", ".join(failing[:3]) + f" and {len(failing) - 3} more",
        cases_explained=len(failing),
    )


def test_a_mistake_matching_the_finite_cases_says_so():
    result = check_function(ports.naive_sigmoid_float32, "naive", CASES, SIGNATURES["seed"])
    finite = [r for r in result.reports if r.h_abs is not None]
    d = result.diagnoses[1]
    assert d.culprit == "float32 arithmetic" and d.detail
    assert d.explains == f"all {len(finite)} cases with finite outputs"


def test_a_mistake_explaining_half_the_failures_is_named_partly():
    def half(x_t, *args):
        if np.asarray(x_t).dtype == np.float32:
            return ports.off_by_a_little(x_t, *args)
        return ports.swapped_gates(x_t, *args)

    result = check_function(half, "half", CASES, SIGNATURES["seed"])
    failing = [r for r in result.reports if not r.ok]
    swapped = [r for r in failing if r.dtype == "float64"]
    assert 2 * len(swapped) >= len(failing) > len(swapped)
    d = result.diagnoses[0]
    assert d.culprit == "partly: gate order: the forget and input gates are swapped"
    assert d.detail and d.matched
    assert d.explains == (
        f"{len(swapped)} of {len(failing)} failing cases (something else is wrong too)"
    )
    assert d.cases_explained == len(swapped)


@pytest.mark.parametrize(("dtype", "factor"), [("float32", 1.01), ("float64", 1 + 2e-4)])
def test_a_large_float32_or_a_float64_difference_is_not_rounding(dtype, factor):
    def nudged(x_t, h_prev, c_prev, *weights):
        h, c = ports.correct(x_t, h_prev, c_prev, *weights)
        if np.asarray(x_t).dtype != dtype:
            return h, c
        return h * factor, c * factor

    d, _ = only_diagnosis(nudged, "nudged")
    assert d.culprit == "c_next: input, forget or candidate gate"


def variant_outcomes(clip: Callable[[Any], Outcome]) -> tuple[list[Diagnosis], int]:
    cases = build_cases(4, seed=0, variants=("clip",))
    outcomes = [
        Outcome(c.expected["h_next"], c.expected["c_next"]) if c.variant == "standard" else clip(c)
        for c in cases
    ]
    result = check_outcomes("port", SIGNATURES["seed"], cases, outcomes, None, None)
    return result.diagnoses, sum(c.variant == "clip" for c in cases)


def test_a_variant_without_results_is_told_so():
    diagnoses, n = variant_outcomes(lambda c: Outcome(None, None))
    assert diagnoses == [
        Diagnosis(
            "variant clip: no results",
            "no usable h_next/c_next for this ONNX variant's cases; a port without ONNX's "
            "variants checks plain vectors (the default), or leaves these cases out",
            f"{n} clip cases have no result",
            matched=False,
        )
    ]


def test_a_variant_no_mistake_explains_points_at_its_equations():
    def off(c: Any) -> Outcome:
        return Outcome(c.expected["h_next"] * 1.01, c.expected["c_next"] * 1.01)

    diagnoses, n = variant_outcomes(off)
    assert diagnoses == [
        Diagnosis(
            "variant clip: its equations",
            "no known mistake matches; compare with the manifest's equations for clip "
            "(ONNX Runtime's order: peephole, clip, activation)",
            f"{n} of {n} clip cases fail",
            matched=False,
        )
    ]


@pytest.mark.parametrize(("atol", "rtol", "absolute"), [(1e-4, 0.0, True), (0.0, 1e-4, False)])
def test_a_mistake_is_matched_within_the_users_tolerances(atol, rtol, absolute):
    """Swapped gates, off by 1e-6 more: matched at the user's looser tolerance only."""

    def swapped_and_off(*args):
        h, c = ports.swapped_gates(*args)
        return (h + 1e-6, c + 1e-6) if absolute else (h * (1 + 1e-6), c * (1 + 1e-6))

    strict = check_function(swapped_and_off, "port", CASES, SIGNATURES["seed"])
    assert not strict.diagnoses[0].matched
    loose = check_function(swapped_and_off, "port", CASES, SIGNATURES["seed"], atol, rtol)
    assert loose.diagnoses[0].culprit == "gate order: the forget and input gates are swapped"


# --------------------------------------------------------------------------- edges, from outcomes


def outcomes_with(cases, changed: dict[int, Callable[[Any], Outcome]]) -> list[Outcome]:
    """The right outputs for every case, except ``changed[k](case)`` for case ``k``."""
    right = [Outcome(c.expected["h_next"], c.expected["c_next"]) for c in cases]
    return [changed[k](c) if k in changed else right[k] for k, c in enumerate(cases)]


def diagnoses_of(cases, changed, atol=None, rtol=None) -> list[Diagnosis]:
    outcomes = outcomes_with(cases, changed)
    return check_outcomes("port", SIGNATURES["seed"], cases, outcomes, atol, rtol).diagnoses


def off(h_by: Callable[[Any], Any], c_by: Callable[[Any], Any]) -> Callable[[Any], Outcome]:
    return lambda c: Outcome(h_by(c.expected["h_next"]), c_by(c.expected["c_next"]))


@pytest.mark.parametrize(("atol", "rtol"), [(1e-2, 0.0), (0.0, 1e-2)])
def test_c_next_agreeing_within_the_users_tolerance_points_at_h_next(atol, rtol):
    """c_next off by half the user's tolerance, h_next by far more: the output gate at the
    user's tolerance; at the default tolerances c_next already differs."""
    c_off = (lambda c: c + 5e-3) if atol else (lambda c: c * (1 + 5e-3))
    changed = {k: off(lambda h: h + 0.1, c_off) for k in range(len(CASES))}
    [d] = diagnoses_of(CASES, changed, atol, rtol)
    assert d.culprit == "h_next: output gate or tanh(c_next)" and not d.matched
    [d] = diagnoses_of(CASES, changed)
    assert d.culprit == "c_next: input, forget or candidate gate"


@pytest.mark.parametrize("n", [3, 4])
def test_three_non_finite_cases_are_named_and_a_fourth_counted(n):
    nan = off(lambda h: h * np.nan, lambda c: c)
    diagnoses = diagnoses_of(CASES, dict.fromkeys(range(n), nan))
    names = ", ".join(c.name for c in CASES[:3]) + (" and 1 more" if n == 4 else "")
    assert diagnoses == [
        Diagnosis("non-finite outputs", "NaN/inf where the reference is finite", names,
                  cases_explained=n),
    ]  # fmt: skip


def test_without_a_failing_zero_case_the_cell_update_is_named_alone():
    changed = dict.fromkeys((1, 3), off(lambda h: h * 1.05 + 0.01, lambda c: c * 1.05 + 0.01))
    assert diagnoses_of(CASES, changed) == [
        Diagnosis(
            "c_next: input, forget or candidate gate",
            "c_next already differs: look at i_t, f_t, c_t_candidate and "
            "c_next = f_t * c_prev + i_t * c_t_candidate",
            "2 failing cases; no known mistake matches",
            matched=False,
        )
    ]


def test_one_mistake_in_two_failing_cases_is_partly_the_first_known_one():
    """Case 1 as the first known mistake computes it, case 3 as a later one: each explains
    half of the failures; the first in the list is named."""
    first, later = hypotheses(SIGNATURES["seed"])[0], hypotheses(SIGNATURES["seed"])[-2]
    as_made = {1: lambda c: Outcome(*first.predict(c)), 3: lambda c: Outcome(*later.predict(c))}
    assert diagnoses_of(CASES, as_made) == [
        Diagnosis(
            f"partly: {first.culprit}", first.detail,
            "1 of 2 failing cases (something else is wrong too)", cases_explained=1,
        )
    ]  # fmt: skip


def test_at_most_three_matching_mistakes_are_listed(monkeypatch):
    swapped = hypotheses(SIGNATURES["seed"])[0]
    same = [Hypothesis(f"name {n}", swapped.detail, swapped.predict) for n in range(5)]
    monkeypatch.setattr(diagnose_module, "hypotheses", lambda layout: same)
    made = {k: (lambda c: Outcome(*swapped.predict(c))) for k in range(len(CASES))}
    diagnoses = diagnoses_of(CASES, made)
    assert [d.culprit for d in diagnoses] == ["name 0", "name 1", "name 2"]


def test_a_worst_relative_error_of_1e_3_is_beyond_rounding():
    """float32 cases off by a relative 1e-3 exactly are not rounding (that is below 1e-3)."""
    k = 2
    case = CASES[k]
    assert case.dtype == "float32"
    outcome = off(lambda h: h * 1.01, lambda c: c * 1.01)(case)
    report = replace(compare(case, outcome, None, None), h_rel=1e-3, c_rel=1e-3)
    run = _Run([case], [outcome], [report], None, None)
    assert _fallback(run, [0]).culprit == "c_next: input, forget or candidate gate"
    run = _Run([case], [outcome], [replace(report, c_rel=0.99e-3)], None, None)
    assert _fallback(run, [0]).culprit == "c_next: input, forget or candidate gate"
    run = _Run([case], [outcome], [replace(report, h_rel=0.99e-3, c_rel=0.99e-3)], None, None)
    assert _fallback(run, [0]).culprit == "float32 rounding"


VARIANT_CASES = build_cases(4, seed=0, variants=("clip", "peepholes"))


def in_variant(name: str, make: Callable[[Any], Outcome]) -> dict[int, Callable[[Any], Outcome]]:
    return {k: make for k, c in enumerate(VARIANT_CASES) if c.variant == name}


def test_a_variant_with_h_next_alone_has_results():
    h_only = in_variant("clip", lambda c: Outcome(c.expected["h_next"], None))
    diagnoses = diagnoses_of(VARIANT_CASES, h_only)
    n = sum(c.variant == "clip" for c in VARIANT_CASES)
    assert [(d.culprit, d.explains) for d in diagnoses] == [
        ("variant clip: its equations", f"{n} of {n} clip cases fail")
    ]


def test_a_family_without_results_does_not_hide_the_next_one():
    changed = {
        **in_variant("clip", lambda c: Outcome(None, None)),
        **in_variant("peepholes", off(lambda h: h * 1.01, lambda c: c * 1.01)),
    }
    diagnoses = diagnoses_of(VARIANT_CASES, changed)
    assert [d.culprit for d in diagnoses] == [
        "variant clip: no results",
        "variant peepholes: its equations",
    ]


def test_a_variants_own_mistake_is_named_with_its_detail():
    own = variant_hypotheses(next(c for c in VARIANT_CASES if c.variant == "clip").cell.variant)
    result = check_outcomes(
        "port", SIGNATURES["seed"], VARIANT_CASES,
        outcomes_with(VARIANT_CASES, in_variant("clip", lambda c: Outcome(*own[0].predict(c)))),
        None, None,
    )  # fmt: skip
    n = sum(c.variant == "clip" for c in VARIANT_CASES)
    failing = sum(not r.ok for r in result.reports)
    assert failing > 0
    assert result.diagnoses == [
        Diagnosis(f"variant clip: {own[0].culprit}", own[0].detail, f"all {n} clip cases",
                  cases_explained=failing)
    ]  # fmt: skip


def test_float32_arithmetic_everywhere_is_named_with_its_detail():
    [f32] = [h for h in hypotheses(SIGNATURES["seed"]) if h.culprit == "float32 arithmetic"]
    made = {k: (lambda c: Outcome(*f32.predict(c))) for k in range(len(VARIANT_CASES))}
    result = check_outcomes(
        "port", SIGNATURES["seed"], VARIANT_CASES, outcomes_with(VARIANT_CASES, made), None, None
    )
    failing = sum(not r.ok for r in result.reports)
    assert result.diagnoses == [
        Diagnosis("float32 arithmetic", f32.detail,
                  f"all {len(VARIANT_CASES)} cases (clip, peepholes, standard)",
                  cases_explained=failing)
    ]  # fmt: skip


def test_replaying_the_mistakes_on_huge_inputs_gives_no_warning():
    """A case with inputs near float64's limit (as a vectors file may hold): the float32
    mistake's cast overflows while it is replayed; the diagnosis warns nothing (warnings
    fail the tests)."""
    case = CASES[11]
    x = case.inputs["x_t"] * 1e300
    weights = (case.params[n] for n in ("Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc"))
    h, c = lstm_step(x, case.inputs["h_prev"], case.inputs["c_prev"], *weights)
    huge = replace(case, inputs={**case.inputs, "x_t": x}, expected={"h_next": h, "c_next": c})
    [d] = diagnoses_of([huge], {0: off(lambda v: v + 0.1, lambda v: v)})
    assert d.culprit == "h_next: output gate or tanh(c_next)"
