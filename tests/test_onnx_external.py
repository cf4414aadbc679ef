"""ONNX models whose weights live in an external data file beside them (what torch's default
exporter writes), bidirectional and reverse nodes, layout 1: the committed fixtures of
tests/data (made by tests/data/make_onnx_fixtures.py), and external locations that lead out
of the model's folder, refused. Needs the optional onnx package."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lstm_cli.cli import app
from lstm_cli.errors import InputError
from lstm_cli.io import paramfiles
from lstm_cli.io.cells import CellChoice
from lstm_cli.io.survey import survey_file
from lstm_cli.layouts import from_onnx

onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[onnx]'")

DATA = Path(__file__).resolve().parent / "data"
MODEL = DATA / "onnx_bi_external.onnx"


def _expected(d: int):
    a = np.load(DATA / "onnx_bi_external.npz")
    return from_onnx(a["W"][d : d + 1], a["R"][d : d + 1], a["B"][d : d + 1])


@pytest.mark.parametrize(("direction", "d"), [("forward", 0), ("reverse", 1)])
def test_each_direction_of_a_bidirectional_node_with_external_data(direction: str, d: int):
    ps = paramfiles.load_param_set(MODEL, cell=CellChoice(direction=direction))
    want = _expected(d)
    for k, v in want.all_arrays().items():
        assert ps.params.all_arrays()[k].tobytes() == v.tobytes(), k
    assert ps.meta["source_cell"] == {"layer": 0, "direction": direction}
    assert ps.meta["source_cells"] == 2


def test_a_bidirectional_node_is_never_read_silently(runner):
    result = runner.invoke(app, ["step", "--params", str(MODEL)])
    assert result.exit_code == 2
    assert "holds 2 cells (l0, l0_reverse: 1 layer, 2 directions)" in result.stderr
    with pytest.raises(InputError, match="has no cell layer 1"):
        paramfiles.load_param_set(MODEL, cell=CellChoice(layer=1))


def test_step_on_the_reverse_cell_matches_the_arrays(runner, tmp_path: Path):
    x = np.array([0.5, -1.0, 2.0])
    np.save(tmp_path / "x.npy", x)
    args = ["--direction", "reverse", "--x", str(tmp_path / "x.npy"), "--json"]
    result = runner.invoke(app, ["step", "--params", str(MODEL), *args])
    assert result.exit_code == 0, result.stderr
    a = {k: v[1:2].astype("float64") for k, v in np.load(DATA / "onnx_bi_external.npz").items()}
    upcast = from_onnx(a["W"], a["R"], a["B"])  # Wb + Rb added in float64, as torch would
    want = upcast.step(x, np.zeros(2), np.zeros(2))
    np.testing.assert_allclose(json.loads(result.stdout)["h_next"], want.h_next, rtol=1e-12)


def test_inspect_lists_both_cells():
    (info,) = survey_file(MODEL, 1 << 20)
    assert info.cells == ("forward", "reverse") and info.directions == 2
    assert (info.n_features, info.n_hidden) == (3, 2)


def test_a_location_leading_out_of_the_folder_is_refused(tmp_path: Path):
    shutil.copy(DATA / "onnx_escape.onnx", tmp_path / "m.onnx")
    (tmp_path.parent / "hostile.py").write_bytes(b"\0" * 4096)  # present, and still not read
    with pytest.raises(InputError, match="'..' leads out of the model's folder; refused"):
        paramfiles.load_param_set(tmp_path / "m.onnx", cell=CellChoice(direction="forward"))


def _with_location(tmp_path: Path, location: str) -> Path:
    model = onnx.load(str(MODEL), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    shutil.copy(DATA / "onnx_bi_external.onnx.data", tmp_path)
    onnx.save_model(model, str(tmp_path / "m.onnx"))
    return tmp_path / "m.onnx"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("/etc/passwd", "must be a relative path in the model's folder"),
        ("C:\\\\weights.bin", "must be a relative path in the model's folder"),
        ("sub/../../x", "'..' leads out of the model's folder"),
        ("", "must be a relative path"),
        ("missing.bin", "which is not a file beside the model"),
        ("link.bin", "resolves outside the model's folder"),
    ],
)
def test_hostile_locations_are_refused(tmp_path: Path, location: str, message: str):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "outside.bin").write_bytes((DATA / "onnx_bi_external.onnx.data").read_bytes())
    (folder / "link.bin").symlink_to(tmp_path / "outside.bin")
    path = _with_location(folder, location)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        paramfiles.load_param_set(path, cell=CellChoice(direction="reverse"))


def test_external_tensors_are_read_under_the_size_limit(tmp_path: Path):
    path = _with_location(tmp_path, "onnx_bi_external.onnx.data")
    limit = path.stat().st_size  # the model fits; W (192 bytes) must fit too
    assert paramfiles.load_param_set(path, limit, cell=CellChoice(direction="forward"))
    shutil.copy(DATA / "onnx_bi_external.onnx.data", tmp_path / "short.bin")
    with open(tmp_path / "short.bin", "r+b") as f:
        f.truncate(100)
    short = _with_location(tmp_path, "short.bin")
    with pytest.raises(InputError, match="which ends before its 192 bytes"):
        paramfiles.load_param_set(short, cell=CellChoice(direction="forward"))


def test_an_external_tensor_over_the_limit_is_refused(tmp_path: Path):
    model = onnx.load(str(MODEL), load_external_data=False)
    model.graph.initializer[0].dims[:] = [2, 8, 10**6]
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "length":
            entry.value = str(2 * 8 * 10**6 * 4)
    shutil.copy(DATA / "onnx_bi_external.onnx.data", tmp_path)
    onnx.save_model(model, str(tmp_path / "m.onnx"))
    with pytest.raises(InputError, match="over the 256 MiB limit|61 MiB, over the 1 MiB"):
        paramfiles.load_param_set(
            tmp_path / "m.onnx", 1 << 20, cell=CellChoice(direction="forward")
        )


def test_through_a_pipe_external_data_cannot_be_found():
    data = MODEL.read_bytes()
    pick = paramfiles._Pick("onnx", None, CellChoice(direction="forward"))
    with pytest.raises(InputError, match="read only beside a model opened by its path"):
        paramfiles._load_buffered(data, "stdin", 1 << 20, pick)
