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
    write_stack_outputs(lstm, HERE / "torch_lstm_2x2_out.npz")
    for name, (obj, zipped) in files.items():
        torch.save(obj, HERE / name, _use_new_zipfile_serialization=zipped)
    for name, sd in (
        ("torch_cell.npz", cell.state_dict()),
        ("torch_lstm_2x2.npz", lstm.state_dict()),
    ):
        np.savez(HERE / name, **{k: v.numpy() for k, v in sd.items()})


def write_stack_outputs(lstm: torch.nn.LSTM, path: Path) -> None:
    """torch's own outputs of ``lstm`` in float64 on a fixed input (T=5, B=2), with non-zero
    initial states: xs, h0, c0 (L*D, B, H), y, h_n, c_n, and y0 (layer 0's output, the input
    of layer 1), so that tests without torch check every cell and the whole stack."""
    gen = torch.Generator().manual_seed(1)
    L, D, H = lstm.num_layers, 2 if lstm.bidirectional else 1, lstm.hidden_size
    xs = torch.randn(5, 2, lstm.input_size, generator=gen, dtype=torch.float64)
    h0 = torch.randn(L * D, 2, H, generator=gen, dtype=torch.float64)
    c0 = torch.randn(L * D, 2, H, generator=gen, dtype=torch.float64)
    double = torch.nn.LSTM(lstm.input_size, H, num_layers=L, bidirectional=D == 2).double()
    double.load_state_dict({k: v.double() for k, v in lstm.state_dict().items()})
    first = torch.nn.LSTM(lstm.input_size, H, bidirectional=D == 2).double()
    first.load_state_dict({k: v.double() for k, v in lstm.state_dict().items() if "_l0" in k})
    with torch.no_grad():
        y, (h_n, c_n) = double(xs, (h0, c0))
        y0, _ = first(xs, (h0[:D], c0[:D]))
    arrays = {"xs": xs, "h0": h0, "c0": c0, "y": y, "h_n": h_n, "c_n": c_n, "y0": y0}
    np.savez(path, **{k: v.numpy() for k, v in arrays.items()})


if __name__ == "__main__":
    main()
