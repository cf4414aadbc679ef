"""Written from the survivors of mutation testing of lstm_cli/porting/diagnose.py
(docs/mutation.md): when no known mistake matches, the diagnosis says where the difference
first appears, word for word, with the number of failing cases and ``matched`` False."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from lstm_cli.porting.check import SIGNATURES, check_function, check_outcomes
from lstm_cli.porting.diagnose import Diagnosis, _merge
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
