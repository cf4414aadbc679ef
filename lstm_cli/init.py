"""Initialisation schemes: a new cell and example inputs drawn from a seed.

``notebook`` reproduces the seed notebook's cell exactly (legacy ``RandomState(42)``,
``randn`` in the notebook's order); ``pytorch`` and ``keras`` draw the frameworks' defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import Array
from .errors import InputError
from .params import (
    BIAS_NAMES,
    FORMAT_VERSION,
    PEEPHOLE_NAMES,
    WEIGHT_NAMES,
    ExampleInputs,
    LSTMParams,
    ParamSet,
)

SCHEMES = ("notebook", "pytorch", "keras")

# The notebook's cell: F = 10 input features, H = 4 hidden units, legacy NumPy seed 42.
NOTEBOOK_SEED = 42
NOTEBOOK_N_FEATURES = 10
NOTEBOOK_N_HIDDEN = 4


def init_params(
    n_features: int = NOTEBOOK_N_FEATURES,
    n_hidden: int = NOTEBOOK_N_HIDDEN,
    seed: int = NOTEBOOK_SEED,
    scheme: str = "notebook",
    peepholes: bool = False,
    clip: float | None = None,
    input_forget: bool = False,
) -> ParamSet:
    """Generate a cell and example inputs with ``np.random.RandomState(seed)``.

    Every scheme first draws the example inputs ``x_t`` (F,), ``h_prev`` (H,), ``c_prev`` (H,)
    with ``randn``, then the weights:

    - ``notebook``: ``randn`` for Wf, Wi, Wo, Wc (H, H + F) then bf, bi, bo, bc (H,), in that
      order; with seed 42, F = 10, H = 4 this is exactly the seed notebook's cell.
    - ``pytorch``: ``nn.LSTMCell``'s default, every weight and both biases U(-1/sqrt(H),
      1/sqrt(H)), drawn in PyTorch's layout (weight_ih, weight_hh, bias_ih, bias_hh; gates
      i, f, g, o); the native bias is bias_ih + bias_hh.
    - ``keras``: Keras's LSTM default, Glorot-uniform kernel (F, 4H), orthogonal recurrent
      kernel (H, 4H), zero bias except the forget gate's, which is 1 (unit_forget_bias).

    ``peepholes`` draws ``Pi, Pf, Po`` (H,) after everything else (so the other arrays are the
    same as without it): ``randn`` for the notebook scheme, U(-1/sqrt(H), 1/sqrt(H)) for the
    others. ``clip`` and ``input_forget`` are stored with the cell (see :mod:`lstm_cli.core`).
    """
    if n_features < 1 or n_hidden < 1:
        raise InputError(f"n_features and n_hidden must be >= 1, got {n_features} and {n_hidden}")
    if scheme not in SCHEMES:
        raise InputError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    rng = np.random.RandomState(seed)
    example = ExampleInputs(
        x_t=rng.randn(n_features), h_prev=rng.randn(n_hidden), c_prev=rng.randn(n_hidden)
    )
    F, H = n_features, n_hidden
    params = _DRAW[scheme](rng, F, H)
    if peepholes:
        params = _with_peepholes(rng, params, scheme)
    params = params.with_variant(clip=clip, input_forget=input_forget)
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "scheme": scheme,
        "seed": int(seed),
        "n_features": F,
        "n_hidden": H,
    }
    meta.update(params.variant.to_meta())
    return ParamSet(params=params, example=example, meta=meta)


def _draw_notebook(rng: np.random.RandomState, F: int, H: int) -> LSTMParams:
    """``randn`` for Wf, Wi, Wo, Wc (H, H + F), then bf, bi, bo, bc (H,): the notebook's order."""
    weights = {name: rng.randn(H, H + F) for name in WEIGHT_NAMES}
    biases = {name: rng.randn(H) for name in BIAS_NAMES}
    return LSTMParams.from_mapping({**weights, **biases}, source="notebook scheme")


def _draw_pytorch(rng: np.random.RandomState, F: int, H: int) -> LSTMParams:
    """``nn.LSTMCell``'s default: U(-1/sqrt(H), 1/sqrt(H)) in PyTorch's layout."""
    from .layouts import from_pytorch  # on use: `lstm-cell step` never loads the layouts

    k = 1.0 / np.sqrt(H)
    return from_pytorch(
        weight_ih=rng.uniform(-k, k, (4 * H, F)),
        weight_hh=rng.uniform(-k, k, (4 * H, H)),
        bias_ih=rng.uniform(-k, k, 4 * H),
        bias_hh=rng.uniform(-k, k, 4 * H),
    )


def _draw_keras(rng: np.random.RandomState, F: int, H: int) -> LSTMParams:
    """Keras's default: Glorot-uniform kernel, orthogonal recurrent kernel, unit forget bias."""
    from .layouts import from_keras  # on use

    limit = np.sqrt(6.0 / (F + 4 * H))
    kernel = rng.uniform(-limit, limit, (F, 4 * H))
    recurrent_kernel = _orthogonal(rng, H, 4 * H)
    bias = np.zeros(4 * H)
    bias[H : 2 * H] = 1.0  # unit_forget_bias; Keras's blocks are i, f, c, o
    return from_keras(kernel, recurrent_kernel, bias)


_DRAW = {"notebook": _draw_notebook, "pytorch": _draw_pytorch, "keras": _draw_keras}


def _with_peepholes(rng: np.random.RandomState, params: LSTMParams, scheme: str) -> LSTMParams:
    """Pi, Pf, Po (H,) drawn after everything else: ``randn`` for the notebook scheme,
    U(-1/sqrt(H), 1/sqrt(H)) for the others."""
    H = params.n_hidden
    k = 1.0 / np.sqrt(H)
    draw = (lambda: rng.randn(H)) if scheme == "notebook" else (lambda: rng.uniform(-k, k, H))
    arrays = {**params.all_arrays(), **{name: draw() for name in PEEPHOLE_NAMES}}
    return LSTMParams.from_mapping(arrays, source=f"{scheme} scheme")


def notebook_default() -> ParamSet:
    """The seed notebook's cell and inputs (seed 42, F = 10, H = 4), built in memory."""
    return init_params(NOTEBOOK_N_FEATURES, NOTEBOOK_N_HIDDEN, NOTEBOOK_SEED, "notebook")


def _orthogonal(rng: np.random.RandomState, rows: int, cols: int) -> Array:
    """Keras's Orthogonal initializer for a (rows, cols) matrix (gain 1)."""
    a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return q.T if rows < cols else q
