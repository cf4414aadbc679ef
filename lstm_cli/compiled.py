"""The compiled backend: the plain cell's steps in C (``lstm_cli/_kernel.c``), optional.

The kernel is built at install time when a C compiler is there (``setup.py``, an optional
extension) and loaded here with ctypes, once, when first asked for. Three ways to use it,
all with the layout and exact rewrites of :mod:`lstm_cli.fused`:

- small cells (B = 1, H <= AUTO_MAX_HIDDEN): :func:`steps_compiled` replaces
  :func:`lstm_cli.fused._steps_plain`: the whole step loop over a chunk is one call (a plain
  triple loop, no BLAS: 3x faster than the fused kernel at H = 4, slower from H = 16 on);
- batches (B >= THREADS_MIN_BATCH) whose step operand fits in cache: :func:`stacked_threads`,
  a whole chunk in one call, each step's product by the kernel's own matrix product on
  weights packed once per run (:func:`_packed`), then the fused elementwise step, both split
  by hidden unit across :func:`threads` threads (``lstm_threads_f64/f32``);
- any other plain cell: the matrix product of each step stays NumPy's (BLAS) and everything
  else of the step (bias add, the four activations, the cell update, ``tanh(c)``, ``h``, the
  gates when kept) is one call of the fused elementwise kernel (``lstm_cell_f64/f32``):
  :func:`steps_fused` (the chunk's input projection precomputed) and :func:`stacked_fused`
  (one product per step on ``[h; x_t; 1]``, for a batch).

The kernel reports a pre-activation or ``c_next`` that is not finite; that step is then
redone with NumPy's operations (:func:`_numpy_cell`), so the result is NumPy's there too.
Variants (peepholes, clip, coupled) have no compiled path.

Backends: ``numpy`` (the reference), ``compiled`` (an error when the kernel is absent or the
cell is a variant), ``auto`` (compiled when available, the cell plain and either H <=
AUTO_MAX_FUSED_HIDDEN or a batch of THREADS_MIN_BATCH or more; else numpy).
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import numpy as np

from .core import Array

BACKENDS = ("numpy", "compiled", "auto")
AUTO_MAX_HIDDEN = 12  # the whole C step loop for B = 1 and H up to this (measured crossover)
# auto takes the fused kernel up to this H: 1.1-2x faster than NumPy's elementwise calls there;
# from H = 256 on, as fast or slower (NumPy's own SIMD activations, BLAS dominates; measured)
AUTO_MAX_FUSED_HIDDEN = 128
_MAX_THREADS = 64  # as the kernel's MAX_THREADS
# the threaded loop from this batch size on (measured: faster than NumPy's product and the
# fused kernel for float32 and float64, H = 16 to 1024, on 1 and 2 threads; docs/speed.md)
THREADS_MIN_BATCH = 8
# ... while a step's operand [h; x_t; 1] (K x B) fits in a core's cache (2 MiB of L2 here)
THREADS_MAX_OPERAND_BYTES = 1 << 20
_ARGS = [ctypes.c_long] * 3 + [ctypes.c_void_p] * 6
_CELL_ARGS = [ctypes.c_long] + [ctypes.c_void_p] * 6
_THREADS_ARGS = [ctypes.c_long] * 5 + [ctypes.c_void_p] * 6


@cache
def _library() -> ctypes.CDLL | None:
    """The loaded kernel, or None when it was not built (no compiler at install)."""
    spec = importlib.util.find_spec("lstm_cli._kernel")
    if spec is None or spec.origin is None:
        return None
    return _load(spec.origin)


def _load(path: str) -> ctypes.CDLL | None:
    """The kernel at ``path`` with its functions' signatures set, or None when it does not
    load or lacks the step loop and the fused kernel. Its threaded loop functions are None
    where it was built without them."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    try:  # a kernel built from an older source lacks the fused functions: not used
        for name in ("lstm_steps_f64", "lstm_steps_f32"):
            getattr(lib, name).argtypes = _ARGS
            getattr(lib, name).restype = None
        for name in ("lstm_cell_f64", "lstm_cell_f32"):
            getattr(lib, name).argtypes = _CELL_ARGS
            getattr(lib, name).restype = ctypes.c_int
    except AttributeError:
        return None
    try:  # the threaded loop: absent where the kernel was built without threads (Windows)
        for name in ("lstm_threads_f64", "lstm_threads_f32"):
            getattr(lib, name).argtypes = _THREADS_ARGS
            getattr(lib, name).restype = ctypes.c_long
        for name in ("lstm_pack_f64", "lstm_pack_f32"):
            getattr(lib, name).argtypes = [ctypes.c_long] * 3 + [ctypes.c_void_p] * 3
            getattr(lib, name).restype = None
        lib.lstm_packed_len.argtypes = [ctypes.c_long] * 3
        lib.lstm_packed_len.restype = ctypes.c_long
        lib.lstm_threads_scratch_len.argtypes = [ctypes.c_long] * 4
        lib.lstm_threads_scratch_len.restype = ctypes.c_long
        lib.lstm_threads_isa.argtypes = [ctypes.c_int]
        lib.lstm_threads_isa.restype = ctypes.c_int
    except AttributeError:
        for name in ("lstm_threads_f64", "lstm_threads_f32"):
            setattr(lib, name, None)
    return lib


def available() -> bool:
    """True when the compiled kernel was built and loads."""
    return _library() is not None


def kernel_path() -> str | None:
    """Where the loaded kernel is (for --verbose), or None."""
    lib = _library()
    return None if lib is None else str(lib._name)


def choose(backend: str, plain: bool, n_hidden: int = 1, batch: int = 1) -> str:
    """``numpy`` or ``compiled`` for this cell and batch size (1 for an unbatched input);
    ValueError when ``compiled`` was asked for and cannot run. ``auto`` takes ``compiled``
    for plain cells of H <= AUTO_MAX_FUSED_HIDDEN when the kernel is built; ``n_hidden`` and
    ``batch`` also pick which compiled path runs (:func:`whole_loop`)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "numpy":
        return "numpy"
    if backend == "compiled":
        if not available():
            raise ValueError(
                "the compiled backend is not installed (no C compiler at install time); "
                "use --backend numpy or auto"
            )
        if not plain:
            raise ValueError(
                "the compiled backend runs plain cells only (no peepholes, clip or "
                "input_forget); use --backend numpy or auto"
            )
        return "compiled"
    batches = batch >= THREADS_MIN_BATCH and has_threads()  # the threaded loop, where it fits
    fast = plain and (n_hidden <= AUTO_MAX_FUSED_HIDDEN or batches)
    return "compiled" if fast and available() else "numpy"


def has_threads() -> bool:
    """True when the kernel has the threaded loop and this CPU runs one of its builds."""
    lib = _library()
    if lib is None or lib.lstm_threads_f32 is None:
        return False
    return bool(lib.lstm_threads_isa(-1) >= 0)  # -1: no instruction set of this build here


def threaded(batch: int, n_hidden: int, n_features: int, itemsize: int) -> bool:
    """True when a plain cell's batch runs the threaded loop (:func:`stacked_threads`): the
    kernel has it, ``batch >= THREADS_MIN_BATCH``, and a step's operand ``[h; x_t; 1]``
    (K x B, K = H + F + 1) is at most THREADS_MAX_OPERAND_BYTES: every thread reads all of
    it once per block of units, so it must stay in the core's cache (measured: float64 H=1024
    B=192, 1.8 MB, ran 1.17x slower than the fused kernel beside OpenBLAS; B=256 1.7x)."""
    operand = (n_hidden + n_features + 1) * batch * itemsize
    return batch >= THREADS_MIN_BATCH and operand <= THREADS_MAX_OPERAND_BYTES and has_threads()


def isa() -> str:
    """The instruction set of the threaded loop on this CPU: AVX-512, AVX2, baseline (a build
    for another architecture than x86-64) or none (no threaded loop here)."""
    lib = _library()
    level = lib.lstm_threads_isa(-1) if lib is not None and lib.lstm_threads_f32 else -1
    return ("none", "baseline", "AVX2", "AVX-512")[level + 1]


def describe(n_hidden: int, batch: int, n_features: int, itemsize: int) -> str:
    """Which compiled path runs a plain cell of this size, in words (for --verbose)."""
    if whole_loop(n_hidden, batch):
        return "the whole step loop in C"
    if threaded(batch, n_hidden, n_features, itemsize):
        return f"threaded loop, {threading_in_words(n_hidden)}"
    return "fused kernel beside NumPy's product"


def threading_in_words(n_hidden: int = _MAX_THREADS) -> str:
    """How the threaded loop runs a cell of ``n_hidden`` units here: ``AVX-512, 2 threads``."""
    n = min(threads(), n_hidden)
    return f"{isa()}, {n} thread{'s' if n != 1 else ''}"


def stacked_loop(cell: Any, batch: int) -> Callable[[Any, Any, Array, Array | None], None]:
    """The compiled loop for a chunk of a batch's stacked operands (one product per step):
    :func:`stacked_threads` where :func:`threaded`, else :func:`stacked_fused`."""
    fits = threaded(batch, cell.n_hidden, cell.n_features, cell.dtype.itemsize)
    return stacked_threads if fits else stacked_fused


def whole_loop(n_hidden: int, batch: int) -> bool:
    """True when the compiled path is the whole step loop in C (:func:`steps_compiled`),
    False when it is the fused elementwise kernel beside NumPy's product (measured)."""
    return batch == 1 and n_hidden <= AUTO_MAX_HIDDEN


def _ptr(a: Array | None) -> int | None:
    if a is None:
        return None
    assert a.flags.c_contiguous
    return int(a.ctypes.data)


def steps_compiled(
    cell: Any, s: Any, xproj: Array, h_slots: Iterable[Array], record: Array | None
) -> Array:
    """:func:`lstm_cli.fused._steps_plain` in C: ``len(xproj)`` steps in one call.

    ``h_slots`` is an (n, H, B) array (the hidden sequence is written to it) or anything else
    (the state is only updated, in ``s.h``). Returns ``s.h``, the last ``h_next``.
    """
    lib = _library()
    assert lib is not None, "steps_compiled needs the kernel: check available() first"
    n, fours, B = xproj.shape
    H = fours // 4
    W_h = cell.W_h
    dt = W_h.dtype
    if dt not in (np.float64, np.float32):
        raise ValueError(f"the compiled backend computes float32 or float64, not {dt}")
    fn = lib.lstm_steps_f64 if dt == np.float64 else lib.lstm_steps_f32
    h_seq = h_slots if isinstance(h_slots, np.ndarray) else None
    for a in (xproj, s.h, s.work, h_seq, record):
        assert a is None or (a.dtype == dt and a.flags.c_contiguous)
    fn(n, H, B, _ptr(W_h), _ptr(xproj), _ptr(s.h), _ptr(s.work), _ptr(h_seq), _ptr(record))
    return s.h


def _cell_fn(dt: np.dtype[Any]) -> Any:
    """The fused elementwise kernel for ``dt`` (float64 or float32)."""
    lib = _library()
    assert lib is not None, "the fused kernel needs the library: check available() first"
    if dt not in (np.float64, np.float32):
        raise ValueError(f"the compiled backend computes float32 or float64, not {dt}")
    return lib.lstm_cell_f64 if dt == np.float64 else lib.lstm_cell_f32


def _numpy_cell(
    z: Array, add: Array | None, c_prev: Array, c_next: Array, h_next: Array, gates: Array | None
) -> None:
    """The kernel's step with NumPy's operations, as :func:`lstm_cli.fused._steps_plain` does
    them (the exact fallback when a value is not finite). Shapes: z, add, gates (4H, B);
    c_prev, c_next, h_next (H, B). ``z`` is left unchanged."""
    H = c_prev.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        a = z + add if add is not None else z.copy()  # (4H, B) rows g, o, f, i
        np.tanh(a, out=a)
        half = np.array(0.5, a.dtype)
        np.multiply(a[H:], half, out=a[H:])
        np.add(a[H:], half, out=a[H:])  # o, f, i = sigmoid (halved pre-activations)
        g, o, f, i = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
        np.add(f * c_prev, i * g, out=c_next)
        np.multiply(o, np.tanh(c_next), out=h_next)
    if gates is not None:
        gates[...] = a


class _Cells:
    """Where step t of a chunk reads ``c_prev`` and writes ``c_next`` and the gates: the
    record's rows (``[c | g o f i]`` of step t, when the sequences or gates are kept), else
    two (H, B) buffers in turn. ``c_next`` never overwrites ``c_prev``, so that NumPy can
    redo a step the kernel refused from intact inputs. Addresses for the kernel, arrays
    (the same memory) for NumPy."""

    def __init__(self, s: Any, record: Array | None, scratch: Array | None = None) -> None:
        """``scratch``: (4H, B), where the gates go when they are not kept (default: a new
        buffer; one the caller does not otherwise use saves the allocation)."""
        self.s, self.record = s, record
        self.bufs = (s.c, s.tanh_c)  # s.tanh_c: a spare (H, B) buffer of the NumPy loop
        self.buf_ptrs = tuple(int(b.ctypes.data) for b in self.bufs)
        self.gate_offset = s.c.nbytes  # the gates follow c in a record row
        rec = record if record is not None else s.work
        self.rec_ptr, self.rec_stride = int(rec.ctypes.data), rec.strides[0]
        gates_kept = record is not None  # else every step writes its gates to one scratch:
        if scratch is None:
            scratch = np.empty(0 if gates_kept else s.z.shape, s.z.dtype)  # (4H, B)
        self.scratch = scratch

    def ptrs(self, n: int) -> tuple[list[int], list[int], list[int]]:
        """Addresses of c_prev, c_next and the gates of steps 0 .. n-1 (the gates of every
        step in one scratch (4H, B) buffer when they are not kept)."""
        if self.record is None:
            a, b = self.buf_ptrs
            scratch = [int(self.scratch.ctypes.data)] * n
            return [a, b] * (n // 2) + [a] * (n % 2), [b, a] * (n // 2) + [b] * (n % 2), scratch
        c_next = (self.rec_ptr + self.rec_stride * np.arange(n, dtype=np.int64)).tolist()
        gates = [c + self.gate_offset for c in c_next]
        return [self.buf_ptrs[0], *c_next[:-1]], c_next, gates

    def arrays(self, t: int) -> tuple[Array, Array, Array | None]:
        """The arrays behind :meth:`ptrs`: c_prev, c_next (H, B), gates (4H, B) or None."""
        if self.record is None:
            return self.bufs[t % 2], self.bufs[(t + 1) % 2], None
        H = self.s.c.shape[0]
        c_prev = self.s.c if t == 0 else self.record[t - 1, :H]
        return c_prev, self.record[t, :H], self.record[t, H:]

    def finish(self, n: int) -> None:
        """Leave the last ``c_next`` in ``s.c``, where the NumPy loop leaves it."""
        if n:
            last = self.arrays(n - 1)[1]
            if last is not self.s.c:
                self.s.c[...] = last


def _redo(cells: _Cells, t: int, z: Array, add: Array | None, h_next: Array) -> None:
    """Step t again with NumPy's operations (the kernel met a value that is not finite)."""
    c_prev, c_next, gates = cells.arrays(t)
    _numpy_cell(z, add, c_prev, c_next, h_next, gates)


def steps_fused(
    cell: Any, s: Any, xproj: Array, h_slots: Iterable[Array], record: Array | None
) -> Array:
    """:func:`lstm_cli.fused._steps_plain` with its elementwise part (``+ xproj[t]``, the
    activations, ``c``, ``h``) in one kernel call per step; the product stays NumPy's.

    Same arguments and result; every array C-contiguous, ``cell.dtype`` float32/64. Every
    address is computed before the loop: a step is one ``np.dot`` and one kernel call.
    """
    fn = _cell_fn(cell.dtype)
    W_h, h, z = cell.W_h, s.h, s.z
    n, HB = xproj.shape[0], s.h.size
    cells = _Cells(s, record)
    c_prev, c_next, gates = cells.ptrs(n)
    if isinstance(h_slots, np.ndarray):  # (n, H, B): the hidden sequence is kept
        h_list = list(h_slots)
        h_ptrs = (int(h_slots.ctypes.data) + h_slots.strides[0] * np.arange(n)).tolist()
    else:  # the state, updated in place
        h_list, h_ptrs = [s.h] * n, [int(s.h.ctypes.data)] * n
    x0, xs, z_ptr, dot = int(xproj.ctypes.data), xproj.strides[0], int(z.ctypes.data), np.dot
    for t in range(n):
        dot(W_h, h, out=z)  # (4H, B) = W_h @ h_prev
        h = h_list[t]
        if fn(HB, z_ptr, x0 + t * xs, c_prev[t], c_next[t], h_ptrs[t], gates[t]):
            _redo(cells, t, z, xproj[t], h)
    cells.finish(n)
    return h


def stacked_fused(cell: Any, s: Any, U: Array, record: Array | None) -> None:
    """:func:`lstm_cli.fused.steps_stacked` with its elementwise part in one kernel call per
    step: ``z = W_u @ U[t]`` (NumPy), then the kernel writes ``h_next`` into ``U[t + 1, :H]``.

    Same arguments (U (n + 1, H + F + 1, B)) and result: ``s.c`` holds the last ``c_next``.
    """
    fn = _cell_fn(cell.dtype)
    H, W_u, z = cell.n_hidden, cell.W_u, s.z
    n, HB = U.shape[0] - 1, s.h.size
    cells = _Cells(s, record)
    c_prev, c_next, gates = cells.ptrs(n)
    u0, us, z_ptr, dot = int(U.ctypes.data), U.strides[0], int(z.ctypes.data), np.dot
    ops = list(U)  # (H + F + 1, B) views, made once
    for t in range(n):
        dot(W_u, ops[t], out=z)  # (4H, B): W_h @ h_prev + W_x @ x_t + b, one product
        if fn(HB, z_ptr, None, c_prev[t], c_next[t], u0 + (t + 1) * us, gates[t]):
            _redo(cells, t, z, None, U[t + 1, :H])
    cells.finish(n)


def threads() -> int:
    """Threads of the compiled batch loop: as many as NumPy's BLAS is told to use
    (``OMP_NUM_THREADS``, else ``OPENBLAS_NUM_THREADS``), else the CPUs this process may
    run on."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(var, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return min(int(value), _MAX_THREADS)
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, _MAX_THREADS))


def _threads_fn(dt: np.dtype[Any]) -> Any:
    """The threaded stacked loop for ``dt``, or None (not built here)."""
    lib = _library()
    if lib is None or lib.lstm_threads_f32 is None:
        return None
    return lib.lstm_threads_f64 if dt == np.float64 else lib.lstm_threads_f32


def _packed(cell: Any, n_threads: int) -> Array:
    """``[W | b]`` packed for the threaded loop (each thread's units in blocks of 12, four
    panels a block: its rows of g, o, f, i), made once per cell and thread count."""
    key = ("packed", n_threads)
    if key not in cell.derived:
        lib = _library()
        assert lib is not None, "the threaded loop needs the kernel: check threaded() first"
        W, b = np.ascontiguousarray(cell.W), np.ascontiguousarray(cell.b)
        H, K = cell.n_hidden, W.shape[1] + 1
        packed = np.empty(lib.lstm_packed_len(H, K, n_threads), W.dtype)
        pack = lib.lstm_pack_f64 if W.dtype == np.float64 else lib.lstm_pack_f32
        pack(H, K, n_threads, _ptr(W), _ptr(b), _ptr(packed))
        cell.derived[key] = packed
    return cell.derived[key]


def stacked_threads(cell: Any, s: Any, U: Array, record: Array | None) -> None:
    """:func:`stacked_fused` as one kernel call per chunk: the product of each step by the
    kernel's own small GEMM on packed weights, everything split by hidden unit across
    :func:`threads` threads. Same arguments and result. A step with a value that is not
    finite is redone with NumPy, then the kernel goes on from the next one."""
    fn = _threads_fn(cell.dtype)
    H = cell.n_hidden
    n, K, B = U.shape[0] - 1, U.shape[1], U.shape[2]
    n_threads = min(threads(), H)
    packed = _packed(cell, n_threads)
    cells = _Cells(s, record, scratch=s.z)  # s.z: unused here (the kernel has its own z)
    ptrs = [(ctypes.c_void_p * n)(*p) for p in cells.ptrs(n)]  # c_prev, c_next, gates
    lib = _library()
    assert lib is not None, "the threaded loop needs the kernel: check threaded() first"
    scratch = s.scratch(lib.lstm_threads_scratch_len(H, K, B, n_threads))
    size = ctypes.sizeof(ctypes.c_void_p)
    t = 0
    while t < n:
        at = [ctypes.byref(p, t * size) for p in ptrs]
        u = int(U.ctypes.data) + t * U.strides[0]
        t += fn(n - t, H, K, B, n_threads, _ptr(packed), u, *at, _ptr(scratch))
        if t < n:  # step t met a value that is not finite: NumPy's operations, exactly
            _redo(cells, t, cell.W_u @ U[t], None, U[t + 1, :H])
            t += 1
    cells.finish(n)
