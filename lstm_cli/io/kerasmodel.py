"""The wiring of a Keras 3 model's LSTM layers, from a ``.keras`` archive's ``config.json``:
the chain of ``LSTM`` and ``Bidirectional(LSTM)`` layers that ``run --stack`` runs.

A Sequential model, or a Functional one whose layers form one line (each reads the one before),
is walked from its input. ``InputLayer``, ``Dropout`` and ``SpatialDropout`` are identity at
inference and may sit anywhere before the last LSTM layer; any other layer there is refused,
naming it and its class. The layers after the last LSTM layer (a ``Dense`` head, ...) are not
run: they are listed as left out. Each LSTM layer's ``return_sequences`` and ``go_backwards``,
and a Bidirectional's ``merge_mode`` and backward layer, become a
:class:`~lstm_cli.stack.LayerWiring`; an activation other than tanh / sigmoid is refused.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_cli.errors import InputError
from lstm_cli.params import ParamSet
from lstm_cli.stack import MERGE_MODES, LayerWiring

from .cells import CellChoice
from .kerasfile import keras_param_set, read_keras, read_keras_config

IDENTITY = ("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")
RNN = ("LSTM", "Bidirectional")
ACTIVATIONS = (("activation", "tanh"), ("recurrent_activation", "sigmoid"))


class NoModelConfig(InputError):
    """A bare ``.weights.h5`` asked for a stack: its cells can be run one at a time."""


@dataclass(frozen=True)
class KerasStack:
    """The cells of each LSTM layer of the chain (forward, then backward), its wiring, the
    layers' names and the layers after the last LSTM layer, ``name (Class)``, not run."""

    sets: list[list[ParamSet]]
    wiring: list[LayerWiring]
    names: list[str]
    left_out: list[str]


def load_keras_stack(path: Path, max_bytes: int) -> KerasStack:
    """The chain of LSTM layers of the model in the ``.keras`` archive ``path``.

    Raises:
        InputError: a bare ``.weights.h5`` (no config), a model that is not one chain of LSTM
            layers, or an LSTM layer this tool does not compute as Keras does.
    """
    source = str(path)
    config = read_keras_config(path, source, max_bytes)
    if config is None:
        raise NoModelConfig(
            f"{source}: a .weights.h5 file has no model config, and a stack's wiring "
            "(return_sequences, merge_mode, go_backwards) is in the .keras archive's config; "
            "one cell can still be run by its layer name and direction"
        )
    lstms = read_keras(path, source, max_bytes)
    try:
        rnns, left_out = keras_chain(config, source)
        wiring = [_wiring(layer, source) for layer in rnns]
        names = [str(layer["config"]["name"]) for layer in rnns]
    except InputError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise InputError(f"{source}: config.json is not a Keras model config") from None
    sets = []
    for layer, name in zip(rnns, names, strict=True):
        directions = ("forward", "reverse") if layer["class_name"] == "Bidirectional" else (None,)
        sets.append([keras_param_set(lstms, source, name, CellChoice(0, d)) for d in directions])
    return KerasStack(sets, wiring, names, left_out)


def keras_chain(config: Any, source: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The LSTM and Bidirectional layers' configs of a model config, input first, and the
    layers after the last of them, ``name (Class)``. A config of another shape raises
    KeyError, IndexError, TypeError, ValueError or AttributeError (the caller's refusal)."""
    layers = _in_order(config, source)
    last = max((i for i, layer in enumerate(layers) if layer["class_name"] in RNN), default=-1)
    if last < 0:
        raise InputError(f"{source}: the model has no LSTM layer")
    chain = layers[: last + 1]
    for layer in chain:
        if layer["class_name"] not in (*RNN, *IDENTITY):
            raise InputError(
                f"{source}: layer {_label(layer)} sits in the chain of LSTM layers; only "
                "InputLayer, Dropout and SpatialDropout may (identity at inference)"
            )
    rnns = [layer for layer in chain if layer["class_name"] in RNN]
    for layer, after in itertools.pairwise(rnns):
        if not _flag(_inner(layer, source)[0], "return_sequences"):
            raise InputError(
                f"{source}: layer {_label(layer)} returns its last step only "
                f"(return_sequences=False) but feeds layer {_label(after)}"
            )
    return rnns, [_label(layer) for layer in layers[last + 1 :]]


def _label(layer: dict[str, Any]) -> str:
    return f"{layer['config']['name']!r} ({layer['class_name']})"


def _in_order(config: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """A Sequential's layers, or a linear Functional's, from the input to the output."""
    kind, body = config["class_name"], config["config"]
    layers = body["layers"]
    if kind == "Sequential":
        return list(layers)
    if kind not in ("Functional", "Model"):
        raise InputError(f"{source}: config.json holds a {kind} model, not Sequential or "
                         "Functional")  # fmt: skip
    by_name = {layer["config"]["name"]: layer for layer in layers}
    ins, outs = _ends(body["input_layers"]), _ends(body["output_layers"])
    if len(ins) != 1 or len(outs) != 1:
        raise InputError(f"{source}: the model has {len(ins)} inputs and {len(outs)} outputs; "
                         "a stack is one chain from one input to one output")  # fmt: skip
    order = [by_name[outs[0]]]
    while order[-1]["class_name"] != "InputLayer":
        if len(order) > len(layers):
            raise ValueError("a cycle")
        order.append(by_name[_reads(order[-1], source)])
    order.reverse()
    if len(order) != len(layers):
        off = [_label(layer) for layer in layers if layer not in order]
        raise InputError(f"{source}: layer {off[0]} is off the chain from input to output; "
                         "a stack is one chain of layers")  # fmt: skip
    return order


def _ends(value: list[Any]) -> list[str]:
    """The layer names of ``input_layers`` / ``output_layers``: [name, 0, 0] or a list of them."""
    return [str(value[0])] if isinstance(value[0], str) else [str(v[0]) for v in value]


def _reads(layer: dict[str, Any], source: str) -> str:
    """The name of the one layer whose first output this layer reads, else refused."""
    nodes = layer["inbound_nodes"]
    tensors = _tensors(nodes)
    if len(nodes) != 1 or len(tensors) != 1 or tensors[0][1:] != [0, 0]:
        raise InputError(
            f"{source}: layer {_label(layer)} reads {len(tensors)} tensors in {len(nodes)} "
            "calls; a stack is one chain where each layer reads the one before"
        )
    return str(tensors[0][0])


def _tensors(node: Any) -> list[list[Any]]:
    """The ``keras_history`` of every tensor an inbound node names (in args and kwargs)."""
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") == "__keras_tensor__":
                found.append(list(item["config"]["keras_history"]))
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _inner(layer: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """The LSTM configs of a layer: itself, or a Bidirectional's forward and backward layers
    (the backward one, when not given, is the forward one reading backwards)."""
    if layer["class_name"] == "LSTM":
        return [layer]
    cfg = layer["config"]
    forward = cfg["layer"]
    backward = cfg.get("backward_layer") or {
        "class_name": forward["class_name"],
        "config": {**forward["config"], "go_backwards": not forward["config"].get("go_backwards")},
    }
    for inner in (forward, backward):
        if inner["class_name"] != "LSTM":
            raise InputError(
                f"{source}: layer {_label(layer)} wraps a {inner['class_name']}, not an LSTM"
            )
    return [forward, backward]


def _wiring(layer: dict[str, Any], source: str) -> LayerWiring:
    """How Keras runs the layer: each cell's go_backwards (its outputs stay in the order it
    read them), a Bidirectional's backward outputs put back in time order, merged."""
    inner = _inner(layer, source)
    for cell in inner:
        for key, want in ACTIVATIONS:
            got = cell["config"].get(key, want)
            if got != want:
                raise InputError(f"{source}: layer {_label(layer)} has {key} {got!r}; only "
                                 f"{want!r} is computed")  # fmt: skip
    merge = layer["config"].get("merge_mode", "concat") if len(inner) == 2 else "concat"
    if merge not in MERGE_MODES:
        raise InputError(
            f"{source}: layer {_label(layer)} has merge_mode {merge!r}; a stack runs concat, "
            "sum, ave or mul (None returns two outputs, not one chain)"
        )
    return LayerWiring(
        backwards=tuple(_flag(c, "go_backwards") for c in inner),
        restore=(False, True)[: len(inner)],
        merge=str(merge),
        return_sequences=_flag(inner[0], "return_sequences"),
    )


def _flag(layer: dict[str, Any], key: str) -> bool:
    """A boolean of a layer's config (False when absent, Keras's default); TypeError if it is
    not a boolean."""
    value = layer["config"].get(key, False)
    if not isinstance(value, bool):
        raise TypeError(f"{key} is not a boolean")
    return value
