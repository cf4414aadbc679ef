"""``lstm-cell step``: one LSTM step with every gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from lstm_cli.errors import OutputError
from lstm_cli.io.arrays import cast_checked
from lstm_cli.io.reader import stdin_is_piped

from . import options as opt
from .inputs import names_stdin, resolve_step_inputs
from .output import check_export, emit, print_explanation, use_pretty


@opt.cell_options
def step(
    source: opt.CellSource = opt.CellSource(),  # noqa: B008 (the cell options: see opt.cell_options)
    x: opt.XOpt = None,
    h: opt.HOpt = None,
    c: opt.COpt = None,
    dtype: opt.DTypeOpt = opt.DType.float64,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Also save every array of the result: .npz, .json or .safetensors."
        ),
    ] = None,
    export_view: opt.ExportViewOpt = None,
    force: opt.ForceOpt = False,
    max_input_mb: opt.MaxInputOpt = opt.DEFAULT_MAX_INPUT_MB,
    json_: opt.JsonOpt = False,
    pretty: opt.PrettyOpt = False,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Walk through every equation with the numbers plugged in."),
    ] = False,
) -> None:
    """Run one LSTM step and show every gate.

    Inputs come from --x/--h/--c (.npy or JSON files, - for stdin), or a JSON object piped on
    stdin; with none at all, the example inputs stored with the params are used, so

    \b
        lstm-cell step

    prints the seed notebook's h_next and c_next. Piped JSON in, JSON out:

    \b
        echo '{"x": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]}' | lstm-cell step | jq .h_next

    --params takes PyTorch, Keras and ONNX weights too (layout detected from the keys):

    \b
        lstm-cell step --params lstm.safetensors --key-prefix lstm. --x x.json

    --explain walks through the equations with the numbers plugged in (plain text in a pipe).
    """
    if explain and json_:
        raise typer.BadParameter("--explain prints text; it excludes --json")
    pretty = use_pretty(json_, pretty)
    check_export(export_view, force)
    if out is not None:  # refused before any work
        from lstm_cli.io.atomic import check_writable, output_suffix

        output_suffix(out)
        check_writable(out, force)
    max_bytes = max_input_mb << 20
    param_set, label = opt.load_cell(source, max_bytes)
    params_took_stdin = source.params is not None and names_stdin(str(source.params))
    found = resolve_step_inputs(
        {"x_t": x, "h_prev": h, "c_prev": c}, param_set, label,
        lambda: not params_took_stdin and stdin_is_piped(), max_bytes,
    )  # fmt: skip
    cell = opt.cast_cell(param_set.params, dtype.value, label, param_set.bias_halves)
    inputs = {k: cast_checked(v, dtype.value, k, found.sources[k]) for k, v in found.arrays.items()}
    result = cell.step(inputs["x_t"], inputs["h_prev"], inputs["c_prev"])
    if not (np.all(np.isfinite(result.h_next)) and np.all(np.isfinite(result.c_next))):
        raise OutputError(
            f"the result overflowed {dtype.value} (c_next is not finite): inputs too large"
        )
    notes = [*opt.precision_notes(param_set.params, dtype.value), *found.notes]
    if out is not None:
        from lstm_cli.io.atomic import is_stdout
        from lstm_cli.io.paramfiles import save_result

        save_result(out, result.arrays(), force=force)
        if is_stdout(out):  # stdout carries the .npz itself
            return None
        notes.append(f"Saved every array of the result to {out}.")
    if explain:
        return print_explanation(result, cell, pretty, found.notes, export_view, force)
    from lstm_cli.render.reports import StepReport

    sources = {**found.sources, "params": label}
    layout_read = param_set.meta.get("source_layout")
    report = StepReport(result, cell, dtype.value, sources, notes, layout_read)
    emit(report, pretty, export_view, force)
