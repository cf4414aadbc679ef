"""How results and cells show themselves in a notebook: a short ``repr`` (shapes and dtype,
never the arrays) and an HTML table (``_repr_html_``) with the same gate table as the
terminal. Pure string formatting: no Rich, no terminal."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

GATE_COLUMNS = (  # (result attribute, header), as the terminal's gate table
    ("i_t", "input i_t"),
    ("f_t", "forget f_t"),
    ("o_t", "output o_t"),
    ("c_t_candidate", "candidate"),
    ("c_next", "c_next"),
    ("h_next", "h_next"),
)
MAX_UNITS = 64


def shape(a: Any) -> str:
    """``(4,)`` or ``(8, 4)``."""
    s = tuple(np.shape(a))
    return "(" + ", ".join(map(str, s)) + ("," if len(s) == 1 else "") + ")"


def short_repr(name: str, fields: Mapping[str, Any]) -> str:
    """``Name(a=1, b=(4,))``: what a notebook prints instead of the arrays."""
    return f"{name}(" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"


def _gate_cell(v: float) -> str:
    """A gate in [0, 1] with a bar drawn behind the number."""
    pct = round(min(max(v, 0.0), 1.0) * 100)
    bar = f"background: linear-gradient(90deg, #6aa84f66 {pct}%, transparent {pct}%)"
    return f'<td style="text-align:right; {bar}">{v:.4f}</td>'


def _signed_cell(v: float) -> str:
    colour = "#b45f06" if v < 0 else "#1f6fb2"  # orange / blue: readable on light and dark
    return f'<td style="text-align:right; color:{colour}">{v:+.4f}</td>'


def gate_table_html(columns: Mapping[str, np.ndarray], title: str) -> str:
    """The gate table: one row per unit, the three gates with bars, then the candidate,
    c_next and h_next. ``columns`` maps the result's names to (H,) arrays."""
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in GATE_COLUMNS)
    n_units = len(columns["h_next"])
    rows = []
    for k in range(min(n_units, MAX_UNITS)):
        cells = [_gate_cell(float(columns[n][k])) for n, _ in GATE_COLUMNS[:3]]
        cells += [_signed_cell(float(columns[n][k])) for n, _ in GATE_COLUMNS[3:]]
        rows.append(f"<tr><td>{k}</td>{''.join(cells)}</tr>")
    more = f"<p>{n_units - MAX_UNITS} more units not shown</p>" if n_units > MAX_UNITS else ""
    return (
        f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption>"
        f"<thead><tr><th>unit</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p>gates: 0 = closed, 1 = open; candidate and h_next in (-1, 1)</p>{more}"
    )


def arrays_table_html(rows: Sequence[tuple[str, str, str]], title: str) -> str:
    """A table of (name, shape, dtype) rows."""
    body = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(s)}</td><td>{html.escape(d)}</td></tr>"
        for n, s, d in rows
    )
    return (
        f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption>"
        f"<thead><tr><th>array</th><th>shape</th><th>dtype</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def sequence_repr(result: Any) -> str:
    """A SequenceResult in one line: steps, the state's shape, dtype, what was kept."""
    fields: dict[str, Any] = {"n_steps": result.n_steps, "h_next": shape(result.h_next)}
    fields["dtype"] = result.h_next.dtype
    kept = [k for k in ("h_seq", "c_seq") if getattr(result, k) is not None]
    kept += ["gates"] if result.gates is not None else []
    return short_repr("SequenceResult", {**fields, "kept": kept})


def sequence_html(result: Any) -> str:
    """A SequenceResult's final state (batch row 0 of a batch) and min / mean / max of each
    kept sequence."""
    batched = result.h_next.ndim == 2

    def row0(a: np.ndarray) -> np.ndarray:
        return a[:, 0] if batched else a

    h, c = (result.h_next[0], result.c_next[0]) if batched else (result.h_next, result.c_next)
    state = [(f"h_next[{j}]", f"{h[j]:+.8f}", f"c_next[{j}] = {c[j]:+.8f}") for j in range(len(h))]
    page = arrays_table_html(state, f"Final state after {result.n_steps} steps")
    kept = {**(result.gates or {}), "c_seq": result.c_seq, "h_seq": result.h_seq}
    stats = [
        (k, f"{row0(v).min():+.4f} / {row0(v).mean():+.4f}", f"max {row0(v).max():+.4f}")
        for k, v in kept.items()
        if v is not None
    ]
    if stats:
        page += arrays_table_html(stats, "min / mean over every step, and max")
    return page
