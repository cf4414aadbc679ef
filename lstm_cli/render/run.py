"""The view of ``run``: every gate and state over time, per unit, and how often each gate
saturates; then the final state.

A run of any length is summarised in bounded memory by :class:`RunTrace`: up to
:data:`EXACT_MAX_STEPS` steps every step is shown; a longer run shows its last steps exactly
(as many as fit the terminal) and min / mean / max over the whole run beside them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lstm_cli.core import Array

from .console import ShapeRow
from .step import MAX_UNITS_SHOWN, shapes_table, signed_cell

if TYPE_CHECKING:
    from rich.console import RenderableType

EXACT_MAX_STEPS = 400  # up to this many steps, every step has its column (in bands)
TRACE_MAX_UNITS = 8  # units drawn per quantity
OPEN, CLOSED = 0.99, 0.01  # a gate above / below these is saturated
_LEVELS = "▁▂▃▄▅▆▇█"  # low ... high: readable without colour too

# What the view draws, in the order of the equations: (name, words, gate in [0, 1]?)
QUANTITIES = (
    ("i_t", "input gate", True),
    ("f_t", "forget gate", True),
    ("o_t", "output gate", True),
    ("c_t_candidate", "candidate", False),
    ("c", "cell state", False),
    ("h", "hidden state", False),
)


class RunTrace:
    """The gates and states of one batch row over a run, added chunk by chunk.

    Keeps the last ``n_cols`` steps of each quantity (all of them when the run is that
    short), and per unit its min, sum and max and, for the gates, how many steps were open
    (> 0.99) or closed (< 0.01). Memory is bounded by ``n_cols``, not by the run's length.
    """

    def __init__(self, n_steps: int, n_units: int, n_cols: int) -> None:
        self.n_steps, self.n_units = n_steps, n_units
        self.n_cols = max(1, min(n_cols, n_steps))
        self.tail: dict[str, Array] = {q: np.zeros((0, n_units)) for q, _, _ in QUANTITIES}
        self.mins = {q: np.full(n_units, np.inf) for q, _, _ in QUANTITIES}
        self.maxs = {q: np.full(n_units, -np.inf) for q, _, _ in QUANTITIES}
        self.sums = {q: np.zeros(n_units) for q, _, _ in QUANTITIES}
        self.open = {q: np.zeros(n_units, np.int64) for q, _, gate in QUANTITIES if gate}
        self.closed = {q: np.zeros(n_units, np.int64) for q, _, gate in QUANTITIES if gate}
        self.seen = 0

    def add(self, values: dict[str, Array]) -> None:
        """Add the next steps: each quantity (n, H) for the same n consecutive steps."""
        for q, v in values.items():
            v = np.asarray(v, dtype=np.float64)
            self.tail[q] = np.concatenate((self.tail[q], v))[-self.n_cols :]
            self.mins[q] = np.minimum(self.mins[q], v.min(axis=0))
            self.maxs[q] = np.maximum(self.maxs[q], v.max(axis=0))
            self.sums[q] += v.sum(axis=0)
            if q in self.open:
                self.open[q] += (v > OPEN).sum(axis=0)
                self.closed[q] += (v < CLOSED).sum(axis=0)
        self.seen += len(next(iter(values.values())))

    @property
    def first_shown(self) -> int:
        """The step of the first column drawn (0 unless only the last steps are shown)."""
        return self.seen - len(self.tail["h"])


def _colours() -> bool:
    """Colour words in legends only when colour is shown (NO_COLOR and TERM=dumb: none)."""
    return "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _cell_style(v: float, gate: bool) -> str:
    """Mid-tone colours that read on light and dark backgrounds: grey for closed / zero,
    green for an open gate, blue for positive and orange for negative values."""
    if gate:
        return "green3" if v >= 0.5 else "dark_khaki" if v >= 0.1 else "grey50"
    if abs(v) < 0.1:
        return "grey50"
    return "dodger_blue2" if v > 0 else "dark_orange3"


def _strip(values: Array, gate: bool) -> Any:
    """One unit's row of characters: height and colour show each step's value."""
    from rich.text import Text

    lo = 0.0 if gate else -1.0
    line = Text()
    for v in values:
        x = (min(max(float(v), lo), 1.0) - lo) / (1.0 - lo)
        line.append(_LEVELS[round(x * (len(_LEVELS) - 1))], style=_cell_style(float(v), gate))
    return line


def _legend() -> list[str]:
    """How to read the strips, in words (colours named only when they are shown)."""
    gate = "gates: ▁ = 0 (closed) to █ = 1 (open)"
    signed = "candidate, c, h: ▁ = -1 to █ = +1 (c beyond ±1 drawn at the edge)"
    if _colours():
        gate += "; grey closed, green open"
        signed += "; orange negative, blue positive"
    return [gate, signed]


def trace_view(trace: RunTrace, width: int, which: str = "") -> RenderableType:
    """Every quantity over time, one row per unit, in bands that fit ``width``."""
    from rich.console import Group
    from rich.text import Text

    shown = min(trace.n_units, TRACE_MAX_UNITS)
    label_w = max(len(f"unit {shown - 1}"), 4) + 1
    band = max(10, width - label_w - 1)
    first, n = trace.first_shown, len(trace.tail["h"])
    if first == 0:
        title = f"Gates and states over {trace.n_steps} steps{which}"
    else:
        title = (
            f"Gates and states: the last {n} of {trace.n_steps} steps (t = {first} to "
            f"{first + n - 1}){which}; min / mean / max over every step below"
        )
    parts: list[Any] = [Text(title, style="bold")]
    for lo in range(0, n, band):
        hi = min(lo + band, n)
        axis = f"t = {first + lo}"
        end = str(first + hi - 1)
        gap = max(hi - lo - len(end), len(axis) + 1)
        parts.append(Text(" " * label_w + axis.ljust(gap) + end))
        for q, words, gate in QUANTITIES:
            parts.append(Text(f"{q}  {words}", style="bold"))
            for k in range(shown):
                line = Text(f"unit {k}".rjust(label_w - 1) + " ")
                line.append_text(_strip(trace.tail[q][lo:hi, k], gate))
                parts.append(line)
    notes = _legend()
    if trace.n_units > shown:
        notes.append(f"{trace.n_units - shown} more units not drawn (all are in the table)")
    parts.extend(Text(line, style="dim") for line in notes)
    return Group(*parts)


def summary_table(trace: RunTrace, width: int, which: str = "") -> RenderableType:
    """Per quantity over every step: min, mean, max and, for the gates, how often saturated.
    Below 72 columns the words column is left out (the strips above carry the words), so
    that every number stays whole."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"Over all {trace.seen} steps{which}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    wide = width >= 72  # the words column fits
    columns = ("", *([""] if wide else []), "min", "mean", "max", "open", "closed")
    for col in columns:
        table.add_column(col, justify="right" if col else "left", no_wrap=True)
    cells = max(trace.seen * trace.n_units, 1)
    for q, words, gate in QUANTITIES:
        lo, hi = trace.mins[q].min(), trace.maxs[q].max()
        mean = trace.sums[q].sum() / cells
        row = [q, *([words] if wide else []), f"{lo:+.4f}", f"{mean:+.4f}", f"{hi:+.4f}"]
        if gate:
            row += [f"{trace.open[q].sum() / cells:.1%}", f"{trace.closed[q].sum() / cells:.1%}"]
        table.add_row(*row, *([""] * (len(table.columns) - len(row))))
    table.caption = f"open: share of unit-steps with the gate > {OPEN}; closed: < {CLOSED}"
    table.caption_justify = "left"
    return table


def final_state_table(h_next: Array, c_next: Array, title: str) -> RenderableType:
    """One row per hidden unit: the final h_next and c_next."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("unit", justify="right")
    table.add_column("h_next", justify="right")
    table.add_column("c_next", justify="right")
    n_units = h_next.shape[0]
    for k in range(min(n_units, MAX_UNITS_SHOWN)):
        table.add_row(str(k), signed_cell(float(h_next[k])), signed_cell(float(c_next[k])))
    if n_units > MAX_UNITS_SHOWN:
        table.caption = f"{n_units - MAX_UNITS_SHOWN} more units not shown (use --json)"
    return table


def run_view(
    rows: Sequence[ShapeRow],
    h_next: Array,
    c_next: Array,
    trace: RunTrace | None,
    width: int,
    notes: Sequence[str] = (),
) -> RenderableType:
    """The ``run`` view: gates and states over time (batch row 0), how often the gates
    saturate, the final state, then the shapes."""
    from rich.console import Group
    from rich.text import Text

    batched = h_next.ndim == 2
    which = f", batch row 0 of {h_next.shape[0]}" if batched else ""
    parts: list[Any] = [Text(n, style="italic") for n in notes]
    if trace is not None:
        parts.append(trace_view(trace, width, which))
        parts.append(summary_table(trace, width, which))
    h0, c0 = (h_next[0], c_next[0]) if batched else (h_next, c_next)
    parts.append(final_state_table(h0, c0, f"Final state{which}"))
    with np.printoptions(precision=8, suppress=False, threshold=64):
        parts.append(Text(f"h_next = {h_next}", style="bold"))
        parts.append(Text(f"c_next = {c_next}", style="bold"))
    parts.append(shapes_table(rows))
    return Group(*parts)


class RunReport(NamedTuple):
    """A sequence's final state, its shapes and origins, and the trace of its gates and states."""

    h_next: Array
    c_next: Array
    steps: int
    batch: int | None
    dtype: str
    shapes: Mapping[str, list[int]]
    sources: Mapping[str, str]
    out: Path | None = None
    notes: Sequence[str] = ()
    trace: RunTrace | None = None
    width: int = 80

    def to_json(self) -> dict[str, Any]:
        return {
            "h_next": self.h_next.tolist(),
            "c_next": self.c_next.tolist(),
            "steps": self.steps,
            "batch": self.batch,
            "dtype": self.dtype,
            "shapes": dict(self.shapes),
            "sources": dict(self.sources),
            "out": None if self.out is None else str(self.out),
            "notes": list(self.notes),
        }

    def view(self) -> RenderableType:
        rows = [
            ShapeRow(k, tuple(v), self.dtype, self.sources.get(k, "result"))
            for k, v in self.shapes.items()
        ]
        return run_view(rows, self.h_next, self.c_next, self.trace, self.width, self.notes)
