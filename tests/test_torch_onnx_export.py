"""A model written by ``torch.onnx.export`` itself (torch 2.13's default exporter, weights in
an external data file), committed in tests/data by tests/data/make_torch_onnx_fixture.py with
what torch computed on it in float64: ``run --stack`` and each cell equal torch to 1e-10, with
ONNX's two bias halves (Wb, Rb) of each direction added in float64. No torch needed; the onnx
package is (the test extra has it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lstm_cli.cli import app
from lstm_cli.io import paramfiles
from lstm_cli.io.cells import CellChoice

onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[onnx]'")

DATA = Path(__file__).resolve().parent / "data"
MODEL = DATA / "torch_onnx_bi.onnx"
with np.load(DATA / "torch_onnx_bi_out.npz") as _saved:
    TORCH = dict(_saved)


def test_the_weights_are_stored_outside_the_model():
    model = onnx.load(str(MODEL), load_external_data=False)
    external = [t.name for t in model.graph.initializer if t.data_location == 1]
    assert len(external) >= 2 and (DATA / "torch_onnx_bi.onnx.data").stat().st_size > 0


def test_run_stack_equals_torch_in_float64(runner, tmp_path: Path):
    out = tmp_path / "y.npz"
    xs = DATA / "torch_onnx_bi_xs.npy"
    args = ["run", "--params", str(MODEL), "--stack", "--xs", str(xs), "--out", str(out)]
    result = runner.invoke(app, [*args, "--dtype", "float64"])
    assert result.exit_code == 0, result.output
    with np.load(out) as got:
        for name in ("y", "h_n", "c_n"):
            np.testing.assert_allclose(got[name], TORCH[name], rtol=0, atol=1e-10, err_msg=name)


@pytest.mark.parametrize(("direction", "d"), [("forward", 0), ("reverse", 1)])
def test_each_direction_keeps_both_bias_halves_and_steps_like_torch(direction: str, d: int):
    ps = paramfiles.load_param_set(MODEL, cell=CellChoice(direction=direction))
    assert ps.bias_halves is not None, "Rb is not zero: both halves are kept"
    B = onnx.numpy_helper.to_array(
        next(t for t in onnx.load(str(MODEL)).graph.initializer if t.dims == [2, 128])
    )
    np.testing.assert_array_equal(ps.bias_halves.second["bi"], B[d, 64:80])  # Rb's i rows
    cell = ps.params.astype("float64").with_arrays(ps.bias_halves.summed("float64"))
    xs = np.load(DATA / "torch_onnx_bi_xs.npy")
    seq = xs if d == 0 else xs[::-1]
    h = c = np.zeros((xs.shape[1], cell.n_hidden))
    for x in seq:
        r = cell.step(x, h, c)
        h, c = r.h_next, r.c_next
    np.testing.assert_allclose(h, TORCH["h_n"][d], rtol=0, atol=1e-10)
    np.testing.assert_allclose(c, TORCH["c_n"][d], rtol=0, atol=1e-10)


def test_inspect_names_the_exported_node(runner):
    result = runner.invoke(app, ["inspect", str(MODEL)])
    assert result.exit_code == 0, result.output
    (lstm,) = json.loads(result.output)["lstms"]
    assert (lstm["directions"], lstm["n_features"], lstm["n_hidden"]) == (2, 8, 16)


def test_convert_to_pytorch_keeps_both_halves_bit_for_bit(runner, tmp_path: Path):
    out = tmp_path / "t.npz"
    args = ["convert", str(MODEL), str(out), "--to", "pytorch", "--direction", "reverse"]
    assert runner.invoke(app, args).exit_code == 0
    B = next(
        onnx.numpy_helper.to_array(t)
        for t in onnx.load(str(MODEL)).graph.initializer
        if t.dims == [2, 128]
    )
    Rb = B[1, 64:].reshape(4, 16)  # ONNX's gate order i, o, f, c
    with np.load(out) as saved:
        np.testing.assert_array_equal(saved["bias_hh"], Rb[[0, 2, 3, 1]].ravel())  # i f g o
