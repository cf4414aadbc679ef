"""A whole LSTM module as the frameworks compute it: L layers of D = 1 or 2 directions.

PyTorch's ``nn.LSTM`` (and ONNX's bidirectional LSTM node, with one layer): layer 0 reads
``xs``; the reverse direction runs on the time-reversed input and its outputs are reversed
back; ``y`` is the directions' outputs concatenated, (T, [B,] D*H), and the next layer's input.
The final states ``h_n, c_n`` are (L*D, [B,] H) in torch's order (layer-major, forward then
reverse), and so are the initial states ``h0, c0`` (zeros by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core import Array
from .params import LSTMParams
from .sequence import run_sequence


@dataclass(frozen=True)
class StackResult:
    """The result of :func:`run_stack` (``[B,]`` only when the input is batched).

    Attributes:
        y (T, [B,] D*H): the last layer's output.
        h_n, c_n (L*D, [B,] H): every cell's final state, in torch's order.
        layer_outputs: each layer's output (T, [B,] D*H), layer 0 first (the last is ``y``).
    """

    y: Array
    h_n: Array
    c_n: Array
    layer_outputs: tuple[Array, ...]


def run_stack(
    layers: Sequence[Sequence[LSTMParams]],
    xs: Array,
    h0: Array | None = None,
    c0: Array | None = None,
    *,
    dtype: Any = None,
    backend: str = "numpy",
    reverse: bool = False,
) -> StackResult:
    """Run a stack of LSTM cells over ``xs`` (T, F) or (T, B, F), as ``nn.LSTM`` does.

    Args:
        layers: the cells of each layer, ``[forward]`` or ``[forward, reverse]``, layer 0
            first; layer k > 0 takes D*H features (the layer below's output).
        xs: the inputs, time first.
        h0, c0: initial states (L*D, [B,] H), torch's order; default zeros.
        dtype: compute in this dtype (default: the first cell's dtype).
        backend: as :func:`~lstm_cli.sequence.run_sequence`.
        reverse: a one-direction stack whose cells read the sequence backwards (an ONNX node
            of direction ``reverse``); its outputs are put back in time order.

    Raises:
        ValueError: naming the array whose shape disagrees with the stack.
    """
    if not layers or any(len(cells) not in (1, 2) for cells in layers):
        raise ValueError("a stack needs at least one layer of one or two directions")
    D = len(layers[0])
    if any(len(cells) != D for cells in layers):
        raise ValueError("every layer of a stack needs the same number of directions")
    dt = np.dtype(dtype if dtype is not None else layers[0][0].dtype)
    x = np.asarray(xs, dtype=dt)
    if x.ndim not in (2, 3):
        raise ValueError(f"xs must be (T, F) or (T, B, F), got shape {x.shape}")
    H = layers[0][0].n_hidden
    state = (len(layers) * D, *x.shape[1:-1], H)
    h_init = _states(h0, "h0", state, dt)
    c_init = _states(c0, "c0", state, dt)
    h_n, c_n, outputs = [], [], []
    for k, cells in enumerate(layers):
        ys = []
        for d, cell in enumerate(cells):
            i = k * D + d
            back = d == 1 or (reverse and D == 1)
            seq = x[::-1] if back else x
            r = run_sequence(
                cell, seq, h_init[i], c_init[i], dtype=dt, return_sequences=True,
                backend=backend,
            )  # fmt: skip
            assert r.h_seq is not None
            ys.append(r.h_seq[::-1] if back else r.h_seq)
            h_n.append(r.h_next)
            c_n.append(r.c_next)
        x = np.ascontiguousarray(np.concatenate(ys, axis=-1))
        outputs.append(x)
    return StackResult(x, np.stack(h_n), np.stack(c_n), tuple(outputs))


def _states(value: Array | None, name: str, shape: tuple[int, ...], dtype: Any) -> Array:
    if value is None:
        return np.zeros(shape, dtype)
    arr = np.asarray(value, dtype=dtype)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (L*D, [B,] H), got {arr.shape}")
    return arr
