"""The view of ``run``: h over time as a heatmap, and the final state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm_cli.core import Array

from .console import ShapeRow
from .step import MAX_UNITS_SHOWN, shapes_table, signed_cell

if TYPE_CHECKING:
    from rich.console import RenderableType


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
    grey = round(200 * (1 - a)) + 40
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
                level = round((min(max(float(v), -1.0), 1.0) + 1) / 2 * (len(_LEVELS) - 1))
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
        table.add_row(str(k), signed_cell(float(h_next[k])), signed_cell(float(c_next[k])))
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
