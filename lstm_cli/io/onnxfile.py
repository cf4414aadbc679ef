"""The LSTM node of an ONNX model: its initializers and attributes, read with the optional
``onnx`` package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lstm_cli.core import Array
from lstm_cli.errors import InputError
from lstm_cli.layouts import from_onnx, onnx_bias_halves
from lstm_cli.params import FORMAT_VERSION, ParamSet

from .arrays import as_float_array
from .cells import CellChoice, CellId, pick_cell
from .onnxdata import read_external
from .safeload import DEFAULT_MAX_BYTES

# ONNX LSTM inputs by position: X, W, R, B, sequence_lens, initial_h, initial_c, P.
_ONNX_LSTM_INPUTS = {"W": 1, "R": 2, "B": 3, "P": 7}
# The cells of a node by its direction attribute: index in W's first axis, and the cell.
_DIRECTION_CELLS = {
    "forward": (CellId(0),),
    "reverse": (CellId(0, reverse=True),),
    "bidirectional": (CellId(0), CellId(0, reverse=True)),
}


def load_onnx_model(
    data: bytes,
    source: str,
    node_name: str | None = None,
    cell: CellChoice | None = None,
    folder: Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ParamSet:
    """The first LSTM node of an ONNX model (or the one named ``node_name``): its W, R, B, P
    initializers (inline, or in external data files inside ``folder``, the model's folder) and
    its clip / input_forget attributes. Needs the optional ``onnx`` package. A node of direction
    ``bidirectional`` holds two cells (forward, reverse): ``cell`` picks one. ``layout`` 1
    (batch-first X and Y) changes no weight, and is read like 0."""
    model = _parse(data, source)
    import onnx

    node = _lstm_node(model.graph, source, node_name)
    label = f"{source}: LSTM node {node.name!r}" if node.name else f"{source}: LSTM node"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    cells = _check_attributes(attrs, label)
    chosen = pick_cell(list(cells), cell, source, f"LSTM node {node.name!r}")
    index = cells.index(chosen)
    arrays = _initializers(model.graph, node, label, source, folder, max_bytes)
    arrays = {k: _direction(v, k, index, len(cells), label) for k, v in arrays.items()}
    clip = attrs.get("clip")
    params = from_onnx(
        arrays["W"],
        arrays["R"],
        arrays.get("B"),
        arrays.get("P"),
        clip=None if clip is None else float(clip),
        input_forget=bool(attrs.get("input_forget", 0)),
        source=label,
    )
    hidden_size = attrs.get("hidden_size")
    if hidden_size is not None and hidden_size != params.n_hidden:
        raise InputError(f"{label}: hidden_size is {hidden_size} but R holds H = {params.n_hidden}")
    meta = {
        "format_version": FORMAT_VERSION,
        "source_layout": "onnx",
        "onnx_node": node.name,
        "source_cell": {"layer": 0, "direction": chosen.direction},
        "source_cells": len(cells),
        "n_features": params.n_features,
        "n_hidden": params.n_hidden,
        **params.variant.to_meta(),
    }
    halves = None if "B" not in arrays else onnx_bias_halves(arrays["B"])
    return ParamSet(params=params, meta=meta, bias_halves=halves)


def _direction(arr: Array, name: str, index: int, n_cells: int, label: str) -> Array:
    """One direction's slice (1, ...) of a node's array (D, ...)."""
    if arr.ndim < 1 or arr.shape[0] != n_cells:
        raise InputError(
            f"{label}: {name} has shape {arr.shape}; its direction holds {n_cells} "
            f"(num_directions = {n_cells})"
        )
    return arr[index : index + 1]


def describe_onnx_model(
    data: bytes, source: str, folder: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[dict[str, Any]]:
    """Every LSTM node of an ONNX model, as :class:`~lstm_cli.io.survey.LstmInfo` fields."""
    import onnx

    model = _parse(data, source)
    out = []
    for node in (
        n for n in model.graph.node if n.op_type == "LSTM" and n.domain in ("", "ai.onnx")
    ):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        label = f"{source}: LSTM node {node.name!r}"
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else str(direction)
        cells = _DIRECTION_CELLS.get(direction, ())
        arrays = _initializers(model.graph, node, label, source, folder, max_bytes)
        D, H4, F = arrays["W"].shape if arrays["W"].ndim == 3 else (0, 0, 0)
        variants = ["peepholes"] if "P" in arrays else []
        if attrs.get("clip") is not None:
            variants.append(f"clip {float(attrs['clip'])}")
        if attrs.get("input_forget"):
            variants.append("input_forget")
        if attrs.get("layout"):
            variants.append(f"layout {attrs['layout']}")
        out.append(
            {
                "name": node.name,
                "layout": "onnx",
                "framework": "ONNX LSTM node",
                "layers": 1,
                "directions": int(D),
                "n_features": int(F),
                "n_hidden": int(H4) // 4,
                "dtype": str(arrays["W"].dtype),
                "variants": tuple(variants),
                "proj_size": None,
                "cells": tuple(c.direction for c in cells),
            }
        )
    return out


def _parse(data: bytes, source: str) -> Any:
    """The ONNX model in ``data``; needs the optional ``onnx`` package."""
    try:
        import onnx
    except ImportError:
        raise InputError(
            f"{source}: reading .onnx models needs the onnx package (pip install onnx)"
        ) from None
    try:
        return onnx.load_model_from_string(data)
    except Exception as e:
        raise InputError(f"{source}: not a readable ONNX model ({type(e).__name__})") from None


def _lstm_node(graph: Any, source: str, node_name: str | None) -> Any:
    """The first LSTM node of ``graph``, or the one named ``node_name``."""
    lstms = [n for n in graph.node if n.op_type == "LSTM" and n.domain in ("", "ai.onnx")]
    if node_name is not None:
        named = [n for n in lstms if n.name == node_name]
        if not named:
            names = ", ".join(repr(n.name) for n in lstms) or "none"
            raise InputError(f"{source}: no LSTM node named {node_name!r} (LSTM nodes: {names})")
        lstms = named
    if not lstms:
        raise InputError(f"{source}: the model has no LSTM node")
    return lstms[0]


def _check_attributes(attrs: dict[str, Any], label: str) -> tuple[CellId, ...]:
    """The node's cells by its direction; refuse what this cell does not compute: other
    activations, an unknown direction or layout."""
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    cells = _DIRECTION_CELLS.get(direction)
    if cells is None:
        raise InputError(
            f"{label} has direction {direction!r}; expected forward, reverse or bidirectional"
        )
    acts = [a.decode() if isinstance(a, bytes) else str(a) for a in attrs.get("activations", [])]
    if acts and [a.lower() for a in acts] != ["sigmoid", "tanh", "tanh"] * len(cells):
        raise InputError(
            f"{label} uses activations {acts}; this tool's cell is Sigmoid, Tanh, Tanh"
        )
    input_forget = attrs.get("input_forget", 0)
    if input_forget not in (0, 1):
        raise InputError(f"{label}: input_forget is {input_forget}, expected 0 or 1")
    if attrs.get("layout", 0) not in (0, 1):
        raise InputError(f"{label}: layout is {attrs['layout']}, expected 0 or 1")
    return cells


def _initializers(
    graph: Any, node: Any, label: str, source: str, folder: Path | None, max_bytes: int
) -> dict[str, Array]:
    """W, R (required), B and P (optional) of ``node``, stored as initializers in the model
    or in external data files inside ``folder``."""
    import onnx
    from onnx import numpy_helper

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
            arrays[name] = as_float_array(
                read_external(tensor, name, label, folder, max_bytes), name, source
            )
            continue
        try:
            raw = numpy_helper.to_array(tensor)
        except Exception as e:
            raise InputError(f"{label}: {name} is unreadable ({type(e).__name__})") from None
        arrays[name] = as_float_array(raw, name, source)
    return arrays
