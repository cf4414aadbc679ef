"""The report of ``step`` as the command line shows it, and what the reports share. A report
has ``to_json()`` (the payload printed in a pipe) and ``view()`` (the Rich view on a
terminal); those of ``init`` and ``convert`` are in :mod:`.written`, ``run``'s in
:mod:`.run`, so that ``step --json`` imports only its own.

Reports are NamedTuples, immutable records that cost a tenth of a frozen dataclass to define
(no generated code to compile), which ``lstm-cell step --json`` would pay at every start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from lstm_cli.core import Array, StepResult
from lstm_cli.io.jsonio import json_list
from lstm_cli.params import BIAS_NAMES, PEEPHOLE_NAMES, WEIGHT_NAMES, LSTMParams

if TYPE_CHECKING:
    from rich.console import RenderableType

    from .console import ShapeRow

# How a framework's weights were read, said under the step view.
SOURCE_GATE_ORDERS = {
    "pytorch": "PyTorch weights (gate blocks i, f, g, o; bias = bias_ih + bias_hh)",
    "keras": "Keras weights (gate blocks i, f, c, o; kernel transposed)",
    "onnx": "ONNX weights (gate blocks i, o, f, c; bias = Wb + Rb)",
}
STEP_INPUT_NAMES = ("x_t", "h_prev", "c_prev")


def variant_note(cell: LSTMParams) -> list[str]:
    """``["ONNX variant: ..."]`` for a cell with a variant, else nothing."""
    return [] if cell.is_plain else [f"ONNX variant: {cell.variant.describe()}."]


def shapes(arrays: Mapping[str, Array]) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in arrays.items()}


class StepReport(NamedTuple):
    """One step with every gate, its inputs' origins and the cell it ran."""

    result: StepResult
    cell: LSTMParams
    dtype: str
    sources: Mapping[str, str]  # per input name, and "params"
    notes: Sequence[str] = ()
    source_layout: str | None = None

    def to_json(self) -> dict[str, Any]:
        r = self.result
        arrays = r.arrays()
        return {
            "h_next": json_list(r.h_next),
            "c_next": json_list(r.c_next),
            "gates": {k: json_list(v) for k, v in r.gates.items()},
            "pre_activations": {k: json_list(v) for k, v in r.pre_activations.items()},
            "shapes": {
                **shapes({k: arrays[k] for k in (*STEP_INPUT_NAMES, "u")}),
                **shapes(self.cell.all_arrays()),
            },
            "dtype": self.dtype,
            "sources": dict(self.sources),
            "variant": self.cell.variant.switches(),
            "notes": list(self.notes),
        }

    def rows(self) -> list[ShapeRow]:
        """The shapes table: inputs, u, then the cell's arrays, each with its origin."""
        from .console import ShapeRow

        arrays = self.result.arrays()
        rows = [ShapeRow(k, arrays[k].shape, self.dtype, self.sources[k]) for k in STEP_INPUT_NAMES]
        rows.append(ShapeRow("u = [h_prev, x_t]", self.result.u.shape, self.dtype, "concatenated"))
        label = self.sources["params"]
        for names in (WEIGHT_NAMES, BIAS_NAMES, PEEPHOLE_NAMES):  # one row per group
            group = [self.cell.all_arrays()[k] for k in names if k in self.cell.all_arrays()]
            if group:
                rows.append(ShapeRow(", ".join(names), group[0].shape, str(group[0].dtype), label))
        return rows

    def view(self) -> RenderableType:
        from .step import step_view

        notes = [*self.notes, *variant_note(self.cell)]
        if self.source_layout in SOURCE_GATE_ORDERS:
            notes.append(f"Read as {SOURCE_GATE_ORDERS[self.source_layout]}.")
        return step_view(self.result, self.rows(), notes)
