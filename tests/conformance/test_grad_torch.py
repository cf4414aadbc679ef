"""The backward pass against PyTorch autograd, in float64.

Every gate has its own weights and both of PyTorch's biases are non-zero: with identical gate
blocks or zero biases a wrong gate order would pass. torch is a test-only dependency: the
test is skipped where it is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from lstm_cli import LSTMParams, to_pytorch
from lstm_cli.backward import lstm_sequence_backward, lstm_step_backward
from tests.conftest import random_cell

torch = pytest.importorskip("torch")


def torch_arrays(cell: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """PyTorch's four arrays for ``cell``, the bias split into two non-zero halves."""
    t = to_pytorch(LSTMParams(**cell))
    share = rng.standard_normal(t["bias_ih"].shape)
    return {**t, "bias_ih": t["bias_ih"] - share, "bias_hh": share}


def as_torch_grads(grads) -> dict[str, np.ndarray]:
    """Our dW*/db* in PyTorch's layout (gate blocks i, f, g, o); both biases get db."""
    g = to_pytorch(LSTMParams(**{n: grads["d" + n] for n in LSTMParams.__dataclass_fields__}))
    return {**g, "bias_hh": g["bias_ih"]}


def load(module, arrays: dict[str, np.ndarray], suffix: str = "") -> None:
    with torch.no_grad():
        for name, value in arrays.items():
            getattr(module, name + suffix).copy_(torch.from_numpy(value))


@pytest.mark.parametrize(("batch", "F", "H"), [(None, 10, 4), (3, 5, 4), (2, 3, 6)])
def test_step_gradients_match_autograd(batch, F, H):
    rng = np.random.default_rng(100 + F + H)
    cell = random_cell(rng, F, H)
    assert len({cell[n].tobytes() for n in ("Wf", "Wi", "Wo", "Wc")}) == 4
    lead = () if batch is None else (batch,)
    x, h, c = (rng.standard_normal(lead + (n,)) for n in (F, H, H))
    dh, dc = rng.standard_normal(lead + (H,)), rng.standard_normal(lead + (H,))

    lstm = torch.nn.LSTMCell(F, H, dtype=torch.float64)
    tarrays = torch_arrays(cell, rng)
    assert np.all(tarrays["bias_ih"] != 0) and np.all(tarrays["bias_hh"] != 0)
    load(lstm, tarrays)
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    h_next, c_next = lstm(tx, (th, tc))
    loss = (torch.from_numpy(dh) * h_next).sum() + (torch.from_numpy(dc) * c_next).sum()
    loss.backward()

    g = lstm_step_backward(x, h, c, **cell, dh_next=dh, dc_next=dc)
    np.testing.assert_allclose(g.h_next, h_next.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g["dx_t"], tx.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g["dh_prev"], th.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g["dc_prev"], tc.grad.numpy(), rtol=1e-10, atol=1e-13)
    ours = as_torch_grads(g)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        theirs = getattr(lstm, name).grad.numpy()
        np.testing.assert_allclose(ours[name], theirs, rtol=1e-10, atol=1e-13, err_msg=name)


@pytest.mark.parametrize(("T", "batch"), [(5, None), (4, 3)])
def test_bptt_gradients_match_autograd(T, batch):
    F, H = 4, 3
    rng = np.random.default_rng(200 + T)
    cell = random_cell(rng, F, H)
    lead = () if batch is None else (batch,)
    xs = rng.standard_normal((T,) + lead + (F,))
    h0, c0 = rng.standard_normal(lead + (H,)), rng.standard_normal(lead + (H,))
    dhs = rng.standard_normal((T,) + lead + (H,))
    dh, dc = rng.standard_normal(lead + (H,)), rng.standard_normal(lead + (H,))

    lstm = torch.nn.LSTM(F, H, dtype=torch.float64)
    load(lstm, torch_arrays(cell, rng), suffix="_l0")
    txs = torch.tensor(xs, requires_grad=True)
    th0, tc0 = (torch.tensor(a[None], requires_grad=True) for a in (h0, c0))  # (1, [B,] H)
    out, (hT, cT) = lstm(txs, (th0, tc0))
    loss = (
        (torch.from_numpy(dhs) * out).sum()
        + (torch.from_numpy(dh) * hT[0]).sum()
        + (torch.from_numpy(dc) * cT[0]).sum()
    )
    loss.backward()

    g = lstm_sequence_backward(xs, h0, c0, cell, dh_next=dh, dc_next=dc, dhs=dhs)
    np.testing.assert_allclose(g.h_next, hT[0].detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g["dxs"], txs.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g["dh0"], th0.grad.numpy()[0], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g["dc0"], tc0.grad.numpy()[0], rtol=1e-10, atol=1e-13)
    ours = as_torch_grads(g)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        theirs = getattr(lstm, name + "_l0").grad.numpy()
        np.testing.assert_allclose(ours[name], theirs, rtol=1e-10, atol=1e-13, err_msg=name)
