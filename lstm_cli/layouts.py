"""The frameworks' layouts of an LSTM's weights: detection from the keys of a file, import into
the native :class:`~lstm_cli.params.LSTMParams` and export from it, exactly (bit for bit).

| layout  | arrays (any key prefix such as ``lstm.`` or ``model/lstm/``)      | gate order |
| ------- | ----------------------------------------------------------------- | ---------- |
| native  | Wf, Wi, Wo, Wc (H, H + F); bf, bi, bo, bc (H,); opt. Pi, Pf, Po   | separate   |
| pytorch | weight_ih (4H, F), weight_hh (4H, H), bias_ih, bias_hh (4H,)      | i, f, g, o |
|         | or ``nn.LSTM``'s ``_l0`` names (one cell: see ``io/cells.py``)   |            |
| keras   | kernel (F, 4H), recurrent_kernel (H, 4H), bias (4H,)              | i, f, c, o |
| onnx    | W (1, 4H, F), R (1, 4H, H), B (1, 8H) = [Wb, Rb], opt. P (1, 3H)   | i, o, f, c |

Biases are optional in the framework layouts (``bias=False`` models): absent means zeros.
PyTorch's two biases and ONNX's two halves of B are summed on import into the cell's one bias;
when the second half is not all zeros, both are also kept (:func:`import_bias_halves`), so the
sum can be made in the compute dtype, and exported to pytorch / onnx as they were. Without kept
halves, the whole bias goes to ``bias_ih`` / ``Wb`` on export and the other is zeros. PyTorch
and Keras have no peepholes, clip or coupled input-forget gate, so a cell using them is refused
for those layouts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np

from .core import Array
from .errors import Hint, InputError
from .params import LAYOUTS, PARAM_NAMES, PEEPHOLE_NAMES, BiasHalves, LSTMParams

PYTORCH_NAMES = ("cell", "lstm")  # nn.LSTMCell names, or nn.LSTM's _l0 names
ONNX_ORDER = ("i", "o", "f", "c")
ONNX_PEEPHOLE_ORDER = ("i", "o", "f")
PREFIX_SEPARATORS = "./:"  # a key prefix is empty or ends with one of these


# --------------------------------------------------------------------------- framework blocks
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


def _stack_halves(halves: BiasHalves | None, params: LSTMParams, order: tuple[str, ...]) -> Array:
    """(8H,): the first halves then the second halves in ``order``; without kept halves, the
    cell's bias then zeros."""
    if halves is None:
        first = [getattr(params, f"b{g}") for g in order]
        return np.concatenate(first + [np.zeros(4 * params.n_hidden, params.dtype)])
    return np.concatenate([h[f"b{g}"] for h in (halves.first, halves.second) for g in order])


def to_pytorch(params: LSTMParams, halves: BiasHalves | None = None) -> dict[str, Array]:
    """``nn.LSTMCell`` state dict arrays: weight_ih (4H, F), weight_hh (4H, H), bias_ih (4H,),
    bias_hh (4H,), gates i, f, g, o. With ``halves`` (kept from a two-bias file) the two biases
    are those halves, exactly; else the whole bias goes to bias_ih and bias_hh is zeros."""
    blocks = _gate_blocks(params)
    bias = _stack_halves(halves, params, PYTORCH_ORDER)
    H4 = 4 * params.n_hidden
    return {
        "weight_ih": np.concatenate([blocks[g][0] for g in PYTORCH_ORDER]),
        "weight_hh": np.concatenate([blocks[g][1] for g in PYTORCH_ORDER]),
        "bias_ih": bias[:H4],
        "bias_hh": bias[H4:],
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


@dataclass(frozen=True)
class Spec:
    """The keys of one layout: required ones, and optional ones (biases, peepholes)."""

    layout: str
    flavour: str  # "" or, for pytorch, "cell" / "lstm"
    required: tuple[str, ...]
    optional: tuple[str, ...]
    label: str


SPECS = (
    Spec("native", "", PARAM_NAMES, PEEPHOLE_NAMES, "native"),
    Spec("pytorch", "cell", ("weight_ih", "weight_hh"), ("bias_ih", "bias_hh"), "nn.LSTMCell"),
    Spec(
        "pytorch",
        "lstm",
        ("weight_ih_l0", "weight_hh_l0"),
        ("bias_ih_l0", "bias_hh_l0"),
        "nn.LSTM",
    ),
    Spec("keras", "", ("kernel", "recurrent_kernel"), ("bias",), "Keras LSTM"),
    Spec("onnx", "", ("W", "R"), ("B", "P"), "ONNX LSTM"),
)


@dataclass(frozen=True)
class Candidate:
    """One LSTM found in a file: its layout spec and the prefix of its keys."""

    spec: Spec
    prefix: str

    @property
    def layout(self) -> str:
        return self.spec.layout

    def key(self, name: str) -> str:
        return self.prefix + name

    def describe(self) -> str:
        where = f"prefix {self.prefix!r}" if self.prefix else "no prefix"
        return f"{self.spec.label} ({where}: {self.key(self.spec.required[0])}, ...)"


def _valid_prefix(prefix: str) -> bool:
    return prefix == "" or prefix[-1] in PREFIX_SEPARATORS


def find_candidates(keys: Collection[str]) -> list[Candidate]:
    """Every complete LSTM among ``keys`` (all required keys present under one prefix)."""
    out: list[Candidate] = []
    for spec in SPECS:
        first = spec.required[0]
        stems = {k[: -len(first)] for k in keys if k.endswith(first)}
        prefixes = sorted(p for p in stems if _valid_prefix(p))
        for prefix in prefixes:
            if all(prefix + name in keys for name in spec.required):
                out.append(Candidate(spec, prefix))
    return out


def _closest_partial(keys: Collection[str]) -> tuple[str, list[str]] | None:
    """For an error: the layout most nearly present, and which of its keys are missing."""
    best: tuple[int, str, list[str]] | None = None
    for spec in SPECS:
        for key in keys:
            for name in spec.required:
                if key.endswith(name) and _valid_prefix(key[: -len(name)]):
                    prefix = key[: -len(name)]
                    found = [n for n in spec.required if prefix + n in keys]
                    missing = [prefix + n for n in spec.required if prefix + n not in keys]
                    if missing and (best is None or len(found) > best[0]):
                        best = (len(found), spec.label, missing)
    return None if best is None else (best[1], best[2])


def _matches_prefix(candidate: Candidate, key_prefix: str) -> bool:
    p = candidate.prefix
    return p == key_prefix or (p[:-1] == key_prefix and p != "")


def choose_candidate(
    keys: Collection[str],
    source: str,
    layout: str | None = None,
    key_prefix: str | None = None,
) -> Candidate:
    """The one LSTM of a file, narrowed by ``layout`` and ``key_prefix``; InputError when
    there is none (saying what is missing) or several (listing them)."""
    if layout is not None and layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    found = find_candidates(keys)
    chosen = [c for c in found if layout is None or c.layout == layout]
    if key_prefix is not None:
        chosen = [c for c in chosen if _matches_prefix(c, key_prefix)]
    if len(chosen) == 1:
        return chosen[0]
    if len(chosen) > 1:
        listed = "; ".join(c.describe() for c in chosen)
        hint = Hint.PICK_PREFIX if len({c.prefix for c in chosen}) > 1 else Hint.PICK_LAYOUT
        raise InputError(f"{source}: holds {len(chosen)} LSTMs: {listed}", hint)
    what = "LSTM" if layout is None else f"{layout} LSTM"
    if key_prefix is not None:
        what += f" with key prefix {key_prefix!r}"
    if found:
        listed = "; ".join(c.describe() for c in found)
        raise InputError(f"{source}: no {what} found; it holds: {listed}")
    shown = ", ".join(sorted(keys)[:12]) + (", ..." if len(keys) > 12 else "") or "nothing"
    expected = (
        f"Expected native ({', '.join(PARAM_NAMES)}), pytorch (weight_ih, weight_hh, bias_ih, "
        "bias_hh, or their _l0 names), keras (kernel, recurrent_kernel, bias) or onnx (W, R, B)."
    )
    partial = _closest_partial(keys)
    if partial is not None:
        label, missing = partial
        raise InputError(
            f"{source}: no {what} found: {label} arrays, missing {', '.join(missing)} "
            f"(found {shown})\n{expected}"
        )
    raise InputError(f"{source}: no {what} found (found {shown})\n{expected}")


# --------------------------------------------------------------------------- import


def _expect(arr: Array, shape: tuple[int, ...], key: str, meaning: str, source: str) -> None:
    if arr.shape != shape:
        raise InputError(f"{source}: {key} has shape {arr.shape}, expected {shape} {meaning}")


def import_params(
    candidate: Candidate,
    get: Callable[[str], Array],
    keys: Collection[str],
    source: str,
    clip: float | None = None,
    input_forget: bool = False,
) -> LSTMParams:
    """Native params from the arrays of ``candidate`` (``get(key)`` returns a validated float
    array). ``clip`` and ``input_forget`` come from the file's metadata or ONNX attributes."""
    spec, k = candidate.spec, candidate.key
    if spec.layout == "native":
        arrays = {n: get(k(n)) for n in PARAM_NAMES + PEEPHOLE_NAMES if k(n) in keys}
        return LSTMParams.from_mapping(arrays, source, clip=clip, input_forget=input_forget)
    w_in, w_rec = (get(k(n)) for n in spec.required)
    if spec.layout == "pytorch":
        hr = k(spec.required[0].replace("weight_ih", "weight_hr"))
        if hr in keys:
            raise InputError(
                f"{source}: {hr} is an nn.LSTM with proj_size, whose h is "
                "projected; this tool's cell has no projection"
            )
        H = _stacked_hidden(w_in, w_rec, k(spec.required[0]), k(spec.required[1]), False, source)
        present = [k(name) for name in spec.optional if k(name) in keys]
        if len(present) == 1:  # bias=True saves both, bias=False neither: a half is damage
            other = next(k(n) for n in spec.optional if k(n) not in keys)
            raise InputError(
                f"{source}: has {present[0]} but not {other}; a PyTorch LSTM saves both "
                "biases (bias=True) or neither (bias=False)"
            )
        biases = []
        for name in spec.optional:
            if k(name) in keys:
                b = get(k(name))
                _expect(b, (4 * H,), k(name), "(4H,)", source)
                biases.append(b)
            else:
                biases.append(np.zeros(4 * H, dtype=w_rec.dtype))
        _refuse_variant(clip, input_forget, "pytorch", source)
        return from_pytorch(w_in, w_rec, biases[0], biases[1], source=source)
    if spec.layout == "keras":
        H = _stacked_hidden(w_in, w_rec, k("kernel"), k("recurrent_kernel"), True, source)
        bias = get(k("bias")) if k("bias") in keys else np.zeros(4 * H, dtype=w_rec.dtype)
        _expect(bias, (4 * H,), k("bias"), "(4H,)", source)
        _refuse_variant(clip, input_forget, "keras", source)
        return from_keras(w_in, w_rec, bias, source=source)
    # onnx
    B = get(k("B")) if k("B") in keys else None
    P = get(k("P")) if k("P") in keys else None
    return from_onnx(w_in, w_rec, B, P, clip=clip, input_forget=input_forget, source=source, key=k)


def _stacked_hidden(
    w_in: Array, w_rec: Array, in_key: str, rec_key: str, transposed: bool, source: str
) -> int:
    """H of stacked gate blocks: input weights (4H, F) and recurrent weights (4H, H), or their
    transposes (F, 4H) and (H, 4H) as Keras stores them; refused with the expected shapes."""
    rec, inp = (w_rec.T, w_in.T) if transposed else (w_rec, w_in)
    want_rec, want_in = ("(4H, H)", "({}, F) (4H, F)")
    if transposed:
        want_rec, want_in = "(H, 4H)", "(F, {}) (F, 4H)"
    refuse_gru(w_rec, rec_key, transposed, source)
    if rec.ndim != 2 or rec.shape[0] != 4 * rec.shape[1] or rec.shape[1] == 0:
        raise InputError(f"{source}: {rec_key} has shape {w_rec.shape}, expected {want_rec}")
    H = int(rec.shape[1])
    if inp.ndim != 2 or inp.shape[0] != 4 * H or inp.shape[1] == 0:
        raise InputError(
            f"{source}: {in_key} has shape {w_in.shape}, expected "
            f"{want_in.format(4 * H)}, with H = {H} from {rec_key}"
        )
    return H


def refuse_gru(w_rec: Array, rec_key: str, transposed: bool, source: str) -> None:
    """Refuse recurrent weights of 3 stacked gate blocks, (3H, H) or Keras's (H, 3H): a GRU's."""
    shape = w_rec.shape[-2:][::-1] if transposed else w_rec.shape[-2:]
    if len(shape) == 2 and shape[1] > 0 and shape[0] == 3 * shape[1]:
        raise InputError(
            f"{source}: this looks like a GRU (3 gate blocks), not an LSTM: {rec_key} has shape "
            f"{w_rec.shape}; an LSTM's is {'(H, 4H)' if transposed else '(4H, H)'}"
        )


def _refuse_variant(clip: float | None, input_forget: bool, layout: str, source: str) -> None:
    if clip is not None or input_forget:
        raise InputError(
            f"{source}: its metadata sets clip/input_forget, which {layout} LSTMs do not have"
        )


def from_onnx(
    W: Array,
    R: Array,
    B: Array | None = None,
    P: Array | None = None,
    clip: float | None = None,
    input_forget: bool = False,
    source: str = "onnx",
    key: Callable[[str], str] = lambda n: n,
) -> LSTMParams:
    """Native params from ONNX LSTM arrays: W (1, 4H, F), R (1, 4H, H), B (1, 8H) = [Wb, Rb]
    and P (1, 3H) = [Pi, Po, Pf], gates i, o, f, c. B and P are optional."""
    for name, arr in (("W", W), ("R", R)):
        if arr.ndim == 3 and arr.shape[0] == 2:
            raise InputError(
                f"{source}: {key(name)} has shape {arr.shape}: a bidirectional ONNX LSTM; "
                "this tool reads one direction (num_directions = 1)"
            )
    refuse_gru(R, key("R"), False, source)
    if R.ndim != 3 or R.shape[0] != 1 or R.shape[1] != 4 * R.shape[2] or R.shape[2] == 0:
        raise InputError(f"{source}: {key('R')} has shape {R.shape}, expected (1, 4H, H)")
    H = R.shape[2]
    if W.ndim != 3 or W.shape[:2] != (1, 4 * H) or W.shape[2] == 0:
        raise InputError(
            f"{source}: {key('W')} has shape {W.shape}, expected (1, {4 * H}, F) (1, 4H, F), "
            f"with H = {H} from {key('R')}"
        )
    if B is None:
        bias = np.zeros(4 * H, dtype=R.dtype)
    else:
        _expect(B, (1, 8 * H), key("B"), "(1, 8H) = [Wb, Rb]", source)
        Wb, Rb = B[0, : 4 * H], B[0, 4 * H :]
        bias = Wb + Rb if np.any(Rb) else Wb  # zero Rb not added: keeps -0.0 exact
    blocks: dict[str, Array] = {}
    for n, gate in enumerate(ONNX_ORDER):
        rows = slice(n * H, (n + 1) * H)
        blocks[f"W{gate}"] = np.concatenate((R[0, rows], W[0, rows]), axis=1)
        blocks[f"b{gate}"] = bias[rows]
    if P is not None:
        _expect(P, (1, 3 * H), key("P"), "(1, 3H) = [Pi, Po, Pf]", source)
        for n, gate in enumerate(ONNX_PEEPHOLE_ORDER):
            blocks[f"P{gate}"] = P[0, n * H : (n + 1) * H]
    return LSTMParams.from_mapping(blocks, source, clip=clip, input_forget=input_forget)


# --------------------------------------------------------------------------- export


def to_onnx(params: LSTMParams, halves: BiasHalves | None = None) -> dict[str, Array]:
    """ONNX LSTM arrays: W (1, 4H, F), R (1, 4H, H), B (1, 8H) = [Wb, Rb] (the kept
    ``halves``, else the whole bias in Wb and Rb zeros), and P (1, 3H) when the cell has
    peepholes; gates i, o, f, c."""
    blocks = _gate_blocks(params)
    out = {
        "W": np.concatenate([blocks[g][0] for g in ONNX_ORDER])[None],
        "R": np.concatenate([blocks[g][1] for g in ONNX_ORDER])[None],
        "B": _stack_halves(halves, params, ONNX_ORDER)[None],
    }
    peepholes = params.peepholes
    if peepholes is not None:
        out["P"] = np.concatenate([peepholes[f"P{g}"] for g in ONNX_PEEPHOLE_ORDER])[None]
    return out


def export_arrays(
    params: LSTMParams,
    layout: str,
    pytorch_names: str = "cell",
    prefix: str = "",
    halves: BiasHalves | None = None,
) -> dict[str, Array]:
    """The arrays of ``params`` in ``layout`` (keys prefixed with ``prefix``).

    ``pytorch_names`` is ``cell`` (``nn.LSTMCell``: weight_ih, ...) or ``lstm`` (``nn.LSTM``:
    weight_ih_l0, ...). Refuses variants that the target framework does not have. ``halves``
    (kept from a file with two biases) go to pytorch's and onnx's two biases exactly; native
    and keras hold one bias, so their sum must be exact in the cell's dtype (else refused).
    """
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if layout in ("pytorch", "keras") and not params.is_plain:
        used = [k for k, v in params.variant.switches().items() if v not in (None, False)]
        raise InputError(
            f"cannot export to {layout}: the cell uses {', '.join(used)}, which {layout}'s LSTM "
            "does not have",
            Hint.EXPORT_LAYOUT,
        )
    arrays: dict[str, Array]
    if layout in ("native", "keras") and halves is not None:
        params = _summed_exactly(params, halves, layout)
    if layout == "native":
        arrays = params.all_arrays()
    elif layout == "pytorch":
        if pytorch_names not in PYTORCH_NAMES:
            raise InputError(f"unknown PyTorch names {pytorch_names!r}; expected cell or lstm")
        suffix = "_l0" if pytorch_names == "lstm" else ""
        arrays = {k + suffix: v for k, v in to_pytorch(params, halves).items()}
    elif layout == "keras":
        arrays = to_keras(params)
    else:
        arrays = to_onnx(params, halves)
    return {prefix + k: np.ascontiguousarray(v) for k, v in arrays.items()}


def _summed_exactly(params: LSTMParams, halves: BiasHalves, layout: str) -> LSTMParams:
    """``params`` with its one bias the halves' exact sum in the cell's dtype; refused when
    the sum does not fit that dtype exactly (the layout has one bias: a half would be lost)."""
    inexact = halves.inexact_in(params.dtype)
    if inexact:
        raise InputError(
            f"cannot convert to {layout} exactly: {layout} has one bias, and the sum of the "
            f"file's two biases is not exact in {params.dtype} for {inexact} of "
            f"{4 * params.n_hidden} entries",
            Hint.KEEP_BIAS_HALVES,
        )
    return params.with_arrays(halves.summed(params.dtype))


def import_bias_halves(
    candidate: Candidate, get: Callable[[str], Array], keys: Collection[str]
) -> BiasHalves | None:
    """Both biases of a pytorch or onnx LSTM by native name, when the second is not all zeros
    (an all-zero one adds nothing to keep); else None. Call after :func:`import_params`."""
    k = candidate.key
    if candidate.layout == "pytorch":
        names = candidate.spec.optional
        if not all(k(n) in keys for n in names):
            return None
        return _halves(get(k(names[0])), get(k(names[1])), PYTORCH_ORDER)
    if candidate.layout == "onnx" and k("B") in keys:
        return onnx_bias_halves(get(k("B")))
    return None


def onnx_bias_halves(B: Array) -> BiasHalves | None:
    """Both halves of one direction's ONNX bias B (1, 8H) = [Wb, Rb]; None if Rb is zero."""
    H4 = B.shape[-1] // 2
    return _halves(B[0, :H4], B[0, H4:], ONNX_ORDER)


def _halves(first: Array, second: Array, order: tuple[str, ...]) -> BiasHalves | None:
    """Two (4H,) biases in a framework's gate ``order``; None if the second is all zeros."""
    if not np.any(second):
        return None
    H, dtype = first.shape[0] // 4, np.result_type(first, second)
    rows = {f"b{g}": slice(n * H, (n + 1) * H) for n, g in enumerate(order)}
    return BiasHalves(
        {b: first[r].astype(dtype) for b, r in rows.items()},
        {b: second[r].astype(dtype) for b, r in rows.items()},
    )
