"""``run --stack`` on a 2-layer bidirectional nn.LSTM saved by torch.save in this run (distinct
gate weights, non-zero biases, trained a few steps), batched, with non-zero initial states,
equals torch.nn.LSTM itself in float64 to 1e-10: y, h_n, c_n and layer 0's output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lstm_cli.cli.app import app
from lstm_cli.cli.options import cast_cell
from lstm_cli.io.survey import load_stack
from lstm_cli.stack import run_stack

from .helpers import assert_distinct_gates

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed: pip install -e '.[conformance]'"
)

F, H, T, B, L, D = 3, 4, 7, 3, 2, 2


def _trained(tmp_path: Path):
    torch.manual_seed(5)
    lstm = torch.nn.LSTM(F, H, num_layers=L, bidirectional=True)  # float32, as saved
    with torch.no_grad():  # distinct weights per gate, non-zero biases (both halves)
        for p in lstm.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
    for _ in range(3):  # a few training steps
        opt.zero_grad()
        y, _ = lstm(torch.randn(T, B, F))
        y.pow(2).mean().backward()
        opt.step()
    torch.save(lstm.state_dict(), tmp_path / "m.pt")
    double = torch.nn.LSTM(F, H, num_layers=L, bidirectional=True).double()
    double.load_state_dict({k: v.double() for k, v in lstm.state_dict().items()})
    first = torch.nn.LSTM(F, H, bidirectional=True).double()
    first.load_state_dict({k: v for k, v in double.state_dict().items() if "_l0" in k})
    return double, first


def test_the_stack_equals_torch_nn_lstm(tmp_path: Path, runner, monkeypatch):
    double, first = _trained(tmp_path)
    xs = torch.randn(T, B, F, dtype=torch.float64)
    h0, c0 = torch.randn(2, L * D, B, H, dtype=torch.float64)
    with torch.no_grad():
        y, (h_n, c_n) = double(xs, (h0, c0))
        y0, _ = first(xs, (h0[:D], c0[:D]))
        y1, (h1, c1) = double(xs[:, 0], (h0[:, 0], c0[:, 0]))  # unbatched
    layers = [
        [cast_cell(ps.params, "float64", "m.pt", ps.bias_halves) for ps in sets]
        for sets in load_stack(tmp_path / "m.pt", 1 << 30)
    ]
    for cell in (c for cells in layers for c in cells):
        assert_distinct_gates(cell)
    r = run_stack(layers, xs.numpy(), h0.numpy(), c0.numpy())
    for got, want in ((r.y, y), (r.h_n, h_n), (r.c_n, c_n), (r.layer_outputs[0], y0)):
        np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-10)
    one = run_stack(layers, xs[:, 0].numpy(), h0[:, 0].numpy(), c0[:, 0].numpy())
    for got, want in ((one.y, y1), (one.h_n, h1), (one.c_n, c1)):
        np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-10)

    monkeypatch.chdir(tmp_path)
    for name, a in (("xs", xs), ("h0", h0), ("c0", c0)):
        np.save(f"{name}.npy", a.numpy())
    args = ["run", "--params", "m.pt", "--stack", "--xs", "xs.npy", "--h", "h0.npy"]
    result = runner.invoke(app, [*args, "--c", "c0.npy", "--out", "o.npz", "--json"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(json.loads(result.stdout)["h_n"], h_n.numpy(), rtol=0, atol=1e-10)
    with np.load(tmp_path / "o.npz") as saved:
        for key, want in (("y", y), ("h_n", h_n), ("c_n", c_n), ("y_l0", y0)):
            np.testing.assert_allclose(saved[key], want.numpy(), rtol=0, atol=1e-10)
