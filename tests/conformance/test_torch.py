"""Conformance against PyTorch itself: nn.LSTMCell and nn.LSTM in float64, with weights
exported by this tool (loaded with load_state_dict) and weights made by torch (imported here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.io import paramfiles
from lstm_cli.layouts import export_arrays
from lstm_cli.params import LSTMParams

from .helpers import TOL64, B, F, H, T, inputs, make_cell, max_diff, run_sequence

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed: pip install -e '.[conformance]'"
)
safetensors_torch = pytest.importorskip("safetensors.torch")


def _t(a: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(a))


def _torch_cell_step(module, x, h, c):
    with torch.no_grad():
        h1, c1 = module(_t(x), (_t(h), _t(c)))
    return h1.numpy(), c1.numpy()


def _torch_lstm_run(module, X, h0, c0):
    with torch.no_grad():
        Y, (hT, cT) = module(_t(X), (_t(h0)[None], _t(c0)[None]))
    return Y.numpy(), hT[0].numpy(), cT[0].numpy()


def test_lstmcell_loads_exported_weights_and_agrees():
    cell = make_cell(1)
    module = torch.nn.LSTMCell(F, H, dtype=torch.float64)
    module.load_state_dict({k: _t(v) for k, v in export_arrays(cell, "pytorch").items()})
    X, h0, c0 = inputs(2)
    h1, c1 = _torch_cell_step(module, X[0], h0, c0)
    r = cell.step(X[0], h0, c0)
    assert max_diff(h1, r.h_next) < TOL64
    assert max_diff(c1, r.c_next) < TOL64


def test_torch_made_lstmcell_steps_here_through_a_file(tmp_path: Path):
    torch.manual_seed(0)
    module = torch.nn.LSTMCell(F, H, dtype=torch.float64)
    state = module.state_dict()
    assert torch.all(state["bias_ih"] != 0) and torch.all(state["bias_hh"] != 0)
    path = tmp_path / "cell.safetensors"
    safetensors_torch.save_file(state, str(path))
    cell = paramfiles.load_param_set(path).params
    X, h0, c0 = inputs(3)
    h1, c1 = _torch_cell_step(module, X[0], h0, c0)
    r = cell.step(X[0], h0, c0)
    assert max_diff(h1, r.h_next) < TOL64
    assert max_diff(c1, r.c_next) < TOL64


def test_nn_lstm_sequence_with_exported_weights():
    cell = make_cell(4)
    module = torch.nn.LSTM(F, H, dtype=torch.float64)  # (T, B, F), one layer
    arrays = export_arrays(cell, "pytorch", pytorch_names="lstm")
    module.load_state_dict({k: _t(v) for k, v in arrays.items()})  # strict: names match
    X, h0, c0 = inputs(5)
    Y, hT, cT = _torch_lstm_run(module, X, h0, c0)
    Y_ref, h_ref, c_ref = run_sequence(cell, X, h0, c0)
    assert Y.shape == (T, B, H)
    assert max_diff(Y, Y_ref) < TOL64
    assert max_diff(hT, h_ref) < TOL64
    assert max_diff(cT, c_ref) < TOL64


def test_torch_made_nn_lstm_in_a_model_steps_here_through_the_cli(tmp_path: Path):
    """The README's two lines: save the model's state dict with safetensors, then step it."""
    torch.manual_seed(1)

    Module: Any = torch.nn.Module

    class Model(Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(F, H, dtype=torch.float64)
            self.head = torch.nn.Linear(H, 2, dtype=torch.float64)

    model = Model()
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(model.state_dict(), str(path))
    X, h0, c0 = inputs(6)
    Y, _hT, cT = _torch_lstm_run(model.lstm, X, h0, c0)
    # the whole sequence through the library
    cell = paramfiles.load_param_set(path).params
    Y_ref, _, c_ref = run_sequence(cell, X, h0, c0)
    assert max_diff(Y, Y_ref) < TOL64 and max_diff(cT, c_ref) < TOL64
    # one step through the command line, key prefix "lstm." found by itself
    (tmp_path / "in.json").write_text(json.dumps({"x_t": X[0].tolist(), "h": h0.tolist()}))
    (tmp_path / "c.json").write_text(json.dumps(c0.tolist()))
    result = CliRunner().invoke(
        app,
        ["step", "--params", str(path), "--x", str(tmp_path / "in.json"),
         "--h", str(tmp_path / "in.json"), "--c", str(tmp_path / "c.json"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert max_diff(out["h_next"], Y[0]) < TOL64


def test_cli_convert_output_loads_into_torch_strictly(tmp_path: Path):
    cell = make_cell(7)
    src = tmp_path / "native.npz"
    paramfiles.save_arrays(src, cell.arrays(), None)
    for names, module in (
        ("cell", torch.nn.LSTMCell(F, H, dtype=torch.float64)),
        ("lstm", torch.nn.LSTM(F, H, dtype=torch.float64)),
    ):
        dst = tmp_path / f"torch_{names}.safetensors"
        result = CliRunner().invoke(
            app,
            ["convert", str(src), str(dst), "--to", "pytorch", "--pytorch-names", names],
        )
        assert result.exit_code == 0, result.output
        module.load_state_dict(safetensors_torch.load_file(str(dst)), strict=True)
        X, h0, c0 = inputs(8)
        if names == "cell":
            h1, _ = _torch_cell_step(module, X[0], h0, c0)
            assert max_diff(h1, cell.step(X[0], h0, c0).h_next) < TOL64
        else:
            Y, _, _ = _torch_lstm_run(module, X, h0, c0)
            assert max_diff(Y, run_sequence(cell, X, h0, c0)[0]) < TOL64


def _swap_gate_blocks(a: np.ndarray, H: int, first: int, second: int) -> np.ndarray:
    out = a.copy()
    out[first * H : (first + 1) * H], out[second * H : (second + 1) * H] = (
        a[second * H : (second + 1) * H],
        a[first * H : (first + 1) * H],
    )
    return out


def test_a_wrong_gate_order_would_be_detected():
    """Swap PyTorch's f and g blocks (as a buggy port would): with distinct gates the results
    move far beyond the tolerance. With identical gates and zero biases they would not."""
    X, h0, c0 = inputs(9)

    def torch_h(cell: LSTMParams, swap: bool) -> np.ndarray:
        arrays = export_arrays(cell, "pytorch")
        if swap:
            arrays = {k: _swap_gate_blocks(v, H, 1, 2) for k, v in arrays.items()}
        module = torch.nn.LSTMCell(F, H, dtype=torch.float64)
        module.load_state_dict({k: _t(v) for k, v in arrays.items()})
        return _torch_cell_step(module, X[0], h0, c0)[0]

    cell = make_cell(10)
    ours = cell.step(X[0], h0, c0).h_next
    assert max_diff(torch_h(cell, swap=False), ours) < TOL64
    assert max_diff(torch_h(cell, swap=True), ours) > 1e-3  # caught

    same = {k: cell.Wi for k in ("Wf", "Wi", "Wo", "Wc")} | {
        k: 0 * cell.bi for k in ["bf", "bi", "bo", "bc"]
    }
    weak = LSTMParams.from_mapping(same)
    ours_weak = weak.step(X[0], h0, c0).h_next
    assert max_diff(torch_h(weak, swap=True), ours_weak) < TOL64  # a weak test would pass


def test_import_with_a_wrong_order_table_would_be_detected():
    """Reading torch's blocks with ONNX's order table (i, o, f, c) instead of torch's own
    (i, f, g, o) must disagree with torch, far beyond the tolerance."""
    from lstm_cli.layouts import _from_blocks

    torch.manual_seed(2)
    module = torch.nn.LSTMCell(F, H, dtype=torch.float64)
    sd = {k: v.numpy() for k, v in module.state_dict().items()}
    X, h0, c0 = inputs(11)
    h_torch = _torch_cell_step(module, X[0], h0, c0)[0]
    bias = sd["bias_ih"] + sd["bias_hh"]
    wrong = _from_blocks(sd["weight_ih"], sd["weight_hh"], bias, ("i", "o", "f", "c"), "t")
    right = _from_blocks(sd["weight_ih"], sd["weight_hh"], bias, ("i", "f", "c", "o"), "t")
    assert max_diff(right.step(X[0], h0, c0).h_next, h_torch) < TOL64
    assert max_diff(wrong.step(X[0], h0, c0).h_next, h_torch) > 1e-3
