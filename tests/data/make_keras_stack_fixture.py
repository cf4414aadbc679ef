"""Writes tests/data/keras_stack.keras with Keras 3 itself (float64): a Functional model
``enc`` LSTM(4, return_sequences) -> Dropout -> ``bi`` Bidirectional(LSTM(3), concat) ->
``dec`` LSTM(2, go_backwards, last step only) -> ``head`` Dense(1), every weight random
(distinct gates, non-zero biases); keras_stack_xs.npy, an input (T, B, F) = (5, 2, 3), time
first as ``run --stack`` reads by default; and keras_stack_out.npz, what Keras computes for it:
``y`` (B, 2) the output of ``dec`` (model.predict of the sub-model ending there) and ``h_n_i``,
``c_n_i`` every cell's final state (a twin model with return_state=True, the same weights).
Also keras_merge.keras, a Sequential model of three Bidirectional(LSTM(2)) merged by sum, ave
and mul, and keras_merge_out.npz (its xs (B, T, F), y and states), the same way.

Run from the repository's root with keras and h5py installed:
KERAS_BACKEND=torch python tests/data/make_keras_stack_fixture.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

HERE = Path(__file__).resolve().parent
F, T, B = 3, 5, 2


def model(state: bool) -> tuple[Any, list[Any]]:
    """The model (outputs: ``head``'s; with ``state`` also ``dec``'s and every LSTM layer's
    states) and its three LSTM layers."""
    L = keras.layers
    inp = keras.Input((None, F))
    rnns = [
        L.LSTM(4, return_sequences=True, return_state=state, name="enc"),
        L.Bidirectional(L.LSTM(3, return_sequences=True, return_state=state), name="bi"),
        L.LSTM(2, go_backwards=True, return_state=state, name="dec"),
    ]
    x, states = inp, list[Any]()
    for i, layer in enumerate(rnns):
        out = layer(x)
        x, *s = out if state else (out,)
        states += s
        if i == 0:
            x = L.Dropout(0.25, name="drop")(x)
    y = L.Dense(1, name="head")(x)
    return keras.Model(inp, [y, x, *states] if state else y), rnns


def merges(state: bool) -> Any:
    """A Sequential model of three Bidirectional(LSTM(2)) merged by sum, ave and mul (the last
    returning its last step, without bias); with ``state``, a Functional twin whose outputs are
    the last layer's and every layer's states."""
    L = keras.layers
    layers = [
        L.Bidirectional(L.LSTM(2, return_sequences=True, return_state=state), merge_mode="sum"),
        L.Bidirectional(L.LSTM(2, return_sequences=True, return_state=state), merge_mode="ave"),
        L.Bidirectional(L.LSTM(2, use_bias=False, return_state=state), merge_mode="mul"),
    ]
    if not state:
        return keras.Sequential([keras.Input((None, F)), *layers])
    inp = keras.Input((None, F))
    x, states = inp, list[Any]()
    for layer in layers:
        x, *s = layer(x)
        states += s
    return keras.Model(inp, [x, *states])


def save(m: Any, twin: Any, y_model: Any, lead: int, name: str, seed: int) -> None:
    """``m`` with random weights as ``name``.keras, and what Keras computes for an input: y
    from ``y_model``, the states from ``twin`` (its outputs after the first ``lead``)."""
    rng = np.random.default_rng(seed)
    m.set_weights([0.6 * rng.standard_normal(w.shape) + 0.1 for w in m.get_weights()])
    m.save(HERE / f"{name}.keras")
    twin.set_weights(m.get_weights())
    xs = np.random.default_rng(seed + 1).standard_normal((B, T, F))
    y = y_model.predict(xs, verbose=0)
    states = twin.predict(xs, verbose=0)[lead:]
    arrays: dict[str, Any] = {"xs": xs, "y": np.asarray(y)}
    arrays.update({f"{'hc'[j % 2]}_n_{j // 2}": np.asarray(s) for j, s in enumerate(states)})
    np.savez(HERE / f"{name}_out.npz", **arrays)


def main() -> None:
    keras.config.set_floatx("float64")
    m, rnns = model(state=False)
    twin, _ = model(state=True)
    save(m, twin, keras.Model(m.inputs, rnns[-1].output), 2, "keras_stack", 11)
    with np.load(HERE / "keras_stack_out.npz") as out:
        np.save(HERE / "keras_stack_xs.npy", out["xs"].transpose(1, 0, 2))
    m = merges(state=False)
    save(m, merges(state=True), m, 1, "keras_merge", 21)


if __name__ == "__main__":
    main()
