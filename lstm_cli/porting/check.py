"""Check someone's LSTM cell against the reference: run it on golden vectors, compare h_next
and c_next per case, and when it disagrees, name the likely bug.

The diagnosis replays the reference with each known mistake built in (the gate blocks in
another order, ``[x, h]`` instead of ``[h, x]``, a missing bias, a missing tanh, outputs
swapped, float32 arithmetic, ...) and reports the mistakes whose outputs match the user's on
every case. Non-finite outputs where the reference is finite point at an overflowing exp
(a naive sigmoid or tanh).

Layouts (how the user's function takes the cell; all return ``(h_next, c_next)``):

- ``seed``: ``fn(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)``, the notebook's.
- ``pytorch``: ``fn(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh)``, ``nn.LSTMCell``'s
  arrays: (4H, F), (4H, H), (4H,), (4H,), gate blocks i, f, g, o; both biases non-zero.
- ``keras``: ``fn(x, h, c, kernel, recurrent_kernel, bias)``, Keras 3 ``LSTM``'s arrays:
  (F, 4H), (H, 4H), (4H,), gate blocks i, f, c, o.
- ``onnx``: ``fn(x, h, c, W, R, B)``, ONNX ``LSTM``'s inputs for one direction: W (1, 4H, F),
  R (1, 4H, H), B (1, 8H) = [Wb, Rb] with both halves non-zero; gate blocks i, o, f, c.

``x`` is (F,) or (B, F) and ``h``, ``c`` are (H,) or (B, H), NumPy arrays in the case's dtype.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from lstm_cli.core import Array, clip_preactivation, lstm_step_variant, sigmoid
from lstm_cli.errors import Hint, UserCodeError
from lstm_cli.layouts import ONNX_ORDER, to_keras, to_onnx, to_pytorch
from lstm_cli.params import PARAM_NAMES, LSTMParams

from .vectors import TOLERANCES, Case

GATES = ("i", "f", "o", "c")  # the native gates: input, forget, output, candidate


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Signature:
    """How a user's function takes the cell, and how its gate blocks are named and ordered."""

    name: str
    signature: str
    order: tuple[str, ...] | None  # stacked gate order (native letters), None: separate
    letters: dict[str, str]  # native letter -> the framework's
    args: Callable[[Case], tuple[Array, ...]]
    # extra bias mistakes of this layout: their labels, and per case the native biases they use
    bias_mistakes: tuple[str, ...]
    biases: Callable[[Case], dict[str, dict[str, Array]]]


def _bias_split(case: Case) -> Array:
    """A deterministic non-zero share of the bias for a second bias vector (bias_hh)."""
    rng = np.random.default_rng([case.index, case.n_hidden, 7])
    b = np.concatenate([case.params[f"b{g}"] for g in ("i", "f", "c", "o")])
    scale = float(np.abs(b).max()) or 1.0
    return (0.5 * scale * rng.standard_normal(b.shape)).astype(case.dtype)


def _seed_args(case: Case) -> tuple[Array, ...]:
    p = case.params
    return (
        case.inputs["x_t"],
        case.inputs["h_prev"],
        case.inputs["c_prev"],
        *(p[n] for n in ("Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")),
    )


def _params(case: Case) -> LSTMParams:
    return LSTMParams.from_mapping({n: case.params[n] for n in PARAM_NAMES}, case.name)


def _pytorch_args(case: Case) -> tuple[Array, ...]:
    t = to_pytorch(_params(case))
    r = _bias_split(case)
    x = case.inputs
    return (x["x_t"], x["h_prev"], x["c_prev"], t["weight_ih"], t["weight_hh"], t["bias_ih"] - r, r)


def _pytorch_biases(case: Case) -> dict[str, dict[str, Array]]:
    """Biases as seen by a function that uses only one of PyTorch's two bias vectors."""
    r = _bias_split(case)
    H = case.n_hidden
    full = to_pytorch(_params(case))["bias_ih"]

    def native(b: Array) -> dict[str, Array]:
        return {g: b[k * H : (k + 1) * H] for k, g in enumerate(("i", "f", "c", "o"))}

    return dict(zip(PYTORCH_BIAS_MISTAKES, (native(full - r), native(r)), strict=True))


PYTORCH_BIAS_MISTAKES = (
    "uses bias_ih only (bias_hh is ignored; PyTorch adds both)",
    "uses bias_hh only (bias_ih is ignored; PyTorch adds both)",
)


def _keras_args(case: Case) -> tuple[Array, ...]:
    k = to_keras(_params(case))
    x = case.inputs
    return (x["x_t"], x["h_prev"], x["c_prev"], k["kernel"], k["recurrent_kernel"], k["bias"])


def _no_biases(case: Case) -> dict[str, dict[str, Array]]:
    return {}


def _onnx_args(case: Case) -> tuple[Array, ...]:
    o = to_onnx(_params(case))
    r = _bias_split(case)
    H4 = 4 * case.n_hidden
    wb = o["B"][0, :H4] - r
    B = np.concatenate((wb, r))[None]  # (1, 8H): [Wb, Rb], both non-zero
    x = case.inputs
    return (x["x_t"], x["h_prev"], x["c_prev"], o["W"], o["R"], B.astype(case.dtype))


def _onnx_biases(case: Case) -> dict[str, dict[str, Array]]:
    """Biases as seen by a function that uses only one half of ONNX's B."""
    r = _bias_split(case)
    H = case.n_hidden
    full = to_onnx(_params(case))["B"][0, : 4 * H]

    def native(b: Array) -> dict[str, Array]:
        return {g: b[k * H : (k + 1) * H] for k, g in enumerate(ONNX_ORDER)}

    return dict(zip(ONNX_BIAS_MISTAKES, (native(full - r), native(r)), strict=True))


ONNX_BIAS_MISTAKES = (
    "uses Wb only (the second half of B, Rb, is ignored; ONNX adds both)",
    "uses Rb only (the first half of B, Wb, is ignored; ONNX adds both)",
)


SIGNATURES: dict[str, Signature] = {
    "seed": Signature(
        "seed",
        "fn(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc) -> (h_next, c_next)",
        None,
        {g: g for g in GATES},
        _seed_args,
        (),
        _no_biases,
    ),
    "pytorch": Signature(
        "pytorch",
        "fn(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh) -> (h_next, c_next)",
        ("i", "f", "c", "o"),
        {"i": "i", "f": "f", "o": "o", "c": "g"},
        _pytorch_args,
        PYTORCH_BIAS_MISTAKES,
        _pytorch_biases,
    ),
    "keras": Signature(
        "keras",
        "fn(x, h, c, kernel, recurrent_kernel, bias) -> (h_next, c_next)",
        ("i", "f", "c", "o"),
        {g: g for g in GATES},
        _keras_args,
        (),
        _no_biases,
    ),
    "onnx": Signature(
        "onnx",
        "fn(x, h, c, W, R, B) -> (h_next, c_next); W (1, 4H, F), R (1, 4H, H), B (1, 8H)",
        ONNX_ORDER,
        {g: g for g in GATES},
        _onnx_args,
        ONNX_BIAS_MISTAKES,
        _onnx_biases,
    ),
}


# --------------------------------------------------------------------------- running


@dataclass
class Outcome:
    """What the user's code returned for one case (None: no usable array)."""

    h_next: Array | None
    c_next: Array | None
    notes: list[str] = field(default_factory=list)


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
                Hint.NO_BATCH if case.batch else None,
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


# --------------------------------------------------------------------------- comparing


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

    def worst_rel(self) -> float:
        vals = [v for v in (self.h_rel, self.c_rel) if v is not None]
        return max(vals) if len(vals) == 2 else float("inf")


def tolerance(case: Case, atol: float | None, rtol: float | None) -> tuple[float, float]:
    """The user's tolerances, or the case dtype's defaults (TOLERANCES)."""
    d = TOLERANCES[case.dtype]
    return (d["atol"] if atol is None else atol, d["rtol"] if rtol is None else rtol)


def _errors(mine: Array | None, ref: Array) -> tuple[float | None, float | None]:
    """Max absolute error and max|mine - ref| / max|ref| (None if not comparable/finite)."""
    if mine is None or not np.all(np.isfinite(mine)):
        return None, None
    diff = float(np.max(np.abs(mine - ref))) if ref.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return diff, (diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf")))


def _close(a: Array | None, b: Array, atol: float, rtol: float) -> bool:
    return a is not None and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def compare(case: Case, outcome: Outcome, atol: float | None, rtol: float | None) -> CaseReport:
    a, r = tolerance(case, atol, rtol)
    ref_h, ref_c = case.expected["h_next"], case.expected["c_next"]
    h_abs, h_rel = _errors(outcome.h_next, ref_h)
    c_abs, c_rel = _errors(outcome.c_next, ref_c)
    notes = list(outcome.notes)
    for name, arr in (("h_next", outcome.h_next), ("c_next", outcome.c_next)):
        if arr is not None and not np.all(np.isfinite(arr)):
            notes.append(f"{name} is not finite ({_nonfinite(arr)})")
    ok = _close(outcome.h_next, ref_h, a, r) and _close(outcome.c_next, ref_c, a, r)
    shape = f"{'-' if case.batch is None else case.batch},{case.n_features},{case.n_hidden}"
    return CaseReport(case.name, case.kind, case.dtype, shape, h_abs, h_rel, c_abs, c_rel, ok,
                      notes, label=_short(case.name))  # fmt: skip


def _short(name: str) -> str:
    """``case_003_batch_wide_float64`` -> ``batch_wide`` (the dtype has its own column)."""
    return re.sub(r"_float(32|64)$", "", re.sub(r"^case_\d+_", "", name))


def _nonfinite(arr: Array) -> str:
    n_nan, n_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
    return ", ".join(p for p in (f"{n_nan} NaN" * bool(n_nan), f"{n_inf} inf" * bool(n_inf)) if p)


# --------------------------------------------------------------------------- diagnosis


def _step(
    case: Case,
    gate_source: dict[str, str] | None = None,
    x_first: bool = False,
    biases: dict[str, Array] | None = None,
    candidate: Callable[[Array], Array] = np.tanh,
    h_of_c: Callable[[Array], Array] = np.tanh,
    dtype: str = "float64",
) -> tuple[Array, Array]:
    """The reference step with a mistake built in (see the Hypothesis list)."""
    p = {k: np.asarray(v, dtype=dtype) for k, v in case.params.items()}
    x, h, c = (np.asarray(case.inputs[k], dtype=dtype) for k in ("x_t", "h_prev", "c_prev"))
    src = gate_source or {g: g for g in GATES}
    b = {g: p[f"b{src[g]}"] for g in GATES}
    if biases is not None:
        b = {g: np.asarray(biases[src[g]], dtype=dtype) for g in GATES}
    u = np.concatenate((x, h) if x_first else (h, x), axis=-1)
    z = {g: u @ p[f"W{src[g]}"].T + b[g] for g in GATES}
    i, f, o = sigmoid(z["i"]), sigmoid(z["f"]), sigmoid(z["o"])
    g_ = candidate(z["c"])
    c_next = f * c + i * g_
    return o * h_of_c(c_next), c_next


@dataclass(frozen=True)
class Hypothesis:
    """A known mistake: its name, what it means, and the outputs it would produce."""

    culprit: str
    detail: str
    predict: Callable[[Case], tuple[Array, Array]]
    float32: bool = False  # matched with float32 tolerances


@dataclass
class Diagnosis:
    culprit: str
    detail: str
    explains: str


def _perm_text(src: dict[str, str], layout: Signature) -> tuple[str, str]:
    L = layout.letters
    moved = [g for g in GATES if src[g] != g]
    if layout.order is None:
        uses = " and ".join(f"{_act(g)} with W{src[g]}, b{src[g]}" for g in moved)
        pairs = sorted({tuple(sorted((g, src[g]))) for g in moved})
        if len(moved) == 2:
            a, b_ = pairs[0]
            culprit = f"gate order: the {_gate_word(a)} and {_gate_word(b_)} gates are swapped"
        else:
            culprit = (
                "gate order: " + ", ".join(f"{_gate_word(g)} gate" for g in moved) + " permuted"
            )
        return culprit, f"your function computes {uses}"
    # stacked: the user read block k as gate assumed[k]
    inverse = {v: k for k, v in src.items()}
    assumed = [inverse[g] for g in layout.order]
    true_txt = ", ".join(L[g] for g in layout.order)
    got_txt = ", ".join(L[g] for g in assumed)
    swapped = [L[g] for g in layout.order if inverse[g] != g]
    culprit = (
        f"gate order: {' and '.join(swapped)} blocks swapped"
        if len(swapped) == 2
        else (f"gate order: blocks {', '.join(swapped)} permuted")
    )
    return culprit, (
        f"your function reads the 4H gate blocks as ({got_txt}); {layout.name}'s order is "
        f"({true_txt})"
    )


def _act(g: str) -> str:
    return {"i": "i_t", "f": "f_t", "o": "o_t", "c": "c_t_candidate"}[g]


def _gate_word(g: str) -> str:
    return {"i": "input", "f": "forget", "o": "output", "c": "candidate"}[g]


def hypotheses(layout: Signature) -> list[Hypothesis]:
    """Every known mistake, as a modified reference step."""
    out: list[Hypothesis] = []
    for perm in itertools.permutations(GATES):
        src = dict(zip(GATES, perm, strict=True))
        if perm == GATES:
            continue
        culprit, detail = _perm_text(src, layout)
        out.append(Hypothesis(culprit, detail, partial(_step, gate_source=src)))
    if layout.order is None:
        out.append(Hypothesis(
            "concatenation order: u = [x_t, h_prev]",
            "the seed's u is concat(h_prev, x_t): the H hidden columns of each W come first",
            lambda c: _step(c, x_first=True),
        ))  # fmt: skip
    L = layout.letters
    for g in GATES:
        bname = f"b{g}" if layout.order is None else f"the {L[g]} block of the bias"
        out.append(Hypothesis(
            f"missing {_gate_word(g)} bias",
            f"{bname} is not added: z_{g} = W{g} @ u only",
            partial(_step_without_bias, gate=g),
        ))  # fmt: skip
    out.append(Hypothesis(
        "missing biases", "no bias is added to any gate",
        lambda c: _step(c, biases={g: np.zeros(c.n_hidden) for g in GATES}),
    ))  # fmt: skip
    out.append(Hypothesis(
        "forget bias + 1",
        "1 is added to the forget gate's pre-activation (Keras's unit_forget_bias applied "
        "at run time instead of at initialisation)",
        lambda c: _step(c, biases={**_native_biases(c), "f": c.params["bf"] + 1.0}),
    ))  # fmt: skip
    for label in layout.bias_mistakes:
        out.append(Hypothesis(
            f"bias: {label.split(' (')[0]}", label,
            partial(_step_layout_bias, layout=layout, label=label),
        ))  # fmt: skip
    out.append(Hypothesis(
        "candidate uses sigmoid", "c_t_candidate = sigmoid(z_c); the seed's is tanh(z_c)",
        lambda c: _step(c, candidate=sigmoid),
    ))  # fmt: skip
    out.append(Hypothesis(
        "missing tanh on c_next", "h_next = o_t * c_next; the seed's is o_t * tanh(c_next)",
        lambda c: _step(c, h_of_c=lambda v: v),
    ))  # fmt: skip
    out.append(Hypothesis(
        "outputs swapped", "your function returns (c_next, h_next); expected (h_next, c_next)",
        _step_outputs_swapped,
    ))  # fmt: skip
    out.append(Hypothesis(
        "float32 arithmetic",
        "the float64 cases are off by float32 rounding: your function computes in float32 "
        "(or casts its inputs down)",
        lambda c: _step(c, dtype="float32"),
        float32=True,
    ))  # fmt: skip
    return out


def _native_biases(case: Case) -> dict[str, Array]:
    return {g: case.params[f"b{g}"] for g in GATES}


def _step_without_bias(case: Case, gate: str) -> tuple[Array, Array]:
    return _step(case, biases={**_native_biases(case), gate: np.zeros(case.n_hidden)})


def _step_layout_bias(case: Case, layout: Signature, label: str) -> tuple[Array, Array]:
    return _step(case, biases=layout.biases(case)[label])


def _step_outputs_swapped(case: Case) -> tuple[Array, Array]:
    h, c = _step(case)
    return c, h


def _finite(o: Outcome) -> bool:
    return (
        o.h_next is not None
        and o.c_next is not None
        and bool(np.all(np.isfinite(o.h_next)))
        and bool(np.all(np.isfinite(o.c_next)))
    )


def diagnose(
    cases: Sequence[Case],
    outcomes: Sequence[Outcome],
    reports: Sequence[CaseReport],
    layout: Signature,
    atol: float | None,
    rtol: float | None,
) -> list[Diagnosis]:
    """Name the likely bug(s) behind the failing cases (empty when nothing fails)."""
    failing = [k for k, r in enumerate(reports) if not r.ok]
    if not failing:
        return []
    found: list[Diagnosis] = []
    # 1. non-finite outputs where the reference is finite: an overflowing exp
    nonfinite = [
        k for k in failing
        if any(a is not None and not np.all(np.isfinite(a))
               for a in (outcomes[k].h_next, outcomes[k].c_next))
    ]  # fmt: skip
    if nonfinite:
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
        found.append(Diagnosis(culprit, detail, f"{names}{more}"))
    # 2. ONNX variant cases: the variant's own known mistakes
    found += _diagnose_variants(cases, outcomes, reports, atol, rtol)
    # 3. mistakes whose outputs match the user's on every comparable standard case
    usable = [
        k for k in range(len(cases)) if _finite(outcomes[k]) and cases[k].variant == "standard"
    ]
    usable_failing = [k for k in usable if not reports[k].ok]
    if not usable_failing:
        return found
    best: tuple[int, Hypothesis | None] = (0, None)
    matches = []
    for hyp in hypotheses(layout):
        hits = failing_hits = 0
        for k in usable:
            a, r = tolerance(cases[k], atol, rtol)
            a32, r32 = TOLERANCES["float32"]["atol"], TOLERANCES["float32"]["rtol"]
            if hyp.float32 or cases[k].dtype == "float32":
                a, r = max(a, a32), max(r, r32)
            with np.errstate(all="ignore"):
                h, c = hyp.predict(cases[k])
            if _close(outcomes[k].h_next, h, a, r) and _close(outcomes[k].c_next, c, a, r):
                hits += 1
                failing_hits += not reports[k].ok
        if hits == len(usable):
            matches.append(hyp)
        elif failing_hits > best[0]:
            best = (failing_hits, hyp)
    n_f = len(usable_failing)
    scope = f"all {len(usable)} cases" + (
        " with finite outputs" if len(usable) < len(cases) else ""
    )
    for hyp in matches[:3]:
        found.append(Diagnosis(hyp.culprit, hyp.detail, scope))
    if not matches and best[1] is not None and best[0] * 2 >= n_f:
        hyp = best[1]
        found.append(Diagnosis(
            f"partly: {hyp.culprit}", hyp.detail,
            f"{best[0]} of {n_f} failing cases (something else is wrong too)",
        ))  # fmt: skip
    if not matches and (best[1] is None or best[0] * 2 < n_f):
        found.append(_fallback(cases, outcomes, reports, usable_failing, atol, rtol))
    return found


def _variant_step(case: Case, po_on_c_prev: bool = False, **off: Any) -> tuple[Array, Array]:
    """The variant case's reference step with some of its variant switched ``off``
    (``peepholes``, ``clip``, ``input_forget`` = True), or with the output peephole reading
    c_prev instead of c_next, or (``swap_pf_po``) Pf and Po exchanged."""
    st = case.settings
    p = {k: np.asarray(v, dtype=np.float64) for k, v in case.params.items()}
    x, h, c = (np.asarray(case.inputs[k], dtype=np.float64) for k in ("x_t", "h_prev", "c_prev"))
    peep = st.get("peepholes") and not off.get("peepholes")
    P = {k: p[k] for k in ("Pi", "Pf", "Po")} if peep else {}
    if off.get("swap_pf_po"):
        P = {"Pi": P["Pi"], "Pf": P["Po"], "Po": P["Pf"]}
    clip = None if off.get("clip") else st.get("clip")
    coupled = bool(st.get("input_forget")) and not off.get("input_forget")
    eight = {k: p[k] for k in ("Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")}
    r = lstm_step_variant(x, h, c, **eight, **P, clip=clip, input_forget=coupled)
    if not po_on_c_prev:
        return r.h_next, r.c_next
    z_o = clip_preactivation(r.u @ p["Wo"].T + p["bo"] + p["Po"] * r.c_prev, clip)
    return sigmoid(z_o) * np.tanh(r.c_next), r.c_next


def variant_hypotheses(settings: dict[str, Any]) -> list[Hypothesis]:
    """The known mistakes of a port of ONNX's variants, for cases with these settings."""
    out = []
    if settings.get("peepholes"):
        out.append(Hypothesis(
            "peepholes ignored", "Pi, Pf, Po are not added to z_i, z_f, z_o",
            partial(_variant_step, peepholes=True),
        ))  # fmt: skip
        out.append(Hypothesis(
            "output peephole reads c_prev",
            "z_o adds Po * c_prev; ONNX's output gate peeks at the new cell state, Po * c_next",
            partial(_variant_step, po_on_c_prev=True),
        ))  # fmt: skip
        out.append(Hypothesis(
            "peepholes Pf and Po swapped",
            "ONNX stacks P as [Pi, Po, Pf]: reading it as [Pi, Pf, Po] swaps Pf and Po",
            partial(_variant_step, swap_pf_po=True),
        ))  # fmt: skip
    if settings.get("clip") is not None:
        out.append(Hypothesis(
            "clip ignored", "the pre-activations are not clipped to [-clip, clip]",
            partial(_variant_step, clip=True),
        ))  # fmt: skip
    if settings.get("input_forget"):
        out.append(Hypothesis(
            "input_forget ignored",
            "f_t = sigmoid(Wf @ u + bf); with input_forget ONNX couples it: f_t = 1 - i_t",
            partial(_variant_step, input_forget=True),
        ))  # fmt: skip
    return out


def _diagnose_variants(
    cases: Sequence[Case],
    outcomes: Sequence[Outcome],
    reports: Sequence[CaseReport],
    atol: float | None,
    rtol: float | None,
) -> list[Diagnosis]:
    """Per ONNX variant with failing cases: the known mistake matching all its cases."""
    found = []
    variants = sorted({c.variant for c in cases} - {"standard"})
    for variant in variants:
        ks = [k for k, c in enumerate(cases) if c.variant == variant]
        failing = [k for k in ks if not reports[k].ok]
        if not failing:
            continue
        missing = [k for k in failing if outcomes[k].h_next is None and outcomes[k].c_next is None]
        if len(missing) == len(failing):
            found.append(Diagnosis(
                f"variant {variant}: no results",
                "no usable h_next/c_next for this ONNX variant's cases; a port without "
                "ONNX's variants takes vectors made with: lstm-cell vectors --variants none",
                f"{len(failing)} {variant} cases",
            ))  # fmt: skip
            continue
        usable = [k for k in ks if _finite(outcomes[k])]
        match = None
        for hyp in variant_hypotheses(cases[ks[0]].settings):
            if usable and all(_agrees(cases[k], outcomes[k], hyp, atol, rtol) for k in usable):
                match = hyp
                break
        if match is not None:
            found.append(Diagnosis(f"variant {variant}: {match.culprit}", match.detail,
                                   f"all {len(usable)} {variant} cases"))  # fmt: skip
        else:
            found.append(Diagnosis(
                f"variant {variant}: its equations",
                "no known mistake matches; compare with the manifest's equations for "
                f"{variant} (ONNX Runtime's order: peephole, clip, activation)",
                f"{len(failing)} of {len(ks)} {variant} cases",
            ))  # fmt: skip
    return found


def _agrees(
    case: Case, outcome: Outcome, hyp: Hypothesis, atol: float | None, rtol: float | None
) -> bool:
    a, r = tolerance(case, atol, rtol)
    if case.dtype == "float32":
        a, r = max(a, TOLERANCES["float32"]["atol"]), max(r, TOLERANCES["float32"]["rtol"])
    with np.errstate(all="ignore"):
        h, c = hyp.predict(case)
    return _close(outcome.h_next, h, a, r) and _close(outcome.c_next, c, a, r)


def _fallback(
    cases: Sequence[Case],
    outcomes: Sequence[Outcome],
    reports: Sequence[CaseReport],
    failing: Sequence[int],
    atol: float | None,
    rtol: float | None,
) -> Diagnosis:
    """No known mistake matches: say where the difference first appears."""
    c_ok = all(
        _close(outcomes[k].c_next, cases[k].expected["c_next"], *tolerance(cases[k], atol, rtol))
        for k in failing
    )
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
        )
    only32 = all(cases[k].dtype == "float32" for k in failing)
    small = all(r.worst_rel() < 1e-3 for r in (reports[k] for k in failing))
    if only32 and small:
        return Diagnosis(
            "float32 rounding",
            "only float32 cases differ, by little: the difference looks like rounding "
            "(accumulation order, a lower-precision exp); loosen --atol/--rtol if acceptable",
            f"{len(failing)} failing cases",
        )
    return Diagnosis(
        "c_next: input, forget or candidate gate",
        "c_next already differs: look at i_t, f_t, c_t_candidate and "
        "c_next = f_t * c_prev + i_t * c_t_candidate" + where,
        f"{len(failing)} failing cases; no known mistake matches",
    )


# --------------------------------------------------------------------------- the verdict


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
        return max(self.reports, key=lambda r: (not r.ok, r.worst_rel()))

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
