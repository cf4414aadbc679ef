"""The compiled backend: the plain cell's step loop in C (``lstm_cli/_kernel.c``), optional.

The kernel is built at install time when a C compiler is there (``setup.py``, an optional
extension) and loaded here with ctypes, once, when first asked for. It replaces
:func:`lstm_cli.fused._steps_plain` (same arguments, same layout, same exact rewrites): the
chunk's input projection, its overflow check and rescaling stay in NumPy, and the whole step
loop over the chunk is one call. Variants (peepholes, clip, coupled) have no compiled loop.

Backends: ``numpy`` (the reference), ``compiled`` (an error when the kernel is absent or the
cell is a variant), ``auto`` (compiled when available, the cell plain and small: one
sequence, B = 1, and H <= AUTO_MAX_HIDDEN; else numpy). The C loop is a plain triple loop,
no BLAS: measured (docs/speed.md) 7x faster than NumPy at H = 4, B = 1, about even at H = 32,
and slower for any batch or a larger cell, where NumPy's matrix product wins.
"""

from __future__ import annotations

import ctypes
import importlib.util
from collections.abc import Iterable
from functools import cache
from typing import Any

import numpy as np

from .core import Array

BACKENDS = ("numpy", "compiled", "auto")
AUTO_MAX_HIDDEN = 16  # auto: the compiled loop for B = 1 and H up to this (measured)
_ARGS = [ctypes.c_long] * 3 + [ctypes.c_void_p] * 6


@cache
def _library() -> ctypes.CDLL | None:
    """The loaded kernel, or None when it was not built (no compiler at install)."""
    spec = importlib.util.find_spec("lstm_cli._kernel")
    if spec is None or spec.origin is None:
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    for name in ("lstm_steps_f64", "lstm_steps_f32"):
        getattr(lib, name).argtypes = _ARGS
        getattr(lib, name).restype = None
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
    ValueError when ``compiled`` was asked for and cannot run."""
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
    small = batch == 1 and n_hidden <= AUTO_MAX_HIDDEN
    return "compiled" if plain and small and available() else "numpy"


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
