"""How a user's function takes the cell (``check --layout``): the arrays it is called with,
and how its gate blocks are named and ordered.

- ``seed``: ``fn(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)``, the notebook's.
- ``pytorch``: ``fn(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh)``, ``nn.LSTMCell``'s
  arrays: (4H, F), (4H, H), (4H,), (4H,), gate blocks i, f, g, o; both biases non-zero.
- ``keras``: ``fn(x, h, c, kernel, recurrent_kernel, bias)``, Keras 3 ``LSTM``'s arrays:
  (F, 4H), (H, 4H), (4H,), gate blocks i, f, c, o.
- ``onnx``: ``fn(x, h, c, W, R, B)``, ONNX ``LSTM``'s inputs for one direction: W (1, 4H, F),
  R (1, 4H, H), B (1, 8H) = [Wb, Rb] with both halves non-zero; gate blocks i, o, f, c.

``x`` is (F,) or (B, F) and ``h``, ``c`` are (H,) or (B, H), NumPy arrays in the case's dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lstm_cli.core import Array
from lstm_cli.layouts import ONNX_ORDER, to_keras, to_onnx, to_pytorch

from .vectors import Case

GATE_LETTERS = ("i", "f", "o", "c")  # the native gates: input, forget, output, candidate


@dataclass(frozen=True)
class Signature:
    """How a user's function takes the cell, and how its gate blocks are named and ordered."""

    name: str
    signature: str
    order: tuple[str, ...] | None  # stacked gate order (native letters), None: separate
    letters: dict[str, str]  # native letter -> the framework's
    args: Callable[[Case], tuple[Array, ...]]
    # extra bias mistakes of this layout: their labels, and per case the native biases they use
    bias_mistakes: tuple[str, ...]
    biases: Callable[[Case], dict[str, dict[str, Array]]]


def _bias_split(case: Case) -> Array:
    """A deterministic non-zero share of the bias for a second bias vector (bias_hh)."""
    rng = np.random.default_rng([case.index, case.n_hidden, 7])
    b = np.concatenate([case.params[f"b{g}"] for g in ("i", "f", "c", "o")])
    scale = float(np.abs(b).max()) or 1.0
    return (0.5 * scale * rng.standard_normal(b.shape)).astype(case.dtype)


def _seed_args(case: Case) -> tuple[Array, ...]:
    p = case.params
    return (
        case.inputs["x_t"],
        case.inputs["h_prev"],
        case.inputs["c_prev"],
        *(p[n] for n in ("Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")),
    )


def _pytorch_args(case: Case) -> tuple[Array, ...]:
    t = to_pytorch(case.cell)
    r = _bias_split(case)
    x = case.inputs
    return (x["x_t"], x["h_prev"], x["c_prev"], t["weight_ih"], t["weight_hh"], t["bias_ih"] - r, r)


def _pytorch_biases(case: Case) -> dict[str, dict[str, Array]]:
    """Biases as seen by a function that uses only one of PyTorch's two bias vectors."""
    r = _bias_split(case)
    H = case.n_hidden
    full = to_pytorch(case.cell)["bias_ih"]

    def native(b: Array) -> dict[str, Array]:
        return {g: b[k * H : (k + 1) * H] for k, g in enumerate(("i", "f", "c", "o"))}

    return dict(zip(PYTORCH_BIAS_MISTAKES, (native(full - r), native(r)), strict=True))


PYTORCH_BIAS_MISTAKES = (
    "uses bias_ih only (bias_hh is ignored; PyTorch adds both)",
    "uses bias_hh only (bias_ih is ignored; PyTorch adds both)",
)


def _keras_args(case: Case) -> tuple[Array, ...]:
    k = to_keras(case.cell)
    x = case.inputs
    return (x["x_t"], x["h_prev"], x["c_prev"], k["kernel"], k["recurrent_kernel"], k["bias"])


def _no_biases(case: Case) -> dict[str, dict[str, Array]]:
    return {}


def _onnx_args(case: Case) -> tuple[Array, ...]:
    o = to_onnx(case.cell)
    r = _bias_split(case)
    H4 = 4 * case.n_hidden
    wb = o["B"][0, :H4] - r
    B = np.concatenate((wb, r))[None]  # (1, 8H): [Wb, Rb], both non-zero
    x = case.inputs
    return (x["x_t"], x["h_prev"], x["c_prev"], o["W"], o["R"], B.astype(case.dtype))


def _onnx_biases(case: Case) -> dict[str, dict[str, Array]]:
    """Biases as seen by a function that uses only one half of ONNX's B."""
    r = _bias_split(case)
    H = case.n_hidden
    full = to_onnx(case.cell)["B"][0, : 4 * H]

    def native(b: Array) -> dict[str, Array]:
        return {g: b[k * H : (k + 1) * H] for k, g in enumerate(ONNX_ORDER)}

    return dict(zip(ONNX_BIAS_MISTAKES, (native(full - r), native(r)), strict=True))


ONNX_BIAS_MISTAKES = (
    "uses Wb only (the second half of B, Rb, is ignored; ONNX adds both)",
    "uses Rb only (the first half of B, Wb, is ignored; ONNX adds both)",
)


SIGNATURES: dict[str, Signature] = {
    "seed": Signature(
        "seed",
        "fn(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc) -> (h_next, c_next)",
        None,
        {g: g for g in GATE_LETTERS},
        _seed_args,
        (),
        _no_biases,
    ),
    "pytorch": Signature(
        "pytorch",
        "fn(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh) -> (h_next, c_next)",
        ("i", "f", "c", "o"),
        {"i": "i", "f": "f", "o": "o", "c": "g"},
        _pytorch_args,
        PYTORCH_BIAS_MISTAKES,
        _pytorch_biases,
    ),
    "keras": Signature(
        "keras",
        "fn(x, h, c, kernel, recurrent_kernel, bias) -> (h_next, c_next)",
        ("i", "f", "c", "o"),
        {g: g for g in GATE_LETTERS},
        _keras_args,
        (),
        _no_biases,
    ),
    "onnx": Signature(
        "onnx",
        "fn(x, h, c, W, R, B) -> (h_next, c_next); W (1, 4H, F), R (1, 4H, H), B (1, 8H)",
        ONNX_ORDER,
        {g: g for g in GATE_LETTERS},
        _onnx_args,
        ONNX_BIAS_MISTAKES,
        _onnx_biases,
    ),
}
