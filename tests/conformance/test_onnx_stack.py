"""``run --stack`` on an ONNX LSTM node of direction forward, reverse and bidirectional, with
initial states and a batch, equals onnxruntime: y is ONNX's Y (T, D, B, H) laid out as
torch's (T, B, D*H), h_n and c_n are Y_h and Y_c, to 1e-5 (onnxruntime computes in float32)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lstm_cli.cli import app

from .helpers import TOL32, B, F, H, T

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _model(path: Path, arrays: dict[str, np.ndarray], direction: str) -> None:
    node = helper.make_node(
        "LSTM", ["X", "W", "R", "B", "", "initial_h", "initial_c"], ["Y", "Y_h", "Y_c"],
        name="n", hidden_size=H, direction=direction,
    )  # fmt: skip
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
              for n in ("X", "initial_h", "initial_c")]  # fmt: skip
    graph = helper.make_graph(
        [node], "g", inputs,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y", "Y_h", "Y_c")],
        initializer=[numpy_helper.from_array(a, n) for n, a in arrays.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_the_stack_of_an_onnx_node_equals_onnxruntime(
    tmp_path: Path, runner, monkeypatch, direction
):
    rng = np.random.default_rng(12)
    D = 2 if direction == "bidirectional" else 1
    arrays = {
        "W": rng.normal(size=(D, 4 * H, F)).astype(np.float32),
        "R": rng.normal(size=(D, 4 * H, H)).astype(np.float32),
        "B": rng.normal(size=(D, 8 * H)).astype(np.float32),
    }
    _model(tmp_path / "m.onnx", arrays, direction)
    feeds = {
        "X": rng.normal(size=(T, B, F)).astype(np.float32),
        "initial_h": rng.normal(size=(D, B, H)).astype(np.float32),
        "initial_c": rng.normal(size=(D, B, H)).astype(np.float32),
    }
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    y, y_h, y_c = session.run(None, feeds)
    monkeypatch.chdir(tmp_path)
    for name, a in feeds.items():
        np.save(f"{name}.npy", a)
    args = ["run", "--params", "m.onnx", "--stack", "--xs", "X.npy", "--h", "initial_h.npy",
            "--c", "initial_c.npy", "--out", "o.npz", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["layers"], report["directions"]) == (1, [D])
    with np.load("o.npz") as saved:
        got_y = saved["y"].reshape(T, B, D, H).transpose(0, 2, 1, 3)
        np.testing.assert_allclose(got_y, y, atol=TOL32)
        np.testing.assert_allclose(saved["h_n"], y_h, atol=TOL32)
        np.testing.assert_allclose(saved["c_n"], y_c, atol=TOL32)
