"""The views of ``step`` and ``init``: the gate activations, the shapes, what was written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm_cli.core import Array, StepResult

from .console import ShapeRow, shape_str

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

MAX_BATCH_ROWS_SHOWN = 8
MAX_UNITS_SHOWN = 64
BAR_WIDTH = 5
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def _bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of ``width`` cells filled to ``fraction`` in [0, 1], in eighths."""
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[part] if part else "")).ljust(width)


def _unit_cell(value: float) -> Text:
    """A value in [0, 1] (a sigmoid gate): a bar filled from the left, brighter when open."""
    from rich.text import Text

    style = "bold green" if value >= 0.5 else "yellow" if value >= 0.1 else "dim"
    return Text.assemble((_bar(value), style), f" {value:.4f}")


def signed_cell(value: float) -> Text:
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
            signed_cell(float(g_t[k])),
            signed_cell(float(c_next[k])),
            signed_cell(float(h_next[k])),
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
        table.add_row(Text(r.name), shape_str(r.shape), r.dtype, Text(r.source))
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
