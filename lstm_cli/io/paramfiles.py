"""Params files in, validated, never unpickled: .npz, .safetensors, .onnx and PyTorch
checkpoints (.pt, .pth, .bin: read by the restricted reader of :mod:`.torchfile`, which runs no
pickled code) in any layout; and params files out (.npz or .safetensors), atomically."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError
from lstm_cli.params import EXAMPLE_NAMES, FORMAT_VERSION, ExampleInputs, ParamSet, Variant

from . import safeload
from .arrays import as_float_array
from .atomic import PARAM_SUFFIXES, output_suffix, save_npz, write_bytes
from .cells import CellChoice
from .jsonio import dumps, json_list, reject_constant
from .kerasfile import (
    HDF5_MAGIC,
    KERAS_SUFFIXES,
    KerasLstm,
    is_keras_archive,
    keras_param_set,
    read_keras,
)
from .reader import NPY_MAGIC, ZIP_MAGIC, check_readable, is_regular_file, read_file
from .torchfile import TORCH_SUFFIXES, is_torch_legacy, is_torch_zip, open_checkpoint

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
        loaded = json.loads(raw, parse_constant=reject_constant)
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
    cell: CellChoice | None = None,
) -> ParamSet:
    """Load a params file in any layout (native, pytorch, keras, onnx; see
    :mod:`lstm_cli.layouts`) from a .npz, a .safetensors or an .onnx model, validated, never
    unpickling. ``layout`` and ``key_prefix`` pick one LSTM when the file holds several,
    ``cell`` one cell (layer, direction) of a stacked LSTM (see :mod:`.cells`).

    Each array's header is checked (dtype, declared size against ``max_bytes`` and against
    the bytes in the archive) before it is inflated: a zip bomb is refused, not expanded.
    """
    return read_lstm_file(path, max_bytes, _Pick(layout, key_prefix, cell))


T = TypeVar("T", covariant=True)


class LstmReader(Protocol[T]):
    """What is made of a file's LSTMs: from its arrays (``keys``, ``get(key)``,
    ``get_meta(key)``), or from an ONNX model's bytes. ``layout`` is the layout asked for."""

    @property
    def layout(self) -> str | None: ...

    def arrays(
        self,
        keys: set[str],
        get: Callable[[str], Array],
        get_meta: Callable[[str], dict[str, Any]],
        source: str,
    ) -> T: ...

    def onnx(self, data: bytes, source: str, folder: Path | None, max_bytes: int) -> T: ...

    def keras(self, lstms: list[KerasLstm], source: str) -> T: ...


@dataclass(frozen=True)
class _Pick:
    """The one cell to load (see :func:`load_param_set`)."""

    layout: str | None
    key_prefix: str | None
    cell: CellChoice | None

    def arrays(
        self,
        keys: set[str],
        get: Callable[[str], Array],
        get_meta: Callable[[str], dict[str, Any]],
        source: str,
    ) -> ParamSet:
        return _param_set_from(keys, get, get_meta, source, self.layout, self.key_prefix, self.cell)

    def onnx(self, data: bytes, source: str, folder: Path | None, max_bytes: int) -> ParamSet:
        from .onnxfile import load_onnx_model  # on use: needs the optional onnx package

        return load_onnx_model(data, source, self.key_prefix, self.cell, folder, max_bytes)

    def keras(self, lstms: list[KerasLstm], source: str) -> ParamSet:
        return keras_param_set(lstms, source, self.key_prefix, self.cell)


def read_lstm_file(path: Path, max_bytes: int, reader: LstmReader[T]) -> T:
    """Open a params file of any kind (.npz, .safetensors, .onnx, a PyTorch checkpoint; a
    pipe read whole under ``max_bytes``) and hand its arrays to ``reader``."""
    source = str(path)
    check_readable(path)
    if not is_regular_file(path):  # a pipe cannot seek: read it whole, under the limit
        data = read_file(path, max_bytes)
        return _load_buffered(data, source, max_bytes, reader)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except PermissionError:
        raise InputError(f"{source}: permission denied") from None
    except OSError as e:
        raise InputError(f"{source}: cannot read: {e.strerror or e}") from None
    if not head:
        raise InputError(f"{source}: empty file, not a .npz archive")
    if path.suffix.lower() == ONNX_SUFFIX:
        if reader.layout not in (None, "onnx"):
            raise InputError(f"{source}: an .onnx model holds an onnx LSTM, not {reader.layout}")
        return reader.onnx(read_file(path, max_bytes), source, path.parent, max_bytes)
    if head.startswith(NPY_MAGIC):
        raise InputError(f"{source}: is a single .npy array; a params file is a .npz archive")
    if path.suffix.lower() in KERAS_SUFFIXES or head.startswith(HDF5_MAGIC):
        _keras_layout(reader.layout, source)
        return reader.keras(read_keras(path, source, max_bytes), source)
    if _is_safetensors(head) or path.suffix.lower() == SAFETENSORS_SUFFIX:
        return _load_safetensors(path, max_bytes, reader)
    if _is_torch(path, head):
        with open(path, "rb") as f:
            return _load_torch(f, source, max_bytes, reader)
    with safeload.NpzReader(path, max_bytes) as npz:
        return _param_set_from_npz(npz, source, reader)


def _param_set_from_npz(npz: safeload.NpzReader, source: str, reader: LstmReader[T]) -> T:
    keys = set(npz.names)

    def get(name: str) -> Array:
        return as_float_array(npz.read(name), name, source)

    def get_meta(name: str) -> dict[str, Any]:
        return _parse_meta(npz.read(name), source)

    return reader.arrays(keys, get, get_meta, source)


def _load_buffered(data: bytes, source: str, max_bytes: int, reader: LstmReader[T]) -> T:
    """A params file that came through a pipe (no seeking, no name to go by), from its bytes."""
    if not data:
        raise InputError(f"{source}: empty (nothing to read), not a params file")
    if data.startswith(NPY_MAGIC):
        raise InputError(f"{source}: is a single .npy array; a params file is a .npz archive")
    named_onnx = reader.layout == "onnx" or source.lower().endswith(ONNX_SUFFIX)
    if named_onnx and not data.startswith(ZIP_MAGIC) and not _is_safetensors(data):
        return reader.onnx(data, source, None, max_bytes)
    if data.startswith(HDF5_MAGIC) or (data.startswith(ZIP_MAGIC) and is_keras_zip(data)):
        _keras_layout(reader.layout, source)
        return reader.keras(read_keras(io.BytesIO(data), source, max_bytes), source)
    if _is_safetensors(data):
        import tempfile

        with tempfile.TemporaryDirectory() as folder:  # safetensors reads files by name
            copy = Path(folder) / "params.safetensors"
            copy.write_bytes(data)
            return _load_safetensors(copy, max_bytes, reader, source)
    if is_torch_legacy(data) or (data.startswith(ZIP_MAGIC) and _is_torch_zip(io.BytesIO(data))):
        return _load_torch(io.BytesIO(data), source, max_bytes, reader)
    if not data.startswith(ZIP_MAGIC):
        raise InputError(
            f"{source}: not a .npz archive, a .safetensors file or a PyTorch checkpoint (for an "
            "ONNX model through a pipe, name its layout: onnx)"
        )
    with safeload.NpzReader(io.BytesIO(data), max_bytes, source) as npz:
        return _param_set_from_npz(npz, source, reader)


def _keras_layout(layout: str | None, source: str) -> None:
    if layout not in (None, "keras"):
        raise InputError(f"{source}: a Keras file holds keras LSTMs, not {layout}")


def is_keras_zip(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return is_keras_archive(z.namelist())
    except Exception:  # a damaged zip: the .npz reader says what is wrong
        return False


def _is_torch_zip(f: IO[bytes] | Path) -> bool:
    try:
        with zipfile.ZipFile(f) as z:
            return is_torch_zip(z.namelist())
    except Exception:  # a damaged zip raises many kinds; the .npz reader says what is wrong
        return False


def _is_torch(path: Path, head: bytes) -> bool:
    """A PyTorch checkpoint by name (.pt, .pth, .bin) or by content (torch.save's zip or
    legacy format)."""
    if path.suffix.lower() in TORCH_SUFFIXES or is_torch_legacy(head):
        return True
    return head.startswith(ZIP_MAGIC) and _is_torch_zip(path)


def _load_torch(f: IO[bytes], source: str, max_bytes: int, reader: LstmReader[T]) -> T:
    """A ``torch.save`` state dict, through the restricted unpickler of :mod:`.torchfile`."""
    with open_checkpoint(f, source, max_bytes) as ckpt:

        def get(name: str) -> Array:
            return as_float_array(ckpt.read(name), name, source)

        def get_meta(name: str) -> dict[str, Any]:
            raise AssertionError("a checkpoint's tensors are never meta")  # pragma: no cover

        keys = set(ckpt.tensors) - {"meta"}
        return reader.arrays(keys, get, get_meta, source)


def _load_safetensors(path: Path, max_bytes: int, reader: LstmReader[T], source: str = "") -> T:
    """A .safetensors file through the safetensors package's NumPy API (never torch)."""
    source = source or str(path)
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
                    f"{safeload.mib(max_bytes)} limit",
                    Hint.RAISE_INPUT_LIMIT,
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
        return reader.arrays(meta_keys, get, get_meta, source)


def _param_set_from(
    keys: set[str],
    get: Callable[[str], Array],
    get_meta: Callable[[str], dict[str, Any]],
    source: str,
    layout: str | None,
    key_prefix: str | None,
    cell: CellChoice | None = None,
) -> ParamSet:
    """The one cell of the one LSTM among ``keys`` as a ParamSet (see :func:`load_param_set`)."""
    from lstm_cli.layouts import choose_candidate, import_bias_halves, import_params

    from .cells import choose_cell, torch_cells

    found = choose_candidate(keys - {"meta"}, source, layout, key_prefix)
    candidate, cell_id = choose_cell(found, keys - {"meta"}, cell, source)
    meta_key = candidate.key("meta") if candidate.key("meta") in keys else "meta"
    stored = get_meta(meta_key) if meta_key in keys else {}
    clip, input_forget = Variant.switches_from_meta(stored, source)
    params = import_params(candidate, get, keys, source, clip, input_forget)
    halves = import_bias_halves(candidate, get, keys)
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
            "source_cell": {"layer": cell_id.layer, "direction": cell_id.direction},
            "source_cells": len(torch_cells(found, keys)),
            "n_features": params.n_features,
            "n_hidden": params.n_hidden,
            **params.variant.to_meta(),
        }
    return ParamSet(params=params, example=example, meta=meta, bias_halves=halves)


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
    if output_suffix(path, PARAM_SUFFIXES) != SAFETENSORS_SUFFIX:
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
    write_bytes(path, save(tensors, metadata=metadata), force)


def save_result(path: Path, arrays: Mapping[str, Array], force: bool = False) -> None:
    """A command's result arrays at ``path``, in the format its extension names: .npz (also
    for ``-`` and names without an extension), .safetensors, or .json (an object of nested
    lists, non-finite values as null)."""
    if output_suffix(path) == ".json":
        text = dumps({k: json_list(np.asarray(v)) for k, v in arrays.items()})
        write_bytes(path, text.encode() + b"\n", force)
        return
    save_arrays(path, arrays, None, force)


def save_param_set(path: Path, param_set: ParamSet, force: bool = False) -> None:
    """Write a params file: the eight arrays (and Pi, Pf, Po with peepholes), example inputs,
    and ``meta`` as a JSON string holding the variant (clip, input_forget) when it is set.
    A path ending in .safetensors writes that format, any other an .npz."""
    arrays: dict[str, Any] = dict(param_set.params.all_arrays())
    if param_set.example is not None:
        arrays.update(param_set.example.arrays())
    save_arrays(path, arrays, param_set.file_meta(), force)
