"""The cells of one LSTM in a file, and the choice of one of them.

A PyTorch ``nn.LSTM`` with ``num_layers`` L and ``bidirectional`` (D = 2) holds L * D cells,
named by the suffix of their keys: ``_l0``, ``_l0_reverse``, ``_l1``, ... (torch's order).
Layer k > 0 takes D * H input features (the previous layer's output, both directions
concatenated), so its ``weight_ih`` is (4H, D * H). Every other layout holds one cell (layer 0,
forward). A file of several cells is read only when the choice names exactly one of them:
nothing is ever read silently as its first cell.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from lstm_cli.errors import Hint, InputError
from lstm_cli.layouts import Candidate, Spec

DIRECTIONS = ("forward", "reverse")
TORCH_CELL_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_TORCH_CELL_KEY = re.compile(r"weight_ih_l(\d+)(_reverse)?")


@dataclass(frozen=True)
class CellChoice:
    """Which cell to read: a layer (0 first) and a direction; None leaves it open."""

    layer: int | None = None
    direction: str | None = None

    def __post_init__(self) -> None:
        if self.layer is not None and self.layer < 0:
            raise InputError(f"layer {self.layer}: layers count from 0")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise InputError(f"direction {self.direction!r}: expected forward or reverse")

    def describe(self) -> str:
        parts = [f"layer {self.layer}" if self.layer is not None else "", self.direction or ""]
        return ", ".join(p for p in parts if p) or "any cell"

    def admits(self, cell: CellId) -> bool:
        return (self.layer is None or self.layer == cell.layer) and (
            self.direction is None or self.direction == cell.direction
        )


@dataclass(frozen=True, order=True)
class CellId:
    """One cell of a stacked LSTM: its layer and whether it reads the sequence backwards."""

    layer: int
    reverse: bool = False

    @property
    def direction(self) -> str:
        return "reverse" if self.reverse else "forward"

    @property
    def suffix(self) -> str:
        """PyTorch's key suffix: ``_l1_reverse``."""
        return f"_l{self.layer}" + ("_reverse" if self.reverse else "")

    @property
    def name(self) -> str:
        return self.suffix[1:]

    def describe(self) -> str:
        return f"layer {self.layer}, {self.direction}"


def torch_cells(candidate: Candidate, keys: Collection[str]) -> list[CellId]:
    """The cells of an ``nn.LSTM`` candidate in torch's order (l0, l0_reverse, l1, ...);
    ``[CellId(0)]`` for any other layout (one cell)."""
    if candidate.spec.flavour != "lstm":
        return [CellId(0)]
    cells = []
    for key in keys:
        if key.startswith(candidate.prefix):
            m = _TORCH_CELL_KEY.fullmatch(key[len(candidate.prefix) :])
            if m is not None:
                cells.append(CellId(int(m.group(1)), m.group(2) is not None))
    return sorted(cells)


def shape_of(cells: list[CellId]) -> tuple[int, int]:
    """(layers, directions) of a list of cells."""
    return 1 + max(c.layer for c in cells), 2 if any(c.reverse for c in cells) else 1


def choose_cell(
    candidate: Candidate, keys: Collection[str], choice: CellChoice | None, source: str
) -> tuple[Candidate, CellId]:
    """The candidate narrowed to the one cell ``choice`` names (its keys those of that cell),
    and the cell. Refused when the choice names none, or leaves several open."""
    cells = torch_cells(candidate, keys)
    label = "native cell" if candidate.layout == "native" else candidate.spec.label
    cell = pick_cell(cells, choice, source, f"{candidate.prefix or 'the'} {label}")
    if candidate.spec.flavour != "lstm":
        return candidate, cell
    spec = Spec(
        "pytorch",
        "lstm",
        tuple(n + cell.suffix for n in TORCH_CELL_NAMES[:2]),
        tuple(n + cell.suffix for n in TORCH_CELL_NAMES[2:]),
        "nn.LSTM",
    )
    return Candidate(spec, candidate.prefix), cell


def pick_cell(cells: list[CellId], choice: CellChoice | None, source: str, what: str) -> CellId:
    """The one cell of ``cells`` that ``choice`` names. Refused when it names none, or leaves
    several open (nothing is read silently as the first cell)."""
    choice = choice or CellChoice()
    chosen = [c for c in cells if choice.admits(c)]
    names = ", ".join(c.name for c in cells)
    if not chosen:
        raise InputError(
            f"{source}: {what} has no cell {choice.describe()}; it holds {len(cells)}: {names}"
        )
    if len(chosen) > 1:
        layers, directions = shape_of(cells)
        raise InputError(
            f"{source}: {what} holds {len(cells)} cells ({names}: {_count(layers, 'layer')}, "
            f"{_count(directions, 'direction')}); none is read silently",
            Hint.PICK_CELL,
        )
    return chosen[0]


def one_cell(choice: CellChoice | None, source: str, what: str) -> None:
    """Refuse a choice of any cell but layer 0, forward, for a file of one cell."""
    if choice is not None and not choice.admits(CellId(0)):
        raise InputError(
            f"{source}: {what} holds one cell (layer 0, forward), not {choice.describe()}"
        )


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"
