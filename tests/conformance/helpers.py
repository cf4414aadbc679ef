"""Shared by the conformance suites: cells with distinct gates and non-zero biases, and a
plain loop of this tool's step over a sequence (the reference the frameworks are held to)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from lstm_cli.params import LSTMParams
from tests.conftest import random_cell

F, H, B, T = 5, 3, 4, 6  # features, hidden units, batch, time steps: all different
TOL64 = 1e-10  # float64 frameworks
TOL32 = 1e-5  # float32 frameworks


def make_cell(seed: int, peepholes: bool = False, **variant) -> LSTMParams:
    """A cell whose four gates have different weights and non-zero biases."""
    rng = np.random.default_rng(seed)
    arrays = random_cell(rng, F, H)
    if peepholes:
        arrays.update({k: rng.standard_normal(H) + 0.2 for k in ("Pi", "Pf", "Po")})
    cell = LSTMParams.from_mapping(arrays, "test cell", **variant)
    assert_distinct_gates(cell)
    return cell


def assert_distinct_gates(cell: LSTMParams) -> None:
    """Guard of every conformance test: identical gate blocks or zero biases would let a wrong
    gate order pass unnoticed."""
    blocks = [cell.Wi, cell.Wf, cell.Wo, cell.Wc]
    biases = [cell.bi, cell.bf, cell.bo, cell.bc]
    for a in range(4):
        assert np.all(biases[a] != 0), "a zero bias hides bias-order bugs"
        for b in range(a + 1, 4):
            assert not np.allclose(blocks[a], blocks[b]), "identical gate blocks hide order bugs"
            assert not np.allclose(biases[a], biases[b])


def inputs(seed: int, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X (T, B, F), h0 (B, H), c0 (B, H), all non-zero."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((T, B, F))
    h0 = 0.5 * rng.standard_normal((B, H))
    c0 = rng.standard_normal((B, H))
    return X.astype(dtype), h0.astype(dtype), c0.astype(dtype)


def run_sequence(
    cell: LSTMParams, X: np.ndarray, h0: np.ndarray, c0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This tool's step in a plain loop over time: Y (T, B, H), h_T (B, H), c_T (B, H)."""
    h, c, ys = h0, c0, []
    for x_t in X:
        r = cell.step(x_t, h, c)
        h, c = r.h_next, r.c_next
        ys.append(h)
    return np.stack(ys), h, c


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, np.float64))))


# Keras's torch backend converts tensors with np.array(tensor), which NumPy 2 warns about
# (torch's __array__ has no copy keyword): a known third-party warning, nothing of ours.
KERAS_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword"


def keras_on_torch(*, h5py: bool = False) -> Any:
    """Keras 3 on its torch backend, or the calling test module skipped with the reason
    (torch, h5py when asked for, or Keras missing; Keras imported earlier on another backend)."""
    pytest.importorskip(
        "torch", reason="Keras runs on the torch backend: pip install -e '.[conformance]'"
    )
    if h5py:
        pytest.importorskip("h5py", reason="h5py is not installed: pip install -e '.[keras]'")
    os.environ["KERAS_BACKEND"] = "torch"  # read by keras at its first import
    keras = pytest.importorskip(
        "keras", reason="Keras is not installed: pip install -e '.[conformance]'"
    )
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras runs on {keras.backend.backend()}, not torch", allow_module_level=True)
    return keras
