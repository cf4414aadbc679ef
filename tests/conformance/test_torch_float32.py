"""A float32 PyTorch checkpoint stepped in float64 equals torch in float64 on the upcast
weights: the two biases are summed in float64, not in the file's float32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app

from .helpers import B, F, H, T

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed: pip install -e '.[conformance]'"
)
safetensors_torch = pytest.importorskip("safetensors.torch")


def _trained_float32_cell(seed: int):
    """An nn.LSTMCell in float32, trained a few steps (distinct gates, non-zero biases)."""
    torch.manual_seed(seed)
    module = torch.nn.LSTMCell(F, H)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    x, target = torch.randn(T, B, F), torch.randn(B, H)
    for _ in range(5):
        h = c = torch.zeros(B, H)
        for x_t in x:
            h, c = module(x_t, (h, c))
        loss = ((h - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module


def test_float32_checkpoint_in_float64_equals_torch_float64(tmp_path: Path):
    module = _trained_float32_cell(0)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    assert all(v.dtype == torch.float32 for v in state.values())
    assert torch.all(state["bias_hh"] != 0)
    safetensors_torch.save_file(state, str(tmp_path / "cell.safetensors"))
    module64 = torch.nn.LSTMCell(F, H, dtype=torch.float64)
    module64.load_state_dict({k: v.double() for k, v in state.items()})
    rng = np.random.default_rng(1)
    x, h, c = rng.standard_normal(F), rng.standard_normal(H), rng.standard_normal(H)
    for name, arr in (("x", x), ("h", h), ("c", c)):
        np.save(tmp_path / f"{name}.npy", arr)
    with torch.no_grad():
        h1, c1 = module64(
            torch.from_numpy(x)[None], (torch.from_numpy(h)[None], torch.from_numpy(c)[None])
        )
    args = ["step", "--params", str(tmp_path / "cell.safetensors"), "--json"]
    for name in ("x", "h", "c"):
        args += [f"--{name}", str(tmp_path / f"{name}.npy")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert np.max(np.abs(np.array(out["h_next"]) - h1[0].numpy())) < 1e-12
    assert np.max(np.abs(np.array(out["c_next"]) - c1[0].numpy())) < 1e-12
