"""The one representation of an LSTM cell: :class:`LSTMParams`, its arrays in the native
layout and its :class:`Variant`; plus what a params file holds beside it.

Native layout (the seed notebook's): ``Wf, Wi, Wo, Wc`` each (H, H + F) acting on
``concat(h_prev, x_t)``, and ``bf, bi, bo, bc`` each (H,). ONNX's variants (see
:mod:`lstm_cli.core`) live in the cell's ``variant``: peephole weights ``Pi, Pf, Po`` each
(H,), a ``clip`` and ``input_forget``. Every module that computes, converts, saves or shows a
cell takes this one type.

The types here are :class:`typing.NamedTuple` records with methods (as NumPy's result types
and PyTorch's ``PackedSequence`` are): immutable, declared like dataclasses, but created
without compiling generated methods at import, which every ``lstm-cell`` command would pay
(a frozen dataclass costs about 1 ms to define on Python 3.11). Equality compares the arrays
(and fails on arrays of several elements), as it would for a dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from .core import Array, StepResult, check_variant, lstm_step_variant
from .errors import InputError

FORMAT_VERSION = 1  # of the params files written by ``init`` and ``convert --to native``
WEIGHT_NAMES = ("Wf", "Wi", "Wo", "Wc")
BIAS_NAMES = ("bf", "bi", "bo", "bc")
PARAM_NAMES = WEIGHT_NAMES + BIAS_NAMES
PEEPHOLE_NAMES = ("Pi", "Pf", "Po")  # optional, all three or none
EXAMPLE_NAMES = ("x_t", "h_prev", "c_prev")
LAYOUTS = ("native", "pytorch", "keras", "onnx")  # the layouts of lstm_cli.layouts


class Variant(NamedTuple):
    """ONNX's variants of the cell; all off (``PLAIN``) is the seed's equations.

    ``Pi, Pf, Po`` (H,) peephole weights (all three or none), ``clip`` (> 0) bounding every
    pre-activation, ``input_forget`` coupling the forget gate to the input gate.
    """

    Pi: Array | None = None
    Pf: Array | None = None
    Po: Array | None = None
    clip: float | None = None
    input_forget: bool = False

    @property
    def peepholes(self) -> dict[str, Array] | None:
        """``{"Pi", "Pf", "Po"}`` (H,) each, or None."""
        if self.Pi is None or self.Pf is None or self.Po is None:
            return None
        return {"Pi": self.Pi, "Pf": self.Pf, "Po": self.Po}

    @property
    def is_plain(self) -> bool:
        """True for the seed's equations: no peepholes, no clip, no coupled input-forget."""
        return self.peepholes is None and self.clip is None and not self.input_forget

    def switches(self) -> dict[str, Any]:
        """The variant as plain values: ``peepholes`` (bool), ``clip``, ``input_forget``."""
        return {
            "peepholes": self.peepholes is not None,
            "clip": self.clip,
            "input_forget": self.input_forget,
        }

    def describe(self) -> str:
        """One line naming the variants in use (empty for the seed's equations)."""
        parts = []
        if self.peepholes is not None:
            parts.append("peepholes (z_i, z_f += P * c_prev; z_o += Po * c_next)")
        if self.clip is not None:
            parts.append(f"clip {self.clip:g} (every pre-activation bounded)")
        if self.input_forget:
            parts.append("input_forget (f_t = 1 - i_t)")
        return ", ".join(parts)

    def to_meta(self) -> dict[str, Any]:
        """The switches to store in a file's ``meta``; empty for the seed's equations (a file
        without them means: no clip, no coupled input-forget). Peepholes are arrays, stored
        as such."""
        out: dict[str, Any] = {}
        if self.clip is not None:
            out["clip"] = self.clip
        if self.input_forget:
            out["input_forget"] = True
        return out

    @staticmethod
    def switches_from_meta(meta: Mapping[str, Any], source: str) -> tuple[float | None, bool]:
        """``(clip, input_forget)`` from a file's ``meta``, validated (absent: no variant)."""
        clip = meta.get("clip")
        input_forget = meta.get("input_forget", False)
        if clip is not None and (
            isinstance(clip, bool)
            or not isinstance(clip, (int, float))
            or not (np.isfinite(clip) and clip > 0)
        ):
            raise InputError(f"{source}: meta clip is {clip!r}, expected a number > 0 or null")
        if not isinstance(input_forget, bool):
            raise InputError(
                f"{source}: meta input_forget is {input_forget!r}, expected true/false"
            )
        return (None if clip is None else float(clip)), input_forget


PLAIN = Variant()


class LSTMParams(NamedTuple):
    """One LSTM cell: the eight native arrays (see module docstring) and its ``variant``.

    ``LSTMParams(**eight_arrays)`` is the seed's cell; :meth:`from_mapping` validates and
    :meth:`with_variant` switches ONNX's variants on or off.
    """

    Wf: Array
    Wi: Array
    Wo: Array
    Wc: Array
    bf: Array
    bi: Array
    bo: Array
    bc: Array
    variant: Variant = PLAIN

    @property
    def peepholes(self) -> dict[str, Array] | None:
        """``{"Pi", "Pf", "Po"}`` (H,) each, or None."""
        return self.variant.peepholes

    @property
    def has_peepholes(self) -> bool:
        return self.variant.peepholes is not None

    @property
    def clip_value(self) -> float | None:
        """ONNX's cell clip, or None."""
        return self.variant.clip

    @property
    def coupled(self) -> bool:
        """ONNX's input_forget: f_t = 1 - i_t."""
        return self.variant.input_forget

    @property
    def is_plain(self) -> bool:
        """True for the seed's equations: no peepholes, no clip, no coupled input-forget."""
        return self.variant.is_plain

    def __repr__(self) -> str:
        from .reprs import short_repr

        fields: dict[str, Any] = {"F": self.n_features, "H": self.n_hidden, "dtype": self.dtype}
        fields["variant"] = repr(self.variant.describe() or "none")
        return short_repr("LSTMParams", fields)

    def _repr_html_(self) -> str:
        """The cell's arrays with their shapes, and its variant, for notebooks."""
        from .reprs import arrays_table_html, shape

        rows = [(k, shape(v), str(v.dtype)) for k, v in self.all_arrays().items()]
        title = f"LSTM cell: F = {self.n_features} inputs, H = {self.n_hidden} units"
        if not self.is_plain:
            title += f"; ONNX variant: {self.variant.describe()}"
        return arrays_table_html(rows, title)

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
        return self._replace(variant=Variant(**(peep or {}), clip=new_clip, input_forget=new_if))

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
        """A copy with some arrays replaced (same names, peepholes included), the switches
        kept."""
        own = {k: v for k, v in arrays.items() if k in PARAM_NAMES}
        peep = {k: v for k, v in arrays.items() if k in PEEPHOLE_NAMES}
        variant = self.variant._replace(**peep) if peep else self.variant  # type: ignore[arg-type]
        return self._replace(**own, variant=variant)

    def astype(self, dtype: str | np.dtype[Any]) -> LSTMParams:
        """A copy with every array in ``dtype`` (no copy when already in it)."""
        return self.with_arrays(
            {k: v.astype(dtype, copy=False) for k, v in self.all_arrays().items()}
        )

    def step(self, x_t: Array, h_prev: Array, c_prev: Array) -> StepResult:
        """One step of this cell with every intermediate (see
        :func:`~lstm_cli.core.lstm_step_variant`): ``x_t`` (F,) or (B, F), ``h_prev`` and
        ``c_prev`` (H,) or (B, H)."""
        v = self.variant
        return lstm_step_variant(
            x_t, h_prev, c_prev, **self.arrays(), **(v.peepholes or {}),
            clip=v.clip, input_forget=v.input_forget,
        )  # fmt: skip

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
        n_hidden = _check_native(arrays, source)
        names = PARAM_NAMES + _check_peepholes(arrays, n_hidden, source)
        try:
            check_variant(n_hidden, {}, clip, input_forget)
        except ValueError as e:
            raise InputError(f"{source}: {e}") from None
        dtype = np.result_type(*(arrays[k] for k in names))
        cast = {k: np.asarray(arrays[k], dtype=dtype) for k in names}
        peep = {k: cast.pop(k) for k in PEEPHOLE_NAMES if k in cast}
        switches = Variant(clip=None if clip is None else float(clip), input_forget=input_forget)
        return cls(**cast, variant=switches._replace(**peep))  # type: ignore[arg-type]


def _check_native(arrays: Mapping[str, Array], source: str) -> int:
    """H, after checking the eight native arrays' presence and shapes."""
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
    _check_vectors(arrays, BIAS_NAMES, n_hidden, source)
    return int(n_hidden)


def _check_vectors(
    arrays: Mapping[str, Array], names: tuple[str, ...], n_hidden: int, source: str
) -> None:
    for name in names:
        if arrays[name].shape != (n_hidden,):
            raise InputError(
                f"{source}: {name} has shape {arrays[name].shape}, expected ({n_hidden},) "
                "(H,), with H from Wf"
            )


def _check_peepholes(arrays: Mapping[str, Array], n_hidden: int, source: str) -> tuple[str, ...]:
    """The peephole names present (all three or none), their shapes checked."""
    peep = [k for k in PEEPHOLE_NAMES if k in arrays]
    if not peep:
        return ()
    if len(peep) != len(PEEPHOLE_NAMES):
        missing = [k for k in PEEPHOLE_NAMES if k not in arrays]
        raise InputError(
            f"{source}: has peephole(s) {', '.join(peep)} but not {', '.join(missing)}; "
            "peepholes need all of Pi, Pf, Po"
        )
    _check_vectors(arrays, PEEPHOLE_NAMES, n_hidden, source)
    return PEEPHOLE_NAMES


def __getattr__(name: str) -> Any:
    """``VariantParams``: the former name of a cell with variants, now :class:`LSTMParams`."""
    if name == "VariantParams":
        import warnings

        warnings.warn(
            "VariantParams is deprecated: every cell is an LSTMParams (see its .variant)",
            DeprecationWarning,
            stacklevel=2,
        )
        return LSTMParams
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ExampleInputs(NamedTuple):
    """Inputs stored beside the weights: ``x_t`` (F,), ``h_prev`` (H,), ``c_prev`` (H,)."""

    x_t: Array
    h_prev: Array
    c_prev: Array

    def arrays(self) -> dict[str, Array]:
        return {"x_t": self.x_t, "h_prev": self.h_prev, "c_prev": self.c_prev}


class BiasHalves(NamedTuple):
    """A framework's two biases, kept as the file stores them: PyTorch's ``bias_ih`` and
    ``bias_hh``, ONNX's ``Wb`` and ``Rb``; each by native name (``bf, bi, bo, bc``, (H,)).

    The cell's own bias is their sum; :meth:`summed` computes it in the compute dtype, so that
    a float32 file stepped in float64 adds the halves in float64, as the framework does on
    upcast weights.
    """

    first: dict[str, Array]
    second: dict[str, Array]

    def summed(self, dtype: str | np.dtype[Any]) -> dict[str, Array]:
        """``first + second`` per bias name, added in float64 (exact for float32 halves) and
        returned in ``dtype``. Values beyond float64 become inf (the caller checks)."""
        with np.errstate(over="ignore"):
            return {
                k: (self.first[k].astype(np.float64) + self.second[k].astype(np.float64)).astype(
                    dtype
                )
                for k in BIAS_NAMES
            }

    def inexact_in(self, dtype: np.dtype[Any]) -> int:
        """How many entries of the sum are not exactly representable in ``dtype``."""
        exact = self.summed("float64")
        with np.errstate(over="ignore"):
            return sum(int(np.sum(v.astype(dtype).astype(np.float64) != v)) for v in exact.values())


class ParamSet(NamedTuple):
    """What a params file holds: the cell, optional example inputs and metadata; and, for a
    framework with two biases, both halves (``bias_halves``), so that their sum is computed in
    the compute dtype and a conversion to the same kind of framework keeps both exactly."""

    params: LSTMParams
    example: ExampleInputs | None = None
    meta: Mapping[str, Any] = MappingProxyType({})
    bias_halves: BiasHalves | None = None

    def file_meta(self) -> dict[str, Any]:
        """``meta`` as a file stores it: the cell's variant switches replace stale ones."""
        meta = {k: v for k, v in self.meta.items() if k not in ("clip", "input_forget")}
        return {**meta, **self.params.variant.to_meta()}
