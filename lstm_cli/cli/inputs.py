"""Where a command's arrays come from: x_t, h_prev, c_prev for a step; xs and the initial
state for a sequence; the upstream gradients of ``grad``. The options (a path or ``-``), a
JSON object piped on stdin, the params file's example inputs, or zeros, in that order.

Every array is read by :func:`lstm_cli.io.reader.read_array` under the one ``max_bytes``
limit (``--max-input-mb``); shapes are checked against the cell here, with messages that name
the option's file, the array, and the expected vs. actual shape.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import InputError
from lstm_cli.io.jsonio import inputs_from_json_object, json_to_array, parse_json
from lstm_cli.io.reader import (
    DEFAULT_MAX_INPUT_BYTES,
    NPY_MAGIC,
    STDIN,
    ZIP_MAGIC,
    array_from_bytes,
    read_array,
    read_source,
    read_stdin,
    stdin_is_piped,
)
from lstm_cli.params import ParamSet

if TYPE_CHECKING:
    from lstm_cli.io.npystream import ArraySequence, NpyStream


STDIN_PATHS = ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")


def names_stdin(spec: str | None) -> bool:
    """True when ``spec`` reads stdin: ``-``, or a path naming it such as ``/dev/stdin``."""
    return spec == STDIN or spec in STDIN_PATHS


def _label(spec: str) -> str:
    """How messages name an input: its path, or ``stdin`` for ``-``."""
    return "stdin" if spec == STDIN else spec


def one_from_stdin(specs: Mapping[str, str | None]) -> None:
    """Refuse ``-`` (stdin) for more than one input."""
    from_stdin = [n for n, s in specs.items() if names_stdin(s)]
    if len(from_stdin) > 1:
        raise InputError(f"only one input can come from stdin, got - for {', '.join(from_stdin)}")


def check_state(
    arr: Array, name: str, H: int, batch: tuple[int, ...], source: str, origin: str
) -> Array:
    """``arr`` if it is a state (or an upstream gradient of one): (H,), or ``batch + (H,)``.

    The one shape check of h and c for every command; ``origin`` says where H (and B) came
    from, such as ``"H = 4 from p.npz"``.
    """
    if arr.shape == (H,) or (batch and arr.shape == batch + (H,)):
        return arr
    want = f"({H},)" + (f" or {batch + (H,)}" if batch else "")
    raise InputError(f"{source}: {name} has shape {arr.shape}, expected {want} ({origin})")


def _check_x(x: Array, F: int, source: str, params_label: str) -> tuple[int, ...]:
    """The batch shape of x_t, () or (B,), after checking it is (F,) or (B, F)."""
    if x.ndim not in (1, 2) or x.shape[-1] != F:
        raise InputError(
            f"{source}: x_t has shape {x.shape}, expected ({F},) or (B, {F}) "
            f"(F = {F} from {params_label})"
        )
    return tuple(x.shape[:-1])


def _piped_step_inputs(max_bytes: int, required: bool) -> dict[str, Array]:
    """A JSON object of inputs piped on stdin; a bare list or a .npy stream is x_t.

    Empty stdin, or an object holding none of the inputs, is refused when stdin is the only
    source of inputs (``required``): a broken upstream script must not get the params
    file's example numbers back.
    """
    data = read_stdin(max_bytes)
    if not data.strip():
        if required:
            raise InputError("stdin: empty, expected x_t (a JSON object or list, or .npy)")
        return {}
    return _inputs_from_bytes(data, "x_t", "stdin", max_bytes, need_name=False)


def _inputs_from_bytes(
    data: bytes, name: str, source: str, max_bytes: int, need_name: bool = True
) -> dict[str, Array]:
    """Array ``name`` from .npy or JSON bytes and, when they hold a JSON object of several
    inputs, the others too (an inputs file is read like stdin)."""
    if data.startswith(NPY_MAGIC) or data.startswith(ZIP_MAGIC) or not data.strip():
        return {name: array_from_bytes(data, name, source, max_bytes)}
    obj = parse_json(data, source)
    if not isinstance(obj, dict):
        return {name: json_to_array(obj, name, source)}
    arrays = inputs_from_json_object(obj, source)
    if not arrays:
        raise InputError(f"{source}: an empty JSON object, expected x_t, h_prev, c_prev")
    if name not in arrays and need_name:
        raise InputError(f"{source}: the JSON object has no {name}")
    return arrays


def _read_inputs(spec: str, name: str, max_bytes: int) -> dict[str, Array]:
    """``name`` from a path or ``-``, with the other inputs its JSON object holds."""
    data, source = read_source(spec, max_bytes)
    return _inputs_from_bytes(data, name, source, max_bytes)


def _read_options(
    specs: Mapping[str, str | None], max_bytes: int
) -> tuple[dict[str, Array], dict[str, str]]:
    """The inputs the options name, and where each came from: an option's own array first,
    else one found beside another option's array in its JSON object."""
    arrays: dict[str, Array] = {}
    sources: dict[str, str] = {}
    beside: dict[str, tuple[Array, str]] = {}
    for name, spec in specs.items():
        if spec is None:
            continue
        for key, arr in _read_inputs(spec, name, max_bytes).items():
            if key == name:
                arrays[name], sources[name] = arr, _label(spec)
            elif key in specs:
                beside.setdefault(key, (arr, _label(spec)))
    for key, (arr, label) in beside.items():
        if specs[key] is None:
            arrays[key], sources[key] = arr, label
    return arrays, sources


class StepInputs(NamedTuple):
    """x_t, h_prev, c_prev for a step (shapes checked), where each came from, and notes."""

    arrays: dict[str, Array]
    sources: dict[str, str]
    notes: list[str]


def resolve_step_inputs(
    specs: Mapping[str, str | None],
    param_set: ParamSet,
    params_label: str,
    stdin_piped: Callable[[], bool] = stdin_is_piped,
    max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> StepInputs:
    """Find x_t, h_prev, c_prev for a step, per name: the explicit option (a path or ``-``),
    else the JSON object of another option's file (an inputs file is read like stdin), else
    the JSON object piped on stdin, else zeros for h_prev and c_prev. With no input at all
    (nothing piped), the example inputs of the params file are used; empty piped stdin, or
    an empty object, is refused.

    Shapes are checked against the params: x_t (F,) or (B, F); h_prev, c_prev (H,) or (B, H).
    """
    one_from_stdin(specs)
    notes: list[str] = []
    arrays, sources = _read_options(specs, max_bytes)
    if not any(map(names_stdin, specs.values())) and len(arrays) < len(specs) and stdin_piped():
        for name, arr in _piped_step_inputs(max_bytes, required=not arrays).items():
            arrays.setdefault(name, arr)
            sources.setdefault(name, "stdin")
    if not arrays:
        if param_set.example is None:
            raise InputError(
                f"no input given and {params_label} holds no example inputs; "
                "pass --x (and --h, --c)"
            )
        arrays = dict(param_set.example.arrays())
        sources = {k: f"example in {params_label}" for k in arrays}
        notes.append(f"No input given: using the example inputs stored in {params_label}.")
    if "x_t" not in arrays:
        raise InputError("x_t is missing: pass --x, or x_t in the JSON object on stdin")
    cell = param_set.params
    batch = _check_x(arrays["x_t"], cell.n_features, sources["x_t"], params_label)
    for name in ("h_prev", "c_prev"):
        if name not in arrays:
            arrays[name], sources[name] = np.zeros(batch + (cell.n_hidden,)), "zeros"
        origin = f"H = {cell.n_hidden} from {params_label}"
        check_state(arrays[name], name, cell.n_hidden, batch, sources[name], origin)
    return StepInputs(arrays, sources, notes)


# --------------------------------------------------------------------------- sequence inputs
#
# ``lstm-cell run`` reads xs of shape (T, F), (T, B, F) or, batch first, (B, T, F). A .npy file
# is never loaded whole: its header is parsed here and the data read in chunks of steps with
# ``readinto`` into one reused buffer, so memory stays flat however long the sequence. JSON is
# small by nature and is parsed whole.

SEQUENCE_ALIASES = {
    "xs": "xs",
    "h_prev": "h_prev",
    "h": "h_prev",
    "c_prev": "c_prev",
    "c": "c_prev",
}


class SequenceInputs(NamedTuple):
    """What ``run`` reads: xs (streamed or in memory), initial states, and their origins."""

    xs: NpyStream | ArraySequence
    states: dict[str, Array]  # h_prev, c_prev when given
    sources: dict[str, str]


def _sequence_from_json(obj: Any, source: str) -> dict[str, Array]:
    if not isinstance(obj, dict):
        return {"xs": json_to_array(obj, "xs", source)}
    out: dict[str, Array] = {}
    for key, value in obj.items():
        name = SEQUENCE_ALIASES.get(key)
        if name is None:
            raise InputError(f"{source}: unknown key {key!r}; expected xs, h_prev, c_prev")
        if name in out:
            raise InputError(f"{source}: {name} is given twice (as {name} and an alias)")
        out[name] = json_to_array(value, name, source)
    if "xs" not in out:
        raise InputError(f"{source}: the JSON object has no xs")
    return out


def _open_sequence(
    spec: str, max_bytes: int
) -> tuple[NpyStream | ArraySequence, dict[str, Array], str]:
    """xs from a path or ``-`` (stdin): a .npy stream (any length), or JSON (a list, or an
    object with xs, h_prev, c_prev) of at most ``max_bytes``."""
    from lstm_cli.io.npystream import ArraySequence, open_sequence  # only run streams

    if spec == STDIN and sys.stdin is not None and not sys.stdin.closed and sys.stdin.isatty():
        raise InputError("stdin: is a terminal; pipe JSON or .npy data in, or pass --xs FILE")
    stream, data, source = open_sequence(spec, max_bytes)
    if stream is not None:
        return stream, {}, source
    if data.startswith(ZIP_MAGIC):
        raise InputError(f"{source}: is a .npz archive; xs takes a .npy or .json file")
    if not data.strip():
        raise InputError(f"{source}: empty, expected xs as .npy or JSON")
    arrays = _sequence_from_json(parse_json(data, source), source)
    xs = arrays.pop("xs")
    return ArraySequence(xs), arrays, source


def _sequence_shape(
    shape: tuple[int, ...], F: int, batch_first: bool, source: str, params_label: str
) -> tuple[int, int | None]:
    """(T, B) of an xs of ``shape``: (T, F), (T, B, F) or batch first (B, T, F); B is None
    for an unbatched xs."""
    layout = f"(B, T, {F})" if batch_first else f"(T, B, {F})"
    if len(shape) not in (2, 3) or shape[-1] != F:
        raise InputError(
            f"{source}: xs has shape {shape}, expected (T, {F}) or {layout} "
            f"(F = {F} from {params_label})"
        )
    batched = len(shape) == 3
    T = shape[1] if (batched and batch_first) else shape[0]
    B = (shape[0] if batch_first else shape[1]) if batched else None
    if T == 0 or B == 0:
        raise InputError(f"{source}: xs has shape {shape}: no steps to run")
    return T, B


def _origin(H: int, B: int | None, params_label: str) -> str:
    return f"H = {H} from {params_label}" + (f", B = {B} from xs" if B is not None else "")


def resolve_run_inputs(
    xs_spec: str | None,
    state_specs: Mapping[str, str | None],
    n_features: int,
    n_hidden: int,
    params_label: str,
    batch_first: bool = False,
    stdin_piped: Callable[[], bool] = stdin_is_piped,
    max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> tuple[SequenceInputs, int, int | None]:
    """Open xs (``--xs`` path or ``-``, else piped stdin) and read h_prev, c_prev: the option,
    else the JSON object xs came in, else zeros (left out of the result).

    Shapes are checked against the cell before any step is run. Returns (inputs, T, B), with
    B None for an unbatched (T, F) xs. The caller closes ``inputs.xs``. ``max_bytes`` caps
    JSON, stdin and the state arrays; a .npy xs is streamed and may be of any length.
    """
    one_from_stdin({"xs": xs_spec, **state_specs})
    if xs_spec is None:
        if not stdin_piped():
            raise InputError(
                "xs is missing: pass --xs FILE (.npy or .json), or pipe JSON "
                '{"xs": [...]} or a .npy file on stdin'
            )
        xs_spec = STDIN
    xs, states, xs_source = _open_sequence(xs_spec, max_bytes)
    try:
        sources = {"xs": xs_source, **{k: xs_source for k in states}}
        for name, spec in state_specs.items():
            if spec is not None:
                states[name], sources[name] = read_array(spec, name, max_bytes), _label(spec)
        T, B = _sequence_shape(xs.shape, n_features, batch_first, xs_source, params_label)
        batch = () if B is None else (B,)
        for name, arr in states.items():
            origin = _origin(n_hidden, B, params_label)
            check_state(arr, name, n_hidden, batch, sources[name], origin)
    except BaseException:
        xs.close()
        raise
    return SequenceInputs(xs=xs, states=states, sources=sources), T, B


# --------------------------------------------------------------------------- grad inputs


class GradInputs(NamedTuple):
    """What ``grad`` differentiates: one step (x_t, h_prev, c_prev) or a sequence (xs, h0,
    c0), the upstream gradients given (dh_next, dc_next, dhs; None: the default), and where
    each came from."""

    arrays: dict[str, Array]
    upstream: dict[str, Array | None]
    sources: dict[str, str]
    notes: list[str]
    state_shape: tuple[int, ...]


def resolve_sequence_arrays(
    specs: Mapping[str, str | None], param_set: ParamSet, params_label: str, max_bytes: int
) -> tuple[dict[str, Array], dict[str, str]]:
    """xs (T, F) or (T, B, F) read whole, and h0, c0 (zeros unless given), for BPTT."""
    cell = param_set.params
    xs_spec = specs["xs"]
    assert xs_spec is not None
    xs = read_array(xs_spec, "xs", max_bytes)
    _T, B = _sequence_shape(xs.shape, cell.n_features, False, _label(xs_spec), params_label)
    batch = () if B is None else (B,)
    arrays, sources = {"xs": xs}, {"xs": _label(xs_spec)}
    for name, spec in (("h0", specs.get("h_prev")), ("c0", specs.get("c_prev"))):
        if spec is None:
            arrays[name], sources[name] = np.zeros(batch + (cell.n_hidden,)), "zeros"
            continue
        arr, sources[name] = read_array(spec, name, max_bytes), _label(spec)
        origin = _origin(cell.n_hidden, B, params_label)
        arrays[name] = check_state(arr, name, cell.n_hidden, batch, sources[name], origin)
    return arrays, sources


def resolve_upstream(
    specs: Mapping[str, str | None], state_shape: tuple[int, ...], T: int | None, max_bytes: int
) -> dict[str, Array | None]:
    """dh_next and dc_next (state-shaped, or (H,) shared by a batch) and, for a sequence of T
    steps, dhs (T, *state); None where not given."""
    out: dict[str, Array | None] = {}
    for name, spec in specs.items():
        if spec is None:
            out[name] = None
            continue
        shape = state_shape if name != "dhs" else (T or 0,) + state_shape
        arr = read_array(spec, name, max_bytes)
        if arr.shape not in (shape, shape[-1:]):
            raise InputError(
                f"{_label(spec)}: {name} has shape {arr.shape}, expected "
                f"{shape}" + (f" or {shape[-1:]}" if len(shape) > 1 else "")
            )
        out[name] = arr
    return out
