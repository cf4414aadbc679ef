"""The parameter set of one LSTM cell: its arrays, validation, initialisation schemes and the
layouts of the frameworks.

Native layout (the seed notebook's): ``Wf, Wi, Wo, Wc`` each (H, H + F) acting on
``concat(h_prev, x_t)``, and ``bf, bi, bo, bc`` each (H,).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .core import Array, StepResult, lstm_step_detailed
from .errors import InputError

FORMAT_VERSION = 1
WEIGHT_NAMES = ("Wf", "Wi", "Wo", "Wc")
BIAS_NAMES = ("bf", "bi", "bo", "bc")
PARAM_NAMES = WEIGHT_NAMES + BIAS_NAMES
EXAMPLE_NAMES = ("x_t", "h_prev", "c_prev")
SCHEMES = ("notebook", "pytorch", "keras")

# The notebook's cell: F = 10 input features, H = 4 hidden units, legacy NumPy seed 42.
NOTEBOOK_SEED = 42
NOTEBOOK_N_FEATURES = 10
NOTEBOOK_N_HIDDEN = 4


@dataclass(frozen=True)
class LSTMParams:
    """The eight arrays of a cell in the native layout (see module docstring)."""

    Wf: Array
    Wi: Array
    Wo: Array
    Wc: Array
    bf: Array
    bi: Array
    bo: Array
    bc: Array

    @property
    def n_hidden(self) -> int:
        """H, the number of hidden units."""
        return int(self.bf.shape[0])

    @property
    def n_features(self) -> int:
        """F, the number of input features."""
        return int(self.Wf.shape[1]) - self.n_hidden

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.Wf.dtype

    def arrays(self) -> dict[str, Array]:
        """The arrays by name, weights first: ``Wf, Wi, Wo, Wc, bf, bi, bo, bc``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def astype(self, dtype: str | np.dtype[Any]) -> LSTMParams:
        """A copy with every array in ``dtype`` (no copy when already in it)."""
        return LSTMParams(**{k: v.astype(dtype, copy=False) for k, v in self.arrays().items()})

    def step(self, x_t: Array, h_prev: Array, c_prev: Array) -> StepResult:
        """One step of this cell with every intermediate (see :func:`lstm_step_detailed`)."""
        return lstm_step_detailed(x_t, h_prev, c_prev, **self.arrays())

    @classmethod
    def from_mapping(cls, arrays: Mapping[str, Array], source: str = "params") -> LSTMParams:
        """Build and validate from a mapping holding (at least) the eight native names.

        Raises InputError naming ``source``, the array and the expected vs. actual shape.
        """
        missing = [k for k in PARAM_NAMES if k not in arrays]
        if missing:
            raise InputError(
                f"{source}: missing array(s) {', '.join(missing)}; "
                f"a native params file holds {', '.join(PARAM_NAMES)}"
            )
        Wf = arrays["Wf"]
        if Wf.ndim != 2 or Wf.shape[1] <= Wf.shape[0] or Wf.shape[0] == 0:
            raise InputError(
                f"{source}: Wf has shape {Wf.shape}, expected a 2-D (H, H + F) matrix with F >= 1"
            )
        n_hidden = Wf.shape[0]
        for name in WEIGHT_NAMES:
            if arrays[name].shape != Wf.shape:
                raise InputError(
                    f"{source}: {name} has shape {arrays[name].shape}, expected {Wf.shape} "
                    "(H, H + F), the shape of Wf"
                )
        for name in BIAS_NAMES:
            if arrays[name].shape != (n_hidden,):
                raise InputError(
                    f"{source}: {name} has shape {arrays[name].shape}, expected ({n_hidden},) "
                    "(H,), with H from Wf"
                )
        dtype = np.result_type(*(arrays[k] for k in PARAM_NAMES))
        return cls(**{k: np.asarray(arrays[k], dtype=dtype) for k in PARAM_NAMES})


@dataclass(frozen=True)
class ExampleInputs:
    """Inputs stored beside the weights: ``x_t`` (F,), ``h_prev`` (H,), ``c_prev`` (H,)."""

    x_t: Array
    h_prev: Array
    c_prev: Array

    def arrays(self) -> dict[str, Array]:
        return {"x_t": self.x_t, "h_prev": self.h_prev, "c_prev": self.c_prev}


@dataclass(frozen=True)
class ParamSet:
    """What a params file holds: the cell, optional example inputs and metadata."""

    params: LSTMParams
    example: ExampleInputs | None = None
    meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- schemes


def init_params(
    n_features: int = NOTEBOOK_N_FEATURES,
    n_hidden: int = NOTEBOOK_N_HIDDEN,
    seed: int = NOTEBOOK_SEED,
    scheme: str = "notebook",
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
    if scheme == "notebook":
        weights = {name: rng.randn(H, H + F) for name in WEIGHT_NAMES}
        biases = {name: rng.randn(H) for name in BIAS_NAMES}
        params = LSTMParams.from_mapping({**weights, **biases}, source="notebook scheme")
    elif scheme == "pytorch":
        k = 1.0 / np.sqrt(H)
        params = from_pytorch(
            weight_ih=rng.uniform(-k, k, (4 * H, F)),
            weight_hh=rng.uniform(-k, k, (4 * H, H)),
            bias_ih=rng.uniform(-k, k, 4 * H),
            bias_hh=rng.uniform(-k, k, 4 * H),
        )
    else:  # keras
        limit = np.sqrt(6.0 / (F + 4 * H))
        kernel = rng.uniform(-limit, limit, (F, 4 * H))
        recurrent_kernel = _orthogonal(rng, H, 4 * H)
        bias = np.zeros(4 * H)
        bias[H : 2 * H] = 1.0  # unit_forget_bias; Keras's blocks are i, f, c, o
        params = from_keras(kernel, recurrent_kernel, bias)
    meta = {
        "format_version": FORMAT_VERSION,
        "scheme": scheme,
        "seed": int(seed),
        "n_features": F,
        "n_hidden": H,
    }
    return ParamSet(params=params, example=example, meta=meta)


def notebook_default() -> ParamSet:
    """The seed notebook's cell and inputs (seed 42, F = 10, H = 4), built in memory."""
    return init_params(NOTEBOOK_N_FEATURES, NOTEBOOK_N_HIDDEN, NOTEBOOK_SEED, "notebook")


def _orthogonal(rng: np.random.RandomState, rows: int, cols: int) -> Array:
    """Keras's Orthogonal initializer for a (rows, cols) matrix (gain 1)."""
    a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return q.T if rows < cols else q


# --------------------------------------------------------------------------- layouts
#
# Native gate g has W_g (H, H + F) = [W_g_h (H, H) | W_g_x (H, F)]; the frameworks stack the
# gates' blocks along one axis of size 4H, each in its own order.

PYTORCH_ORDER = ("i", "f", "c", "o")  # PyTorch calls the candidate "g"
KERAS_ORDER = ("i", "f", "c", "o")


def _gate_blocks(params: LSTMParams) -> dict[str, tuple[Array, Array, Array]]:
    """Per gate letter: (W_x (H, F), W_h (H, H), b (H,))."""
    H = params.n_hidden
    out = {}
    for gate in ("i", "f", "o", "c"):
        W = getattr(params, f"W{gate}")
        out[gate] = (W[:, H:], W[:, :H], getattr(params, f"b{gate}"))
    return out


def _from_blocks(
    W_x: Array, W_h: Array, b: Array, order: tuple[str, ...], source: str
) -> LSTMParams:
    """Native params from stacked (4H, F) input weights, (4H, H) recurrent weights, (4H,) bias."""
    H = W_h.shape[1]
    if W_h.shape != (4 * H, H) or W_x.ndim != 2 or W_x.shape[0] != 4 * H or b.shape != (4 * H,):
        raise InputError(
            f"{source}: inconsistent shapes: input weights {W_x.shape} (4H, F), "
            f"recurrent weights {W_h.shape} (4H, H), bias {b.shape} (4H,)"
        )
    arrays: dict[str, Array] = {}
    for k, gate in enumerate(order):
        rows = slice(k * H, (k + 1) * H)
        arrays[f"W{gate}"] = np.concatenate((W_h[rows], W_x[rows]), axis=1)
        arrays[f"b{gate}"] = b[rows]
    return LSTMParams.from_mapping(arrays, source=source)


def to_pytorch(params: LSTMParams) -> dict[str, Array]:
    """``nn.LSTMCell`` state dict arrays: weight_ih (4H, F), weight_hh (4H, H), bias_ih (4H,),
    bias_hh (4H,), gates i, f, g, o. The whole bias goes to bias_ih; bias_hh is zeros."""
    blocks = _gate_blocks(params)
    return {
        "weight_ih": np.concatenate([blocks[g][0] for g in PYTORCH_ORDER]),
        "weight_hh": np.concatenate([blocks[g][1] for g in PYTORCH_ORDER]),
        "bias_ih": np.concatenate([blocks[g][2] for g in PYTORCH_ORDER]),
        "bias_hh": np.zeros(4 * params.n_hidden, dtype=params.dtype),
    }


def from_pytorch(
    weight_ih: Array, weight_hh: Array, bias_ih: Array, bias_hh: Array, source: str = "pytorch"
) -> LSTMParams:
    """Native params from ``nn.LSTMCell`` arrays (gates i, f, g, o; bias = bias_ih + bias_hh)."""
    return _from_blocks(weight_ih, weight_hh, bias_ih + bias_hh, PYTORCH_ORDER, source)


def to_keras(params: LSTMParams) -> dict[str, Array]:
    """Keras 3 ``LSTM`` arrays: kernel (F, 4H), recurrent_kernel (H, 4H), bias (4H,);
    gates i, f, c, o."""
    blocks = _gate_blocks(params)
    return {
        "kernel": np.concatenate([blocks[g][0] for g in KERAS_ORDER]).T,
        "recurrent_kernel": np.concatenate([blocks[g][1] for g in KERAS_ORDER]).T,
        "bias": np.concatenate([blocks[g][2] for g in KERAS_ORDER]),
    }


def from_keras(
    kernel: Array, recurrent_kernel: Array, bias: Array, source: str = "keras"
) -> LSTMParams:
    """Native params from Keras 3 ``LSTM`` arrays (gates i, f, c, o)."""
    return _from_blocks(kernel.T, recurrent_kernel.T, bias, KERAS_ORDER, source)
