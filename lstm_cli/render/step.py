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


def _unit_cell(value: float, bar: bool = True) -> Text:
    """A value in [0, 1] (a sigmoid gate), with a bar filled from the left when ``bar``;
    mid-tone colours that read on light and dark backgrounds."""
    from rich.text import Text

    style = "bold green3" if value >= 0.5 else "dark_khaki" if value >= 0.1 else "grey50"
    if not bar:
        return Text(f"{value:.4f}", style=style)
    return Text.assemble((_bar(value), style), f" {value:.4f}")


def signed_cell(value: float) -> Text:
    """A signed value, red when negative, cyan when positive, bold beyond 0.5 in size."""
    from rich.text import Text

    style = "dark_orange3" if value < 0 else "dodger_blue2"
    style += " bold" if abs(value) >= 0.5 else ""
    return Text(f"{value:+.4f}", style=style)


WIDE = 80  # from this width on, the gate table has bars and words in its headers


def gate_table(result: StepResult, row: int | None = None) -> RenderableType:
    """One row per hidden unit: i_t, f_t, o_t, c_t_candidate, c_next, h_next.

    From 80 columns on, the gates have bars and the headers words; narrower, the bars are
    dropped and the words move to a legend, so that no number is ever cut. ``row`` picks one
    batch row when the result is batched.
    """
    return _GateTable(result, row)


class _GateTable:
    """Chooses its layout when drawn, from the width it is given."""

    def __init__(self, result: StepResult, row: int | None) -> None:
        self.result, self.row = result, row

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield self.table(options.max_width >= WIDE)

    def values(self) -> dict[str, Array]:
        r, row = self.result, self.row
        arrays = {"i_t": r.i_t, "f_t": r.f_t, "o_t": r.o_t, "c_t_candidate": r.c_t_candidate,
                  "c_next": r.c_next, "h_next": r.h_next}  # fmt: skip
        return {k: a if row is None else a[row] for k, a in arrays.items()}

    def table(self, wide: bool) -> RenderableType:
        from rich import box
        from rich.table import Table

        title = "Gate activations" + ("" if self.row is None else f", batch row {self.row}")
        table = Table(
            title=title, title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD,
            pad_edge=False, padding=(0, 1), collapse_padding=True,
        )  # fmt: skip
        headers = WIDE_HEADERS if wide else NARROW_HEADERS
        table.add_column("unit", justify="right", no_wrap=True)
        for k, header in enumerate(headers):
            table.add_column(header, justify="left" if wide and k < 3 else "right", no_wrap=True)
        v = self.values()
        n_units = v["i_t"].shape[0]
        for k in range(min(n_units, MAX_UNITS_SHOWN)):
            gates = [_unit_cell(float(v[g][k]), wide) for g in ("i_t", "f_t", "o_t")]
            rest = [signed_cell(float(v[q][k])) for q in ("c_t_candidate", "c_next", "h_next")]
            table.add_row(str(k), *gates, *rest)
        caption = "gates: 0 = closed, 1 = open; candidate and h_next in (-1, 1)"
        if not wide:
            caption = "i_t input, f_t forget, o_t output gate; cand. = c_t_candidate. " + caption
        if n_units > MAX_UNITS_SHOWN:
            caption = f"{n_units - MAX_UNITS_SHOWN} more units not shown (use --json); " + caption
        table.caption = caption
        return table


WIDE_HEADERS = ("input i_t", "forget f_t", "output o_t", "candidate", "c_next", "h_next")
NARROW_HEADERS = ("i_t", "f_t", "o_t", "cand.", "c_next", "h_next")


def shapes_table(rows: Sequence[ShapeRow]) -> RenderableType:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Shapes", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("array")
    table.add_column("shape", justify="right")
    table.add_column("dtype")
    table.add_column("from", overflow="fold")  # a long path wraps, never cut
    for r in rows:
        table.add_row(Text(r.name), shape_str(r.shape), r.dtype, Text(r.source))
    return table


def step_view(
    result: StepResult, rows: Sequence[ShapeRow], notes: Sequence[str] = ()
) -> RenderableType:
    """The whole ``step`` view: notes, one gate table per batch row, h_next and c_next, then
    the shapes (so the gates are what a 24-line terminal shows)."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [Text(n, style="italic") for n in notes]
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
    parts.append(shapes_table(rows))
    return Group(*parts)


def init_view(path: Path, arrays: dict[str, Array], meta: dict[str, Any]) -> RenderableType:
    """What ``init`` wrote: the path, the metadata, and a table of arrays and shapes."""
    from rich.console import Group
    from rich.text import Text

    rows = [ShapeRow(k, tuple(v.shape), str(v.dtype), str(path)) for k, v in arrays.items()]
    described = ", ".join(f"{k}={v}" for k, v in meta.items())
    return Group(Text(f"Wrote {path}", style="bold green"), Text(described), shapes_table(rows))
