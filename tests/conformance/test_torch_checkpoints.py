"""Checkpoints written by torch.save in this run (zip and legacy format, nested dicts) read
without torch's unpickler, and stepped equal to torch in float64 on the upcast weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_cli.io import paramfiles

from .helpers import B, F, H

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed: pip install -e '.[conformance]'"
)


@pytest.mark.parametrize("zipped", [True, False])
@pytest.mark.parametrize("nested", [False, True])
def test_torch_save_state_dict_steps_like_torch(tmp_path: Path, zipped: bool, nested: bool):
    torch.manual_seed(7)
    cell = torch.nn.LSTMCell(F, H)
    opt = torch.optim.SGD(cell.parameters(), lr=0.3)
    for _ in range(3):
        h, _c = cell(torch.randn(B, F))
        opt.zero_grad()
        h.square().mean().backward()
        opt.step()
    state = cell.state_dict()
    obj = {"model": {"cell": state}, "step": 3} if nested else state
    torch.save(obj, tmp_path / "c.pt", _use_new_zipfile_serialization=zipped)
    ps = paramfiles.load_param_set(tmp_path / "c.pt", key_prefix="model.cell." if nested else None)
    cell64 = torch.nn.LSTMCell(F, H, dtype=torch.float64)
    cell64.load_state_dict({k: v.double() for k, v in state.items()})
    rng = np.random.default_rng(0)
    x, h0, c0 = (
        rng.standard_normal((B, F)),
        rng.standard_normal((B, H)),
        rng.standard_normal((B, H)),
    )
    with torch.no_grad():
        h1, c1 = cell64(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    assert ps.bias_halves is not None
    mine = ps.params.with_arrays(ps.bias_halves.summed("float64")).astype("float64")
    r = mine.step(x, h0, c0)
    assert np.max(np.abs(r.h_next - h1.numpy())) < 1e-12
    assert np.max(np.abs(r.c_next - c1.numpy())) < 1e-12
