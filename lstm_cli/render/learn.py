"""Rich renderables for ``grad`` and ``check`` (Rich imported inside the functions only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.params import LSTMParams

from .reports import variant_note

if TYPE_CHECKING:
    from rich.console import RenderableType

    from lstm_cli.backward import CheckRow, Grads
    from lstm_cli.porting.check import CheckResult
    from lstm_cli.porting.vectors import Case

MAX_VALUES_SHOWN = 8
MAX_NOTES_SHOWN = 6


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1e}"


STEP_LOSS = "sum(dh_next * h_next) + sum(dc_next * c_next)"
SEQUENCE_LOSS = "sum_t sum(dhs[t] * h_t) + sum(dh_next * h_T) + sum(dc_next * c_T)"


@dataclass
class GradReport:
    """The gradients of a step or a sequence, and the gradient check when it was run."""

    grads: Grads
    cell: LSTMParams
    dtype: str
    sources: Mapping[str, str]
    notes: list[str] = field(default_factory=list)
    sequence: bool = False
    upstream_specs: Mapping[str, str | None] = field(default_factory=dict)
    rows: Sequence[CheckRow] | None = None
    check_tol: float = 1e-6

    @property
    def check_ok(self) -> bool:
        """True unless the gradient check ran and an array's error is above the tolerance."""
        return self.rows is None or all(r.ok for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        g = self.grads
        up = self.upstream_specs
        payload: dict[str, Any] = {
            "grads": {k: v.tolist() for k, v in g.grads.items()},
            "h_next": g.h_next.tolist(),
            "c_next": g.c_next.tolist(),
            "loss": g.loss,
            "loss_formula": SEQUENCE_LOSS if self.sequence else STEP_LOSS,
            "upstream": {
                "dh_next": up.get("dh_next") or "ones",
                "dc_next": up.get("dc_next") or "zeros",
                **({"dhs": up.get("dhs")} if self.sequence else {}),
            },
            "shapes": {k: list(v.shape) for k, v in g.grads.items()},
            "dtype": self.dtype,
            "sources": dict(self.sources),
            "variant": self.cell.variant.switches(),
            "notes": list(self.notes),
        }
        if self.rows is not None:
            payload["check"] = self._check_json()
        return payload

    def _check_json(self) -> dict[str, Any]:
        from lstm_cli.backward import CHECK_EPS

        return {
            "method": f"central differences in float64, eps {CHECK_EPS:g}; rel_error = "
            "||analytic - numerical|| / max(||analytic|| + ||numerical||, floor); floor = "
            "10 u loss_scale sqrt(entries) / (eps tolerance): below it the array is too small "
            "to check, and fails only if it differs by more than the roundoff",
            "tolerance": self.check_tol,
            "ok": self.check_ok,
            "too_small": [r.name for r in self.rows or [] if r.too_small],
            "arrays": {
                r.name: {
                    "rel_error": r.rel_error,
                    "max_abs_error": r.max_abs_error,
                    "floor": r.floor,
                    "status": check_status(r),
                    "checked": r.checked,
                    "size": r.size,
                }
                for r in self.rows or []
            },
        }

    def view(self) -> RenderableType:
        notes = [*self.notes, *variant_note(self.cell)]
        return grad_view(self.grads.grads, notes, self.rows, self.check_tol)


def check_status(r: CheckRow) -> str:
    """``ok``, ``fail`` or ``too small to check`` (the array's norm is below the floor)."""
    if not r.ok:
        return "fail"
    return "too small to check" if r.too_small else "ok"


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
            caption="rel error = |analytic - numerical| / max(|analytic| + |numerical|, floor), "
            "2-norms; below the floor central differences cannot resolve the gradient",
            caption_justify="left",
        )
        for col in ("array", "rel error", "max abs error", "floor", "entries", ""):
            ct.add_column(col, justify="right" if col not in ("array", "") else "left")
        styles = {"ok": "green", "fail": "bold red", "too small to check": "yellow"}
        for r in check:
            status = check_status(r)
            ct.add_row(
                r.name,
                f"{r.rel_error:.2e}",
                f"{r.max_abs_error:.2e}",
                f"{r.floor:.1e}",
                f"{r.checked}/{r.size}",
                Text(status.upper() if status == "fail" else status, style=styles[status]),
            )
        parts.append(ct)
    return Group(*parts)


class _CaseTable:
    """Per case errors; below 80 columns only the relative errors, so no number is cut."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich import box
        from rich.table import Table

        wide = options.max_width >= 80
        result = self.result
        table = Table(
            title=f"check {result.target} (layout {result.layout})", title_justify="left",
            box=box.SIMPLE_HEAD, caption_justify="left", pad_edge=False,
            caption="abs = max|yours - ref|, rel = abs / max|ref| (ref: float64)",
        )  # fmt: skip
        columns = ("case", "dtype", "B,F,H", "h abs", "h rel", "c abs", "c rel", "")
        shown = columns if wide else ("case", "dtype", "h rel", "c rel", "")
        for col in shown:
            table.add_column(col, justify="right" if " " in col else "left", no_wrap=True)
        for r in result.reports:
            cells: dict[str, Any] = {
                "case": r.label or r.name, "dtype": r.dtype.replace("float", "f"),
                "B,F,H": r.shape, "h abs": _num(r.h_abs), "h rel": _num(r.h_rel),
                "c abs": _num(r.c_abs), "c rel": _num(r.c_rel),
                "": _status_text(r.status or ("ok" if r.ok else "disagree")),
            }  # fmt: skip
            table.add_row(*(cells[c] for c in shown))
        yield table


def check_view(result: CheckResult) -> RenderableType:
    """Per case errors for h and c, the worst case, the verdict and the likely culprit."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    parts: list[RenderableType] = [_CaseTable(result)]
    notes = [(r.name, n) for r in result.reports for n in r.notes]
    for name, note in notes[:MAX_NOTES_SHOWN]:
        parts.append(Text(f"{name}: {note}", style="yellow"))
    if len(notes) > MAX_NOTES_SHOWN:
        more = len(notes) - MAX_NOTES_SHOWN
        parts.append(Text(f"... {more} more notes (use --json)", style="yellow"))
    worst = result.worst()
    parts.append(Text(f"Worst case: {worst.name} (max rel error {_num(worst.worst_rel())})."))
    style = "bold green" if result.ok else "bold red"
    parts.append(Text(result.summary(), style=style))
    for d in result.diagnoses:
        parts.append(Text.assemble(("Likely culprit: ", "bold"), (d.culprit, "bold red")))
        parts.append(Padding(Text(d.detail), (0, 0, 0, 2)))
        scope = f"explains {d.explains}" if d.matched else d.explains
        parts.append(Padding(Text(f"({scope})", style="dim"), (0, 0, 0, 2)))
    return Group(*parts)


def _status_text(status: str) -> Any:
    """A case's status for the table: ok, FAIL (it disagrees) or no result."""
    from rich.text import Text

    styles = {"ok": ("ok", "green"), "disagree": ("FAIL", "bold red"),
              "no result": ("no result", "yellow")}  # fmt: skip
    text, style = styles[status]
    return Text(text, style=style)


@dataclass(frozen=True)
class VectorsReport:
    """What ``vectors`` wrote: the folder, the cases, the seed and the variants."""

    path: Path
    cases: Sequence[Case]
    seed: int
    variants: Sequence[str]
    files: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "seed": self.seed,
            "variants": list(self.variants),
            "cases": [cs.name for cs in self.cases],
            "files": self.files,
        }

    def view(self) -> RenderableType:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=f"Wrote {self.files} files to {self.path}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        table.add_column("case", no_wrap=True)
        table.add_column("shape", no_wrap=True)
        table.add_column("what")
        for cs in self.cases:
            table.add_row(cs.name, cs.shape_label(), Text(f"{cs.kind}: {cs.spec.description}"))
        return table


@dataclass(frozen=True)
class CheckReport:
    """The verdict of ``check``: per case errors, the worst case, the diagnoses."""

    result: CheckResult

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()

    def view(self) -> RenderableType:
        return check_view(self.result)
