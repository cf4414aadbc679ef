"""Conformance against Keras 3 itself (KERAS_BACKEND=torch): the LSTM layer with
return_sequences and return_state, in float64, both ways (weights from here, weights from
Keras)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_cli.io import paramfiles
from lstm_cli.layouts import export_arrays

from .helpers import (
    KERAS_WARNING,
    TOL64,
    B,
    F,
    H,
    T,
    inputs,
    keras_on_torch,
    make_cell,
    max_diff,
    run_sequence,
)

keras = keras_on_torch()
pytestmark = pytest.mark.filterwarnings(f"{KERAS_WARNING}:DeprecationWarning")


def _layer(**kwargs):
    layer = keras.layers.LSTM(
        H, return_sequences=True, return_state=True, dtype="float64", **kwargs
    )
    layer.build((B, T, F))
    return layer


def _run(layer, X, h0, c0):
    """Keras is batch-major: (B, T, F) in, (B, T, H) out."""
    Y, hT, cT = layer(np.transpose(X, (1, 0, 2)), initial_state=[h0, c0])
    to_np = keras.ops.convert_to_numpy
    return np.transpose(to_np(Y), (1, 0, 2)), to_np(hT), to_np(cT)


def test_keras_lstm_with_exported_weights():
    cell = make_cell(21)
    arrays = export_arrays(cell, "keras")
    layer = _layer()
    layer.set_weights([arrays["kernel"], arrays["recurrent_kernel"], arrays["bias"]])
    X, h0, c0 = inputs(22)
    Y, hT, cT = _run(layer, X, h0, c0)
    assert Y.dtype == np.float64
    Y_ref, h_ref, c_ref = run_sequence(cell, X, h0, c0)
    assert max_diff(Y, Y_ref) < TOL64
    assert max_diff(hT, h_ref) < TOL64
    assert max_diff(cT, c_ref) < TOL64


def test_keras_made_weights_step_here_through_a_file(tmp_path: Path):
    """The README's two lines: save the layer's weights by their paths, then step them."""
    layer = _layer(
        bias_initializer=keras.initializers.RandomNormal(seed=3),
        unit_forget_bias=False,
        kernel_initializer=keras.initializers.GlorotUniform(seed=4),
        recurrent_initializer=keras.initializers.Orthogonal(seed=5),
    )
    weights = {w.path: keras.ops.convert_to_numpy(w.value) for w in layer.weights}
    assert any(k.endswith("/kernel") and "/" in k for k in weights)  # e.g. lstm/lstm_cell/kernel
    bias = next(v for k, v in weights.items() if k.endswith("bias"))
    assert np.all(bias != 0)
    path = tmp_path / "keras_lstm.npz"
    np.savez(path, **weights)
    cell = paramfiles.load_param_set(path).params
    X, h0, c0 = inputs(23)
    Y, _hT, cT = _run(layer, X, h0, c0)
    Y_ref, _h_ref, c_ref = run_sequence(cell, X, h0, c0)
    assert max_diff(Y, Y_ref) < TOL64
    assert max_diff(cT, c_ref) < TOL64


def test_a_wrong_gate_order_would_be_detected():
    """Keras's blocks are i, f, c, o; writing them in PyTorch's names' order is the same, but
    in ONNX's (i, o, f, c) the layer must disagree far beyond the tolerance."""
    cell = make_cell(24)
    arrays = export_arrays(cell, "keras")

    def reorder(a: np.ndarray) -> np.ndarray:  # i, f, c, o -> i, o, f, c along the last axis
        i, f, c, o = np.split(a, 4, axis=-1)
        return np.concatenate([i, o, f, c], axis=-1)

    layer = _layer()
    layer.set_weights([reorder(arrays[k]) for k in ("kernel", "recurrent_kernel", "bias")])
    X, h0, c0 = inputs(25)
    Y, _, _ = _run(layer, X, h0, c0)
    assert max_diff(Y, run_sequence(cell, X, h0, c0)[0]) > 1e-3
