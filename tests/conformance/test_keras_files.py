"""Files written by Keras 3 itself (KERAS_BACKEND=torch): model.save(".keras") and
model.save_weights(".weights.h5") of a model with an LSTM and a Bidirectional(LSTM). Every
cell this tool reads steps like Keras, to 1e-5 in float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_cli.io import paramfiles
from lstm_cli.io.cells import CellChoice

from .helpers import KERAS_WARNING, TOL32, B, F, H, assert_distinct_gates, keras_on_torch

keras = keras_on_torch(h5py=True)
pytestmark = pytest.mark.filterwarnings(KERAS_WARNING)


def _model():
    inp = keras.Input((1, F))
    enc = keras.layers.LSTM(H, name="enc")(inp)
    bi = keras.layers.Bidirectional(keras.layers.LSTM(H), name="bi")(inp)
    m = keras.Model(inp, [enc, bi])
    rng = np.random.default_rng(9)  # distinct gates, non-zero biases
    m.set_weights([rng.normal(size=w.shape).astype("float32") for w in m.get_weights()])
    return m


@pytest.mark.parametrize("kind", ["keras", "weights.h5"])
def test_files_written_by_keras_step_like_keras(tmp_path: Path, kind: str):
    m = _model()
    path = tmp_path / f"m.{kind}"
    if kind == "keras":
        m.save(path)
        names = {"enc": "enc", "bi": "bi"}
    else:
        m.save_weights(path)
        names = {"enc": "lstm", "bi": "bidirectional"}
    x = np.random.default_rng(1).normal(size=(B, 1, F)).astype("float32")
    enc, bi = (keras.ops.convert_to_numpy(o) for o in m.predict(x, verbose=0))
    zeros = np.zeros((B, H), "float32")
    cells = [("enc", None, enc), ("bi", "forward", bi[:, :H]), ("bi", "reverse", bi[:, H:])]
    for layer, direction, want in cells:
        ps = paramfiles.load_param_set(
            path, key_prefix=names[layer], cell=CellChoice(direction=direction)
        )
        assert ps.params.Wi.dtype == np.float32
        assert_distinct_gates(ps.params)
        got = ps.params.step(x[:, 0], zeros, zeros)
        np.testing.assert_allclose(got.h_next, want, atol=TOL32)
