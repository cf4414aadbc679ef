"""Models exported by torch.onnx.export itself (torch's default exporter stores the weights in
an external data file beside the model) and bidirectional / layout 1 nodes run by
onnxruntime: every cell this tool reads from them steps like the framework, to 1e-5 in
float32."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from lstm_cli.cli import app
from lstm_cli.io import paramfiles
from lstm_cli.io.cells import CellChoice

from .helpers import TOL32, B, F, H, assert_distinct_gates

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript", reason="torch's default ONNX exporter needs onnxscript")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _export(tmp_path: Path, bidirectional: bool):
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(F, H, bidirectional=bidirectional).eval()
    D = 2 if bidirectional else 1
    x = torch.randn(1, B, F)
    h0, c0 = torch.randn(D, B, H), torch.randn(D, B, H)
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():  # the exporter's own deprecation and tracing notes
        warnings.simplefilter("ignore")
        torch.onnx.export(lstm, (x, (h0, c0)), str(path))
    with torch.no_grad():
        _, (h_n, c_n) = lstm(x, (h0, c0))
    return path, (x.numpy(), h0.numpy(), c0.numpy()), (h_n.numpy(), c_n.numpy())


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_torch_onnx_export_steps_like_torch_and_onnxruntime(tmp_path: Path, bidirectional: bool):
    path, (x, h0, c0), (h_n, c_n) = _export(tmp_path, bidirectional)
    model = onnx.load(str(path), load_external_data=False)
    stored = [t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    assert stored or not bidirectional, "torch's exporter keeps the weights beside the model"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = dict(zip([i.name for i in session.get_inputs()], (x, h0, c0), strict=True))
    ort_h = session.run(None, feeds)[1]
    np.testing.assert_allclose(ort_h, h_n, atol=TOL32)
    directions = ("forward", "reverse") if bidirectional else ("forward",)
    for d, direction in enumerate(directions):
        ps = paramfiles.load_param_set(path, cell=CellChoice(direction=direction))
        assert ps.params.Wi.dtype == np.float32
        assert_distinct_gates(ps.params)
        got = ps.params.step(x[0], h0[d], c0[d])
        np.testing.assert_allclose(got.h_next, h_n[d], atol=TOL32)
        np.testing.assert_allclose(got.c_next, c_n[d], atol=TOL32)
        np.testing.assert_allclose(got.h_next, ort_h[d], atol=TOL32)


def test_step_on_the_exported_model_through_the_command_line(runner, tmp_path: Path):
    path, (x, h0, c0), (h_n, _) = _export(tmp_path, True)
    np.save(tmp_path / "x.npy", x[0, 0])
    np.save(tmp_path / "h.npy", h0[1, 0])
    np.save(tmp_path / "c.npy", c0[1, 0])
    args = ["step", "--params", str(path), "--direction", "reverse", "--x", "x.npy", "--h",
            "h.npy", "--c", "c.npy", "--dtype", "float32", "--json"]  # fmt: skip
    import json
    import os

    os.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(json.loads(result.stdout)["h_next"], h_n[1, 0], atol=TOL32)


def _node_model(path: Path, arrays: dict[str, np.ndarray], direction: str, layout: int) -> None:
    node = helper.make_node(
        "LSTM", ["X", "W", "R", "B"], ["Y", "Y_h", "Y_c"], name="n", hidden_size=H,
        direction=direction, layout=layout,
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y", "Y_h", "Y_c")],
        initializer=[numpy_helper.from_array(a, n) for n, a in arrays.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
@pytest.mark.parametrize("layout", [0, 1])
def test_direction_and_layout_match_onnxruntime(tmp_path: Path, direction: str, layout: int):
    """onnxruntime runs layout 0 only: a layout 1 node with the same weights must read as the
    same cells (layout changes X and Y, never the weights)."""
    rng = np.random.default_rng(11)
    D = 2 if direction == "bidirectional" else 1
    arrays = {
        "W": rng.normal(size=(D, 4 * H, F)).astype(np.float32),
        "R": rng.normal(size=(D, 4 * H, H)).astype(np.float32),
        "B": rng.normal(size=(D, 8 * H)).astype(np.float32),
    }
    _node_model(tmp_path / "ort.onnx", arrays, direction, 0)
    _node_model(tmp_path / "m.onnx", arrays, direction, layout)
    x = rng.normal(size=(1, B, F)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "ort.onnx"), providers=["CPUExecutionProvider"])
    _, y_h, y_c = session.run(None, {"X": x})
    cells = ("forward", "reverse") if D == 2 else ("reverse",)
    for d, cell in enumerate(cells):
        ps = paramfiles.load_param_set(tmp_path / "m.onnx", cell=CellChoice(direction=cell))
        assert_distinct_gates(ps.params)
        got = ps.params.step(x[0], np.zeros((B, H), "float32"), np.zeros((B, H), "float32"))
        np.testing.assert_allclose(got.h_next, y_h[d], atol=TOL32)
        np.testing.assert_allclose(got.c_next, y_c[d], atol=TOL32)
