"""``lstm-cell run --stack``: every layer and direction of the file's LSTM, as the framework
computes the whole module (:mod:`lstm_cli.stack`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError, OutputError
from lstm_cli.io.arrays import cast_checked
from lstm_cli.io.atomic import is_stdout
from lstm_cli.io.reader import stdin_is_piped

from . import options as opt
from .output import emit

if TYPE_CHECKING:
    from rich.console import RenderableType

    from lstm_cli.params import LSTMParams


@dataclass(frozen=True)
class StackReport:
    """The stack's final states and its output's shape (the output itself goes to --out)."""

    h_n: Array
    c_n: Array
    info: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {**self.info, "h_n": self.h_n.tolist(), "c_n": self.c_n.tolist()}

    def view(self) -> RenderableType:
        from rich.pretty import Pretty

        return Pretty(self.to_json())


def refuse_stack_options(
    source: opt.CellSource,
    gates: bool,
    batch_first: bool,
    plot: Path | None,
    export_view: Path | None,
    chunk_steps: int | None,
) -> None:
    """--stack runs every cell: a cell choice, or an option of the one-cell run, is refused."""
    used = {
        "--gates": gates,
        "--batch-first": batch_first,
        "--plot": plot is not None,
        "--export-view": export_view is not None,
        "--chunk-steps": chunk_steps is not None,
    }
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


def load_layers(
    source: opt.CellSource, dtype: str, max_bytes: int
) -> tuple[list[list[LSTMParams]], bool]:
    """Every cell of the file's LSTM, per layer, with the variant options, cast to dtype; and
    whether a one-direction LSTM reads the sequence backwards (an ONNX ``reverse`` node)."""
    import dataclasses

    from lstm_cli.io.survey import load_stack

    assert source.params is not None
    lay = None if source.layout is None else source.layout.value
    label = str(source.params)
    sets = load_stack(source.params, max_bytes, lay, source.key_prefix)
    one = dataclasses.replace(source, params=None, layout=None, key_prefix=None)
    layers = [
        [opt.cast_cell(opt.apply_variants(ps.params, one), dtype, label, ps.bias_halves)
         for ps in cells]
        for cells in sets
    ]  # fmt: skip
    _check_shapes(layers, label)
    first = sets[0][0].meta.get("source_cell")
    reverse = len(sets[0]) == 1 and isinstance(first, dict) and first.get("direction") == "reverse"
    return layers, reverse


def _check_shapes(layers: list[list[LSTMParams]], label: str) -> None:
    """Every cell of H units; layer k > 0 reading D*H features (the layer below's output)."""
    D, H = len(layers[0]), layers[0][0].n_hidden
    for k, cells in enumerate(layers):
        for d, cell in enumerate(cells):
            F = layers[0][0].n_features if k == 0 else D * H
            if len(cells) != D or (cell.n_features, cell.n_hidden) != (F, H):
                raise InputError(
                    f"{label}: layer {k} cell {d} has F = {cell.n_features}, H = "
                    f"{cell.n_hidden}; a stack of {D} direction(s) needs F = {F}, H = {H}"
                )


def run_stacked(
    source: opt.CellSource,
    xs_spec: str | None,
    states: tuple[str | None, str | None],
    dtype: str,
    out: Path | None,
    force: bool,
    max_bytes: int,
    pretty: bool,
) -> None:
    """Run the stack and print h_n, c_n (and y's shape); --out saves y, h_n, c_n, y_l0, ..."""
    from lstm_cli.io.reader import read_array
    from lstm_cli.stack import run_stack

    layers, reverse = load_layers(source, dtype, max_bytes)
    L, D = len(layers), len(layers[0])
    F, H = layers[0][0].n_features, layers[0][0].n_hidden
    if xs_spec is None and not stdin_is_piped():
        raise InputError("xs is missing: a stack runs over a sequence", Hint.GIVE_XS)
    xs = cast_checked(read_array(xs_spec or "-", "xs", max_bytes), dtype, "xs", xs_spec or "-")
    if xs.ndim not in (2, 3) or xs.shape[-1] != F or xs.shape[0] == 0:
        raise InputError(f"xs has shape {xs.shape}, expected (T, {F}) or (T, B, {F}), T >= 1 "
                         f"(F = {F} from {source.params})")  # fmt: skip
    want = (L * D, *xs.shape[1:-1], H)
    init = {}
    for name, spec in zip(("h0", "c0"), states, strict=True):
        if spec is not None:
            arr = cast_checked(read_array(spec, name, max_bytes), dtype, name, spec)
            if arr.shape != want:
                raise InputError(f"{spec}: {name} has shape {arr.shape}, expected {want} "
                                 f"(L*D, [B,] H: {L} layers, {D} directions, H = {H})")  # fmt: skip
            init[name] = arr
    r = run_stack(layers, xs, init.get("h0"), init.get("c0"), dtype=dtype, reverse=reverse)
    if not (np.all(np.isfinite(r.h_n)) and np.all(np.isfinite(r.c_n))):
        raise OutputError(f"the result overflowed {dtype} (c_n is not finite): inputs too large")
    if out is not None:
        from lstm_cli.io.paramfiles import save_result

        per_layer = {f"y_l{k}": y for k, y in enumerate(r.layer_outputs)}
        save_result(out, {"y": r.y, "h_n": r.h_n, "c_n": r.c_n, **per_layer}, force=force)
        if is_stdout(out):
            return
    info = {"layers": L, "directions": D, "y": list(r.y.shape), "dtype": dtype,
            "params": str(source.params), "out": None if out is None else str(out)}  # fmt: skip
    emit(StackReport(r.h_n, r.c_n, info), pretty)
