"""Files, JSON and stdin in, validated arrays out; results out as JSON and .npz, atomically.

Everything a user hands the tool passes through here, and every refusal is an
:class:`~lstm_cli.errors.InputError` whose message names the file, the array and what was
expected. Nothing here ever unpickles (``allow_pickle=False`` throughout).
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import safeload
from .core import Array
from .errors import InputError
from .params import (
    EXAMPLE_NAMES,
    FORMAT_VERSION,
    ExampleInputs,
    ParamSet,
    variant_from_meta,
    variant_meta,
)

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
# A pipe or file of garbage must not exhaust memory: bytes read from stdin, the size of a JSON
# file and the data each array declares are capped (``--max-input-mb`` raises the cap).
DEFAULT_MAX_INPUT_BYTES = safeload.DEFAULT_MAX_BYTES
MAX_STDIN_BYTES = DEFAULT_MAX_INPUT_BYTES
MAX_JSON_DEPTH = 8  # arrays here are at most (T, B, F): 8 levels is plenty

# Names accepted in a JSON object of inputs, with their short aliases.
INPUT_ALIASES = {
    "x_t": "x_t",
    "x": "x_t",
    "h_prev": "h_prev",
    "h": "h_prev",
    "c_prev": "c_prev",
    "c": "c_prev",
}


# --------------------------------------------------------------------------- arrays


def as_float_array(arr: Any, name: str, source: str) -> Array:
    """Check one loaded array and return it as floating point.

    Floating arrays are kept as they are, integer arrays are cast to float64; boolean,
    complex, string, object and structured arrays are refused, as are NaN and Infinity.
    """
    arr = np.asarray(arr)
    kind = arr.dtype.kind
    if kind in "iu":
        arr = arr.astype(np.float64)
    elif kind != "f":
        what = {
            "b": "boolean",
            "c": "complex",
            "O": "object",
            "V": "structured",
            "U": "string",
            "S": "bytes",
            "M": "datetime",
            "m": "timedelta",
        }.get(kind, str(arr.dtype))
        raise InputError(f"{source}: {name} has {what} dtype {arr.dtype}, expected real numbers")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        value = arr[tuple(bad)]
        where = f" at index {tuple(int(i) for i in bad)}" if arr.ndim else ""
        raise InputError(
            f"{source}: {name} contains {value}{where}; only finite numbers are allowed"
        )
    return arr


def cast_checked(arr: Array, dtype: str, name: str, source: str) -> Array:
    """``arr`` in ``dtype``, refusing values that do not fit it (1e300 in float32)."""
    with np.errstate(over="ignore"):
        out = arr.astype(dtype, copy=False)
    if not np.isfinite(out).all():
        raise InputError(f"{source}: {name} holds values too large for {dtype}")
    return out


# --------------------------------------------------------------------------- JSON


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not allowed (JSON numbers must be finite)")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(data: bytes | str, source: str, allow_nonfinite: bool = False) -> Any:
    """Parse JSON strictly: no duplicate keys, bounded nesting, and no NaN/Infinity literals
    unless ``allow_nonfinite`` (for outputs under test, where NaN is an answer to judge)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(
            text,
            parse_constant=None if allow_nonfinite else _reject_constant,
            object_pairs_hook=_no_duplicate_keys,
        )
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text, so not JSON (nor a .npy file)") from None
    except RecursionError:
        raise InputError(f"{source}: JSON nested too deeply") from None
    except json.JSONDecodeError as e:
        raise InputError(
            f"{source}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except ValueError as e:
        raise InputError(f"{source}: invalid JSON: {e}") from None


def _describe(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, str):
        return "a string"
    return "an object" if isinstance(obj, dict) else type(obj).__name__


def _json_shape(obj: Any, name: str, source: str, depth: int = 0) -> tuple[int, ...]:
    """Shape of a nested list of numbers; refuses strings, booleans, nulls and ragged lists."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, dict)):
        raise InputError(f"{source}: {name} holds {_describe(obj)}, expected numbers")
    if isinstance(obj, (int, float)):
        return ()
    if not isinstance(obj, list):
        raise InputError(f"{source}: {name} holds {type(obj).__name__}, expected numbers")
    if depth >= MAX_JSON_DEPTH:
        raise InputError(f"{source}: {name} is nested more than {MAX_JSON_DEPTH} levels deep")
    if not obj:
        return (0,)
    first = _json_shape(obj[0], name, source, depth + 1)
    for k, item in enumerate(obj[1:], start=1):
        if _json_shape(item, name, source, depth + 1) != first:
            raise InputError(f"{source}: {name} is ragged: row {k} differs in length from row 0")
    return (len(obj),) + first


def json_to_array(obj: Any, name: str, source: str) -> Array:
    """A (nested) JSON list of numbers as a float64 array, validated."""
    _json_shape(obj, name, source)
    try:
        arr = np.array(obj, dtype=np.float64)
    except OverflowError:
        raise InputError(f"{source}: {name} holds a number too large for float64") from None
    return as_float_array(arr, name, source)


def inputs_from_json_object(obj: Mapping[str, Any], source: str) -> dict[str, Array]:
    """``{"x_t": [...], "h_prev": [...], "c_prev": [...]}`` (aliases x, h, c) as arrays."""
    out: dict[str, Array] = {}
    for key, value in obj.items():
        name = INPUT_ALIASES.get(key)
        if name is None:
            raise InputError(
                f"{source}: unknown key {key!r}; expected x_t, h_prev, c_prev (or x, h, c)"
            )
        if name in out:
            raise InputError(f"{source}: {name} is given twice (as {name} and an alias)")
        out[name] = json_to_array(value, name, source)
    return out


# --------------------------------------------------------------------------- stdin


def stdin_is_piped() -> bool:
    """True when stdin is a pipe or a file (something to read), not a terminal or /dev/null."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return False
    try:
        if stdin.isatty():
            return False
        mode = os.fstat(stdin.fileno()).st_mode
    except (OSError, ValueError, io.UnsupportedOperation):
        return True  # an in-memory stream (tests, embedding): readable
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def read_stdin(limit: int = MAX_STDIN_BYTES) -> bytes:
    """All of stdin, refusing a terminal (it would block) and more than ``limit`` bytes."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise InputError("stdin: closed, nothing to read")
    if stdin.isatty():
        raise InputError("stdin: is a terminal; pipe JSON or .npy data in, or pass a file")
    data = stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"stdin: more than {safeload.mib(limit)}, over the input limit; "
            "raise it with --max-input-mb"
        )
    return data


# --------------------------------------------------------------------------- files in


def _check_readable(path: Path, max_bytes: int | None = None) -> None:
    """Refuse a missing path, a folder, or a file larger than ``max_bytes``, before reading."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a directory, expected a file")
    if max_bytes is not None and stat.S_ISREG(st.st_mode) and st.st_size > max_bytes:
        raise InputError(
            f"{path}: {safeload.mib(st.st_size)}, over the {safeload.mib(max_bytes)} input "
            "limit; raise it with --max-input-mb"
        )


def read_file(path: Path, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> bytes:
    _check_readable(path, max_bytes)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(data) > max_bytes:  # a device or a file that grew: never read it all
        raise InputError(
            f"{path}: over the {safeload.mib(max_bytes)} input limit; raise it with --max-input-mb"
        )
    return data


def _npy_from_bytes(
    data: bytes, name: str, source: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> Array:
    arr = safeload.read_npy_bytes(data, name, source, max_bytes)
    return as_float_array(arr, name, source)


def array_from_bytes(
    data: bytes, name: str, source: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> Array:
    """One array from the bytes of a .npy file or of JSON (a list, or an object holding it)."""
    if data.startswith(NPY_MAGIC):
        return _npy_from_bytes(data, name, source, max_bytes)
    if data.startswith(ZIP_MAGIC):
        raise InputError(f"{source}: is a .npz archive; {name} takes a .npy or .json file")
    if not data.strip():
        raise InputError(f"{source}: empty, expected {name} as .npy or JSON")
    obj = parse_json(data, source)
    if isinstance(obj, dict):
        arrays = inputs_from_json_object(obj, source)
        if name not in arrays:
            raise InputError(f"{source}: the JSON object has no {name}")
        return arrays[name]
    return json_to_array(obj, name, source)


def load_array(path: Path, name: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> Array:
    """Read ``name`` from a .npy or .json file."""
    return array_from_bytes(read_file(path, max_bytes), name, str(path), max_bytes)


SAFETENSORS_SUFFIX = ".safetensors"
ONNX_SUFFIX = ".onnx"


def _is_safetensors(head: bytes) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then a JSON header."""
    return len(head) > 9 and head[8:9] == b"{"


def _parse_meta(raw: Any, source: str) -> dict[str, Any]:
    try:
        if isinstance(raw, np.ndarray):
            if raw.dtype.kind != "U" or raw.ndim != 0:
                raise ValueError
            raw = str(raw)
        loaded = json.loads(raw, parse_constant=_reject_constant)
        if not isinstance(loaded, dict):
            raise ValueError
        return loaded
    except Exception:
        raise InputError(f"{source}: meta is not a JSON object string") from None


def load_param_set(
    path: Path,
    max_bytes: int = safeload.DEFAULT_MAX_BYTES,
    *,
    layout: str | None = None,
    key_prefix: str | None = None,
) -> ParamSet:
    """Load a params file in any layout (native, pytorch, keras, onnx; see
    :mod:`lstm_cli.layouts`) from a .npz, a .safetensors or an .onnx model, validated, never
    unpickling. ``layout`` and ``key_prefix`` pick one LSTM when the file holds several.

    Each array's header is checked (dtype, declared size against ``max_bytes`` and against
    the bytes in the archive) before it is inflated: a zip bomb is refused, not expanded.
    """
    source = str(path)
    _check_readable(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise InputError(f"{source}: empty file, not a .npz archive")
    if path.suffix.lower() == ONNX_SUFFIX:
        if layout not in (None, "onnx"):
            raise InputError(f"{source}: an .onnx model holds an onnx LSTM, not {layout}")
        return load_onnx_model(read_file(path, max_bytes), source, key_prefix)
    if head.startswith(NPY_MAGIC):
        raise InputError(f"{source}: is a single .npy array; a params file is a .npz archive")
    if _is_safetensors(head) or path.suffix.lower() == SAFETENSORS_SUFFIX:
        return _load_safetensors(path, max_bytes, layout, key_prefix)
    with safeload.NpzReader(path, max_bytes) as npz:
        keys = set(npz.names)

        def get(name: str) -> Array:
            return as_float_array(npz.read(name), name, source)

        def get_meta(name: str) -> dict[str, Any]:
            return _parse_meta(npz.read(name), source)

        return _param_set_from(keys, get, get_meta, source, layout, key_prefix)


def _load_safetensors(
    path: Path, max_bytes: int, layout: str | None, key_prefix: str | None
) -> ParamSet:
    """A .safetensors file through the safetensors package's NumPy API (never torch)."""
    source = str(path)
    try:
        from safetensors import safe_open
    except ImportError:
        raise InputError(
            f"{source}: reading .safetensors needs the safetensors package "
            "(pip install safetensors)"
        ) from None
    try:
        handle = safe_open(str(path), framework="numpy")
    except Exception as e:
        raise InputError(f"{source}: not a readable .safetensors file ({e})") from None
    with handle as f:
        keys = set(f.keys())
        metadata = f.metadata() or {}

        def get(name: str) -> Array:
            try:
                n_bytes = int(np.prod(f.get_slice(name).get_shape(), dtype=np.int64)) * 8
            except Exception as e:
                raise InputError(f"{source}: {name} is corrupt ({e})") from None
            if n_bytes > max_bytes:  # counted as 8-byte numbers: an upper bound
                raise InputError(
                    f"{source}: {name} holds {safeload.mib(n_bytes)} or more, over the "
                    f"{safeload.mib(max_bytes)} limit; raise it with --max-input-mb"
                )
            try:
                raw = f.get_tensor(name)
            except TypeError as e:  # a dtype NumPy lacks, such as bfloat16
                raise InputError(
                    f"{source}: {name} has a dtype NumPy cannot hold ({e}); "
                    "save it as float32 or float64"
                ) from None
            except Exception as e:
                raise InputError(f"{source}: {name} is corrupt ({e})") from None
            if raw.dtype.name == "bfloat16":  # only where ml_dtypes taught NumPy the type
                raise InputError(
                    f"{source}: {name} has a dtype NumPy cannot hold (bfloat16); "
                    "save it as float32 or float64"
                )
            return as_float_array(raw, name, source)

        def get_meta(name: str) -> dict[str, Any]:
            return _parse_meta(metadata[name], source)

        meta_keys = keys | ({"meta"} if "meta" in metadata else set())
        return _param_set_from(meta_keys, get, get_meta, source, layout, key_prefix)


def _param_set_from(
    keys: set[str],
    get: Callable[[str], Array],
    get_meta: Callable[[str], dict[str, Any]],
    source: str,
    layout: str | None,
    key_prefix: str | None,
) -> ParamSet:
    """The one LSTM among ``keys`` as a ParamSet (see :func:`load_param_set`)."""
    from .layouts import choose_candidate, import_params

    candidate = choose_candidate(keys - {"meta"}, source, layout, key_prefix)
    meta_key = candidate.key("meta") if candidate.key("meta") in keys else "meta"
    stored = get_meta(meta_key) if meta_key in keys else {}
    clip, input_forget = variant_from_meta(stored, source)
    params = import_params(candidate, get, keys, source, clip, input_forget)
    example = None
    if candidate.layout == "native" and candidate.key("x_t") in keys:
        ex = {k: get(candidate.key(k)) for k in EXAMPLE_NAMES if candidate.key(k) in keys}
        H, F = params.n_hidden, params.n_features
        for k, want in (("x_t", (F,)), ("h_prev", (H,)), ("c_prev", (H,))):
            ex.setdefault(k, np.zeros(want))
            if ex[k].shape != want:
                raise InputError(
                    f"{source}: example input {k} has shape {ex[k].shape}, expected {want}"
                )
        example = ExampleInputs(**ex)
    if candidate.layout == "native":
        meta = stored
    else:
        meta = {
            "format_version": FORMAT_VERSION,
            "source_layout": candidate.layout,
            "source_key_prefix": candidate.prefix,
            "n_features": params.n_features,
            "n_hidden": params.n_hidden,
            **variant_meta(params),
        }
    return ParamSet(params=params, example=example, meta=meta)


# ONNX LSTM inputs by position: X, W, R, B, sequence_lens, initial_h, initial_c, P.
_ONNX_LSTM_INPUTS = {"W": 1, "R": 2, "B": 3, "P": 7}


def load_onnx_model(data: bytes, source: str, node_name: str | None = None) -> ParamSet:
    """The first LSTM node of an ONNX model (or the one named ``node_name``): its W, R, B, P
    initializers and its clip / input_forget attributes. Needs the optional ``onnx`` package."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise InputError(
            f"{source}: reading .onnx models needs the onnx package (pip install onnx)"
        ) from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:
        raise InputError(f"{source}: not a readable ONNX model ({type(e).__name__})") from None
    graph = model.graph
    lstms = [n for n in graph.node if n.op_type == "LSTM" and n.domain in ("", "ai.onnx")]
    if node_name is not None:
        named = [n for n in lstms if n.name == node_name]
        if not named:
            names = ", ".join(repr(n.name) for n in lstms) or "none"
            raise InputError(f"{source}: no LSTM node named {node_name!r} (LSTM nodes: {names})")
        lstms = named
    if not lstms:
        raise InputError(f"{source}: the model has no LSTM node")
    node = lstms[0]
    label = f"{source}: LSTM node {node.name!r}" if node.name else f"{source}: LSTM node"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    if direction != "forward":
        raise InputError(f"{label} has direction {direction!r}; only 'forward' is read")
    acts = [a.decode() if isinstance(a, bytes) else str(a) for a in attrs.get("activations", [])]
    if acts and [a.lower() for a in acts] != ["sigmoid", "tanh", "tanh"]:
        raise InputError(
            f"{label} uses activations {acts}; this tool's cell is Sigmoid, Tanh, Tanh"
        )
    initializers = {t.name: t for t in graph.initializer}
    arrays: dict[str, Array] = {}
    for name, position in _ONNX_LSTM_INPUTS.items():
        input_name = node.input[position] if len(node.input) > position else ""
        if not input_name:
            if name in ("W", "R"):
                raise InputError(f"{label} has no {name} input")
            continue
        tensor = initializers.get(input_name)
        if tensor is None:
            raise InputError(
                f"{label}: {name} ({input_name!r}) is not an initializer stored in the model"
            )
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise InputError(f"{label}: {name} is stored in an external file, not read")
        try:
            raw = numpy_helper.to_array(tensor)
        except Exception as e:
            raise InputError(f"{label}: {name} is unreadable ({type(e).__name__})") from None
        arrays[name] = as_float_array(raw, name, source)
    clip = attrs.get("clip")
    input_forget = attrs.get("input_forget", 0)
    if input_forget not in (0, 1):
        raise InputError(f"{label}: input_forget is {input_forget}, expected 0 or 1")
    from .layouts import from_onnx

    params = from_onnx(
        arrays["W"],
        arrays["R"],
        arrays.get("B"),
        arrays.get("P"),
        clip=None if clip is None else float(clip),
        input_forget=bool(input_forget),
        source=label,
    )
    hidden_size = attrs.get("hidden_size")
    if hidden_size is not None and hidden_size != params.n_hidden:
        raise InputError(f"{label}: hidden_size is {hidden_size} but R holds H = {params.n_hidden}")
    meta = {
        "format_version": FORMAT_VERSION,
        "source_layout": "onnx",
        "onnx_node": node.name,
        "n_features": params.n_features,
        "n_hidden": params.n_hidden,
        **variant_meta(params),
    }
    return ParamSet(params=params, meta=meta)


# --------------------------------------------------------------------------- files out


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], force: bool = False) -> None:
    """Write ``path`` atomically: temp file in the same folder, fsync, then rename into place.

    Without ``force`` an existing file is never replaced (checked again at the final,
    atomic step with a hard link). On any failure no partial file is left behind.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file path to write")
    if path.exists() and not force:
        raise InputError(f"{path}: already exists; pass --force to overwrite it")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{path}: folder {parent} does not exist")
    try:
        import tempfile  # here, not at start-up: only writing commands need it

        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}", exit_code=1) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # the permissions a plain open() would give
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path appeared meanwhile: never clobber
            except FileExistsError:
                raise InputError(f"{path}: already exists; pass --force to overwrite it") from None
            except OSError:  # no hard links on this filesystem
                if path.exists():
                    raise InputError(
                        f"{path}: already exists; pass --force to overwrite it"
                    ) from None
                os.replace(tmp, path)
    except InputError:
        raise
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}", exit_code=1) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # some filesystems cannot fsync a folder; the rename itself is done


def save_npz(path: Path, arrays: Mapping[str, Array], force: bool = False) -> None:
    """Save arrays as an uncompressed .npz at exactly ``path`` (no .npz appended)."""

    def write(f: IO[bytes]) -> None:
        np.savez(f, **dict(arrays))  # type: ignore[arg-type]

    atomic_write(path, write, force)


def save_arrays(
    path: Path, arrays: Mapping[str, Array], meta: dict[str, Any] | None, force: bool = False
) -> None:
    """Save arrays (and ``meta`` as a JSON string, when given) atomically at exactly ``path``:
    a .safetensors file when the name ends so (meta in its metadata), else an .npz (meta as
    the 0-d string array ``meta``)."""
    path = Path(path)
    if path.suffix.lower() == ONNX_SUFFIX:
        raise InputError(
            f"{path}: writing .onnx models is not supported; write .npz or .safetensors"
        )
    if path.suffix.lower() != SAFETENSORS_SUFFIX:
        out: dict[str, Any] = dict(arrays)
        if meta is not None:
            out["meta"] = np.array(json.dumps(meta, sort_keys=True))  # 0-d str, no pickle
        save_npz(path, out, force)
        return
    try:
        from safetensors.numpy import save
    except ImportError:
        raise InputError(
            f"{path}: writing .safetensors needs the safetensors package (pip install safetensors)"
        ) from None
    tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    metadata = None if meta is None else {"meta": json.dumps(meta, sort_keys=True)}
    blob = save(tensors, metadata=metadata)

    def write(f: IO[bytes]) -> None:
        f.write(blob)

    atomic_write(path, write, force)


def save_param_set(path: Path, param_set: ParamSet, force: bool = False) -> None:
    """Write a params file: the eight arrays (and Pi, Pf, Po with peepholes), example inputs,
    and ``meta`` as a JSON string holding the variant (clip, input_forget) when it is set.
    A path ending in .safetensors writes that format, any other an .npz."""
    arrays: dict[str, Any] = dict(param_set.params.all_arrays())
    if param_set.example is not None:
        arrays.update(param_set.example.arrays())
    meta = {k: v for k, v in param_set.meta.items() if k not in ("clip", "input_forget")}
    meta.update(variant_meta(param_set.params))
    save_arrays(path, arrays, meta, force)


def json_list(arr: Array) -> Any:
    """An array as (nested) lists for JSON; values beyond the dtype's range (a pre-activation
    that overflowed to +-inf) become null, since JSON has no Infinity."""
    if np.isfinite(arr).all():
        return arr.tolist()
    obj = arr.astype(object)
    obj[~np.isfinite(arr)] = None
    return obj.tolist()


def dumps(obj: Any) -> str:
    """Compact, strict JSON (no NaN/Infinity) on one line."""
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


# --------------------------------------------------------------------------- step inputs

STDIN = "-"


def _state_shapes_ok(name: str, arr: Array, n: int, batch: tuple[int, ...] | None) -> bool:
    if name == "x_t":
        return arr.ndim in (1, 2) and arr.shape[-1] == n
    return arr.shape == (n,) or (batch is not None and arr.shape == batch + (n,))


def resolve_step_inputs(
    specs: Mapping[str, str | None],
    param_set: ParamSet,
    params_label: str,
    stdin_piped: Callable[[], bool] = stdin_is_piped,
    max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> tuple[dict[str, Array], dict[str, str], list[str]]:
    """Find x_t, h_prev, c_prev for a step, per name: the explicit option (a path or ``-``),
    else the JSON object piped on stdin, else zeros for h_prev and c_prev. With no input at
    all, the example inputs of the params file are used.

    Returns (arrays, where each came from, notes for the user). Shapes are checked against
    the params: x_t (F,) or (B, F); h_prev and c_prev (H,) or (B, H).
    """
    arrays: dict[str, Array] = {}
    sources: dict[str, str] = {}
    notes: list[str] = []

    def stdin_reader() -> bytes:
        return read_stdin(max_bytes)

    from_stdin = [n for n, s in specs.items() if s == STDIN]
    if len(from_stdin) > 1:
        raise InputError(f"only one input can come from stdin, got - for {', '.join(from_stdin)}")
    for name, spec in specs.items():
        if spec is None:
            continue
        if spec == STDIN:
            arrays[name] = array_from_bytes(stdin_reader(), name, "stdin", max_bytes)
            sources[name] = "stdin"
        else:
            arrays[name] = load_array(Path(spec), name, max_bytes)
            sources[name] = spec
    if not from_stdin and len(arrays) < len(specs) and stdin_piped():
        data = stdin_reader()
        if data.strip():
            obj = parse_json(data, "stdin") if not data.startswith(NPY_MAGIC) else None
            if isinstance(obj, dict):
                piped = inputs_from_json_object(obj, "stdin")
            else:  # a bare list or a .npy stream is x_t
                piped = {"x_t": array_from_bytes(data, "x_t", "stdin", max_bytes)}
            for name, arr in piped.items():
                if name not in arrays:
                    arrays[name], sources[name] = arr, "stdin"
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
    F, H = param_set.params.n_features, param_set.params.n_hidden
    x = arrays["x_t"]
    if not _state_shapes_ok("x_t", x, F, None):
        raise InputError(
            f"{sources['x_t']}: x_t has shape {x.shape}, expected ({F},) or (B, {F}) "
            f"(F = {F} from {params_label})"
        )
    batch = x.shape[:-1]
    for name in ("h_prev", "c_prev"):
        if name not in arrays:
            arrays[name] = np.zeros(batch + (H,))
            sources[name] = "zeros"
            continue
        if not _state_shapes_ok(name, arrays[name], H, batch):
            want = f"({H},)" + (f" or {batch + (H,)}" if batch else "")
            raise InputError(
                f"{sources[name]}: {name} has shape {arrays[name].shape}, expected {want} "
                f"(H = {H} from {params_label})"
            )
    return arrays, sources, notes


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


class _Prefixed:
    """A binary stream with ``prefix`` (bytes already read from it) put back in front."""

    def __init__(self, prefix: bytes, raw: IO[bytes]) -> None:
        self.prefix, self.raw = prefix, raw

    def read(self, n: int = -1) -> bytes:
        head, self.prefix = (self.prefix, b"") if n < 0 else (self.prefix[:n], self.prefix[n:])
        rest = self.raw.read(-1 if n < 0 else n - len(head)) if n < 0 or len(head) < n else b""
        return head + rest

    def readinto(self, buf: memoryview) -> int:
        if self.prefix:
            k = min(len(self.prefix), len(buf))
            buf[:k] = self.prefix[:k]
            self.prefix = self.prefix[k:]
            return k
        return self.raw.readinto(buf)  # type: ignore[attr-defined]


def _stream_dtype_ok(dtype: np.dtype[Any], name: str, source: str) -> None:
    """Refuse what :func:`as_float_array` refuses, from the header alone (before any data)."""
    if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
        what = {"b": "boolean", "c": "complex", "O": "object (pickled)", "V": "structured"}
        desc = what.get(dtype.kind, "non-numeric")
        raise InputError(f"{source}: {name} has {desc} dtype {dtype}, expected real numbers")


class NpyStream:
    """A .npy array read in chunks along its time axis, never all at once.

    The header is parsed with :mod:`numpy.lib.format` (``allow_pickle`` never: object dtypes
    are refused from the header). ``shape`` and ``dtype`` are the stored array's.
    """

    def __init__(
        self,
        f: IO[bytes] | _Prefixed,
        name: str,
        source: str,
        seekable: bool,
        max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    ) -> None:
        self.f, self.name, self.source, self.seekable = f, name, source, seekable
        self.max_bytes = max_bytes  # only for what cannot be streamed (see _load_into_memory)
        shape, fortran_order, dtype = safeload.read_npy_header(f, name, source)  # type: ignore[arg-type]
        self.shape: tuple[int, ...] = tuple(int(d) for d in shape)
        self.fortran_order: bool = bool(fortran_order)
        self.dtype: np.dtype[Any] = np.dtype(dtype)
        _stream_dtype_ok(self.dtype, name, source)
        self.offset = f.tell() if seekable else 0  # type: ignore[union-attr]
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        if seekable:
            size = os.fstat(f.fileno()).st_size  # type: ignore[union-attr]
            if size < self.offset + self.nbytes:
                raise InputError(
                    f"{source}: truncated .npy file: {name} {self.shape} needs "
                    f"{self.nbytes} bytes of data, the file holds {max(size - self.offset, 0)}"
                )

    def close(self) -> None:
        close = getattr(self.f, "close", None)
        if self.seekable and close is not None:
            close()

    def _read_exactly(self, view: memoryview) -> None:
        got = 0
        while got < len(view):
            k = self.f.readinto(view[got:])  # type: ignore[union-attr]
            if not k:
                raise InputError(f"{self.source}: truncated .npy data: {self.name} ends early")
            got += k

    def _load_into_memory(self) -> None:
        """A pipe cannot seek: read the whole (capped) payload when chunks are not contiguous."""
        if self.nbytes > self.max_bytes:
            raise InputError(
                f"{self.source}: a batch-first or Fortran-order {self.name} is streamed only "
                f"from a file; from a pipe it is read whole, and {safeload.mib(self.nbytes)} is "
                f"over the {safeload.mib(self.max_bytes)} input limit (--max-input-mb)"
            )
        data = bytearray(self.nbytes)
        self._read_exactly(memoryview(data))
        self.f, self.offset, self.seekable = io.BytesIO(data), 0, True

    def chunks(self, steps: int, batch_first: bool) -> Iterator[Array]:
        """Yield consecutive (n, F) or (n, B, F) float arrays, time first, ``n <= steps``.

        The time axis is 0, or 1 with ``batch_first`` for a 3-D array. Each chunk is checked
        (finite numbers only) and cast to float64 if stored as integers. A yielded chunk may
        share memory with the next read: use it before asking for the next.
        """
        ndim = len(self.shape)
        t_axis = 1 if (batch_first and ndim == 3) else 0
        # The file's bytes in C order: a Fortran-order array is stored as its transpose.
        c_shape = self.shape[::-1] if self.fortran_order else self.shape
        k = ndim - 1 - t_axis if self.fortran_order else t_axis  # time axis within c_shape
        outer = int(np.prod(c_shape[:k], dtype=np.int64))
        inner = int(np.prod(c_shape[k + 1 :], dtype=np.int64))
        T, item = self.shape[t_axis], self.dtype.itemsize
        if outer > 1 and not self.seekable:
            self._load_into_memory()
        steps = max(1, min(steps, T))
        buf = bytearray(steps * outer * inner * item)
        for t0 in range(0, T, steps):
            n = min(steps, T - t0)
            block = n * inner * item
            view = memoryview(buf)[: outer * block]
            for j in range(outer):
                if outer > 1 or self.seekable:
                    self.f.seek(self.offset + (j * T + t0) * inner * item)  # type: ignore[union-attr]
                self._read_exactly(view[j * block : (j + 1) * block])
            stored = c_shape[:k] + (n,) + c_shape[k + 1 :]
            arr = np.frombuffer(view, dtype=self.dtype).reshape(stored)
            if self.fortran_order:
                arr = arr.T  # the stored array's own axis order
            chunk = np.moveaxis(arr, t_axis, 0)  # (n, ...): time first
            yield self._checked(chunk, t0, t_axis)

    def _checked(self, chunk: Array, t0: int, t_axis: int) -> Array:
        if chunk.dtype.kind in "iu":
            return chunk.astype(np.float64)
        finite = np.isfinite(chunk)
        if not finite.all():
            bad = [int(i) for i in np.argwhere(~finite)[0]]
            value = chunk[tuple(bad)]
            bad[0] += t0
            bad.insert(t_axis, bad.pop(0))  # back to the file's axis order
            raise InputError(
                f"{self.source}: {self.name} contains {value} at index {tuple(bad)}; "
                "only finite numbers are allowed"
            )
        return chunk


class ArraySequence:
    """An xs already in memory (from JSON), with the interface of :class:`NpyStream`."""

    def __init__(self, xs: Array) -> None:
        self.xs = xs
        self.shape: tuple[int, ...] = tuple(xs.shape)

    def chunks(self, steps: int, batch_first: bool) -> Iterator[Array]:
        xs = np.swapaxes(self.xs, 0, 1) if (batch_first and self.xs.ndim == 3) else self.xs
        for t0 in range(0, xs.shape[0], max(1, steps)):
            yield xs[t0 : t0 + steps]

    def close(self) -> None:
        pass


@dataclass
class SequenceInputs:
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
    spec: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> tuple[NpyStream | ArraySequence, dict[str, Array], str]:
    """xs from a path or ``-`` (stdin): a .npy stream (any length), or JSON (a list, or an
    object with xs, h_prev, c_prev) of at most ``max_bytes``."""
    if spec == STDIN:
        stdin = sys.stdin
        if stdin is None or stdin.closed:
            raise InputError("stdin: closed, nothing to read")
        if stdin.isatty():
            raise InputError("stdin: is a terminal; pipe JSON or .npy data in, or pass --xs FILE")
        raw = stdin.buffer
        head = raw.read(len(NPY_MAGIC))
        if head == NPY_MAGIC:
            stream = NpyStream(_Prefixed(head, raw), "xs", "stdin", False, max_bytes)
            return stream, {}, "stdin"
        data = head + raw.read(max_bytes + 1 - len(head))
        if len(data) > max_bytes:
            raise InputError(
                f"stdin: more than {safeload.mib(max_bytes)} of JSON, over the input limit; "
                "raise it with --max-input-mb, or pipe a .npy file (streamed)"
            )
        source = "stdin"
    else:
        path = Path(spec)
        source = spec
        _check_readable(path)
        try:
            f = open(path, "rb")  # noqa: SIM115 (a stream owns it; closed by the caller)
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
        head = f.read(len(NPY_MAGIC))
        f.seek(0)
        if head == NPY_MAGIC:
            try:
                return NpyStream(f, "xs", source, True, max_bytes), {}, source
            except BaseException:
                f.close()
                raise
        f.close()
        data = read_file(path, max_bytes)
    if data.startswith(ZIP_MAGIC):
        raise InputError(f"{source}: is a .npz archive; xs takes a .npy or .json file")
    if not data.strip():
        raise InputError(f"{source}: empty, expected xs as .npy or JSON")
    arrays = _sequence_from_json(parse_json(data, source), source)
    xs = arrays.pop("xs")
    return ArraySequence(xs), arrays, source


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
    from_stdin = [n for n, s in {"xs": xs_spec, **state_specs}.items() if s == STDIN]
    if len(from_stdin) > 1:
        raise InputError(f"only one input can come from stdin, got - for {', '.join(from_stdin)}")
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
            if spec is None:
                continue
            if spec == STDIN:
                states[name] = array_from_bytes(read_stdin(max_bytes), name, "stdin", max_bytes)
            else:
                states[name] = load_array(Path(spec), name, max_bytes)
            sources[name] = "stdin" if spec == STDIN else spec
        F, H = n_features, n_hidden
        shape = xs.shape
        layout = f"(B, T, {F})" if batch_first else f"(T, B, {F})"
        if len(shape) not in (2, 3) or shape[-1] != F:
            raise InputError(
                f"{xs_source}: xs has shape {shape}, expected (T, {F}) or {layout} "
                f"(F = {F} from {params_label})"
            )
        batched = len(shape) == 3
        T = shape[1] if (batched and batch_first) else shape[0]
        B = (shape[0] if batch_first else shape[1]) if batched else None
        if T == 0 or B == 0:
            raise InputError(f"{xs_source}: xs has shape {shape}: no steps to run")
        for name, arr in states.items():
            ok = arr.shape == (H,) or (B is not None and arr.shape == (B, H))
            if not ok:
                want = f"({H},)" + (f" or ({B}, {H})" if B is not None else "")
                raise InputError(
                    f"{sources[name]}: {name} has shape {arr.shape}, expected {want} "
                    f"(H = {H} from {params_label}"
                    + (f", B = {B} from xs)" if B is not None else ")")
                )
    except BaseException:
        xs.close()
        raise
    return SequenceInputs(xs=xs, states=states, sources=sources), T, B
