"""The LSTM cell run over a whole sequence, fast: pure NumPy, no files, no terminal.

The equations are the single step's (``core.py``), applied for t = 0 .. T-1 with
``h_prev, c_prev`` of step t being ``h_next, c_next`` of step t-1. What makes it fast:

1. The eight arrays are fused once into one (4H, H + F) matrix ``W`` and one (4H,) bias ``b``
   (:class:`FusedCell`), split into the part acting on ``h`` and the part acting on ``x``.
2. The input projection ``W_x @ x_t + b`` of a whole chunk of steps is one matrix product.
3. Each step is then one matrix product ``W_h @ h_prev`` plus a few in-place ufunc calls on
   preallocated buffers (:func:`_steps_plain`), nothing allocated per step. Its NumPy calls:
   dot, add, tanh, multiply, add, multiply, add, tanh, multiply = 9 per step.
4. The state is stored unit-major, ``(H, B)`` (the transpose of the user's ``(B, H)``), so
   every gate block of the pre-activations is one contiguous slab of memory.
5. For a batch (B > 1) of a plain cell, steps 2 and 3 become one matrix product per step:
   ``[W_h | W_x | b] @ [h_prev; x_t; 1]`` on a chunk buffer whose rows ``H:`` hold the inputs
   and a row of ones, each step writing ``h_next`` straight into the next step's operand
   (``fused.steps_stacked``). No ``isfinite`` pass: a bound from the row sums of ``|W|`` and
   the largest ``|x|`` and ``|h|`` of the chunk proves that no product can overflow
   (``fused.stacked_is_safe``); when it cannot, the chunk takes the projected path above,
   with its exact rescaling. For B = 1 the projected path is faster (measured).

Two exact rewrites keep the call count down:

- ``sigmoid(z) = 0.5 + 0.5 * tanh(z / 2)``: the ``1/2`` inside is folded into the rows of the
  three sigmoid gates of ``W`` and ``b`` (a multiplication by a power of two, exact), so one
  ``tanh`` call computes all four activations, and it never overflows (no warnings).
- The gates are stored in the order ``g, o, f, i`` right after ``c`` in one work buffer, so
  ``[f, i] * [c_prev, g]`` is one multiply and ``c_next`` one add of its two halves.

Work buffer ``(5H, B)``, rows by block::

    [ c | g  o  f  i ]      c: cell state; g, o, f, i: pre-activations, then activations
      0   H  2H 3H 4H 5H

float32 in gives float32 throughout. Memory is flat in T unless the sequences are asked for:
the input arrives in chunks (any iterable of them) and each chunk's buffers are reused.

Variants (peepholes, clip, coupled input-forget): a second, clearer step loop,
:func:`_steps_variant_for`, built from the core's own variant functions in the order of
``core.py`` and ONNX Runtime: peephole term (``Po * c_next`` for o, after the cell update),
then the clip on each pre-activation (``c_next`` never clipped), then the activation; a
coupled gate sets ``f = 1 - i``. Fusing, chunking, buffers and streaming are shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from .compiled import choose, stacked_loop, steps_compiled, steps_fused, whole_loop
from .core import (
    Array,
    add_peephole,
    clip_preactivation,
    coupled_forget_gate,
    project,
    sigmoid,
)
from .fused import (
    _F,
    _G,
    _I,
    _O,
    FusedCell,
    _State,
    _steps_plain,
    stacked_is_safe,
    steps_stacked,
)
from .params import LSTMParams

__all__ = [
    "GATE_NAMES",
    "FusedCell",
    "SequenceChunk",
    "SequenceResult",
    "default_chunk_steps",
    "iter_sequence",
    "run_sequence",
]

GATE_NAMES = ("i_t", "f_t", "o_t", "c_t_candidate")  # as in StepResult

# Default chunk: the input projection of one chunk is about CHUNK_BYTES (B * 4H per step), and
# at least MIN_CHUNK_STEPS steps (a chunk's own work, the state copied out and the operands set
# up, is then shared by that many steps: at B = 256, H = 1024 one step is 4 MiB) unless those
# would take more than MAX_CHUNK_BYTES; at most MAX_CHUNK_STEPS.
CHUNK_BYTES = 4 << 20
MIN_CHUNK_STEPS = 16
MAX_CHUNK_BYTES = 64 << 20
MAX_CHUNK_STEPS = 4096


StepLoop = Callable[[FusedCell, _State, Array, Iterable[Array], "Array | None"], Array]


def _steps_variant_for(params: LSTMParams) -> StepLoop:
    """A step loop with ONNX's variants (peepholes, clip, coupled input-forget), built from
    the core's own variant functions so that ``run`` and ``step`` compute the same thing.

    Clearer than fast: the plain loop stays the fast path; a variant cell pays a few more
    NumPy calls per step.
    """
    peep = params.peepholes
    clip, coupled = params.clip_value, params.coupled

    def loop(
        cell: FusedCell, s: _State, xproj: Array, h_slots: Iterable[Array], record: Array | None
    ) -> Array:
        H, dt = cell.n_hidden, cell.dtype
        Pi, Pf, Po = (None,) * 3 if peep is None else (
            peep[k].astype(dt)[:, None] for k in ("Pi", "Pf", "Po")  # (H, 1): per unit
        )  # fmt: skip
        h = s.h
        g_rows, o_rows, f_rows, i_rows = (slice(k * H, (k + 1) * H) for k in range(4))
        for t, (xp_t, h_next) in enumerate(zip(xproj, h_slots, strict=False)):
            z = s.z  # (4H, B): rows g, o, f, i; the sigmoid rows hold z / 2 (see FusedCell)
            np.dot(cell.W_h, h, out=z)
            z += xp_t
            c_prev = s.c.copy()  # (H, B)
            z_i = clip_preactivation(add_peephole(2 * z[i_rows], Pi, c_prev), clip)
            i_t = sigmoid(z_i)
            if coupled:
                f_t = coupled_forget_gate(i_t)
            else:
                f_t = sigmoid(clip_preactivation(add_peephole(2 * z[f_rows], Pf, c_prev), clip))
            g_t = np.tanh(clip_preactivation(z[g_rows], clip))
            c_next = f_t * c_prev + i_t * g_t
            o_t = sigmoid(clip_preactivation(add_peephole(2 * z[o_rows], Po, c_next), clip))
            np.multiply(o_t, np.tanh(c_next), out=h_next)
            s.c[...] = c_next  # the work buffer [c | g o f i], as the plain loop leaves it
            z[g_rows], z[o_rows], z[f_rows], z[i_rows] = g_t, o_t, f_t, i_t
            h = h_next
            if record is not None:
                record[t] = s.work
        return h

    return loop


def _step_loop_for(params: LSTMParams, backend: str = "numpy", batch: int = 1) -> StepLoop:
    """The step loop for this cell: the fast plain loop (NumPy's or the compiled one, as
    :func:`lstm_cli.compiled.choose` decides), or the variant loop."""
    if choose(backend, params.is_plain, params.n_hidden, batch) == "compiled":
        return steps_compiled if whole_loop(params.n_hidden, batch) else steps_fused
    return _steps_plain if params.is_plain else _steps_variant_for(params)


@dataclass(frozen=True)
class SequenceChunk:
    """What :func:`iter_sequence` yields after each chunk of steps.

    Attributes (``[B,]`` only when the input is batched):
        start, n_steps: the chunk covers steps ``start .. start + n_steps - 1``.
        h_next, c_next ([B,] H): the state after the chunk's last step (copies).
        h_seq, c_seq (n_steps, [B,] H): the chunk's hidden and cell states, when asked for.
        gates: ``i_t, f_t, o_t, c_t_candidate``, each (n_steps, [B,] H), when asked for.
    """

    start: int
    n_steps: int
    h_next: Array
    c_next: Array
    h_seq: Array | None = None
    c_seq: Array | None = None
    gates: dict[str, Array] | None = None


@dataclass(frozen=True)
class SequenceResult:
    """The result of :func:`run_sequence` (``[B,]`` only when the input is batched).

    Attributes:
        h_next, c_next ([B,] H): the state after the last step (``h0, c0`` when T = 0).
        n_steps: T.
        h_seq, c_seq (T, [B,] H): every step's ``h_next`` and ``c_next``, when asked for.
        gates: ``i_t, f_t, o_t, c_t_candidate``, each (T, [B,] H), when asked for.
    """

    h_next: Array
    c_next: Array
    n_steps: int
    h_seq: Array | None = None
    c_seq: Array | None = None
    gates: dict[str, Array] | None = None

    def __repr__(self) -> str:  # shapes, dtype and what was kept, never the arrays
        from .reprs import sequence_repr

        return sequence_repr(self)

    def _repr_html_(self) -> str:  # the final state and each kept sequence's range
        from .reprs import sequence_html

        return sequence_html(self)


def default_chunk_steps(n_hidden: int, batch: int, dtype: Any) -> int:
    """Steps per chunk so that a chunk's input projection (n, 4H, B) is about CHUNK_BYTES, or
    MIN_CHUNK_STEPS when that is more and fits in MAX_CHUNK_BYTES."""
    per_step = 4 * n_hidden * max(batch, 1) * np.dtype(dtype).itemsize
    least = min(MIN_CHUNK_STEPS, MAX_CHUNK_BYTES // per_step)
    return int(max(1, min(MAX_CHUNK_STEPS, max(least, CHUNK_BYTES // per_step))))


def _initial_state(
    value: Array | None, name: str, H: int, B: int, batched: bool, dtype: Any
) -> Array:
    """h0 or c0 as a (B, H) array: zeros, or (H,) broadcast to every row, or (B, H)."""
    if value is None:
        return np.zeros((B, H), dtype)
    arr = np.asarray(value)
    if arr.shape == (H,):
        return np.broadcast_to(arr, (B, H)).astype(dtype)
    if batched and arr.shape == (B, H):
        return arr.astype(dtype)
    want = f"({H},)" + (f" or ({B}, {H})" if batched else "")
    raise ValueError(f"{name} must have shape {want}, got {arr.shape}")


def iter_sequence(  # noqa: PLR0913 -- public API: keyword options
    params: LSTMParams,
    chunks: Iterable[Array],
    h0: Array | None = None,
    c0: Array | None = None,
    *,
    dtype: Any = None,
    return_sequences: bool = False,
    return_gates: bool = False,
    chunk_steps: int | None = None,
    backend: str = "numpy",
) -> Iterator[SequenceChunk]:
    """Run the cell over a sequence given in chunks; yield a :class:`SequenceChunk` per chunk.

    Memory stays flat however long the sequence: each chunk is projected, stepped through and
    let go, and only the sequences asked for are kept (per chunk, in what is yielded).

    Args:
        params: the cell.
        chunks: consecutive pieces of the input, each (n, F) or, batched, (n, B, F), all alike.
            A chunk longer than ``chunk_steps`` is split.
        h0, c0: initial state, (H,) or (B, H); default zeros.
        dtype: compute in this dtype (default: the params' dtype); inputs are cast to it.
        return_sequences: also yield each chunk's ``h_seq`` and ``c_seq``.
        return_gates: also yield each chunk's gate activations.
        chunk_steps: steps per input projection (default: :func:`default_chunk_steps`).
        backend: ``numpy`` (the reference), ``compiled`` (the C step loop, plain cells
            only; ValueError when absent) or ``auto`` (:mod:`lstm_cli.compiled`).
    """
    dtype = np.dtype(dtype if dtype is not None else params.dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    cell = FusedCell.from_params(params, dtype)
    choose(backend, params.is_plain)  # refused before any input is read
    step_loop: StepLoop = _steps_plain
    H, F = cell.n_hidden, cell.n_features
    s: _State | None = None
    xproj_buf = np.empty(0, dtype)
    batched = False
    B = 1
    start = 0
    with np.errstate(over="ignore", invalid="ignore"):  # huge inputs: inf/nan, no warnings
        for raw in chunks:
            chunk = np.asarray(raw)
            if s is None:  # first chunk: the batch size, then the buffers
                if chunk.ndim not in (2, 3) or chunk.shape[-1] != F:
                    raise ValueError(
                        f"xs chunks must be (n, {F}) or (n, B, {F}) (F = {F}), got {chunk.shape}"
                    )
                batched = chunk.ndim == 3
                B = chunk.shape[1] if batched else 1
                s = _State(H, B, dtype)
                step_loop = _step_loop_for(params, backend, B)
                s.h[...] = _initial_state(h0, "h0", H, B, batched, dtype).T
                s.c[...] = _initial_state(c0, "c0", H, B, batched, dtype).T
                steps = chunk_steps or default_chunk_steps(H, B, dtype)
                xproj_buf = np.empty((steps, 4 * H, B), dtype)
            want = (B, F) if batched else (F,)
            if chunk.shape[1:] != want:
                raise ValueError(
                    f"xs chunk at step {start} has shape {chunk.shape}, expected (n, "
                    + ", ".join(map(str, want))
                    + ") like the first chunk"
                )
            out = _Output(batched, return_sequences, return_gates)
            for lo in range(0, chunk.shape[0], xproj_buf.shape[0]):
                piece = chunk[lo : lo + xproj_buf.shape[0]]
                yield _run_chunk(cell, s, step_loop, piece, xproj_buf, start, out)
                start += piece.shape[0]


@dataclass(frozen=True)
class _Output:
    """What a chunk hands back: the input's layout (``batched``) and the sequences asked for."""

    batched: bool
    sequences: bool
    gates: bool

    def user(self, a: Array) -> Array:
        """(n, H, B) or (H, B) unit-major -> the user's layout, (n, [B,] H) or ([B,] H),
        always a copy: ``a`` is the state or a buffer that the next chunk overwrites."""
        a = np.swapaxes(a, -1, -2).copy()  # (n, B, H) or (B, H), C-contiguous
        return a if self.batched else a[..., 0, :]


def _run_chunk(
    cell: FusedCell,
    s: _State,
    step_loop: StepLoop,
    chunk: Array,
    xproj_buf: Array,
    start: int,
    out: _Output,
) -> SequenceChunk:
    """Project one chunk (n, [B,] F) of inputs in one matrix product, then step through it;
    or, for a batch of a plain cell, one matrix product per step (:func:`_run_stacked`)."""
    n, B, H, F = chunk.shape[0], s.h.shape[1], cell.n_hidden, cell.n_features
    x = np.ascontiguousarray(chunk, dtype=cell.dtype).reshape(n, B, F)  # (n, B, F)
    if step_loop in (_steps_plain, steps_fused) and B > 1:
        stacked = stacked_loop(cell, B) if step_loop is steps_fused else steps_stacked
        done = _run_stacked(cell, s, x, start, out, stacked)
        if done is not None:
            return done
    xproj = xproj_buf[:n]  # (n, 4H, B)
    # The chunk's input projection in one matrix product (measured: a single (n, F) x (F, 4H)
    # product is fastest for B = 1, a stacked (4H, F) x (n, F, B) one for a batch).
    if B == 1:
        np.matmul(x[:, 0], cell.W_xT, out=xproj[:, :, 0])  # (n, 4H)
    else:
        np.matmul(cell.W_x, x.transpose(0, 2, 1), out=xproj)  # (n, 4H, B)
    np.add(xproj, cell.b[:, None], out=xproj)  # + b
    if not np.isfinite(xproj).all():  # overflowed (huge x or W): +-inf of arbitrary sign, or nan
        # recompute as the step does (core.project: exact power-of-two rescaling), once per chunk
        xproj[...] = project(x, cell.W_x, cell.b).transpose(0, 2, 1)  # (n, B, 4H) -> (n, 4H, B)
    h_seq = np.empty((n, H, B), cell.dtype) if out.sequences else None  # (n, H, B)
    record = np.empty((n, 5 * H, B), cell.dtype) if (out.sequences or out.gates) else None
    h_slots: Iterable[Array] = h_seq if h_seq is not None else repeat(s.h)
    h_last = step_loop(cell, s, xproj, h_slots, record)
    if h_last is not s.h:
        s.h[...] = h_last
    return _chunk_result(cell, s, start, n, out, h_seq, record)


def _run_stacked(
    cell: FusedCell,
    s: _State,
    x: Array,
    start: int,
    out: _Output,
    stacked: Callable[[FusedCell, _State, Array, Array | None], None] = steps_stacked,
) -> SequenceChunk | None:
    """One chunk (n, B, F) with one matrix product per step on ``[h; x_t; 1]``; None (and
    nothing changed) when the overflow bound cannot rule out an overflow: then the caller's
    exact path (the chunk's projection, checked and rescaled as ``core.project`` does) runs."""
    n, B, F = x.shape
    H = cell.n_hidden
    x_max = max(float(np.max(x)), -float(np.min(x))) if x.size else 0.0  # max |x|, no copy
    h_max = float(np.max(np.abs(s.h), initial=1.0))  # |h_next| <= 1; h0 may be larger; nan: nan
    if not stacked_is_safe(cell, h_max, x_max):
        return None
    U = np.empty((n + 1, H + F + 1, B), cell.dtype)  # U[t] = [h_prev; x_t; 1]
    U[0, :H] = s.h
    U[:n, H : H + F] = x.transpose(0, 2, 1)
    U[:, H + F] = 1
    record = np.empty((n, 5 * H, B), cell.dtype) if (out.sequences or out.gates) else None
    stacked(cell, s, U, record)  # steps_stacked, or the compiled stacked_threads / stacked_fused
    s.h[...] = U[n, :H]
    h_seq = U[1:, :H] if out.sequences else None  # (n, H, B)
    return _chunk_result(cell, s, start, n, out, h_seq, record)


def _chunk_result(
    cell: FusedCell,
    s: _State,
    start: int,
    n: int,
    out: _Output,
    h_seq: Array | None,
    record: Array | None,
) -> SequenceChunk:
    """What a chunk yields, in the user's layout: the state, and the sequences asked for."""
    H = cell.n_hidden
    user = out.user
    gates = None
    if record is not None and out.gates:
        blocks = {"i_t": _I, "f_t": _F, "o_t": _O, "c_t_candidate": _G}
        gates = {k: user(record[:, j * H : (j + 1) * H]) for k, j in blocks.items()}
    return SequenceChunk(
        start=start,
        n_steps=n,
        h_next=user(s.h),
        c_next=user(s.c),
        h_seq=user(h_seq) if h_seq is not None else None,
        c_seq=user(record[:, :H]) if (record is not None and out.sequences) else None,
        gates=gates,
    )


def run_sequence(  # noqa: PLR0913 -- public API: keyword options, as iter_sequence's plus on_chunk
    params: LSTMParams,
    xs: Array,
    h0: Array | None = None,
    c0: Array | None = None,
    *,
    dtype: Any = None,
    return_sequences: bool = False,
    return_gates: bool = False,
    chunk_steps: int | None = None,
    on_chunk: Callable[[SequenceChunk], None] | None = None,
    backend: str = "numpy",
) -> SequenceResult:
    """Run the LSTM cell over a sequence: T steps, each step's ``h_next, c_next`` feeding the next.

    Gives the same numbers as T calls of :func:`~lstm_cli.core.lstm_step` (to rounding), fast.

    Args:
        params: the cell (:class:`~lstm_cli.params.LSTMParams`).
        xs: the inputs, (T, F), or (T, B, F) for a batch (time first), or any iterable of
            such chunks (n, [B,] F) read one after another (e.g. from a file, for long inputs).
        h0, c0: initial hidden and cell state, (H,) or (B, H); default zeros.
        dtype: compute in this dtype (default: the params' dtype); float32 stays float32.
        return_sequences: also return ``h_seq`` and ``c_seq``, each (T, [B,] H).
        return_gates: also return ``gates``: ``i_t, f_t, o_t, c_t_candidate``, each (T, [B,] H).
        chunk_steps: steps per input projection (default: a chunk of about 4 MiB).
        on_chunk: called with each :class:`SequenceChunk` as it is done (progress, streaming).
        backend: ``numpy``, ``compiled`` or ``auto``: see :func:`iter_sequence`.

    Returns:
        A :class:`SequenceResult`.

    Raises:
        ValueError: naming the array whose shape disagrees with the cell.
    """
    dt = np.dtype(dtype if dtype is not None else params.dtype)
    H = params.n_hidden
    if isinstance(xs, np.ndarray) and xs.ndim not in (2, 3):
        raise ValueError(f"xs must be (T, F) or (T, B, F), got shape {xs.shape}")
    parts: dict[str, list[Array]] = {"h_seq": [], "c_seq": [], **{g: [] for g in GATE_NAMES}}
    last: SequenceChunk | None = None
    n_steps = 0
    for part in iter_sequence(
        params, [xs] if isinstance(xs, np.ndarray) else xs, h0, c0,
        dtype=dt, return_sequences=return_sequences, return_gates=return_gates,
        chunk_steps=chunk_steps, backend=backend,
    ):  # fmt: skip
        last, n_steps = part, n_steps + part.n_steps
        if part.h_seq is not None and part.c_seq is not None:
            parts["h_seq"].append(part.h_seq)
            parts["c_seq"].append(part.c_seq)
        for g, a in (part.gates or {}).items():
            parts[g].append(a)
        if on_chunk is not None:
            on_chunk(part)
    if last is None:  # no steps at all: the result is the initial state
        batched = isinstance(xs, np.ndarray) and xs.ndim == 3
        B = xs.shape[1] if batched else 1
        h = _initial_state(h0, "h0", H, B, batched, dt)
        c = _initial_state(c0, "c0", H, B, batched, dt)
        h_next, c_next = (h, c) if batched else (h[0], c[0])
        state_shape = h_next.shape
    else:
        h_next, c_next = last.h_next, last.c_next
        state_shape = h_next.shape

    def joined(name: str) -> Array:
        if parts[name]:
            return np.concatenate(parts[name])
        return np.zeros((0, *state_shape), dt)

    return SequenceResult(
        h_next=h_next,
        c_next=c_next,
        n_steps=n_steps,
        h_seq=joined("h_seq") if return_sequences else None,
        c_seq=joined("c_seq") if return_sequences else None,
        gates={g: joined(g) for g in GATE_NAMES} if return_gates else None,
    )
