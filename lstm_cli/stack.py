"""A whole LSTM module as the frameworks compute it: L layers of D = 1 or 2 directions.

PyTorch's ``nn.LSTM`` (and ONNX's bidirectional LSTM node, with one layer): layer 0 reads
``xs``; the reverse direction runs on the time-reversed input and its outputs are reversed
back; ``y`` is the directions' outputs concatenated, (T, [B,] D*H), and the next layer's input.
The final states ``h_n, c_n`` are (L*D, [B,] H) in torch's order (layer-major, forward then
reverse), and so are the initial states ``h0, c0`` (zeros by default).

A chain of Keras ``LSTM`` / ``Bidirectional(LSTM)`` layers is wired per layer
(:class:`LayerWiring`): a cell with ``go_backwards`` reads the reversed sequence and, as Keras
does, returns its outputs in that reversed order; Bidirectional puts its backward layer's
outputs back in time order and merges the two (concat, sum, ave, mul); the last layer may
return only its last step (``return_sequences=False``), and layers may differ in H.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core import Array
from .params import LSTMParams
from .sequence import run_sequence

MERGE_MODES = ("concat", "sum", "ave", "mul")


@dataclass(frozen=True)
class LayerWiring:
    """How one layer runs its cells (one per direction) and joins their outputs.

    Attributes:
        backwards: per cell, whether it reads the sequence from its last step.
        restore: per cell, whether its outputs are put back in time order afterwards.
        merge: how the cells' outputs are joined: concat (last axis), sum, ave or mul.
        return_sequences: every step's output (T, [B,] X), else only the last ([B,] X),
            each cell's last in the order it read the sequence.
    """

    backwards: tuple[bool, ...]
    restore: tuple[bool, ...]
    merge: str = "concat"
    return_sequences: bool = True

    @classmethod
    def torch(cls, directions: int, reverse: bool = False) -> LayerWiring:
        """nn.LSTM's layer (forward, reverse); ``reverse``: one cell reading backwards, its
        outputs put back in time order (an ONNX node of direction ``reverse``)."""
        if directions == 2:
            return cls((False, True), (False, True))
        return cls((reverse,), (reverse,))

    def out_features(self, hidden: Sequence[int]) -> int:
        """The width X of the layer's output for cells of ``hidden`` units."""
        return sum(hidden) if self.merge == "concat" else hidden[0]

    def join(self, outputs: Sequence[Array]) -> Array:
        """The cells' outputs (..., H_d) merged into (..., X)."""
        if len(outputs) == 1 or self.merge == "concat":
            return np.ascontiguousarray(np.concatenate(outputs, axis=-1))
        a, b = outputs
        if self.merge == "sum":
            return a + b
        if self.merge == "ave":
            return (a + b) / 2
        return a * b


@dataclass(frozen=True)
class StackResult:
    """The result of :func:`run_stack` (``[B,]`` only when the input is batched).

    Attributes:
        y (T, [B,] X): the last layer's output, X = D*H for nn.LSTM; ([B,] X) when the last
            layer returns only its last step; (B, T, X) for a batch-first input.
        h_cells, c_cells: every cell's final state ([B,] H_i), layer-major, forward first.
        layer_outputs: each layer's output, layer 0 first (the last is ``y``).
    """

    y: Array
    h_cells: tuple[Array, ...]
    c_cells: tuple[Array, ...]
    layer_outputs: tuple[Array, ...]

    @property
    def uniform(self) -> bool:
        """Whether every cell has the same H (then h_n, c_n are arrays)."""
        return len({h.shape for h in self.h_cells}) == 1

    @property
    def h_n(self) -> Array:
        """(L*D, [B,] H): the final hidden states in torch's order (ValueError if H differs)."""
        return _stacked(self.h_cells, "h_n")

    @property
    def c_n(self) -> Array:
        """(L*D, [B,] H): the final cell states in torch's order (ValueError if H differs)."""
        return _stacked(self.c_cells, "c_n")


def _stacked(cells: tuple[Array, ...], name: str) -> Array:
    if len({c.shape for c in cells}) != 1:
        raise ValueError(f"{name}: the cells differ in H, so their states do not stack")
    return np.stack(cells)


def run_stack(
    layers: Sequence[Sequence[LSTMParams]],
    xs: Array,
    h0: Array | None = None,
    c0: Array | None = None,
    *,
    dtype: Any = None,
    backend: str = "numpy",
    wiring: Sequence[LayerWiring] | None = None,
    batch_first: bool = False,
) -> StackResult:
    """Run a stack of LSTM cells over ``xs`` (T, F) or (T, B, F), as ``nn.LSTM`` does (or as
    ``wiring`` says, one :class:`LayerWiring` per layer).

    Args:
        layers: the cells of each layer, ``[forward]`` or ``[forward, reverse]``, layer 0
            first; layer k > 0 takes the layer below's output features.
        xs: the inputs, time first; (B, T, F) when ``batch_first``.
        h0, c0: initial states (L*D, [B,] H), torch's order; default zeros (only when every
            cell has the same H).
        dtype: compute in this dtype (default: the first cell's dtype).
        backend: as :func:`~lstm_cli.sequence.run_sequence`.
        wiring: each layer's wiring; default nn.LSTM's (an ONNX node of direction
            ``reverse``: ``LayerWiring.torch(1, reverse=True)`` for its layer).
        batch_first: a 3-D xs is (B, T, F), and the sequence y is returned (B, T, X).

    Raises:
        ValueError: naming the array whose shape disagrees with the stack.
    """
    if not layers or any(len(cells) not in (1, 2) for cells in layers):
        raise ValueError("a stack needs at least one layer of one or two directions")
    D = len(layers[0])
    if wiring is None and any(len(cells) != D for cells in layers):
        raise ValueError("every layer of a stack needs the same number of directions")
    wires = list(wiring) if wiring is not None else [LayerWiring.torch(D)] * len(layers)
    _check_wiring(layers, wires)
    dt = np.dtype(dtype if dtype is not None else layers[0][0].dtype)
    x = np.asarray(xs, dtype=dt)
    if x.ndim not in (2, 3):
        raise ValueError(f"xs must be (T, F) or (T, B, F), got shape {x.shape}")
    batch_first = batch_first and x.ndim == 3  # a 2-D xs is (T, F) either way
    if batch_first:
        x = np.ascontiguousarray(np.swapaxes(x, 0, 1))
    cells = [cell for layer in layers for cell in layer]
    h_init = _states(h0, "h0", cells, x.shape[1:-1], dt)
    c_init = _states(c0, "c0", cells, x.shape[1:-1], dt)
    h_n: list[Array] = []
    c_n: list[Array] = []
    outputs = []
    for layer, wire in zip(layers, wires, strict=True):
        ys = []
        for d, cell in enumerate(layer):
            i = len(h_n)
            seq = np.ascontiguousarray(x[::-1]) if wire.backwards[d] else x
            r = run_sequence(
                cell, seq, h_init[i], c_init[i], dtype=dt,
                return_sequences=wire.return_sequences, backend=backend,
            )  # fmt: skip
            if r.h_seq is None:  # the last step read
                ys.append(r.h_next)
            else:
                ys.append(r.h_seq[::-1] if wire.restore[d] else r.h_seq)
            h_n.append(r.h_next)
            c_n.append(r.c_next)
        x = wire.join(ys)
        outputs.append(x)
    if batch_first:
        outputs = [np.swapaxes(o, 0, 1) if w.return_sequences else o
                   for o, w in zip(outputs, wires, strict=True)]  # fmt: skip
    return StackResult(outputs[-1], tuple(h_n), tuple(c_n), tuple(outputs))


def _check_wiring(layers: Sequence[Sequence[LSTMParams]], wires: list[LayerWiring]) -> None:
    if len(wires) != len(layers):
        raise ValueError(f"{len(wires)} wirings for {len(layers)} layers")
    for k, (cells, wire) in enumerate(zip(layers, wires, strict=True)):
        if len(wire.backwards) != len(cells) or len(wire.restore) != len(cells):
            raise ValueError(f"layer {k}: its wiring is for another number of directions")
        if wire.merge not in MERGE_MODES:
            raise ValueError(f"layer {k}: merge must be one of {', '.join(MERGE_MODES)}")
        if not wire.return_sequences and k < len(layers) - 1:
            raise ValueError(f"layer {k} returns its last step only but feeds layer {k + 1}")


def _states(
    value: Array | None, name: str, cells: list[LSTMParams], batch: tuple[int, ...], dtype: Any
) -> list[Array]:
    """One initial state ([B,] H_i) per cell: zeros, or the rows of ``value`` (L*D, [B,] H)."""
    if value is None:
        return [np.zeros((*batch, c.n_hidden), dtype) for c in cells]
    H = {c.n_hidden for c in cells}
    if len(H) != 1:
        raise ValueError(f"{name} is given, but the cells differ in H ({sorted(H)})")
    shape = (len(cells), *batch, H.pop())
    arr = np.asarray(value, dtype=dtype)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (L*D, [B,] H), got {arr.shape}")
    return list(arr)
