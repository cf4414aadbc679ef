"""Conformance against ONNX itself: LSTM models built with onnx.helper from this tool's export
(and ONNX-made arrays imported here), run by ONNX Runtime and by ONNX's reference evaluator.

What each runtime can prove, found by running them (onnx 1.23, onnxruntime 1.32):
- ONNX Runtime's LSTM computes in float32 only ("LSTM operator does not support double yet"),
  and implements peepholes, clip and input_forget: compared at 1e-5.
- ONNX's reference evaluator (onnx.reference) computes in float64 but ignores clip and
  input_forget: compared at 1e-10 for the plain cell and peepholes.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_cli.io import paramfiles
from lstm_cli.layouts import export_arrays, from_onnx
from lstm_cli.params import LSTMParams

from .helpers import TOL32, TOL64, B, F, H, T, inputs, make_cell, max_diff, run_sequence

onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[conformance]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

OPSET = 14


def build_model(
    arrays: dict[str, np.ndarray],
    dtype: str,
    clip: float | None = None,
    input_forget: bool = False,
) -> Any:
    """One LSTM node: X (T, B, F), initial_h, initial_c as inputs; W, R, B (P) initializers."""
    elem = TensorProto.DOUBLE if dtype == "float64" else TensorProto.FLOAT
    names = ["X", "W", "R", "B", "", "initial_h", "initial_c", "P" if "P" in arrays else ""]
    attrs: dict = {"hidden_size": H}
    if clip is not None:
        attrs["clip"] = clip
    if input_forget:
        attrs["input_forget"] = 1
    node = helper.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], name="lstm0", **attrs)
    graph = helper.make_graph(
        [node],
        "lstm",
        [
            helper.make_tensor_value_info("X", elem, [T, B, F]),
            helper.make_tensor_value_info("initial_h", elem, [1, B, H]),
            helper.make_tensor_value_info("initial_c", elem, [1, B, H]),
        ],
        [
            helper.make_tensor_value_info("Y", elem, [T, 1, B, H]),
            helper.make_tensor_value_info("Y_h", elem, [1, B, H]),
            helper.make_tensor_value_info("Y_c", elem, [1, B, H]),
        ],
        initializer=[numpy_helper.from_array(v.astype(dtype), k) for k, v in arrays.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def run_model(model: Any, X, h0, c0, runtime: str):
    feeds = {"X": X, "initial_h": h0[None], "initial_c": c0[None]}
    if runtime == "ort":
        ort = pytest.importorskip("onnxruntime", reason="pip install -e '.[conformance]'")
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        Y, Y_h, Y_c = session.run(None, feeds)
    else:
        Y, Y_h, Y_c = ReferenceEvaluator(model).run(None, feeds)
    return Y[:, 0], Y_h[0], Y_c[0]


def check(cell: LSTMParams, model, runtime: str, dtype: str, tol: float, seed: int) -> None:
    X, h0, c0 = inputs(seed, dtype)
    Y, hT, cT = run_model(model, X, h0, c0, runtime)
    assert Y.dtype == np.dtype(dtype)
    # ours in float64 on the same (possibly float32-rounded) numbers
    ref_cell = cell.astype(dtype).astype("float64")
    Y_ref, h_ref, c_ref = run_sequence(ref_cell, *(a.astype("float64") for a in (X, h0, c0)))
    assert max_diff(Y, Y_ref) < tol
    assert max_diff(hT, h_ref) < tol
    assert max_diff(cT, c_ref) < tol


VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "peepholes": {"peepholes": True},
    "clip": {"clip": 0.7},
    "input_forget": {"input_forget": True},
    "all": {"peepholes": True, "clip": 0.7, "input_forget": True},
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_onnxruntime_float32_runs_this_tools_export(name: str):
    cell = make_cell(31, **VARIANTS[name])
    model = build_model(export_arrays(cell, "onnx"), "float32", cell.clip_value, cell.coupled)
    check(cell, model, "ort", "float32", TOL32, seed=32)


@pytest.mark.parametrize("name", ["plain", "peepholes"])
def test_reference_evaluator_float64_runs_this_tools_export(name: str):
    cell = make_cell(33, **VARIANTS[name])
    model = build_model(export_arrays(cell, "onnx"), "float64")
    check(cell, model, "reference", "float64", TOL64, seed=34)


def onnx_made_arrays(seed: int) -> dict[str, np.ndarray]:
    """Arrays as an ONNX exporter writes them: both halves of B non-zero, P present."""
    rng = np.random.default_rng(seed)
    arrays = {
        "W": rng.standard_normal((1, 4 * H, F)),
        "R": rng.standard_normal((1, 4 * H, H)),
        "B": rng.standard_normal((1, 8 * H)) + 0.1,
        "P": rng.standard_normal((1, 3 * H)),
    }
    assert np.all(arrays["B"][0, : 4 * H] != 0) and np.all(arrays["B"][0, 4 * H :] != 0)
    return arrays


@pytest.mark.parametrize("name", list(VARIANTS))
def test_onnx_model_file_read_here_agrees_with_onnxruntime(name: str, tmp_path: Path):
    """An .onnx file (ONNX-made weights, B's two halves both non-zero) read by load_param_set:
    W, R, B, P initializers and the clip / input_forget attributes."""
    variant = VARIANTS[name]
    arrays = onnx_made_arrays(35)
    if not variant.get("peepholes"):
        del arrays["P"]
    model = build_model(arrays, "float32", variant.get("clip"), variant.get("input_forget", False))
    path = tmp_path / "lstm.onnx"
    onnx.save(model, str(path))
    cell = paramfiles.load_param_set(path).params
    clip = variant.get("clip")
    assert cell.clip_value == (None if clip is None else float(np.float32(clip)))  # ONNX: float32
    assert cell.coupled == variant.get("input_forget", False)
    assert cell.has_peepholes == bool(variant.get("peepholes"))
    check(cell, model, "ort", "float32", TOL32, seed=36)


def test_onnx_made_arrays_in_float64_with_the_reference():
    arrays = onnx_made_arrays(37)
    cell = from_onnx(arrays["W"], arrays["R"], arrays["B"], arrays["P"])
    check(cell, build_model(arrays, "float64"), "reference", "float64", TOL64, seed=38)


def test_clip_and_input_forget_change_the_result_so_the_tests_can_fail():
    """The clip is active (some pre-activations exceed it) and input_forget changes f_t, so
    ONNX Runtime agreeing with them above is not vacuous."""
    X, h0, c0 = inputs(32)
    base = make_cell(31)
    r = base.step(X[0], h0, c0)
    assert max(np.max(np.abs(z)) for z in r.pre_activations.values()) > 0.7
    plain_Y = run_sequence(base, X, h0, c0)[0]
    for variant in ({"clip": 0.7}, {"input_forget": True}):
        Y = run_sequence(make_cell(31, **variant), X, h0, c0)[0]
        assert max_diff(Y, plain_Y) > 1e-3


def test_a_wrong_gate_order_would_be_detected():
    """Writing W, R, B in this tool's own gate order (i, f, o, c) instead of ONNX's (i, o, f, c)
    must disagree with ONNX Runtime far beyond the tolerance."""
    cell = make_cell(39)
    arrays = export_arrays(cell, "onnx")

    def iofc_to_ifoc(a: np.ndarray, axis: int) -> np.ndarray:
        i, o, f, c = np.split(a, 4, axis=axis)
        return np.concatenate([i, f, o, c], axis=axis)

    wrong = {
        "W": iofc_to_ifoc(arrays["W"], 1),
        "R": iofc_to_ifoc(arrays["R"], 1),
        "B": np.concatenate([iofc_to_ifoc(h, 1) for h in np.split(arrays["B"], 2, axis=1)], 1),
    }
    X, h0, c0 = inputs(40, "float32")
    Y, _, _ = run_model(build_model(wrong, "float32"), X, h0, c0, "ort")
    Y_ref = run_sequence(cell, *(a.astype("float64") for a in (X, h0, c0)))[0]
    assert max_diff(Y, Y_ref) > 1e-3
    Y_ok, _, _ = run_model(build_model(arrays, "float32"), X, h0, c0, "ort")
    assert max_diff(Y_ok, Y_ref) < TOL32


def test_torch_onnx_export_of_nn_lstm_is_read_here(tmp_path: Path):
    """PyTorch's own ONNX exporter (the TorchScript one) writes the .onnx model; this tool
    reads its W, R, B and agrees with torch over the sequence (float32 weights: 1e-5)."""
    torch = pytest.importorskip("torch", reason="pip install -e '.[conformance]'")
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(F, H)
    X, h0, c0 = inputs(41, "float32")
    path = tmp_path / "lstm.onnx"
    args = (torch.from_numpy(X), (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None]))
    with warnings.catch_warnings():  # the legacy exporter's own deprecation notices, not ours
        warnings.simplefilter("ignore")
        torch.onnx.export(lstm, args, str(path), dynamo=False)
    cell = paramfiles.load_param_set(path).params
    with torch.no_grad():
        Y_torch = lstm(*args)[0].numpy()
    Y_ref = run_sequence(cell.astype("float64"), *(a.astype("float64") for a in (X, h0, c0)))[0]
    assert max_diff(Y_torch, Y_ref) < TOL32
