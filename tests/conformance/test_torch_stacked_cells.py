"""Every cell of a 2-layer bidirectional nn.LSTM saved by torch.save in this run, chosen by
layer and direction, equals torch in float64 to 1e-10 when fed what torch feeds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_cli.io.cells import CellChoice
from lstm_cli.io.paramfiles import load_param_set
from lstm_cli.sequence import run_sequence

from .helpers import assert_distinct_gates

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed: pip install -e '.[conformance]'"
)

F, H, T, B = 3, 4, 6, 2


def test_every_cell_of_a_stacked_bidirectional_lstm(tmp_path: Path):
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(F, H, num_layers=2, bidirectional=True)  # float32, as saved
    with torch.no_grad():  # distinct weights per gate, non-zero biases (both halves)
        for p in lstm.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    torch.save(lstm.state_dict(), tmp_path / "m.pt")
    double = torch.nn.LSTM(F, H, num_layers=2, bidirectional=True).double()
    double.load_state_dict({k: v.double() for k, v in lstm.state_dict().items()})
    first = torch.nn.LSTM(F, H, bidirectional=True).double()
    first.load_state_dict({k: v for k, v in double.state_dict().items() if "_l0" in k})
    xs = torch.randn(T, B, F, dtype=torch.float64)
    h0, c0 = torch.randn(2, 4, B, H, dtype=torch.float64)
    with torch.no_grad():
        y, (h_n, c_n) = double(xs, (h0, c0))
        y0, _ = first(xs, (h0[:2], c0[:2]))
    for layer, inputs, outputs in ((0, xs, y0), (1, y0, y)):
        for reverse in (False, True):
            ps = load_param_set(
                tmp_path / "m.pt", cell=CellChoice(layer, ["forward", "reverse"][reverse])
            )
            params = ps.params.astype("float64")
            assert ps.bias_halves is not None
            params = params.with_arrays(ps.bias_halves.summed("float64"))
            assert_distinct_gates(params)
            idx, step = 2 * layer + reverse, -1 if reverse else 1
            half = slice(H, 2 * H) if reverse else slice(0, H)
            got = run_sequence(params, inputs.numpy()[::step], h0[idx].numpy(), c0[idx].numpy(),
                               return_sequences=True)  # fmt: skip
            assert got.h_seq is not None
            np.testing.assert_allclose(
                got.h_seq, outputs.numpy()[::step, :, half], atol=1e-10, rtol=0
            )
            np.testing.assert_allclose(got.h_next, h_n[idx].numpy(), atol=1e-10, rtol=0)
            np.testing.assert_allclose(got.c_next, c_n[idx].numpy(), atol=1e-10, rtol=0)
