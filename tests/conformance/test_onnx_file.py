"""Reading .onnx models (needs the optional onnx package): what is read, and every refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.errors import InputError
from lstm_cli.io import paramfiles
from lstm_cli.layouts import export_arrays

from .helpers import F, H, make_cell

onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[onnx]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

runner = CliRunner()


def save_model(
    path: Path,
    arrays: dict[str, np.ndarray],
    node_inputs: list[str] | None = None,
    n_nodes: int = 1,
    **attrs: Any,
) -> None:
    names = node_inputs or ["X", "W", "R", "B", "", "", "", "P" if "P" in arrays else ""]
    attrs.setdefault("hidden_size", H)
    nodes = [
        helper.make_node("LSTM", names, [f"Y{k}"], name=f"lstm{k}", **attrs) for k in range(n_nodes)
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, F])],
        [helper.make_tensor_value_info(f"Y{k}", TensorProto.FLOAT, None) for k in range(n_nodes)],
        initializer=[numpy_helper.from_array(v.astype("float32"), k) for k, v in arrays.items()],
    )
    onnx.save(helper.make_model(graph), str(path))


def test_reads_w_r_b_p_and_attributes(tmp_path: Path):
    cell = make_cell(1, peepholes=True).astype("float32")
    save_model(tmp_path / "m.onnx", export_arrays(cell, "onnx"), clip=2.5, input_forget=1)
    ps = paramfiles.load_param_set(tmp_path / "m.onnx")
    assert ps.params.variant.switches() == {"peepholes": True, "clip": 2.5, "input_forget": True}
    assert ps.meta["onnx_node"] == "lstm0" and ps.meta["source_layout"] == "onnx"
    for k, v in cell.all_arrays().items():
        assert ps.params.all_arrays()[k].tobytes() == v.tobytes()


def test_convert_an_onnx_model_to_native_and_to_pytorch(tmp_path: Path):
    cell = make_cell(2).astype("float32")
    save_model(tmp_path / "m.onnx", export_arrays(cell, "onnx"))
    out = tmp_path / "t.safetensors"
    result = runner.invoke(app, ["convert", str(tmp_path / "m.onnx"), str(out), "--to", "pytorch"])
    assert result.exit_code == 0, result.output
    back = paramfiles.load_param_set(out).params
    assert back.Wc.tobytes() == cell.Wc.tobytes()


def test_node_name_picks_an_lstm(tmp_path: Path):
    save_model(tmp_path / "m.onnx", export_arrays(make_cell(3), "onnx"), n_nodes=2)
    ps = paramfiles.load_param_set(tmp_path / "m.onnx", key_prefix="lstm1")
    assert ps.meta["onnx_node"] == "lstm1"
    with pytest.raises(
        InputError, match="no LSTM node named 'lstm7' \\(LSTM nodes: 'lstm0', 'lstm1'\\)"
    ):
        paramfiles.load_param_set(tmp_path / "m.onnx", key_prefix="lstm7")


def _arrays() -> dict[str, np.ndarray]:
    return export_arrays(make_cell(4), "onnx")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"direction": "sideways"}, "expected forward, reverse or bidirectional"),
        ({"layout": 2}, "layout is 2, expected 0 or 1"),
        ({"activations": ["Sigmoid", "Relu", "Tanh"]}, "uses activations"),
        ({"hidden_size": H + 1}, f"hidden_size is {H + 1} but R holds H = {H}"),
        ({"input_forget": 2}, "input_forget is 2, expected 0 or 1"),
        ({"clip": -1.0}, "clip must be a finite number > 0"),
        ({"node_inputs": ["X", "W", "R_missing"]}, "R ('R_missing') is not an initializer"),
        ({"node_inputs": ["X", "W", ""]}, "has no R input"),
    ],
)
def test_refused_models(tmp_path: Path, kwargs: dict[str, Any], message: str):
    save_model(tmp_path / "m.onnx", _arrays(), **kwargs)
    with pytest.raises(InputError) as e:
        paramfiles.load_param_set(tmp_path / "m.onnx")
    assert str(e.value).startswith(str(tmp_path / "m.onnx"))
    assert message in str(e.value)


def test_refused_files(tmp_path: Path):
    (tmp_path / "junk.onnx").write_bytes(b"\xff\xff\xff garbage")
    with pytest.raises(InputError, match="junk.onnx: not a readable ONNX model"):
        paramfiles.load_param_set(tmp_path / "junk.onnx")
    graph = helper.make_graph([], "g", [], [])
    onnx.save(helper.make_model(graph), str(tmp_path / "empty.onnx"))
    with pytest.raises(InputError, match="empty.onnx: the model has no LSTM node"):
        paramfiles.load_param_set(tmp_path / "empty.onnx")
    nan = _arrays()
    nan["W"] = np.full_like(nan["W"], np.nan)
    save_model(tmp_path / "nan.onnx", nan)
    with pytest.raises(InputError, match="nan.onnx: W contains nan"):
        paramfiles.load_param_set(tmp_path / "nan.onnx")
    with pytest.raises(InputError, match="an .onnx model holds an onnx LSTM, not keras"):
        paramfiles.load_param_set(tmp_path / "nan.onnx", layout="keras")


def test_external_data_beside_the_model_is_read(tmp_path: Path):
    cell = make_cell(4).astype("float32")
    save_model(tmp_path / "m.onnx", export_arrays(cell, "onnx"))
    model = onnx.load(str(tmp_path / "m.onnx"))
    onnx.save_model(
        model,
        str(tmp_path / "ext.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    ps = paramfiles.load_param_set(tmp_path / "ext.onnx")
    for k, v in cell.all_arrays().items():
        assert ps.params.all_arrays()[k].tobytes() == v.tobytes()
    with (
        (tmp_path / "ext.onnx").open("rb") as f,
        pytest.raises(InputError, match="read only beside a model opened by its path"),
    ):
        paramfiles._load_buffered(f.read(), "stdin", 1 << 20, paramfiles._Pick("onnx", None, None))
