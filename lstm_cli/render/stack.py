"""What ``run --stack`` prints: every cell's final state, as JSON or as a Rich view (a table
of the layers and directions with F, H and the final h_n, c_n of each cell, and the shapes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm_cli.core import Array

from .console import shape_str

if TYPE_CHECKING:
    from rich.console import RenderableType

VIEW_VALUES = 8  # values of a state shown per cell; the rest is in the JSON and --out


@dataclass(frozen=True)
class StackCell:
    """One cell of the stack: its layer, the layer's name, its direction, F and H, and
    whether it reads the sequence backwards."""

    layer: int
    name: str
    direction: str
    n_features: int
    n_hidden: int
    backwards: bool

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "name": self.name, "direction": self.direction,
                "F": self.n_features, "H": self.n_hidden, "backwards": self.backwards}  # fmt: skip


@dataclass(frozen=True)
class StackReport:
    """The stack's final states (one ([B,] H_i) per cell, torch's order) and the shapes of
    its output (the output itself goes to --out).

    ``info`` holds the JSON's plain fields (``layers``, ``directions``, ``y``, ``dtype``,
    ``params``, ``out``, ``batch_first``, ``backend``); ``left_out`` the layers after the last
    LSTM layer that were not run, ``name (Class)``; ``notes`` where precision changes."""

    cells: Sequence[StackCell]
    h_cells: Sequence[Array]
    c_cells: Sequence[Array]
    info: dict[str, Any]
    left_out: Sequence[str] = field(default_factory=tuple)
    wiring: Sequence[str] = field(default_factory=tuple)
    notes: Sequence[str] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.info,
            "cells": [c.to_json() for c in self.cells],
            "left_out": list(self.left_out),
            "notes": list(self.notes),
            "h_n": [h.tolist() for h in self.h_cells],
            "c_n": [c.tolist() for c in self.c_cells],
        }

    def view(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        batched = self.h_cells[0].ndim == 2
        row = ", batch row 0" if batched else ""
        table = Table(title=f"run --stack: {self.info['params']}", title_justify="left")
        for column in ("layer", "name", "dir", "F", "H", f"h_n{row}", f"c_n{row}"):
            table.add_column(column, overflow="fold")
        for cell, h, c in zip(self.cells, self.h_cells, self.c_cells, strict=True):
            direction = cell.direction + (" ←" if cell.backwards else "")
            table.add_row(str(cell.layer), cell.name, direction, str(cell.n_features),
                          str(cell.n_hidden), _values(h[0] if batched else h),
                          _values(c[0] if batched else c))  # fmt: skip
        lines = [self._shapes(), *self.wiring, *self.notes]
        if any(cell.backwards for cell in self.cells):
            lines.append("←: the cell reads the sequence from its last step")
        if self.left_out:
            lines.append(f"left out (not run, after the last LSTM layer): "
                         f"{', '.join(self.left_out)}")  # fmt: skip
        if self.info.get("out"):
            lines.append(f"saved y, h_n, c_n and each layer's output to {self.info['out']}")
        return Group(table, *(Text(line) for line in lines))

    def _shapes(self) -> str:
        shapes = {h.shape for h in self.h_cells}
        if len(shapes) == 1:
            state = shape_str((len(self.h_cells), *shapes.pop()))
        else:
            state = " ".join(shape_str(h.shape) for h in self.h_cells) + " (one per cell)"
        first = " (batch first)" if self.info.get("batch_first") else ""
        return (f"y {shape_str(self.info['y'])}{first}, h_n and c_n {state}, "
                f"{self.info['dtype']}, backend {self.info['backend']}")  # fmt: skip


def _values(a: Array) -> str:
    """A state's first values, 4 decimals, with how many more there are."""
    shown = " ".join(f"{v:+.4f}" for v in np.asarray(a[:VIEW_VALUES], dtype=np.float64))
    more = a.shape[-1] - VIEW_VALUES
    return shown if more <= 0 else f"{shown} ... (+{more})"
