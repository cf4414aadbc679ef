"""The catalogue of known mistakes in a port of the cell: each a :class:`Hypothesis` whose
``predict`` replays the reference step (``case.cell.step``) with the mistake built in (the
gate blocks in another order, ``[x, h]`` instead of ``[h, x]``, a missing bias, a missing
tanh, outputs swapped, float32 arithmetic, and ONNX's variants done wrong)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from lstm_cli.core import Array, clip_preactivation, sigmoid
from lstm_cli.params import LSTMParams, Variant

from .signatures import GATE_LETTERS, Signature
from .vectors import INPUT_NAMES, Case


def _mistaken_cell(
    cell: LSTMParams,
    gate_source: dict[str, str] | None,
    x_first: bool,
    biases: dict[str, Array] | None,
    columns: str | None = None,
) -> LSTMParams:
    """``cell`` with gate ``g`` using the arrays of gate ``gate_source[g]``, the weight
    columns for ``u = [x, h]`` (``x_first``), other ``biases`` (native letters), or W's
    columns read another way (``columns``, see :func:`_read_columns`)."""
    src = gate_source or {g: g for g in GATE_LETTERS}
    own = cell.arrays()
    W = {g: own[f"W{src[g]}"] for g in GATE_LETTERS}
    b = {g: own[f"b{src[g]}"] for g in GATE_LETTERS}
    if biases is not None:
        b = {g: np.asarray(biases[src[g]]) for g in GATE_LETTERS}
    if x_first:  # [x, h] @ W.T is [h, x] @ W'.T with W's first F columns moved to the end
        F = cell.n_features
        W = {g: np.concatenate((w[:, F:], w[:, :F]), axis=1) for g, w in W.items()}
    if columns is not None:
        W = {g: _read_columns(w, cell.n_hidden, columns) for g, w in W.items()}
    return cell.with_arrays({**{f"W{g}": W[g] for g in W}, **{f"b{g}": b[g] for g in b}})


def _read_columns(w: Array, H: int, how: str) -> Array:
    """The (H, H + F) weight a port effectively uses on ``u = [h, x]`` when it reads W's
    columns wrongly. ``mirror``: it builds ``[h, x]`` but slices W as if u were ``[x, h]``
    (the x block taken from W's first columns, so W's last H columns meet h: W's column
    blocks exchanged at H, the mirror image of the concat bug, which exchanges them at F).
    ``transposed``: W's (H, H + F) buffer read as (H + F, H) and transposed (a column-major
    read); ``transposed_mirror``: that, then the mirror."""
    if how in ("transposed", "transposed_mirror"):
        w = np.ascontiguousarray(w).reshape(w.shape[1], H).T
    if how in ("mirror", "transposed_mirror"):
        w = np.concatenate((w[:, H:], w[:, :H]), axis=1)
    return w


COLUMN_MISTAKES = {
    "mirror": (
        "concatenation: u = [h_prev, x_t] read with W's columns for [x_t, h_prev]",
        "your function builds u = concat(h_prev, x_t) but splits W as if its first F columns "
        "were x_t's: W's first H columns are h_prev's, its last F columns x_t's",
    ),
    "transposed": (
        "W's (H, H + F) buffer read transposed",
        "your function reads each W as an (H + F, H) array and transposes it (a column-major "
        "read, or W.T where W was already (H, H + F))",
    ),
    "transposed_mirror": (
        "W read transposed and with mirrored columns",
        "your function reads each W transposed (an (H + F, H) buffer) and splits the columns "
        "as if u were [x_t, h_prev]",
    ),
}


def _step(
    case: Case,
    gate_source: dict[str, str] | None = None,
    x_first: bool = False,
    biases: dict[str, Array] | None = None,
    candidate: Callable[[Array], Array] | None = None,
    h_of_c: Callable[[Array], Array] | None = None,
    dtype: str = "float64",
    columns: str | None = None,
) -> tuple[Array, Array]:
    """The reference step with a mistake built in (see :func:`hypotheses`): a mistaken cell
    (gates, columns, biases) stepped in ``dtype``, then another ``candidate`` activation
    (default tanh) or ``h_of_c`` (default tanh) applied to its gates."""
    cell = _mistaken_cell(case.cell, gate_source, x_first, biases, columns).astype(dtype)
    x, h, c = (np.asarray(case.inputs[k], dtype=dtype) for k in INPUT_NAMES)
    r = cell.step(x, h, c)
    if candidate is None and h_of_c is None:
        return r.h_next, r.c_next
    c_next = r.c_next if candidate is None else r.f_t * r.c_prev + r.i_t * candidate(r.z_c)
    return r.o_t * (h_of_c or np.tanh)(c_next), c_next


@dataclass(frozen=True)
class Hypothesis:
    """A known mistake: its name, what it means, and the outputs it would produce."""

    culprit: str
    detail: str
    predict: Callable[[Case], tuple[Array, Array]]
    float32: bool = False  # matched with float32 tolerances


def _perm_text(src: dict[str, str], layout: Signature) -> tuple[str, str]:
    L = layout.letters
    moved = [g for g in GATE_LETTERS if src[g] != g]
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
    for perm in itertools.permutations(GATE_LETTERS):
        src = dict(zip(GATE_LETTERS, perm, strict=True))
        if perm == GATE_LETTERS:
            continue
        culprit, detail = _perm_text(src, layout)
        out.append(Hypothesis(culprit, detail, partial(_step, gate_source=src)))
    if layout.order is None:
        out.append(Hypothesis(
            "concatenation order: u = [x_t, h_prev]",
            "the seed's u is concat(h_prev, x_t): the H hidden columns of each W come first",
            lambda c: _step(c, x_first=True),
        ))  # fmt: skip
        for how, (culprit, detail) in COLUMN_MISTAKES.items():
            out.append(Hypothesis(culprit, detail, partial(_step, columns=how)))
    L = layout.letters
    for g in GATE_LETTERS:
        bname = f"b{g}" if layout.order is None else f"the {L[g]} block of the bias"
        out.append(Hypothesis(
            f"missing {_gate_word(g)} bias",
            f"{bname} is not added: z_{g} = W{g} @ u only",
            partial(_step_without_bias, gate=g),
        ))  # fmt: skip
    out.append(Hypothesis(
        "missing biases", "no bias is added to any gate",
        lambda c: _step(c, biases={g: np.zeros(c.n_hidden) for g in GATE_LETTERS}),
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
    return {g: case.params[f"b{g}"] for g in GATE_LETTERS}


def _step_without_bias(case: Case, gate: str) -> tuple[Array, Array]:
    return _step(case, biases={**_native_biases(case), gate: np.zeros(case.n_hidden)})


def _step_layout_bias(case: Case, layout: Signature, label: str) -> tuple[Array, Array]:
    return _step(case, biases=layout.biases(case)[label])


def _step_outputs_swapped(case: Case) -> tuple[Array, Array]:
    h, c = _step(case)
    return c, h


def _variant_step(
    case: Case, po_on_c_prev: bool = False, swap_pf_po: bool = False, **change: Any
) -> tuple[Array, Array]:
    """The variant case's step (``case.cell``, in float64) with its variant changed by
    :meth:`~lstm_cli.params.LSTMParams.with_variant` (``drop_peepholes``, ``drop_clip``,
    ``input_forget=False``), Pf and Po exchanged, or the output peephole reading c_prev
    instead of c_next."""
    cell = case.cell.astype("float64")
    if change:
        cell = cell.with_variant(**change)
    if swap_pf_po and cell.peepholes is not None:
        cell = cell.with_arrays({"Pf": cell.peepholes["Po"], "Po": cell.peepholes["Pf"]})
    x, h, c = (np.asarray(case.inputs[k], dtype=np.float64) for k in INPUT_NAMES)
    r = cell.step(x, h, c)
    if not po_on_c_prev or cell.peepholes is None:
        return r.h_next, r.c_next
    z_o = r.u @ cell.Wo.T + cell.bo + cell.peepholes["Po"] * r.c_prev
    return sigmoid(clip_preactivation(z_o, cell.clip_value)) * np.tanh(r.c_next), r.c_next


def variant_hypotheses(variant: Variant) -> list[Hypothesis]:
    """The known mistakes of a port of ONNX's variants, for cases of this ``variant``."""
    out = []
    if variant.peepholes is not None:
        out.append(Hypothesis(
            "peepholes ignored", "Pi, Pf, Po are not added to z_i, z_f, z_o",
            partial(_variant_step, drop_peepholes=True),
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
    if variant.clip is not None:
        out.append(Hypothesis(
            "clip ignored", "the pre-activations are not clipped to [-clip, clip]",
            partial(_variant_step, drop_clip=True),
        ))  # fmt: skip
    if variant.input_forget:
        out.append(Hypothesis(
            "input_forget ignored",
            "f_t = sigmoid(Wf @ u + bf); with input_forget ONNX couples it: f_t = 1 - i_t",
            partial(_variant_step, input_forget=False),
        ))  # fmt: skip
    return out
