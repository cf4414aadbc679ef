"""``lstm-cell run --stack``: every layer and direction of the file's LSTM, as the framework
computes the whole module (:mod:`lstm_cli.stack`): a PyTorch ``nn.LSTM``, an ONNX LSTM node,
or the chain of LSTM layers of a Keras ``.keras`` model (wired by its config)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError, OutputError
from lstm_cli.io.arrays import cast_checked
from lstm_cli.io.atomic import is_stdout
from lstm_cli.io.reader import stdin_is_piped
from lstm_cli.render.stack import StackCell, StackReport

from . import options as opt
from .output import emit

if TYPE_CHECKING:
    from lstm_cli.params import LSTMParams
    from lstm_cli.stack import LayerWiring, StackResult

ChooseBackend = Callable[["LSTMParams", "int | None"], str]


def refuse_stack_options(
    source: opt.CellSource, gates: bool, plot: Path | None, chunk_steps: int | None
) -> None:
    """--stack runs every cell: a cell choice, or an option of the one-cell run, is refused."""
    used = {"--gates": gates, "--plot": plot is not None, "--chunk-steps": chunk_steps is not None}
    if source.params is None:
        raise typer.BadParameter("runs every cell of a params file, so it needs --params",
                                 None, param_hint="--stack")  # fmt: skip
    taken = [k for k, on in used.items() if on]
    if source.layer is not None or source.direction is not None:
        taken.insert(0, "--layer/--direction")
    if taken:
        raise typer.BadParameter(
            f"runs every layer and direction; {', '.join(taken)} cannot be combined with it",
            None,
            param_hint="--stack",
        )


@dataclass(frozen=True)
class Layers:
    """The cast cells of each layer, each layer's wiring and name, and the layers of a Keras
    model after its last LSTM layer (not run)."""

    cells: list[list[LSTMParams]]
    wiring: list[LayerWiring]
    names: list[str]
    left_out: list[str]
    notes: list[str]  # a float32 file computed in float64, or the reverse (said once)


def load_layers(source: opt.CellSource, dtype: str, max_bytes: int) -> Layers:
    """Every cell of the file's LSTM, per layer, with the variant options, cast to dtype, and
    how each layer is wired (nn.LSTM's, an ONNX ``reverse`` node's, or the Keras model's)."""
    from lstm_cli.io.kerasmodel import NoModelConfig
    from lstm_cli.io.survey import load_wired_stack
    from lstm_cli.stack import LayerWiring

    assert source.params is not None
    lay = None if source.layout is None else source.layout.value
    label = str(source.params)
    try:
        wired = load_wired_stack(source.params, max_bytes, lay, source.key_prefix)
    except NoModelConfig as e:
        raise InputError(f"{e.message} (without --stack: --key-prefix NAME --direction "
                         "forward|reverse)") from None  # fmt: skip
    one = source._replace(params=None, layout=None, key_prefix=None)
    layers = [
        [opt.cast_cell(opt.apply_variants(ps.params, one), dtype, label, ps.bias_halves)
         for ps in cells]
        for cells in wired.sets
    ]  # fmt: skip
    wiring = wired.wiring
    if wiring is None:
        first = wired.sets[0][0].meta.get("source_cell")
        reverse = isinstance(first, dict) and first.get("direction") == "reverse"
        wiring = [LayerWiring.torch(len(cells), reverse) for cells in layers]
    _check_shapes(layers, wiring, label, keras=wired.names is not None)
    names = wired.names or [f"l{k}" for k in range(len(layers))]  # torch's weight_ih_l0
    notes = opt.precision_notes(wired.sets[0][0].params, dtype)
    return Layers(layers, wiring, names, wired.left_out or [], notes)


def _check_shapes(
    layers: list[list[LSTMParams]], wiring: list[LayerWiring], label: str, keras: bool
) -> None:
    """Layer k > 0 reading the layer below's output features; every cell of one H (a Keras
    model's layers may differ in H, the two directions of a merge other than concat not)."""
    D, H = len(layers[0]), layers[0][0].n_hidden
    for k, cells in enumerate(layers):
        below = [c.n_hidden for c in layers[k - 1]] if k else []
        F = wiring[k - 1].out_features(below) if k else layers[0][0].n_features
        if keras:
            H = cells[0].n_hidden if wiring[k].merge != "concat" else -1
        for d, cell in enumerate(cells):
            if (len(cells) != D and not keras) or cell.n_features != F or H not in (
                -1, cell.n_hidden
            ):  # fmt: skip
                want = f"F = {F}" + (f", H = {H}" if H != -1 else "")
                raise InputError(f"{label}: layer {k} cell {d} has F = {cell.n_features}, H = "
                                 f"{cell.n_hidden}; a stack of {len(cells)} direction(s) "
                                 f"needs {want}")  # fmt: skip


def read_stack_inputs(
    source: opt.CellSource,
    layers: Layers,
    xs_spec: str | None,
    states: tuple[str | None, str | None],
    dtype: str,
    batch_first: bool,
    max_bytes: int,
) -> tuple[Array, dict[str, Array]]:
    """xs (T, [B,] F), or (B, T, F) batch first, and the initial states given (L*D, [B,] H)."""
    from lstm_cli.io.reader import read_array

    F = layers.cells[0][0].n_features
    if xs_spec is None and not stdin_is_piped():
        raise InputError("xs is missing: a stack runs over a sequence", Hint.GIVE_XS)
    xs = cast_checked(read_array(xs_spec or "-", "xs", max_bytes), dtype, "xs", xs_spec or "-")
    layout = f"(T, {F}) or (B, T, {F})" if batch_first else f"(T, {F}) or (T, B, {F})"
    if xs.ndim not in (2, 3) or xs.shape[-1] != F or 0 in xs.shape:
        raise InputError(f"xs has shape {xs.shape}, expected {layout}, T >= 1 and B >= 1 "
                         f"(F = {F} from {source.params})")  # fmt: skip
    cells = [c for layer in layers.cells for c in layer]
    hidden = {c.n_hidden for c in cells}
    batch = xs.shape[:1] if batch_first and xs.ndim == 3 else xs.shape[1:-1]
    init = {}
    for name, spec in zip(("h0", "c0"), states, strict=True):
        if spec is None:
            continue
        if len(hidden) > 1:
            raise InputError(f"{spec}: {name} is given, but the stack's layers differ in H "
                             f"({', '.join(map(str, sorted(hidden)))}); their states start "
                             "at zeros")  # fmt: skip
        want = (len(cells), *batch, cells[0].n_hidden)
        arr = cast_checked(read_array(spec, name, max_bytes), dtype, name, spec)
        if arr.shape != want:
            raise InputError(f"{spec}: {name} has shape {arr.shape}, expected {want} "
                             f"(L*D, [B,] H: {len(layers.cells)} layers, {len(cells)} cells, "
                             f"H = {cells[0].n_hidden})")  # fmt: skip
        init[name] = arr
    return xs, init


def run_stacked(
    source: opt.CellSource,
    xs_spec: str | None,
    states: tuple[str | None, str | None],
    dtype: str,
    out: Path | None,
    force: bool,
    max_bytes: int,
    pretty: bool,
    batch_first: bool = False,
    choose_backend: ChooseBackend | None = None,
    export: Path | None = None,
) -> None:
    """Run the stack and print every cell's h_n, c_n (and y's shape); --out saves y, h_n, c_n
    (h_n_0, c_n_0, ... per cell when the layers differ in H), y_l0, y_l1, ..."""
    from lstm_cli.stack import run_stack

    layers = load_layers(source, dtype, max_bytes)
    xs, init = read_stack_inputs(source, layers, xs_spec, states, dtype, batch_first, max_bytes)
    batch = (xs.shape[0] if batch_first else xs.shape[1]) if xs.ndim == 3 else None
    cells = [c for layer in layers.cells for c in layer]
    odd = next((c for c in cells if not c.is_plain), cells[0])
    backend = "numpy" if choose_backend is None else choose_backend(odd, batch)
    r = run_stack(layers.cells, xs, init.get("h0"), init.get("c0"), dtype=dtype,
                  backend=backend, wiring=layers.wiring, batch_first=batch_first)  # fmt: skip
    if not all(np.all(np.isfinite(a)) for a in (*r.h_cells, *r.c_cells)):
        raise OutputError(f"the result overflowed {dtype} (c_n is not finite): inputs too large")
    if out is not None:
        _save(out, r, force)
        if is_stdout(out):
            return
    info = {"layers": len(layers.cells), "directions": [len(c) for c in layers.cells],
            "y": list(r.y.shape), "dtype": dtype, "params": str(source.params),
            "out": None if out is None else str(out), "batch_first": batch_first,
            "backend": backend}  # fmt: skip
    emit(StackReport(_cells(layers), r.h_cells, r.c_cells, info, layers.left_out,
                     _wiring_notes(layers), layers.notes), pretty, export, force)  # fmt: skip


def _save(out: Path, r: StackResult, force: bool) -> None:
    from lstm_cli.io.paramfiles import save_result

    per_layer = {f"y_l{k}": y for k, y in enumerate(r.layer_outputs)}
    if r.uniform:
        states = {"h_n": r.h_n, "c_n": r.c_n}
    else:
        states = {f"{n}_{i}": a for n, cells in (("h_n", r.h_cells), ("c_n", r.c_cells))
                  for i, a in enumerate(cells)}  # fmt: skip
    save_result(out, {"y": r.y, **states, **per_layer}, force=force)


def _cells(layers: Layers) -> list[StackCell]:
    return [
        StackCell(k, layers.names[k], ("forward", "reverse")[d], c.n_features, c.n_hidden,
                  layers.wiring[k].backwards[d])
        for k, cells in enumerate(layers.cells)
        for d, c in enumerate(cells)
    ]  # fmt: skip


def _wiring_notes(layers: Layers) -> list[str]:
    """A line per layer whose wiring is not nn.LSTM's: its merge, its last step only."""
    notes = []
    for name, wire in zip(layers.names, layers.wiring, strict=True):
        merged = len(wire.backwards) == 2 and wire.merge != "concat"
        said = [f"merge {wire.merge}"] if merged else []
        if not wire.return_sequences:
            said.append("returns its last step only (return_sequences=False)")
        if said:
            notes.append(f"{name}: {', '.join(said)}")
    return notes
