"""Writes tests/data/torch_onnx_bi.onnx (+ its external data file) with
torch.onnx.export itself, torch 2.13's default (dynamo) exporter: a bidirectional nn.LSTM
(F = 8, H = 16) trained 3 SGD steps, so that every gate and both biases differ; an input
sequence torch_onnx_bi_xs.npy (T, B, F); and torch_onnx_bi_out.npz, what torch computes on
it in float64 from the same (upcast) weights: y (T, B, 2H), h_n and c_n (2, B, H).

Run from the repository's root with the conformance extra installed:
python tests/data/make_torch_onnx_fixture.py
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
F, H, T, B = 8, 16, 5, 2  # big enough that the exporter stores W, R outside the model


def _trained() -> torch.nn.LSTM:
    torch.manual_seed(11)
    lstm = torch.nn.LSTM(F, H, bidirectional=True)
    opt = torch.optim.SGD(lstm.parameters(), lr=0.5)
    for _ in range(3):
        y, _ = lstm(torch.randn(T, B, F))
        loss = (y - 0.3).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lstm.eval()


def main() -> None:
    lstm = _trained()
    path = HERE / "torch_onnx_bi.onnx"
    with warnings.catch_warnings():  # the exporter's own notes
        warnings.simplefilter("ignore")
        torch.onnx.export(lstm, (torch.randn(T, B, F),), str(path))
    xs = np.random.default_rng(5).standard_normal((T, B, F))
    with torch.no_grad():
        y, (h_n, c_n) = lstm.double()(torch.from_numpy(xs))
    np.save(HERE / "torch_onnx_bi_xs.npy", xs)
    np.savez(HERE / "torch_onnx_bi_out.npz", y=y.numpy(), h_n=h_n.numpy(), c_n=c_n.numpy())


if __name__ == "__main__":
    main()
