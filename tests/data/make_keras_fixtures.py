"""Writes the Keras files of tests/data with Keras 3 itself: a model of an ``LSTM`` named
``enc`` and a ``Bidirectional(LSTM)`` named ``bi`` as a ``.keras`` archive and as a bare
``.weights.h5``, the arrays each cell holds as an .npz, and an HDF5 file that is not Keras.

Run from the repository's root with keras and h5py installed:
KERAS_BACKEND=torch python tests/data/make_keras_fixtures.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

HERE = Path(__file__).resolve().parent
F, H = 3, 2


def model() -> keras.Model:
    """enc: LSTM(H) over F features; bi: Bidirectional(LSTM(H)) over enc's outputs. Every
    weight random (distinct gates), every bias non-zero."""
    inp = keras.Input((None, F))
    x = keras.layers.LSTM(H, return_sequences=True, name="enc")(inp)
    y = keras.layers.Bidirectional(keras.layers.LSTM(H), name="bi")(x)
    m = keras.Model(inp, y)
    rng = np.random.default_rng(5)
    m.set_weights([rng.normal(size=w.shape).astype("float32") for w in m.get_weights()])
    return m


def main() -> None:
    m = model()
    m.save(HERE / "keras_model.keras")
    m.save_weights(HERE / "keras_model.weights.h5")
    arrays: dict[str, Any] = {}
    for name, layer in (
        ("enc", m.get_layer("enc")),
        ("bi_forward", m.get_layer("bi").forward_layer),
        ("bi_reverse", m.get_layer("bi").backward_layer),
    ):
        kernel, recurrent, bias = (np.asarray(w) for w in layer.get_weights())
        arrays.update(
            {f"{name}_kernel": kernel, f"{name}_recurrent": recurrent, f"{name}_bias": bias}
        )
    np.savez(HERE / "keras_model.npz", **arrays)
    with h5py.File(HERE / "not_keras.h5", "w") as f:
        f["data"] = np.arange(4.0)


if __name__ == "__main__":
    main()
