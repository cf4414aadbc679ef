"""What ``init`` and ``convert`` wrote, as the command line shows it: ``to_json()`` (the
payload printed in a pipe) and ``view()`` (the Rich view on a terminal)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lstm_cli.core import Array
from lstm_cli.params import LSTMParams

from .reports import shapes

if TYPE_CHECKING:
    from rich.console import RenderableType


def written_view(
    path: Path, arrays: Mapping[str, Array], shown: Mapping[str, Any]
) -> RenderableType:
    """The view of a params file written by ``init`` or ``convert``."""
    from .step import init_view

    return init_view(path, dict(arrays), dict(shown))


class InitReport(NamedTuple):
    """What ``init`` wrote: the path, what to say about it, the arrays."""

    path: Path
    arrays: Mapping[str, Array]
    meta: Mapping[str, Any]
    shown: Mapping[str, Any] | None = None  # the view's description; default: meta

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "meta": dict(self.meta), "shapes": shapes(self.arrays)}

    def view(self) -> RenderableType:
        return written_view(self.path, self.arrays, self.shown or self.meta)


class ConvertReport(NamedTuple):
    """What ``convert`` wrote, from which layout to which."""

    path: Path
    arrays: Mapping[str, Array]
    meta: Mapping[str, Any]
    shown: Mapping[str, Any] | None = None  # the view's description; default: meta
    source_layout: str = "native"
    layout: str = "native"
    cell: LSTMParams | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "from": self.source_layout,
            "to": self.layout,
            "arrays": shapes(self.arrays),
            "variant": None if self.cell is None else self.cell.variant.switches(),
        }

    def view(self) -> RenderableType:
        return written_view(self.path, self.arrays, self.shown or self.meta)
