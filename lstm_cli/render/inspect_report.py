"""What ``inspect`` found in a file: every LSTM, as a Rich table or as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from lstm_cli.io.survey import LstmInfo

COLUMNS = ("name", "framework", "layers", "dirs", "F", "H", "dtype", "variants", "proj")


@dataclass(frozen=True)
class InspectReport:
    """The LSTMs of ``path``, in the order found."""

    path: str
    lstms: Sequence[LstmInfo]

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "lstms": [info.to_json() for info in self.lstms]}

    def rows(self) -> list[tuple[str, ...]]:
        """One row of text per LSTM, in the order of :data:`COLUMNS`."""
        return [
            (
                i.name or "(none)",
                i.framework,
                str(i.layers),
                str(i.directions),
                str(i.n_features),
                str(i.n_hidden),
                i.dtype,
                ", ".join(i.variants) or "none",
                "none" if i.proj_size is None else str(i.proj_size),
            )
            for i in self.lstms
        ]

    def view(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"LSTMs in {self.path}", title_justify="left")
        for column in COLUMNS:
            table.add_column(column, overflow="fold")
        for row in self.rows():
            table.add_row(*row)
        several = [i for i in self.lstms if len(i.cells) > 1]
        notes = [
            f"{i.name or 'the LSTM'}: cells {', '.join(i.cells)}; pick one with --layer and "
            "--direction"
            for i in several
        ]
        if len(self.lstms) > 1:
            notes.append("several LSTMs: pick one with --key-prefix NAME")
        return Group(table, *(Text(n) for n in notes))
