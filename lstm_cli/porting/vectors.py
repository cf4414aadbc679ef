"""Golden test vectors: deterministic cases (params, inputs and every intermediate) for
checking a port of the cell, written as JSON and .npz with a ``manifest.json``.

A case is drawn from a list of specs (shapes, magnitudes, dtype) cycled through: the first
``len(SPECS)`` cases use each spec's dtype, the next round the other dtype, and so on. Case
``k`` draws its numbers from ``np.random.default_rng([seed, k])``, so a case does not depend on
how many were asked for. Inputs and params are exactly representable in the case's dtype; the
expected values are computed from them in float64 (the truth a port is held against).

Variants: a case has a ``variant`` name and ``settings`` (``peepholes``, ``clip``,
``input_forget``: ONNX's variants, see :mod:`lstm_cli.core`); ``case.cell`` is its cell, an
:class:`~lstm_cli.params.LSTMParams` whose variant the settings switch on (peepholes from
``Pi, Pf, Po`` in ``case.params``). ``REFERENCES[variant](cell, inputs)`` computes its expected
arrays (a dict of float64 arrays, ``h_next`` and ``c_next`` among them) with ``cell.step``.
The ONNX variants ``peepholes``, ``clip``, ``input_forget`` and ``onnx_all`` (all three) are
registered here, each with its specs in ``VARIANT_SPECS``; ``build_cases(..., variants=(...))``
appends their cases after the standard ones. ``check MODULE:FUNCTION`` only runs ``standard``
cases (the user's function has the seed's signature); ``check --vectors`` compares every case
(and skips cases of variants it has no reference for).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.init import notebook_default
from lstm_cli.params import BIAS_NAMES, PARAM_NAMES, PEEPHOLE_NAMES, WEIGHT_NAMES, LSTMParams

MANIFEST_FORMAT_VERSION = 1  # of a vectors folder's manifest
MANIFEST = "manifest.json"
INPUT_NAMES = ("x_t", "h_prev", "c_prev")
DTYPES = ("float64", "float32")

EQUATIONS = [
    "u = concat(h_prev, x_t)  # hidden state FIRST, then input: (H + F,) or (B, H + F)",
    "z_i = Wi @ u + bi; z_f = Wf @ u + bf; z_o = Wo @ u + bo; z_c = Wc @ u + bc",
    "i_t = sigmoid(z_i)  # input gate",
    "f_t = sigmoid(z_f)  # forget gate",
    "o_t = sigmoid(z_o)  # output gate",
    "c_t_candidate = tanh(z_c)  # cell candidate ('g' in PyTorch)",
    "c_next = f_t * c_prev + i_t * c_t_candidate",
    "h_next = o_t * tanh(c_next)",
    "sigmoid(z) = 1 / (1 + exp(-z)), computed without overflow for any finite z",
]
# ONNX's variants, as a porter implements them (ONNX Runtime's order: peephole, clip, activation)
VARIANT_EQUATIONS: dict[str, list[str]] = {
    "peepholes": [
        "peephole weights Pi, Pf, Po, each (H,), act elementwise on the cell state:",
        "z_i = Wi @ u + bi + Pi * c_prev;  z_f = Wf @ u + bf + Pf * c_prev",
        "c_next = f_t * c_prev + i_t * c_t_candidate  (as in the seed)",
        "z_o = Wo @ u + bo + Po * c_next  # the output gate peeks at the NEW cell state",
        "ONNX's P input stacks them as [Pi, Po, Pf]",
    ],
    "clip": [
        "every pre-activation (peephole terms included) is clipped before its activation:",
        "z_* = min(max(z_*, -clip), clip);  c_next and tanh(c_next) are NOT clipped",
        "pre_activations in the case files are the clipped values",
    ],
    "input_forget": [
        "the forget gate is coupled to the input gate: f_t = 1 - i_t",
        "Wf and bf are present but unused; z_f is reported as -z_i (sigmoid(-z_i) = 1 - i_t)",
    ],
    "onnx_all": ["peepholes, clip and input_forget together, in the order above"],
}
VARIANT_SETTINGS: dict[str, dict[str, Any]] = {
    "peepholes": {"peepholes": True, "clip": None, "input_forget": False},
    "clip": {"peepholes": False, "clip": 1.5, "input_forget": False},
    "input_forget": {"peepholes": False, "clip": None, "input_forget": True},
    "onnx_all": {"peepholes": True, "clip": 2.0, "input_forget": True},
}
VARIANTS = tuple(VARIANT_SETTINGS)
GATE_ORDER = (
    "separate arrays per gate: Wf, Wi, Wo, Wc, each (H, H + F), act on u = concat(h_prev, x_t) "
    "(the H hidden columns first, then the F input columns); bf, bi, bo, bc, each (H,). "
    "Stacked layouts elsewhere: PyTorch i, f, g, o; Keras i, f, c, o; ONNX i, o, f, c."
)
# Defaults of `check`: a correct port agrees with the float64 truth within these.
TOLERANCES = {
    "float64": {"atol": 1e-10, "rtol": 1e-8},
    "float32": {"atol": 2e-5, "rtol": 1e-4},
}


@dataclass(frozen=True)
class CaseSpec:
    """How to draw one case: shapes, magnitudes, dtype, and what it is for."""

    name: str
    kind: str  # random | edge | extreme
    description: str
    n_features: int
    n_hidden: int
    batch: int | None
    dtype: str
    weight_scale: float = 1.0
    input_scale: float = 1.0
    special: str = ""  # "notebook", "zeros", "big_c"
    variant: str = "standard"


SPECS: tuple[CaseSpec, ...] = (
    CaseSpec(
        "notebook",
        "random",
        "the seed notebook's cell (seed 42)",
        10,
        4,
        None,
        "float64",
        special="notebook",
    ),
    CaseSpec("small", "random", "F = 3, H = 2, one example", 3, 2, None, "float64"),
    CaseSpec("batch", "random", "a batch of 3, H > F", 5, 7, 3, "float32"),
    CaseSpec("batch_wide", "random", "a batch of 4, F > H", 6, 3, 4, "float64"),
    CaseSpec("square", "random", "H = F = 8, one example", 8, 8, None, "float32"),
    CaseSpec(
        "tiny",
        "random",
        "tiny magnitudes (1e-4) everywhere",
        4,
        5,
        2,
        "float64",
        weight_scale=1e-4,
        input_scale=1e-4,
    ),
    CaseSpec(
        "large",
        "extreme",
        "large magnitudes: the gates saturate",
        6,
        4,
        3,
        "float32",
        weight_scale=3.0,
        input_scale=3.0,
    ),
    CaseSpec(
        "zeros",
        "edge",
        "zero input and state: only the biases act",
        2,
        3,
        None,
        "float64",
        special="zeros",
    ),
    CaseSpec("one_unit", "edge", "H = F = 1, a batch of 5", 1, 1, 5, "float32"),
    CaseSpec(
        "big_cell",
        "edge",
        "a cell state of size ~20: tanh(c_next) saturates",
        3,
        4,
        2,
        "float64",
        special="big_c",
    ),
    CaseSpec(
        "overflow",
        "extreme",
        "pre-activations of size ~1000: exp(-z) overflows",
        4,
        3,
        3,
        "float32",
        weight_scale=60.0,
        input_scale=10.0,
    ),
    CaseSpec(
        "overflow_1",
        "extreme",
        "pre-activations of size ~1000, one example",
        5,
        2,
        None,
        "float64",
        weight_scale=80.0,
        input_scale=10.0,
    ),
    CaseSpec("wide", "random", "H = 32, F = 16, a batch of 2", 16, 32, 2, "float32"),
)


def _variant_specs(variant: str, what: str) -> tuple[CaseSpec, ...]:
    return (
        CaseSpec(f"{variant}", "variant", f"{what}, one example", 3, 4, None, "float64",
             variant=variant),
        CaseSpec(f"{variant}_batch", "variant", f"{what}, a batch of 3", 5, 3, 3, "float32",
             variant=variant),
        CaseSpec(f"{variant}_large", "variant", f"{what}, large magnitudes", 4, 2, 2, "float64",
             weight_scale=3.0, input_scale=3.0, variant=variant),
    )  # fmt: skip


# Specs of variants other than "standard", appended by build_cases(variants=...).
VARIANT_SPECS: dict[str, tuple[CaseSpec, ...]] = {
    "peepholes": _variant_specs("peepholes", "ONNX peepholes"),
    "clip": _variant_specs("clip", "ONNX cell clip 1.5"),
    "input_forget": _variant_specs("input_forget", "ONNX input_forget (f = 1 - i)"),
    "onnx_all": _variant_specs("onnx_all", "peepholes, clip 2 and input_forget"),
}


@dataclass(frozen=True)
class Case:
    """One golden vector: params and inputs in ``dtype``, and its spec."""

    index: int
    spec: CaseSpec
    dtype: str
    params: dict[str, Array]
    inputs: dict[str, Array]
    expected: dict[str, Array] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # a variant's switches

    @property
    def name(self) -> str:
        return f"case_{self.index:03d}_{self.spec.name}_{self.dtype}"

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def variant(self) -> str:
        return self.spec.variant

    @property
    def batch(self) -> int | None:
        x = self.inputs["x_t"]
        return int(x.shape[0]) if x.ndim == 2 else None

    @property
    def n_features(self) -> int:
        return int(self.inputs["x_t"].shape[-1])

    @property
    def n_hidden(self) -> int:
        return int(self.params["bf"].shape[0])

    @property
    def cell(self) -> LSTMParams:
        """The case's cell, in its dtype: the eight arrays, and the variant its settings
        switch on (peepholes from ``Pi, Pf, Po`` in ``params``)."""
        st = self.settings
        names = PARAM_NAMES + (PEEPHOLE_NAMES if st.get("peepholes") else ())
        return LSTMParams.from_mapping(
            {n: self.params[n] for n in names},
            self.name,
            clip=st.get("clip"),
            input_forget=bool(st.get("input_forget", False)),
        )

    def shape_label(self) -> str:
        b = "" if self.batch is None else f"B={self.batch} "
        return f"{b}F={self.n_features} H={self.n_hidden}"


EXPECTED_NAMES = ("u", "z_i", "z_f", "z_o", "z_c", "i_t", "f_t", "o_t", "c_t_candidate",
                  "c_next", "h_next")  # fmt: skip


def reference(cell: LSTMParams, inputs: dict[str, Array]) -> dict[str, Array]:
    """Every intermediate of ``cell``'s step (its variant included), computed in float64."""
    x = {k: np.asarray(inputs[k], dtype=np.float64) for k in INPUT_NAMES}
    arrays = cell.astype("float64").step(x["x_t"], x["h_prev"], x["c_prev"]).arrays()
    return {k: arrays[k] for k in EXPECTED_NAMES}


ReferenceFn = Callable[[LSTMParams, dict[str, Array]], dict[str, Array]]
# The variants this version can compute expected values for: every one through ``cell.step``.
REFERENCES: dict[str, ReferenceFn] = {v: reference for v in ("standard", *VARIANT_SETTINGS)}


def _draw(spec: CaseSpec, dtype: str, rng: np.random.Generator) -> tuple[dict[str, Array], ...]:
    F, H = spec.n_features, spec.n_hidden
    lead = () if spec.batch is None else (spec.batch,)
    if spec.special == "notebook":
        cell = notebook_default()
        assert cell.example is not None
        params: dict[str, Array] = dict(cell.params.arrays())
        inputs: dict[str, Array] = dict(cell.example.arrays())
    else:
        w, s = spec.weight_scale, spec.input_scale
        params = {n: w * rng.standard_normal((H, H + F)) for n in WEIGHT_NAMES}
        # every bias non-zero and distinct: a missing or swapped bias always shows
        params.update({n: w * (rng.standard_normal(H) + 0.5) for n in BIAS_NAMES})
        inputs = {
            "x_t": s * rng.standard_normal(lead + (F,)),
            "h_prev": np.tanh(rng.standard_normal(lead + (H,))),
            "c_prev": s * rng.standard_normal(lead + (H,)),
        }
        if spec.special == "zeros":
            inputs = {k: np.zeros_like(v) for k, v in inputs.items()}
        elif spec.special == "big_c":
            inputs["c_prev"] = 20.0 * rng.standard_normal(lead + (H,))
        if VARIANT_SETTINGS.get(spec.variant, {}).get("peepholes"):  # drawn last
            params.update({n: w * (rng.standard_normal(H) + 0.3) for n in PEEPHOLE_NAMES})
    params = {k: v.astype(dtype) for k, v in params.items()}
    inputs = {k: v.astype(dtype) for k, v in inputs.items()}
    return params, inputs


def make_case(
    index: int, seed: int, specs: Sequence[CaseSpec] = SPECS, stream: tuple[int, ...] = ()
) -> Case:
    """Case ``index`` of the sequence for ``seed`` (see module docstring); ``stream`` keeps
    a variant's draws apart from the standard cases'."""
    spec = specs[index % len(specs)]
    rounds = index // len(specs)
    dtype = spec.dtype if rounds % 2 == 0 else DTYPES[1 - DTYPES.index(spec.dtype)]
    rng = np.random.default_rng([seed, *stream, index])
    params, inputs = _draw(spec, dtype, rng)
    settings = dict(VARIANT_SETTINGS.get(spec.variant, {}))
    case = Case(index, spec, dtype, params, inputs, settings=settings)
    return replace(case, expected=REFERENCES[spec.variant](case.cell, inputs))


def default_count() -> int:
    """Enough cases for every spec in both dtypes."""
    return 2 * len(SPECS)


def build_cases(count: int, seed: int, variants: Sequence[str] = ()) -> list[Case]:
    """``count`` standard cases, then those of each extra variant (see VARIANT_SPECS).

    A variant case's numbers come from ``default_rng([seed, 1 + variant number, k])``: they do
    not depend on ``count`` or on which other variants were asked for."""
    cases = [make_case(k, seed) for k in range(count)]
    for variant in variants:
        specs = VARIANT_SPECS[variant]
        for k in range(len(specs)):
            c = make_case(k, seed, specs, stream=(1 + VARIANTS.index(variant),))
            cases.append(
                Case(len(cases), c.spec, c.dtype, c.params, c.inputs, c.expected, c.settings)
            )
    return cases


# --------------------------------------------------------------------------- writing
