"""``lstm-cell grad``: the backward pass of a step or a sequence, with an optional numerical
gradient check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from lstm_cli.errors import OutputError
from lstm_cli.io.atomic import is_stdout
from lstm_cli.io.reader import stdin_is_piped
from lstm_cli.params import LSTMParams, ParamSet
from lstm_cli.render.learn import GradReport

from . import options as opt
from .inputs import (
    GradInputs,
    names_stdin,
    one_from_stdin,
    resolve_sequence_arrays,
    resolve_step_inputs,
    resolve_upstream,
)
from .output import check_export, emit, use_pretty

if TYPE_CHECKING:
    from lstm_cli.backward import CheckRow, Grads

CHECK_MAX_ENTRIES = 200  # the gradient check samples larger arrays


@opt.cell_options
def grad(
    source: opt.CellSource = opt.CellSource(),  # noqa: B008 (the cell options: see opt.cell_options)
    x: opt.XOpt = None,
    h: opt.HOpt = None,
    c: opt.COpt = None,
    xs: Annotated[
        str | None,
        typer.Option("--xs", help="A sequence, (T, F) or (T, B, F): backpropagate through time."),
    ] = None,
    dh_next: Annotated[
        str | None,
        typer.Option("--dh-next", help="Upstream gradient of h_next (of h_T). Default: ones."),
    ] = None,
    dc_next: Annotated[
        str | None,
        typer.Option("--dc-next", help="Upstream gradient of c_next (of c_T). Default: zeros."),
    ] = None,
    dhs: Annotated[
        str | None,
        typer.Option(
            "--dhs", help="With --xs: upstream gradient of every h_t, (T, H) or (T, B, H)."
        ),
    ] = None,
    dtype: opt.DTypeOpt = opt.DType.float64,
    check: Annotated[
        bool, typer.Option("--check", help="Also run a numerical gradient check (float64).")
    ] = False,
    check_tol: Annotated[
        float, typer.Option(min=0, help="--check fails (exit 1) above this relative error.")
    ] = 1e-6,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Also save the gradients: .npz, .json or .safetensors."),
    ] = None,
    export_view: opt.ExportViewOpt = None,
    force: opt.ForceOpt = False,
    max_input_mb: opt.MaxInputOpt = opt.DEFAULT_MAX_INPUT_MB,
    json_: opt.JsonOpt = False,
    pretty: opt.PrettyOpt = False,
) -> None:
    """The backward pass of one step (or of a sequence with --xs): gradients of every input,
    weight and bias, named dx_t, dh_prev, dc_prev, dWf, ..., dbc (dxs, dh0, dc0 for --xs),
    and dPi, dPf, dPo for a cell with peepholes.

    The loss is sum(dh_next * h_next) + sum(dc_next * c_next), plus sum(dhs[t] * h_t) for a
    sequence; by default dh_next is ones and dc_next zeros, the gradients of sum(h_next).
    Inputs and ONNX's variants (peepholes, clip, input_forget) are given as for step; the
    clip's derivative is taken as 0 where a pre-activation sits exactly on +-clip.

    \b
        lstm-cell grad --check

    \b
        lstm-cell grad --xs seq.npy --dh-next dh.json --out grads.npz
    """
    pretty = use_pretty(json_, pretty)
    check_export(export_view, force)
    if xs is not None and x is not None:
        raise typer.BadParameter("give --x (one step) or --xs (a sequence), not both")
    if dhs is not None and xs is None:
        raise typer.BadParameter("--dhs needs --xs (it is the gradient of every h_t)")
    specs = {"x_t": x, "h_prev": h, "c_prev": c, "xs": xs}
    up_specs = {"dh_next": dh_next, "dc_next": dc_next, **({"dhs": dhs} if xs else {})}
    one_from_stdin({**specs, **up_specs})
    if out is not None:  # refused before any work
        from lstm_cli.io.atomic import check_writable, output_suffix

        output_suffix(out)
        check_writable(out, force)
    max_bytes = max_input_mb << 20
    param_set, label = opt.load_cell(source, max_bytes)
    params_stdin = {"params": None if source.params is None else str(source.params)}
    found = _grad_inputs(specs, {**up_specs, **params_stdin}, param_set, label, max_bytes)
    cell = opt.cast_cell(param_set.params, dtype.value, label, param_set.bias_halves)
    g = _backward(cell, found, dtype.value)
    rows = None
    if check:
        rows = _check(param_set.params, found, check_tol)
    report = GradReport(
        g, cell, dtype.value, {**found.sources, "params": label},
        [*opt.precision_notes(param_set.params, dtype.value), *found.notes],
        sequence=xs is not None, upstream_specs=up_specs, rows=rows, check_tol=check_tol,
    )  # fmt: skip
    if out is not None:
        _save_grads(out, report, force)
    if out is None or not is_stdout(out):  # with --out -, stdout carries the file itself
        emit(report, pretty, export_view, force)
    if not report.check_ok:
        worst = max((r for r in rows or [] if not r.ok), key=lambda r: r.rel_error)
        typer.echo(
            f"Error: gradient check failed: {worst.name} has relative error "
            f"{worst.rel_error:.2e} > {check_tol:g}",
            err=True,
        )
        raise typer.Exit(1)


def _grad_inputs(
    specs: dict[str, str | None],
    up_specs: dict[str, str | None],
    param_set: ParamSet,
    label: str,
    max_bytes: int,
) -> GradInputs:
    """One step's inputs (as for step) or a sequence's, and the upstream gradients."""
    H = param_set.params.n_hidden
    if specs["xs"] is None:
        step_specs = {k: specs[k] for k in ("x_t", "h_prev", "c_prev")}
        stdin_free = not any(map(names_stdin, up_specs.values()))  # params or upstream read it
        found = resolve_step_inputs(
            step_specs, param_set, label, lambda: stdin_free and stdin_is_piped(), max_bytes
        )
        arrays, sources, notes = found.arrays, found.sources, found.notes
        state_shape, T = arrays["x_t"].shape[:-1] + (H,), None
    else:
        arrays, sources = resolve_sequence_arrays(specs, param_set, label, max_bytes)
        notes = []
        state_shape, T = arrays["xs"].shape[1:-1] + (H,), arrays["xs"].shape[0]
    up_specs = {k: v for k, v in up_specs.items() if k != "params"}  # (only stdin_free)
    upstream = resolve_upstream(up_specs, state_shape, T, max_bytes)
    return GradInputs(arrays, upstream, sources, notes, state_shape)


def _backward(cell: LSTMParams, found: GradInputs, dtype: str) -> Grads:
    """The analytic gradients in ``dtype``; refused (exit 1) when they overflow it."""
    from lstm_cli.backward import lstm_sequence_backward, lstm_step_backward

    a = {k: v.astype(dtype) for k, v in found.arrays.items()}
    up = {k: None if v is None else v.astype(dtype) for k, v in found.upstream.items()}
    if "xs" in a:
        g = lstm_sequence_backward(
            cell, a["xs"], a["h0"], a["c0"], up["dh_next"], up["dc_next"], up.get("dhs")
        )
    else:
        g = lstm_step_backward(
            cell, a["x_t"], a["h_prev"], a["c_prev"], up["dh_next"], up["dc_next"]
        )
    if not all(np.all(np.isfinite(v)) for v in g.grads.values()):
        raise OutputError(f"a gradient overflowed {dtype}: inputs too large")
    return g


def _check(cell: LSTMParams, found: GradInputs, tol: float) -> list[CheckRow]:
    """The numerical gradient check in float64, on at most CHECK_MAX_ENTRIES per array."""
    from lstm_cli.backward import gradient_check

    a, up = found.arrays, found.upstream
    names = ("xs", "h0", "c0") if "xs" in a else ("x_t", "h_prev", "c_prev")
    rows = gradient_check(
        cell, a[names[0]], a[names[1]], a[names[2]],
        dh_next=up["dh_next"], dc_next=up["dc_next"], dhs=up.get("dhs"),
        sequence="xs" in a, max_entries=CHECK_MAX_ENTRIES, tol=tol,
    )  # fmt: skip
    small = [r.name for r in rows if r.too_small and r.ok]
    if small:
        found.notes.append(
            f"Too small to check: {', '.join(small)} (below the floor that central differences "
            "resolve at this tolerance; not a failure)."
        )
    if any(r.checked < r.size for r in rows):
        found.notes.append(
            f"The gradient check sampled {CHECK_MAX_ENTRIES} random entries of each larger array."
        )
    return rows


def _save_grads(out: Path, report: GradReport, force: bool) -> None:
    """The gradients as JSON (the printed payload) for a .json path, else as .npz or
    .safetensors, by the extension."""
    from lstm_cli.io.atomic import output_suffix

    if output_suffix(out) == ".json":
        from lstm_cli.io.atomic import write_bytes
        from lstm_cli.io.jsonio import dumps

        write_bytes(out, dumps(report.to_json()).encode() + b"\n", force)
    else:
        from lstm_cli.io.paramfiles import save_result

        g = report.grads
        save_result(out, {**g.grads, "h_next": g.h_next, "c_next": g.c_next}, force)
    report.notes.append(f"Saved the gradients to {out}.")
