"""``run --stack`` on Keras 3 models saved by ``model.save`` in this run (float64, distinct
random weights per gate, non-zero biases): y equals ``model.predict`` of the sub-model ending
at the last LSTM layer, and every cell's h_n, c_n the ``return_state`` outputs of a twin model
(the same layers and weights, return_state=True), to 1e-10. Batch-first, as Keras reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli.app import app
from lstm_cli.io.survey import load_stack

from .helpers import KERAS_WARNING, TOL64, assert_distinct_gates, keras_on_torch

keras = keras_on_torch(h5py=True)
pytestmark = pytest.mark.filterwarnings(KERAS_WARNING)
F, T, B = 3, 6, 2


@pytest.fixture(autouse=True)
def _float64():
    """Keras computes in float64 (layers built with dtype float64 still round constants and
    intermediate values through floatx), restored for the other suites."""
    before = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(before)


L = keras.layers


def _lstm(units: int, rs: bool = True, state: bool = False, **kw: Any) -> Any:
    return L.LSTM(units, return_sequences=rs, return_state=state, dtype="float64", **kw)


def _bi(merge: str, units: int, rs: bool = True, state: bool = False, **kw: Any) -> Any:
    back = kw.pop("backward", None)
    return L.Bidirectional(
        _lstm(units, rs, state, **kw), merge_mode=merge, dtype="float64",
        backward_layer=None if back is None else _lstm(units, rs, state, **back),
    )  # fmt: skip


# Each model: its layers as factories of (return_state) -> layer; "rnn" marks an LSTM layer.
MODELS: dict[str, list[tuple[str, Callable[[bool], Any]]]] = {
    "lstm-bi-concat-lstm-last-dense": [
        ("rnn", lambda s: _lstm(3, state=s)),
        ("other", lambda s: L.Dropout(0.5, dtype="float64")),
        ("rnn", lambda s: _bi("concat", 2, state=s)),
        ("rnn", lambda s: _lstm(4, rs=False, state=s)),
        ("other", lambda s: L.Dense(2, dtype="float64")),
    ],
    "go-backwards-then-bi-sum": [
        ("rnn", lambda s: _lstm(3, state=s, go_backwards=True)),
        ("rnn", lambda s: _bi("sum", 3, state=s)),
    ],
    "bi-ave-then-bi-mul-last-no-bias": [
        ("rnn", lambda s: _bi("ave", 2, state=s)),
        ("rnn", lambda s: _bi("mul", 3, rs=False, state=s, use_bias=False)),
    ],
    "bi-forward-go-backwards": [
        ("rnn", lambda s: _bi("concat", 2, state=s, go_backwards=True, backward={})),
    ],
}


def _build(kind: str, state: bool, seed: int = 0) -> tuple[Any, list[Any]]:
    """The model (outputs: its last layer's; with ``state``, also every LSTM layer's states)
    and its LSTM layers."""
    inp = keras.Input((None, F), dtype="float64")
    x, states, rnns = inp, [], []
    for what, make in MODELS[kind]:
        layer = make(state)
        out = layer(x)
        if what == "rnn":
            rnns.append(layer)
            if state:
                out, *s = out
                states += s
        x = out
    return keras.Model(inp, [x, *states] if state else x), rnns


def _random_weights(model: Any) -> None:
    rng = np.random.default_rng(3)
    model.set_weights([0.6 * rng.standard_normal(w.shape) + 0.1 for w in model.get_weights()])


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_run_stack_equals_keras(tmp_path: Path, kind: str, monkeypatch):
    model, rnns = _build(kind, state=False)
    _random_weights(model)
    model.save(tmp_path / "m.keras")
    twin, _ = _build(kind, state=True)
    twin.set_weights(model.get_weights())
    xs = np.random.default_rng(1).standard_normal((B, T, F))
    y_keras = keras.Model(model.inputs, rnns[-1].output).predict(xs, verbose=0)
    _, *states = twin.predict(xs, verbose=0)
    for sets in load_stack(tmp_path / "m.keras", 1 << 30):
        for ps in sets:
            if ps.params.bi.any():
                assert_distinct_gates(ps.params)
    np.save(tmp_path / "xs.npy", xs)
    monkeypatch.chdir(tmp_path)
    args = ["run", "--params", "m.keras", "--stack", "--xs", "xs.npy", "--batch-first"]
    result = CliRunner().invoke(app, [*args, "--out", "o.npz", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    dense = [n for n in report["left_out"]]
    assert dense == (["'dense' (Dense)"] if "dense" in kind else [])
    with np.load("o.npz") as saved:
        got = dict(saved)
    assert got["y"].shape == y_keras.shape
    np.testing.assert_allclose(got["y"], y_keras, rtol=0, atol=TOL64)
    h_cells = [np.asarray(h) for h in report["h_n"]]
    c_cells = [np.asarray(c) for c in report["c_n"]]
    assert len(states) == 2 * len(h_cells)
    for i, (h, c) in enumerate(zip(h_cells, c_cells, strict=True)):
        np.testing.assert_allclose(h, states[2 * i], rtol=0, atol=TOL64)
        np.testing.assert_allclose(c, states[2 * i + 1], rtol=0, atol=TOL64)


def test_a_sequential_model_time_first(tmp_path: Path, monkeypatch):
    model = keras.Sequential(
        [keras.Input((None, F), dtype="float64"), _lstm(3, go_backwards=True),
         L.SpatialDropout1D(0.3, dtype="float64"), _bi("ave", 2, rs=False)]
    )  # fmt: skip
    _random_weights(model)
    model.save(tmp_path / "s.keras")
    xs = np.random.default_rng(2).standard_normal((B, T, F))
    want = model.predict(xs, verbose=0)
    np.save(tmp_path / "xs.npy", xs.transpose(1, 0, 2))  # (T, B, F): the default
    monkeypatch.chdir(tmp_path)
    args = ["run", "--params", "s.keras", "--stack", "--xs", "xs.npy", "-o", "o.npz", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["directions"] == [1, 2]
    with np.load("o.npz") as saved:
        np.testing.assert_allclose(saved["y"], want, rtol=0, atol=TOL64)
