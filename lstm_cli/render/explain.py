"""``step --explain``: the seed's equations in order, each as its formula and then with the
step's own numbers plugged in, ending in h_next and c_next.

Small cells (H <= 4 and H + F <= 16, the notebook's is one) are written out in full: every
product of every dot product. Larger ones are summarised: the first units, the first and
last terms of a dot product, vectors cut in the middle. Every line fits ``width`` columns;
the text is plain (a pipe gets exactly this), the terminal view only adds colour.

A cell with ONNX's variants is explained in its own order of computation: i, f (or
``f_t = 1 - i_t`` with input_forget), the candidate, c_next, then o, whose peephole reads
c_next, and h_next. Peephole terms are written out with their numbers, and a clip is shown
where it changes a pre-activation (the ``z_*`` shown last are the StepResult's, clipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lstm_cli.core import Array, StepResult, add_peephole, project
from lstm_cli.params import LSTMParams

if TYPE_CHECKING:
    from rich.console import RenderableType

FULL_MAX_HIDDEN = 4
FULL_MAX_U = 16
SUMMARY_UNITS = 2  # units shown in full when summarising
SUMMARY_TERMS = 3  # leading terms of a dot product shown when summarising
VECTOR_EDGE = 3  # leading (and one trailing) entries of a long vector

# (style, text): styles are "title", "formula", "result", "note" or "" (numbers)
Line = tuple[str, str]

GATES = (
    ("i", "i_t", "sigmoid", "Input gate: how much of the candidate to write"),
    ("f", "f_t", "sigmoid", "Forget gate: how much of the old cell state to keep"),
    ("o", "o_t", "sigmoid", "Output gate: how much of the cell to show as h_next"),
    ("c", "c_t_candidate", "tanh", "Cell candidate: the new content to write"),
)


def num(v: float) -> str:
    """A number for reading: 4 decimals in a normal range, else scientific; no '-0.0000'."""
    v = float(v)
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e4:
        text = f"{v:.4f}"
        return "0.0000" if text == "-0.0000" else text
    return f"{v:.3e}"


def _p(v: float) -> str:
    """A number as a factor: negatives in parentheses."""
    s = num(v)
    return f"({s})" if s.startswith("-") else s


def _vector(a: Array, full: bool) -> list[str]:
    items = [num(v) for v in a]
    if not full and len(items) > VECTOR_EDGE + 2:
        items = items[:VECTOR_EDGE] + [f"... {len(items) - VECTOR_EDGE - 1} more ..."] + items[-1:]
    return items


def wrap(
    prefix: str, pieces: Sequence[str], width: int, sep: str = " ", indent: int = -1
) -> list[str]:
    """``prefix`` then ``pieces`` joined by ``sep``, broken into lines of at most ``width``.

    Continuation lines start under the first piece (or at ``indent``). A piece longer than a
    line gets a line of its own.
    """
    indent = len(prefix) if indent < 0 else indent
    if indent > width // 2:
        indent = 8
    lines: list[str] = []
    line = prefix
    fresh = True  # nothing after the prefix/indent yet
    for k, piece in enumerate(pieces):
        joiner = "" if fresh else sep
        tail = sep.rstrip() if k < len(pieces) - 1 else ""
        if not fresh and len(line) + len(joiner) + len(piece) + len(tail) > width:
            lines.append(line + sep.rstrip())
            line = " " * indent
            joiner = ""
        line += joiner + piece
        fresh = False
    lines.append(line)
    return lines


def _vector_lines(name: str, a: Array, full: bool, width: int, pad: int) -> list[str]:
    items = _vector(a, full)
    prefix = f"  {name.ljust(pad)} = ["
    lines = wrap(prefix, items, width - 1, sep=", ")
    lines[-1] += "]"
    return lines


# The cell as a picture: where u = [h_prev, x_t] enters, the four gates, the cell-state line.
CELL_DIAGRAM = r"""
  c_prev --->( x )-------------( + )-------------+---> c_next
               ^                 ^               |
               | f_t             | i_t * g    [tanh]
               |               ( x )             |
               |                 ^             ( x )---> h_next
               |           +-----+-----+         ^
               |           | i_t       | g       | o_t
           [sigmoid]   [sigmoid]    [tanh]   [sigmoid]
            forget       input     candidate  output
               ^           ^           ^         ^
               +-----------+-----+-----+---------+
                                 |
                u = [h_prev, x_t]  (h_prev first)
"""


def explain_lines(
    result: StepResult, params: LSTMParams, width: int = 80, row: int | None = None
) -> list[Line]:
    """The explanation as (style, text) lines no longer than ``width`` (at least 40).

    ``row`` picks one row of a batched result (default: row 0). A cell with ONNX's variants
    is explained in the order it is computed: i, f (or ``f = 1 - i``), the candidate,
    c_next, then o (whose peephole reads c_next) and h_next; peephole terms are written out
    and a clip is shown where it changes a pre-activation.
    """
    e = _Explainer(result, params, max(width, 40), row)
    e.header()
    e.diagram()
    e.concat()
    i_gate, f_gate, o_gate, c_gate = GATES
    if params.is_plain:  # the seed's order, exactly as it always was
        for step, spec in enumerate(GATES, start=2):
            e.gate(step, *spec)
        e.new_cell(6)
    else:  # the order of computation: o comes after c_next (its peephole reads c_next)
        e.gate(2, *i_gate)
        if params.coupled:
            e.coupled_forget(3)
        else:
            e.gate(3, *f_gate)
        e.gate(4, *c_gate)
        e.new_cell(5)
        e.gate(6, *o_gate)
    e.new_hidden(7)
    e.final()
    return e.out


class _Explainer:
    """Writes the explanation's lines, one section per method, into ``out``."""

    def __init__(self, result: StepResult, params: LSTMParams, width: int, row: int | None):
        self.result, self.params, self.width = result, params, width
        self.batched = result.h_next.ndim == 2
        self.row = (0 if row is None else row) if self.batched else None
        H, F = params.n_hidden, params.n_features
        self.H, self.F = H, F
        self.full = H <= FULL_MAX_HIDDEN and H + F <= FULL_MAX_U
        self.units = range(H) if self.full else range(min(H, SUMMARY_UNITS))
        self.out: list[Line] = []

    def pick(self, a: Array) -> Array:
        """One row of a batched array."""
        return a[self.row] if self.batched else a

    def value(self, name: str) -> Array:
        return self.pick(getattr(self.result, name))

    def text(self, style: str, s: str) -> None:
        for line in s.splitlines() or [""]:
            self.out.append((style, line))

    def lines(self, style: str, ls: Sequence[str]) -> None:
        self.out.extend((style, line) for line in ls)

    def words(self, style: str, s: str, prefix: str = "") -> None:
        self.lines(style, wrap(prefix, s.split(" "), self.width))

    def section(self, title: str) -> None:
        self.text("", "")
        self.words("title", title)

    def vector(self, style: str, name: str, a: Array, pad: int) -> None:
        self.lines(style, _vector_lines(name, a, False, self.width, pad))

    def header(self) -> None:
        H, F, dtype = self.H, self.F, self.result.h_next.dtype
        self.words(
            "title", f"One LSTM step, explained: F = {F} inputs, H = {H} hidden units, {dtype}"
        )
        if not self.params.is_plain:
            self.words("note", _variant_line(self.params))
        if self.batched:
            n = self.result.h_next.shape[0]
            self.words("note", f"A batch of {n}: showing batch row {self.row}.")
        how = (
            "Every product written out." if self.full else
            f"Summarised (H > {FULL_MAX_HIDDEN} or H + F > {FULL_MAX_U}): the first "
            f"{len(self.units)} unit(s) and the first terms of each dot product."
        )  # fmt: skip
        self.words("note", how + " Numbers rounded to 4 decimals.")

    def diagram(self) -> None:
        """The picture of the cell, when the width allows it (about 60 columns wide)."""
        lines = CELL_DIAGRAM.strip("\n").splitlines()
        if max(map(len, lines)) <= self.width:
            self.text("", "")
            self.lines("formula", lines)

    def concat(self) -> None:
        H, F = self.H, self.F
        self.section("1. Put the previous hidden state first, then the input")
        self.text("formula", f"  u = concat(h_prev, x_t)        shape ({H + F},) = ({H},) + ({F},)")
        for name, key in (("h_prev", "h_prev"), ("x_t", "x_t"), ("u", "u")):
            self.lines("", _vector_lines(name, self.value(key), self.full, self.width, 6))

    def peephole(self, g: str) -> tuple[Array, Array, str] | None:
        """Gate ``g``'s peephole: (weights, the state it reads, that state's name), or None."""
        peep = self.params.peepholes
        if peep is None or g == "c":
            return None
        state_name = "c_next" if g == "o" else "c_prev"
        return (peep[f"P{g}"], self.value(state_name), state_name)

    def gate(self, step: int, g: str, act_name: str, fn: str, what: str) -> None:
        params, clip = self.params, self.params.clip_value
        W, b = getattr(params, f"W{g}"), getattr(params, f"b{g}")
        pp = self.peephole(g)
        self.section(f"{step}. {what}")
        if params.is_plain:
            self.text("formula", f"  {act_name} = {fn}(W{g} @ u + b{g})")
        else:
            inner = f"W{g} @ u + b{g}" + (f" + P{g} * {pp[2]}" if pp else "")
            if clip is not None:
                inner = f"clip({inner}, {-clip:g}, {clip:g})"
            formula = f"{act_name} = {fn}({inner})".split(" ")
            self.lines("formula", wrap("  ", formula, self.width, indent=4))
        if pp and g == "o":
            self.words("note", "The output gate's peephole reads the NEW cell state c_next.", "  ")
        # before the clip: what the core computes, peephole term included
        pre = None if clip is None else _pre_activation(self.value("u"), W, b, pp)
        for j in self.units:
            self.gate_unit(j, g, act_name, fn, pp, pre)
        if not self.full:
            if pre is not None and clip is not None:
                n_clipped = int(np.sum(np.abs(pre) > clip))
                self.words(
                    "note", f"The clip changed {n_clipped} of the {self.H} pre-activations.", "  "
                )
            self.vector("", f"z_{g}", self.value(f"z_{g}"), len(act_name))
            self.vector("result", act_name, self.value(act_name), len(act_name))

    def gate_unit(
        self,
        j: int,
        g: str,
        act_name: str,
        fn: str,
        pp: tuple[Array, Array, str] | None,
        pre: Array | None,
    ) -> None:
        """Unit ``j`` of gate ``g``: the dot product term by term, the clip, the activation."""
        W, b, u = getattr(self.params, f"W{g}"), getattr(self.params, f"b{g}"), self.value("u")
        z, act, clip, width = (
            self.value(f"z_{g}"),
            self.value(act_name),
            self.params.clip_value,
            self.width,
        )
        terms = [f"{_p(W[j, k])}*{_p(u[k])}" for k in range(self.H + self.F)]
        if not self.full and len(terms) > SUMMARY_TERMS + 1:
            skipped = len(terms) - SUMMARY_TERMS - 1
            terms = [*terms[:SUMMARY_TERMS], f"... ({skipped} more terms)", *terms[-1:]]
        lhs = f"  z_{g}[{j}] = "
        pad = " " * (len(lhs) - 2)
        head = [f"W{g}[{j}] . u + b{g}[{j}]"] + ([f"+ P{g}[{j}]*{pp[2]}[{j}]"] if pp else [])
        self.lines("", wrap(lhs, head, width))
        self.lines("", wrap(pad + "= ", [*(f"{t} +" for t in terms), _p(b[j])], width))
        if pp:
            product = f"+ {_p(pp[0][j])}*{_p(pp[1][j])}"
            self.lines("", wrap(pad + "  ", [product, f"(P{g}[{j}]*{pp[2]}[{j}])"], width))
        if pre is not None and clip is not None and abs(pre[j]) > clip:
            self.text("", f"{pad}= {num(pre[j])}")
            clipped = [f"clip({num(pre[j])}, {-clip:g}, {clip:g})", f"= {num(z[j])}"]
            self.lines("", wrap(lhs, clipped, width))
        else:
            self.text("", f"{pad}= {num(z[j])}")
        formula = f"1 / (1 + exp({num(-z[j])}))" if fn == "sigmoid" else f"tanh({num(z[j])})"
        self.lines("result", wrap(f"  {act_name}[{j}] = ", [formula, f"= {num(act[j])}"], width))

    def coupled_forget(self, step: int) -> None:
        i_t, f_t = self.value("i_t"), self.value("f_t")
        self.section(f"{step}. Forget gate, coupled to the input gate (input_forget)")
        self.text("formula", "  f_t = 1 - i_t")
        note = "Wf and bf are not used; --json reports z_f as -z_i (sigmoid(-z_i) = 1 - i_t)."
        self.words("note", note, "  ")
        for j in self.units:
            pieces = [f"= 1 - {_p(i_t[j])}", f"= {num(f_t[j])}"]
            self.lines("result", wrap(f"  f_t[{j}] ", pieces, self.width))
        if not self.full:
            self.vector("result", "f_t", f_t, 3)

    def new_cell(self, step: int) -> None:
        f_t, i_t, c = self.value("f_t"), self.value("i_t"), self.value("c_prev")
        g_t, c_next = self.value("c_t_candidate"), self.value("c_next")
        self.section(f"{step}. New cell state: keep part of the old, write part of the candidate")
        self.text("formula", "  c_next = f_t * c_prev + i_t * c_t_candidate")
        for j in self.units:
            pieces = [
                f"= {_p(f_t[j])}*{_p(c[j])} + {_p(i_t[j])}*{_p(g_t[j])}",
                f"= {num(c_next[j])}",
            ]
            self.lines("result", wrap(f"  c_next[{j}] ", pieces, self.width))
        if not self.full and not self.params.is_plain:
            self.vector("result", "c_next", c_next, 6)

    def new_hidden(self, step: int) -> None:
        o_t, c_next, h_next = self.value("o_t"), self.value("c_next"), self.value("h_next")
        self.section(f"{step}. New hidden state: the output gate times the squashed cell")
        self.text("formula", "  h_next = o_t * tanh(c_next)")
        for j in self.units:
            pieces = [
                f"= {_p(o_t[j])}*tanh({num(c_next[j])})",
                f"= {_p(o_t[j])}*{_p(np.tanh(c_next[j]))}",
                f"= {num(h_next[j])}",
            ]
            self.lines("result", wrap(f"  h_next[{j}] ", pieces, self.width))
        if not self.full and len(self.units) < self.H:
            self.text(
                "note", f"  ... and {self.H - len(self.units)} more units, computed the same way."
            )

    def final(self) -> None:
        self.text("", "")
        self.text("title", "Result" + (f" (batch row {self.row})" if self.batched else ""))
        w = self.width
        with np.printoptions(precision=8, suppress=False, linewidth=w - 2, threshold=64):
            for name in ("h_next", "c_next"):
                s = np.array2string(self.value(name), prefix=f"  {name} = ", max_line_width=w)
                self.text("result", f"  {name} = {s}")


def _variant_line(params: LSTMParams) -> str:
    """The header's line naming the ONNX variants a cell uses."""
    parts = []
    if params.has_peepholes:
        parts.append("peepholes (z_i += Pi*c_prev, z_f += Pf*c_prev, z_o += Po*c_next)")
    clip = params.clip_value
    if clip is not None:
        parts.append(f"clip {clip:g} (every pre-activation bounded to [{-clip:g}, {clip:g}])")
    if params.coupled:
        parts.append("input_forget (f_t = 1 - i_t)")
    return "ONNX variant: " + ", ".join(parts) + "."


def _pre_activation(
    u: Array, W: Array, b: Array, peephole: tuple[Array, Array, str] | None
) -> Array:
    """``W @ u + b`` (H,), plus the peephole term: a gate's pre-activation before the clip."""
    z = project(u, W, b)
    return z if peephole is None else add_peephole(z, peephole[0], peephole[1])


def explain_text(result: StepResult, params: LSTMParams, width: int = 80) -> str:
    """The explanation as plain text (what a pipe gets)."""
    return "\n".join(line for _, line in explain_lines(result, params, width))


STYLES = {"title": "bold", "formula": "bold cyan", "result": "green", "note": "italic"}


def explain_view(
    result: StepResult, params: LSTMParams, width: int = 80, notes: Sequence[str] = ()
) -> RenderableType:
    """The explanation as a Rich renderable: the same lines, coloured."""
    from rich.console import Group
    from rich.text import Text

    parts = [Text(n, style="italic") for n in notes]
    for style, line in explain_lines(result, params, width):
        parts.append(Text(line, style=STYLES.get(style, ""), no_wrap=True, overflow="ignore"))
    return Group(*parts)
