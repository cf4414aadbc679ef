"""Rich renderables for ``grad`` and ``check`` (Rich imported inside the functions only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .core import Array

if TYPE_CHECKING:
    from rich.console import RenderableType

    from .backward import CheckRow
    from .check import CheckResult

MAX_VALUES_SHOWN = 8
MAX_NOTES_SHOWN = 6


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1e}"


def grad_view(
    grads: dict[str, Array],
    notes: Sequence[str],
    check: Sequence[CheckRow] | None = None,
    check_tol: float = 1e-6,
) -> RenderableType:
    """A table of the gradients (shape, norm, largest entry, values when short), then the
    gradient check's relative error per array."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[RenderableType] = [Text(n, style="italic") for n in notes]
    table = Table(title="Gradients", title_justify="left", box=box.SIMPLE_HEAD)
    for col, just in (("array", "left"), ("shape", "right"), ("norm", "right"),
                      ("max |.|", "right"), ("values", "left")):  # fmt: skip
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for name, g in grads.items():
        flat = np.asarray(g, dtype=np.float64).reshape(-1)
        values = ""
        if flat.size <= MAX_VALUES_SHOWN:
            values = " ".join(f"{v:+.4f}" for v in flat)
        peak = float(np.abs(flat).max()) if flat.size else 0.0
        table.add_row(name, _shape(g.shape), f"{np.linalg.norm(flat):.4g}", f"{peak:.4g}", values)
    parts.append(table)
    if check is not None:
        ct = Table(
            title="Gradient check: central differences in float64",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            caption="rel error = |analytic - numerical| / (|analytic| + |numerical|), 2-norms",
            caption_justify="left",
        )
        for col in ("array", "rel error", "max abs error", "entries", ""):
            ct.add_column(col, justify="right" if col != "array" else "left")
        for r in check:
            good = r.rel_error <= check_tol
            ct.add_row(
                r.name,
                f"{r.rel_error:.2e}",
                f"{r.max_abs_error:.2e}",
                f"{r.checked}/{r.size}",
                Text("ok" if good else "FAIL", style="green" if good else "bold red"),
            )
        parts.append(ct)
    return Group(*parts)


def check_view(result: CheckResult) -> RenderableType:
    """Per case errors for h and c, the worst case, the verdict and the likely culprit."""
    from rich import box
    from rich.console import Group
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"check {result.target} (layout {result.layout})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        caption="abs = max|yours - ref|, rel = abs / max|ref| (ref: float64)",
        caption_justify="left",
        pad_edge=False,
    )
    for col in ("case", "dtype", "B,F,H", "h abs", "h rel", "c abs", "c rel", ""):
        table.add_column(col, justify="right" if " " in col else "left", no_wrap=True)
    for r in result.reports:
        table.add_row(
            r.label or r.name,
            r.dtype.replace("float", "f"),
            r.shape,
            _num(r.h_abs),
            _num(r.h_rel),
            _num(r.c_abs),
            _num(r.c_rel),
            Text("ok", style="green") if r.ok else Text("FAIL", style="bold red"),
        )
    parts: list[RenderableType] = [table]
    notes = [(r.name, n) for r in result.reports for n in r.notes]
    for name, note in notes[:MAX_NOTES_SHOWN]:
        parts.append(Text(f"{name}: {note}", style="yellow"))
    if len(notes) > MAX_NOTES_SHOWN:
        more = len(notes) - MAX_NOTES_SHOWN
        parts.append(Text(f"... {more} more notes (use --json)", style="yellow"))
    worst = result.worst()
    parts.append(Text(f"Worst case: {worst.name} (max rel error {_num(worst.worst_rel())})."))
    n_fail = sum(not r.ok for r in result.reports)
    if result.ok:
        parts.append(Text(f"All {len(result.reports)} cases agree.", style="bold green"))
    else:
        parts.append(Text(f"{n_fail} of {len(result.reports)} cases disagree.", style="bold red"))
    for d in result.diagnoses:
        parts.append(Text.assemble(("Likely culprit: ", "bold"), (d.culprit, "bold red")))
        parts.append(Padding(Text(d.detail), (0, 0, 0, 2)))
        parts.append(Padding(Text(f"(explains {d.explains})", style="dim"), (0, 0, 0, 2)))
    return Group(*parts)
