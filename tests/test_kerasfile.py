"""Keras 3 files read with h5py: the committed .keras archive and bare .weights.h5 of
tests/data (written by Keras itself, tests/data/make_keras_fixtures.py): layers named by the
model's config in a .keras and by their file paths in a .weights.h5, a Bidirectional's two
cells by direction, and the refusals."""

from __future__ import annotations

import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lstm_cli.cli import app
from lstm_cli.errors import InputError
from lstm_cli.io import paramfiles
from lstm_cli.io.cells import CellChoice
from lstm_cli.io.survey import survey_file
from lstm_cli.layouts import from_keras

pytest.importorskip("h5py", reason="h5py is not installed: pip install -e '.[keras]'")

DATA = Path(__file__).resolve().parent / "data"
KERAS, WEIGHTS = DATA / "keras_model.keras", DATA / "keras_model.weights.h5"
NAMES = {KERAS: {"enc": "enc", "bi": "bi"}, WEIGHTS: {"enc": "lstm", "bi": "bidirectional"}}


def _expected(cell: str):
    with np.load(DATA / "keras_model.npz") as a:
        return from_keras(a[f"{cell}_kernel"], a[f"{cell}_recurrent"], a[f"{cell}_bias"])


@pytest.mark.parametrize("path", [KERAS, WEIGHTS], ids=["keras", "weights.h5"])
@pytest.mark.parametrize(
    ("layer", "direction", "cell"),
    [("enc", None, "enc"), ("bi", "forward", "bi_forward"), ("bi", "reverse", "bi_reverse")],
)
def test_every_cell_reads_as_keras_wrote_it(path: Path, layer: str, direction, cell: str):
    name = NAMES[path][layer]
    ps = paramfiles.load_param_set(path, key_prefix=name, cell=CellChoice(direction=direction))
    for k, v in _expected(cell).all_arrays().items():
        assert ps.params.all_arrays()[k].tobytes() == v.tobytes(), k
    assert ps.meta["source_key_prefix"] == name and ps.meta["source_layout"] == "keras"


@pytest.mark.parametrize("path", [KERAS, WEIGHTS], ids=["keras", "weights.h5"])
def test_inspect_names_the_layers(path: Path):
    infos = {i.name: i for i in survey_file(path, 1 << 20)}
    assert set(infos) == set(NAMES[path].values())
    bi = infos[NAMES[path]["bi"]]
    assert bi.cells == ("forward", "reverse") and (bi.n_features, bi.n_hidden) == (2, 2)
    assert infos[NAMES[path]["enc"]].cells == ("forward",)


def test_refusals(runner, tmp_path: Path):
    np.save(tmp_path / "x.npy", np.ones(2))
    x = str(tmp_path / "x.npy")
    cases = [
        (["--params", str(KERAS), "--x", x], "holds 2 LSTM layers: 'bi', 'enc'. Choose one with"),
        (["--params", str(KERAS), "--key-prefix", "bi", "--x", x], "holds 2 cells"),
        (["--params", str(KERAS), "--key-prefix", "lstm"], "no LSTM layer named 'lstm'"),
        (["--params", str(DATA / "not_keras.h5")], "not Keras 3 weights (no layers)"),
        (["--params", str(KERAS), "--from", "pytorch"], "holds keras LSTMs, not pytorch"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["step", *args])
        assert result.exit_code == 2, args
        assert message in result.stderr, (message, result.stderr)


def test_a_bidirectional_cell_steps_through_the_command_line(runner, tmp_path: Path):
    np.save(tmp_path / "x.npy", np.array([0.3, -0.7]))
    args = ["step", "--params", str(KERAS), "--key-prefix", "bi", "--direction", "reverse",
            "--x", str(tmp_path / "x.npy"), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    want = (
        _expected("bi_reverse")
        .astype("float64")
        .step(np.array([0.3, -0.7]), np.zeros(2), np.zeros(2))
    )
    np.testing.assert_allclose(json.loads(result.stdout)["h_next"], want.h_next, rtol=1e-12)


def test_damaged_files_are_refused(tmp_path: Path):
    data = KERAS.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a Keras .keras archive"):
        paramfiles.load_param_set(tmp_path / "cut.keras")
    h5 = WEIGHTS.read_bytes()
    (tmp_path / "cut.weights.h5").write_bytes(h5[: len(h5) // 2])
    with pytest.raises(InputError, match="cut.weights.h5: "):
        paramfiles.load_param_set(tmp_path / "cut.weights.h5")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", "[1, 2")
        z.writestr("model.weights.h5", h5)
    (tmp_path / "bad.keras").write_bytes(buf.getvalue())
    with pytest.raises(InputError, match="config.json is not a Keras model config"):
        paramfiles.load_param_set(tmp_path / "bad.keras")
    with pytest.raises(InputError, match="config.json inflates to 5468 bytes, over the 1000 bytes"):
        paramfiles.load_param_set(KERAS, max_bytes=1000)


def test_through_a_pipe(tmp_path: Path):
    for path in (KERAS, WEIGHTS):
        pick = paramfiles._Pick(None, NAMES[path]["bi"], CellChoice(direction="forward"))
        ps = paramfiles._load_buffered(path.read_bytes(), "stdin", 1 << 20, pick)
        assert ps.params.n_hidden == 2


def test_without_h5py_the_extra_is_named(monkeypatch, tmp_path: Path):
    monkeypatch.setitem(sys.modules, "h5py", None)
    shutil.copy(WEIGHTS, tmp_path / "w.weights.h5")
    with pytest.raises(
        InputError, match=r"needs the h5py package \(pip install 'lstm-cell\[keras\]'"
    ):
        paramfiles.load_param_set(tmp_path / "w.weights.h5")
