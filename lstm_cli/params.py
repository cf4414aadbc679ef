"""The parameter set of one LSTM cell: its arrays, validation, initialisation schemes and the
layouts of the frameworks.

Native layout (the seed notebook's): ``Wf, Wi, Wo, Wc`` each (H, H + F) acting on
``concat(h_prev, x_t)``, and ``bf, bi, bo, bc`` each (H,). Optionally (ONNX's variants, see
:mod:`lstm_cli.core`): peephole weights ``Pi, Pf, Po`` each (H,), a ``clip`` and
``input_forget``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .core import Array, StepResult, check_variant, lstm_step_detailed, lstm_step_variant
from .errors import InputError

FORMAT_VERSION = 1
WEIGHT_NAMES = ("Wf", "Wi", "Wo", "Wc")
BIAS_NAMES = ("bf", "bi", "bo", "bc")
PARAM_NAMES = WEIGHT_NAMES + BIAS_NAMES
PEEPHOLE_NAMES = ("Pi", "Pf", "Po")  # optional, all three or none
EXAMPLE_NAMES = ("x_t", "h_prev", "c_prev")
LAYOUTS = ("native", "pytorch", "keras", "onnx")  # the layouts of lstm_cli.layouts
SCHEMES = ("notebook", "pytorch", "keras")

# The notebook's cell: F = 10 input features, H = 4 hidden units, legacy NumPy seed 42.
NOTEBOOK_SEED = 42
NOTEBOOK_N_FEATURES = 10
NOTEBOOK_N_HIDDEN = 4


@dataclass(frozen=True)
class LSTMParams:
    """The eight arrays of a cell in the native layout (see module docstring).

    A cell using ONNX's variants (peepholes, clip, coupled input-forget) is a
    :class:`VariantParams`, this class with those fields added, so that code written for the
    eight arrays (``LSTMParams(**arrays)``, its dataclass fields) keeps working unchanged.
    """

    Wf: Array
    Wi: Array
    Wo: Array
    Wc: Array
    bf: Array
    bi: Array
    bo: Array
    bc: Array

    # The variant, read with defaults here so that plain cells and VariantParams answer alike.
    @property
    def peepholes(self) -> dict[str, Array] | None:
        """``{"Pi", "Pf", "Po"}`` (H,) each, or None."""
        Pi = getattr(self, "Pi", None)
        return None if Pi is None else {k: getattr(self, k) for k in PEEPHOLE_NAMES}

    @property
    def has_peepholes(self) -> bool:
        return self.peepholes is not None

    @property
    def clip_value(self) -> float | None:
        """ONNX's cell clip, or None."""
        return getattr(self, "clip", None)

    @property
    def coupled(self) -> bool:
        """ONNX's input_forget: f_t = 1 - i_t."""
        return bool(getattr(self, "input_forget", False))

    @property
    def is_plain(self) -> bool:
        """True for the seed's equations: no peepholes, no clip, no coupled input-forget."""
        return not self.has_peepholes and self.clip_value is None and not self.coupled

    def variant(self) -> dict[str, Any]:
        """The variant switches as plain values: ``peepholes``, ``clip``, ``input_forget``."""
        return {
            "peepholes": self.has_peepholes,
            "clip": self.clip_value,
            "input_forget": self.coupled,
        }

    def with_variant(
        self,
        clip: float | None = None,
        input_forget: bool | None = None,
        drop_clip: bool = False,
        drop_peepholes: bool = False,
    ) -> LSTMParams:
        """A copy with the clip set (or dropped), input_forget set, or peepholes dropped."""
        new_clip = None if drop_clip else (self.clip_value if clip is None else float(clip))
        new_if = self.coupled if input_forget is None else bool(input_forget)
        try:
            check_variant(self.n_hidden, {}, new_clip, new_if)
        except ValueError as e:
            raise InputError(str(e)) from None
        peep = None if drop_peepholes else self.peepholes
        return _make(self.arrays(), peep, new_clip, new_if)

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
        """The eight arrays by name, weights first: ``Wf, Wi, Wo, Wc, bf, bi, bo, bc``."""
        return {k: getattr(self, k) for k in PARAM_NAMES}

    def all_arrays(self) -> dict[str, Array]:
        """:meth:`arrays`, then ``Pi, Pf, Po`` when the cell has peepholes (what a file holds)."""
        return {**self.arrays(), **(self.peepholes or {})}

    def with_arrays(self, arrays: Mapping[str, Array]) -> LSTMParams:
        """A copy with some arrays replaced (same names), the variant switches kept."""
        changes: dict[str, Any] = dict(arrays)
        return replace(self, **changes)

    def astype(self, dtype: str | np.dtype[Any]) -> LSTMParams:
        """A copy with every array in ``dtype`` (no copy when already in it)."""
        return self.with_arrays(
            {k: v.astype(dtype, copy=False) for k, v in self.all_arrays().items()}
        )

    def step(self, x_t: Array, h_prev: Array, c_prev: Array) -> StepResult:
        """One step of this cell with every intermediate (see :func:`lstm_step_detailed`, and
        :func:`lstm_step_variant` for a cell with a variant)."""
        if self.is_plain:
            return lstm_step_detailed(x_t, h_prev, c_prev, **self.arrays())
        return lstm_step_variant(
            x_t,
            h_prev,
            c_prev,
            **self.arrays(),
            **(self.peepholes or {}),
            clip=self.clip_value,
            input_forget=self.coupled,
        )

    @classmethod
    def from_mapping(
        cls,
        arrays: Mapping[str, Array],
        source: str = "params",
        clip: float | None = None,
        input_forget: bool = False,
    ) -> LSTMParams:
        """Build and validate from a mapping holding (at least) the eight native names, and
        optionally the peepholes ``Pi, Pf, Po`` (all three or none).

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
        names: tuple[str, ...] = PARAM_NAMES
        peep = [k for k in PEEPHOLE_NAMES if k in arrays]
        if peep:
            if len(peep) != len(PEEPHOLE_NAMES):
                missing = [k for k in PEEPHOLE_NAMES if k not in arrays]
                raise InputError(
                    f"{source}: has peephole(s) {', '.join(peep)} but not {', '.join(missing)}; "
                    "peepholes need all of Pi, Pf, Po"
                )
            for name in PEEPHOLE_NAMES:
                if arrays[name].shape != (n_hidden,):
                    raise InputError(
                        f"{source}: {name} has shape {arrays[name].shape}, expected "
                        f"({n_hidden},) (H,), with H from Wf"
                    )
            names = PARAM_NAMES + PEEPHOLE_NAMES
        try:
            check_variant(n_hidden, {}, clip, input_forget)
        except ValueError as e:
            raise InputError(f"{source}: {e}") from None
        dtype = np.result_type(*(arrays[k] for k in names))
        cast = {k: np.asarray(arrays[k], dtype=dtype) for k in names}
        given = {k: cast.pop(k) for k in PEEPHOLE_NAMES if k in cast} or None
        return _make(cast, given, None if clip is None else float(clip), bool(input_forget))


@dataclass(frozen=True)
class VariantParams(LSTMParams):
    """A cell with ONNX's variants: peepholes ``Pi, Pf, Po`` (H,) (all or none), ``clip``,
    ``input_forget`` (see :mod:`lstm_cli.core`). Build it with :meth:`LSTMParams.from_mapping`
    or :meth:`LSTMParams.with_variant`."""

    Pi: Array | None = None
    Pf: Array | None = None
    Po: Array | None = None
    clip: float | None = None
    input_forget: bool = False


def _make(
    arrays: Mapping[str, Array],
    peepholes: Mapping[str, Array] | None,
    clip: float | None,
    input_forget: bool,
) -> LSTMParams:
    """A plain :class:`LSTMParams` when there is no variant, else a :class:`VariantParams`."""
    eight: dict[str, Any] = {k: arrays[k] for k in PARAM_NAMES}
    if peepholes is None and clip is None and not input_forget:
        return LSTMParams(**eight)
    return VariantParams(**eight, **(peepholes or {}), clip=clip, input_forget=input_forget)


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
    if peepholes:
        k = 1.0 / np.sqrt(H)
        draw = (lambda: rng.randn(H)) if scheme == "notebook" else (lambda: rng.uniform(-k, k, H))
        arrays = {**params.all_arrays(), **{name: draw() for name in PEEPHOLE_NAMES}}
        params = LSTMParams.from_mapping(arrays, source=f"{scheme} scheme")
    params = params.with_variant(clip=clip, input_forget=input_forget)
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "scheme": scheme,
        "seed": int(seed),
        "n_features": F,
        "n_hidden": H,
    }
    meta.update(variant_meta(params))
    return ParamSet(params=params, example=example, meta=meta)


def variant_meta(params: LSTMParams) -> dict[str, Any]:
    """The variant switches to store in a file's ``meta``; empty for the seed's equations
    (a file without them means: no clip, no coupled input-forget)."""
    out: dict[str, Any] = {}
    if params.clip_value is not None:
        out["clip"] = params.clip_value
    if params.coupled:
        out["input_forget"] = True
    return out


def variant_from_meta(meta: Mapping[str, Any], source: str) -> tuple[float | None, bool]:
    """``(clip, input_forget)`` from a file's ``meta``, validated (absent: ``(None, False)``)."""
    clip = meta.get("clip")
    input_forget = meta.get("input_forget", False)
    if clip is not None and (
        isinstance(clip, bool)
        or not isinstance(clip, (int, float))
        or not (np.isfinite(clip) and clip > 0)
    ):
        raise InputError(f"{source}: meta clip is {clip!r}, expected a number > 0 or null")
    if not isinstance(input_forget, bool):
        raise InputError(f"{source}: meta input_forget is {input_forget!r}, expected true/false")
    return (None if clip is None else float(clip)), input_forget


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
    """Native params from ``nn.LSTMCell`` arrays (gates i, f, g, o; bias = bias_ih + bias_hh).

    An all-zero ``bias_hh`` (as this tool exports) is not added, so that a bias of -0.0
    survives the round trip bit for bit (-0.0 + 0.0 is +0.0).
    """
    bias = bias_ih + bias_hh if np.any(bias_hh) else np.asarray(bias_ih)
    return _from_blocks(weight_ih, weight_hh, bias, PYTORCH_ORDER, source)


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
