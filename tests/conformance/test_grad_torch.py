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
from lstm_cli.params import PARAM_NAMES
from tests.conftest import random_cell

torch = pytest.importorskip("torch")


def torch_arrays(cell: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """PyTorch's four arrays for ``cell``, the bias split into two non-zero halves."""
    t = to_pytorch(LSTMParams.from_mapping(cell))
    share = rng.standard_normal(t["bias_ih"].shape)
    return {**t, "bias_ih": t["bias_ih"] - share, "bias_hh": share}


def as_torch_grads(grads) -> dict[str, np.ndarray]:
    """Our dW*/db* in PyTorch's layout (gate blocks i, f, g, o); both biases get db."""
    g = to_pytorch(LSTMParams.from_mapping({n: grads["d" + n] for n in PARAM_NAMES}))
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

    g = lstm_step_backward(LSTMParams(**cell), x, h, c, dh_next=dh, dc_next=dc)
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

    g = lstm_sequence_backward(LSTMParams(**cell), xs, h0, c0, dh_next=dh, dc_next=dc, dhs=dhs)
    np.testing.assert_allclose(g.h_next, hT[0].detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g["dxs"], txs.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g["dh0"], th0.grad.numpy()[0], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g["dc0"], tc0.grad.numpy()[0], rtol=1e-10, atol=1e-13)
    ours = as_torch_grads(g)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        theirs = getattr(lstm, name + "_l0").grad.numpy()
        np.testing.assert_allclose(ours[name], theirs, rtol=1e-10, atol=1e-13, err_msg=name)


# --------------------------------------------------------------------------- ONNX's variants
#
# PyTorch has no peepholes, clip or coupled gate: the variant cell is written here in torch
# ops (ONNX Runtime's order: peephole, then clip, then activation; o peeks at c_next) and
# differentiated by autograd.

VARIANTS = [(True, None, False), (False, 1.5, False), (False, None, True), (True, 1.5, True)]


def torch_variant_step(x, h, c, p, peep, clip, input_forget):
    """One step of the variant cell in torch ops; ``p`` maps native names to tensors."""
    u = torch.cat((h, x), dim=-1)

    def pre(g):
        return u @ p["W" + g].T + p["b" + g]

    def cl(z):
        return z if clip is None else torch.clamp(z, -clip, clip)

    z_i = pre("i") + (p["Pi"] * c if peep else 0.0)
    i = torch.sigmoid(cl(z_i))
    f = 1.0 - i if input_forget else torch.sigmoid(cl(pre("f") + (p["Pf"] * c if peep else 0.0)))
    g = torch.tanh(cl(pre("c")))
    c_next = f * c + i * g
    o = torch.sigmoid(cl(pre("o") + (p["Po"] * c_next if peep else 0.0)))
    return o * torch.tanh(c_next), c_next


def variant_cell(rng, F, H, peep):
    cell = random_cell(rng, F, H, scale=0.7)
    if peep:
        cell.update({k: 0.8 * rng.standard_normal(H) + 0.1 for k in ("Pi", "Pf", "Po")})
    return cell


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("batch", "T"), [(None, 1), (3, 1), (2, 4)])
def test_variant_gradients_match_autograd(variant, batch, T):
    """One step (T = 1, through lstm_step_backward) and BPTT (through lstm_sequence_backward)."""
    peep, clip, input_forget = variant
    F, H = 4, 3
    rng = np.random.default_rng(300 + 10 * VARIANTS.index(variant) + T)
    cell = variant_cell(rng, F, H, peep)
    assert len({cell[n].tobytes() for n in ("Wf", "Wi", "Wo", "Wc")}) == 4
    assert all(np.all(cell[b] != 0) for b in ("bf", "bi", "bo", "bc"))
    lead = () if batch is None else (batch,)
    xs = rng.standard_normal((T,) + lead + (F,))
    h0, c0 = rng.standard_normal(lead + (H,)), rng.standard_normal(lead + (H,))
    dhs = rng.standard_normal((T,) + lead + (H,))
    dh, dc = rng.standard_normal(lead + (H,)), rng.standard_normal(lead + (H,))

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in cell.items()}
    txs = torch.tensor(xs, requires_grad=True)
    th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (h0, c0))
    h, c, loss = th0, tc0, 0.0
    for t in range(T):
        h, c = torch_variant_step(txs[t], h, c, tp, peep, clip, input_forget)
        if T > 1:
            loss = loss + (torch.from_numpy(dhs[t]) * h).sum()
    loss = loss + (torch.from_numpy(dh) * h).sum() + (torch.from_numpy(dc) * c).sum()
    loss.backward()

    ours_cell = LSTMParams.from_mapping(cell, clip=clip, input_forget=input_forget)
    assert ours_cell.has_peepholes == peep
    if T == 1:
        g = lstm_step_backward(ours_cell, xs[0], h0, c0, dh_next=dh, dc_next=dc)
        ours = {"x": g["dx_t"][None], "h0": g["dh_prev"], "c0": g["dc_prev"]}
    else:
        g = lstm_sequence_backward(ours_cell, xs, h0, c0, dh_next=dh, dc_next=dc, dhs=dhs)
        ours = {"x": g["dxs"], "h0": g["dh0"], "c0": g["dc0"]}
    np.testing.assert_allclose(g.h_next, h.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours["x"], txs.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ours["h0"], th0.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ours["c0"], tc0.grad.numpy(), rtol=1e-10, atol=1e-13)
    for name, tensor in tp.items():
        theirs = tensor.grad.numpy() if tensor.grad is not None else np.zeros_like(cell[name])
        np.testing.assert_allclose(g["d" + name], theirs, rtol=1e-10, atol=1e-13, err_msg=name)
    if peep:
        assert {"dPi", "dPf", "dPo"} <= set(g.grads)
    if clip is not None:  # the clip is active somewhere: the test exercises the mask
        z = (torch.cat((th0, txs[0]), -1) @ tp["Wc"].T + tp["bc"]).detach().numpy()
        assert np.any(np.abs(z) > clip) and np.any(np.abs(z) < clip)
        assert np.min(np.abs(np.abs(z) - clip)) > 1e-6
