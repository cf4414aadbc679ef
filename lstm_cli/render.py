"""Rich renderables for the terminal: shapes, gate activations, what init wrote.

Rich is imported inside the functions (never at module level, ruff TID253) so that commands
printing JSON never pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .core import Array, StepResult

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

MAX_BATCH_ROWS_SHOWN = 8
MAX_UNITS_SHOWN = 64
BAR_WIDTH = 5
_EIGHTHS = " ▏▎▍▌▋▊▉█"


@dataclass(frozen=True)
class ShapeRow:
    """One row of the shapes table: an array's name, shape, dtype and where it came from."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    source: str


def make_console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _shape_str(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of ``width`` cells filled to ``fraction`` in [0, 1], in eighths."""
    eighths = int(round(min(max(fraction, 0.0), 1.0) * width * 8))
    full, part = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[part] if part else "")).ljust(width)


def _unit_cell(value: float) -> Text:
    """A value in [0, 1] (a sigmoid gate): a bar filled from the left, brighter when open."""
    from rich.text import Text

    style = "bold green" if value >= 0.5 else "yellow" if value >= 0.1 else "dim"
    return Text.assemble((_bar(value), style), f" {value:.4f}")


def _signed_cell(value: float) -> Text:
    """A signed value, red when negative, cyan when positive, bold beyond 0.5 in size."""
    from rich.text import Text

    style = ("red" if value < 0 else "cyan") + (" bold" if abs(value) >= 0.5 else "")
    return Text(f"{value:+.4f}", style=style)


def gate_table(result: StepResult, row: int | None = None) -> RenderableType:
    """One row per hidden unit: i_t, f_t, o_t, c_t_candidate, c_next, h_next with bars.

    ``row`` picks one batch row when the result is batched.
    """
    from rich import box
    from rich.table import Table

    def pick(a: Array) -> Array:
        return a if row is None else a[row]

    i_t, f_t, o_t = pick(result.i_t), pick(result.f_t), pick(result.o_t)
    g_t, c_next, h_next = pick(result.c_t_candidate), pick(result.c_next), pick(result.h_next)
    title = "Gate activations" + ("" if row is None else f", batch row {row}")
    table = Table(
        title=title,
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    table.add_column("unit", justify="right", no_wrap=True)
    for name in ("i_t", "f_t", "o_t"):
        table.add_column(name, no_wrap=True)
    for name in ("c_t_\ncandidate", "c_next", "h_next"):
        table.add_column(name, justify="right", no_wrap=True)
    n_units = i_t.shape[0]
    for k in range(min(n_units, MAX_UNITS_SHOWN)):
        table.add_row(
            str(k),
            _unit_cell(float(i_t[k])),
            _unit_cell(float(f_t[k])),
            _unit_cell(float(o_t[k])),
            _signed_cell(float(g_t[k])),
            _signed_cell(float(c_next[k])),
            _signed_cell(float(h_next[k])),
        )
    caption = "gates i, f, o: 0 = closed, 1 = open; c_t_candidate, h_next in (-1, 1)"
    if n_units > MAX_UNITS_SHOWN:
        caption = f"{n_units - MAX_UNITS_SHOWN} more units not shown (use --json); " + caption
    table.caption = caption
    return table


def shapes_table(rows: Sequence[ShapeRow]) -> RenderableType:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Shapes", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("array")
    table.add_column("shape", justify="right")
    table.add_column("dtype")
    table.add_column("from")
    for r in rows:
        table.add_row(Text(r.name), _shape_str(r.shape), r.dtype, Text(r.source))
    return table


def step_view(
    result: StepResult, rows: Sequence[ShapeRow], notes: Sequence[str] = ()
) -> RenderableType:
    """The whole ``step`` view: notes, the shapes table, one gate table per batch row."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [Text(n, style="italic") for n in notes]
    parts.append(shapes_table(rows))
    if result.h_next.ndim == 1:
        parts.append(gate_table(result))
    else:
        n_rows = result.h_next.shape[0]
        for b in range(min(n_rows, MAX_BATCH_ROWS_SHOWN)):
            parts.append(gate_table(result, b))
        if n_rows > MAX_BATCH_ROWS_SHOWN:
            parts.append(
                Text(f"{n_rows - MAX_BATCH_ROWS_SHOWN} more batch rows not shown (use --json)")
            )
    with np.printoptions(precision=8, suppress=False):
        parts.append(Text(f"h_next = {result.h_next}", style="bold"))
        parts.append(Text(f"c_next = {result.c_next}", style="bold"))
    return Group(*parts)


def init_view(path: Path, arrays: dict[str, Array], meta: dict[str, Any]) -> RenderableType:
    """What ``init`` wrote: the path, the metadata, and a table of arrays and shapes."""
    from rich.console import Group
    from rich.text import Text

    rows = [ShapeRow(k, tuple(v.shape), str(v.dtype), str(path)) for k, v in arrays.items()]
    described = ", ".join(f"{k}={v}" for k, v in meta.items())
    return Group(Text(f"Wrote {path}", style="bold green"), Text(described), shapes_table(rows))


def print_view(renderable: RenderableType) -> None:
    make_console().print(renderable)


# --------------------------------------------------------------------------- run: a sequence

HEATMAP_MAX_FULL_STEPS = 400  # up to this many steps, one column per step (in bands)
HEATMAP_MAX_UNITS = 32
_LEVELS = "▁▂▃▄▅▆▇█"  # low = -1, high = +1: readable without colour too


class TimeBins:
    """Means of a hidden state sequence (T, H) over ``n_cols`` consecutive time bins, added
    chunk by chunk, so a heatmap of a long run needs no more memory than its picture.

    With ``n_cols >= T`` every step has its own column (the exact values).
    """

    def __init__(self, n_steps: int, n_units: int, n_cols: int) -> None:
        self.n_steps = n_steps
        self.n_cols = max(1, min(n_cols, n_steps))
        self.sums = np.zeros((n_units, self.n_cols))  # (H, n_cols)
        self.counts = np.zeros(self.n_cols)  # (n_cols,)

    def add(self, start: int, values: Array) -> None:
        """Add ``values`` (n, H): the hidden states of steps ``start .. start + n - 1``."""
        n = values.shape[0]
        if n == 0:
            return
        cols = (np.arange(start, start + n, dtype=np.int64) * self.n_cols) // self.n_steps
        first = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])  # where a bin begins
        self.sums[:, cols[first]] += np.add.reduceat(values.astype(np.float64), first, axis=0).T
        self.counts += np.bincount(cols, minlength=self.n_cols)

    def means(self) -> Array:
        """(H, n_cols) mean hidden state per bin (NaN for a bin not reached)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.counts

    @property
    def steps_per_col(self) -> float:
        return self.n_steps / self.n_cols


def _heat_color(v: float) -> str:
    """Diverging colour: red for negative, blue for positive, stronger with size."""
    a = min(abs(v), 1.0)
    grey = int(round(200 * (1 - a))) + 40
    strong = 255
    r, g, b = (strong, grey, grey) if v < 0 else (grey, grey, strong)
    return f"rgb({r},{g},{b})"


def heatmap(bins: TimeBins, width: int, title: str) -> RenderableType:
    """The hidden state over time: one row per unit, one character per time bin.

    Height and colour show the value in (-1, 1) (low and red = -1, high and blue = +1). Up
    to :data:`HEATMAP_MAX_FULL_STEPS` steps every step has its column, wrapped into bands of
    ``width``; beyond that each column is the mean over a bin of steps.
    """
    from rich.console import Group
    from rich.text import Text

    means = bins.means()
    n_units = means.shape[0]
    shown = min(n_units, HEATMAP_MAX_UNITS)
    label_w = len(str(shown - 1)) + 6
    band = max(10, width - label_w - 1)
    parts: list[Any] = [Text(title, style="bold")]
    per_col = bins.steps_per_col
    for lo in range(0, bins.n_cols, band):
        hi = min(lo + band, bins.n_cols)
        t_lo, t_hi = int(lo * per_col), int(np.ceil(hi * per_col)) - 1
        axis = f"t = {t_lo}"
        parts.append(Text(" " * label_w + axis.ljust(hi - lo - len(str(t_hi))) + str(t_hi)))
        for k in range(shown):
            line = Text(f"unit {k}".rjust(label_w - 1) + " ")
            for v in means[k, lo:hi]:
                if not np.isfinite(v):
                    line.append(" ")
                    continue
                level = int(round((min(max(float(v), -1.0), 1.0) + 1) / 2 * (len(_LEVELS) - 1)))
                line.append(_LEVELS[level], style=_heat_color(float(v)))
            parts.append(line)
    note = "▁ = -1 (red) … █ = +1 (blue)"
    if per_col > 1:
        note = f"each column is the mean over {per_col:.4g} steps; " + note
    if n_units > shown:
        note = f"{n_units - shown} more units not shown; " + note
    parts.append(Text(note, style="dim"))
    return Group(*parts)


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
        table.add_row(str(k), _signed_cell(float(h_next[k])), _signed_cell(float(c_next[k])))
    if n_units > MAX_UNITS_SHOWN:
        table.caption = f"{n_units - MAX_UNITS_SHOWN} more units not shown (use --json)"
    return table


def run_view(
    rows: Sequence[ShapeRow],
    h_next: Array,
    c_next: Array,
    bins: TimeBins | None,
    width: int,
    notes: Sequence[str] = (),
) -> RenderableType:
    """The ``run`` view: shapes, the hidden-state heatmap (batch row 0), the final state."""
    from rich.console import Group
    from rich.text import Text

    batched = h_next.ndim == 2
    which = f", batch row 0 of {h_next.shape[0]}" if batched else ""
    parts: list[Any] = [Text(n, style="italic") for n in notes]
    parts.append(shapes_table(rows))
    if bins is not None:
        parts.append(heatmap(bins, width, f"Hidden state h over {bins.n_steps} steps{which}"))
    h0, c0 = (h_next[0], c_next[0]) if batched else (h_next, c_next)
    parts.append(final_state_table(h0, c0, f"Final state{which}"))
    with np.printoptions(precision=8, suppress=False, threshold=64):
        parts.append(Text(f"h_next = {h_next}", style="bold"))
        parts.append(Text(f"c_next = {c_next}", style="bold"))
    return Group(*parts)


def console_width() -> int:
    return make_console().width


def make_progress() -> Any:
    """A transient progress bar on stderr (shown only on a terminal by the caller)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("steps"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=make_console(stderr=True),
        transient=True,
    )
