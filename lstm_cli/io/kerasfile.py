"""Keras 3 files, read with the optional h5py package: a ``.keras`` archive (``config.json``
and ``model.weights.h5`` in a zip) or a bare ``.weights.h5``. Each ``LSTM`` layer is one cell,
each ``Bidirectional(LSTM)`` two (its forward and backward layers: forward and reverse). In a
``.keras`` a layer is named by its name in the model's config (as ``model.get_layer`` knows
it); in a bare ``.weights.h5``, which has no config, by its path in the file (``lstm``,
``bidirectional``). Every array is read under the size limit; nothing is ever unpickled."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError

from .arrays import as_float_array
from .cells import CellId
from .jsonio import reject_constant
from .safeload import mib

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_WEIGHTS = "model.weights.h5"


@dataclass(frozen=True)
class KerasLstm:
    """One LSTM layer of a Keras file: its name and its cells' (kernel, recurrent_kernel,
    bias) arrays, (F, 4H), (H, 4H), (4H,) (a zero bias when the layer has none)."""

    name: str
    cells: dict[CellId, tuple[Array, Array, Array]]


def is_keras_archive(names: list[str]) -> bool:
    return _WEIGHTS in names and "config.json" in names


def read_keras(f: IO[bytes] | Path, source: str, max_bytes: int) -> list[KerasLstm]:
    """Every LSTM layer of a ``.keras`` archive or a ``.weights.h5`` file, in file order."""
    head = f.read_bytes()[:8] if isinstance(f, Path) else f.read(8)
    if not isinstance(f, Path):
        f.seek(0)
    if head.startswith(HDF5_MAGIC):
        return _read_h5(f, source, max_bytes, set())
    config, weights = _archive(f, source, max_bytes)
    try:
        names = _layer_names(config)
    except (ValueError, TypeError, AttributeError, KeyError):
        raise InputError(f"{source}: config.json is not a Keras model config") from None
    return _read_h5(io.BytesIO(weights), source, max_bytes, names)


def read_keras_config(path: Path, source: str, max_bytes: int) -> Any:
    """The model config (parsed config.json) of a ``.keras`` archive; None for a bare
    ``.weights.h5``, which has none."""
    with path.open("rb") as f:
        if f.read(8).startswith(HDF5_MAGIC):
            return None
    return _archive(path, source, max_bytes)[0]


def _archive(f: IO[bytes] | Path, source: str, max_bytes: int) -> tuple[Any, bytes]:
    """A ``.keras`` archive's parsed config.json and its weights file's bytes."""
    try:
        with zipfile.ZipFile(f) as z:
            if not is_keras_archive(z.namelist()):
                raise InputError(f"{source}: not a Keras 3 archive (no {_WEIGHTS}, config.json)")
            config = _member(z, "config.json", source, max_bytes)
            weights = _member(z, _WEIGHTS, source, max_bytes)
    except InputError:
        raise
    except Exception:  # a damaged zip raises many kinds (BadZipFile, NotImplementedError...)
        raise InputError(f"{source}: not a Keras .keras archive or a .weights.h5 file") from None
    try:
        return json.loads(config, parse_constant=reject_constant), weights
    except (ValueError, TypeError, RecursionError):
        raise InputError(f"{source}: config.json is not a Keras model config") from None


def _member(z: zipfile.ZipFile, name: str, source: str, max_bytes: int) -> bytes:
    size = z.getinfo(name).file_size
    if size > max_bytes:
        raise InputError(
            f"{source}: {name} inflates to {mib(size)}, over the {mib(max_bytes)} limit",
            Hint.RAISE_INPUT_LIMIT,
        )
    try:
        return z.read(name)
    except Exception as e:  # a damaged member raises many kinds
        raise InputError(f"{source}: {name} is corrupt ({type(e).__name__})") from None


def _layer_names(config: Any) -> set[str]:
    """The names of the LSTM and Bidirectional layers of a Keras model config, nested too."""
    names: set[str] = set()
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class_name") in ("LSTM", "Bidirectional"):
                names.add(str(node["config"]["name"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def _read_h5(f: IO[bytes] | Path, source: str, max_bytes: int, names: set[str]) -> list[Any]:
    try:
        import h5py
    except ImportError:
        raise InputError(
            f"{source}: reading Keras files needs the h5py package (pip install 'lstm-cell[keras]')"
        ) from None
    try:
        h5 = h5py.File(f, "r")
    except Exception as e:
        raise InputError(f"{source}: not a readable HDF5 file ({type(e).__name__})") from None
    with h5:
        found: list[KerasLstm] = []
        try:
            if "layers" not in h5:
                raise InputError(f"{source}: an HDF5 file that is not Keras 3 weights (no layers)")
            _walk(h5["layers"], "", source, max_bytes, names, found)
        except InputError:
            raise
        except Exception as e:  # h5py raises many kinds on a damaged file
            raise InputError(f"{source}: a damaged HDF5 file ({type(e).__name__})") from None
        return found


def _walk(group: Any, path: str, source: str, max_bytes: int, names: set[str], out: list) -> None:
    for key in group:
        item = group[key]
        if not hasattr(item, "keys"):
            continue
        where = f"{path}{key}"
        cell = _cell(item, f"{source}: {where}", max_bytes)
        pair = [_cell(item[k], f"{source}: {where}/{k}", max_bytes) if k in item else None
                for k in ("forward_layer", "backward_layer")]  # fmt: skip
        if cell is not None:
            out.append(KerasLstm(_name(item, where, names), {CellId(0): cell}))
        elif pair[0] is not None and pair[1] is not None:
            cells = {CellId(0): pair[0], CellId(0, reverse=True): pair[1]}
            out.append(KerasLstm(_name(item, where, names), cells))
        else:
            _walk(item, f"{where}/", source, max_bytes, names, out)


def _name(group: Any, where: str, names: set[str]) -> str:
    """The layer's config name in a .keras (stored as the ``name`` of its ``vars``), else its
    path in the file."""
    attr = group["vars"].attrs.get("name") if "vars" in group else None
    name = attr.decode() if isinstance(attr, bytes) else attr
    return str(name) if name is not None and str(name) in names else where


def _cell(group: Any, label: str, max_bytes: int) -> tuple[Array, Array, Array] | None:
    """(kernel, recurrent_kernel, bias) of an LSTM layer's group, or None if it is not one."""
    if "cell" not in group or "vars" not in group["cell"]:
        return None
    vars_ = group["cell"]["vars"]
    if "0" not in vars_ or "1" not in vars_:
        return None
    rec = vars_["1"]
    if len(rec.shape) != 2 or rec.shape[1] != 4 * rec.shape[0] or rec.shape[0] == 0:
        return None  # a GRU (3H), a SimpleRNN (H): not an LSTM
    kernel, recurrent = _read(vars_["0"], label, max_bytes), _read(rec, label, max_bytes)
    H = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 4 * H:
        raise InputError(f"{label}: kernel has shape {kernel.shape}, expected (F, {4 * H})")
    bias = _read(vars_["2"], label, max_bytes) if "2" in vars_ else np.zeros(4 * H, kernel.dtype)
    return kernel, recurrent, bias


def _read(dataset: Any, label: str, max_bytes: int) -> Array:
    n_bytes = int(np.prod(dataset.shape, dtype=object)) * 8
    if n_bytes > max_bytes:  # counted as 8-byte numbers: an upper bound
        raise InputError(
            f"{label}: {dataset.name} holds {mib(n_bytes)} or more, over the {mib(max_bytes)} "
            "limit",
            Hint.RAISE_INPUT_LIMIT,
        )
    return as_float_array(np.asarray(dataset[()]), dataset.name, label)


def keras_param_set(lstms: list[KerasLstm], source: str, name: str | None, choice: Any) -> Any:
    """The one cell of the one LSTM layer named ``name`` (any when the file holds one), picked
    by ``choice`` (a :class:`~lstm_cli.io.cells.CellChoice`), as a ParamSet."""
    from lstm_cli.layouts import from_keras
    from lstm_cli.params import FORMAT_VERSION, ParamSet

    from .cells import pick_cell

    listed = ", ".join(repr(k.name) for k in lstms) or "none"
    chosen = [k for k in lstms if name is None or k.name == name]
    if not chosen:
        what = "no LSTM layer" if name is None else f"no LSTM layer named {name!r}"
        raise InputError(f"{source}: {what} (LSTM layers: {listed})")
    if len(chosen) > 1:
        raise InputError(f"{source}: holds {len(chosen)} LSTM layers: {listed}", Hint.PICK_PREFIX)
    layer = chosen[0]
    cell = pick_cell(sorted(layer.cells), choice, source, f"Keras layer {layer.name!r}")
    params = from_keras(*layer.cells[cell], source=f"{source}: {layer.name}")
    meta = {
        "format_version": FORMAT_VERSION,
        "source_layout": "keras",
        "source_key_prefix": layer.name,
        "source_cell": {"layer": 0, "direction": cell.direction},
        "source_cells": len(layer.cells),
        "n_features": params.n_features,
        "n_hidden": params.n_hidden,
    }
    return ParamSet(params=params, meta=meta)


def describe_keras(lstms: list[KerasLstm]) -> list[dict[str, Any]]:
    """Every LSTM layer, as :class:`~lstm_cli.io.survey.LstmInfo` fields."""
    out = []
    for k in lstms:
        kernel, recurrent, _ = next(iter(k.cells.values()))
        out.append(
            {
                "name": k.name,
                "layout": "keras",
                "framework": "Keras LSTM" if len(k.cells) == 1 else "Keras Bidirectional(LSTM)",
                "layers": 1,
                "directions": len(k.cells),
                "n_features": int(kernel.shape[0]),
                "n_hidden": int(recurrent.shape[0]),
                "dtype": str(recurrent.dtype),
                "variants": (),
                "proj_size": None,
                "cells": tuple(c.direction for c in sorted(k.cells)),
            }
        )
    return out
