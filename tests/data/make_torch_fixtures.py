"""Writes the PyTorch checkpoints of tests/data with torch.save itself, and beside each the
arrays it holds as an .npz (so tests without torch know what the .pt must read as).

Run from the repository's root with torch installed: python tests/data/make_torch_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def _trained(module: torch.nn.Module, F: int) -> None:
    """A few SGD steps: distinct gates, non-zero biases (bias_hh too)."""
    opt = torch.optim.SGD(module.parameters(), lr=0.2)
    x = torch.randn(4, 2, F)
    for _ in range(3):
        out = module(x[0]) if isinstance(module, torch.nn.LSTMCell) else module(x)
        loss = out[0].square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def main() -> None:
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(3, 2)
    _trained(cell, 3)
    lstm = torch.nn.LSTM(3, 2, num_layers=2, bidirectional=True)
    _trained(lstm, 3)
    files = {
        "torch_cell.pt": (cell.state_dict(), True),
        "torch_cell_legacy.pt": (cell.state_dict(), False),
        "torch_checkpoint.pth": ({"model": {"rnn": cell.state_dict()}, "epoch": 3}, True),
        "torch_lstm_2x2.pt": (lstm.state_dict(), True),
    }
    for name, (obj, zipped) in files.items():
        torch.save(obj, HERE / name, _use_new_zipfile_serialization=zipped)
    for name, sd in (
        ("torch_cell.npz", cell.state_dict()),
        ("torch_lstm_2x2.npz", lstm.state_dict()),
    ):
        np.savez(HERE / name, **{k: v.numpy() for k, v in sd.items()})


if __name__ == "__main__":
    main()
