"""The console every view is printed on, and the pieces shared by the views.

Rich is imported inside the functions (never at module level, ruff TID253) so that commands
printing JSON never pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


class ShapeRow(NamedTuple):
    """One row of the shapes table: an array's name, shape, dtype and where it came from."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    source: str


def make_console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def shape_str(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def print_view(renderable: RenderableType) -> None:
    make_console().print(renderable)


def console_width() -> int:
    return make_console().width


def make_progress() -> Any:
    """A transient progress bar on stderr (shown only on a terminal by the caller)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("steps"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=make_console(stderr=True),
        transient=True,
    )
