"""``lstm-cell run``: the cell over a whole sequence. Registers itself on the app of
:mod:`lstm_cli.cli` (imported at the bottom of that module). Module-level imports stay light:
Rich only inside the functions that draw."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from . import fileio
from .cli import (
    DEFAULT_MAX_INPUT_MB,
    ClipOpt,
    COpt,
    DType,
    ForceOpt,
    FromOpt,
    HOpt,
    InputForgetOpt,
    JsonOpt,
    KeyPrefixOpt,
    MaxInputOpt,
    NoClipOpt,
    NoPeepholesOpt,
    ParamsOpt,
    PrettyOpt,
    _cast_cell,
    _load_cell,
    _use_pretty,
    _write_stdout,
    app,
)
from .core import Array
from .errors import InputError
from .params import LSTMParams

PROGRESS_MIN_STEPS = 20_000  # shorter runs end before a progress bar would help

if TYPE_CHECKING:
    from .render import TimeBins


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A callable advancing a progress bar on stderr: only on a terminal and for long runs."""
    if total < PROGRESS_MIN_STEPS or not sys.stderr.isatty():
        yield lambda n: None
        return
    from .render import make_progress

    with make_progress() as progress:
        task = progress.add_task("steps", total=total)
        yield lambda n: progress.advance(task, n)


def _check_out(out: Path, force: bool) -> None:
    """Refuse an output path that cannot be written before spending time on the run."""
    if out.is_dir():
        raise InputError(f"{out}: is a directory; give a file path to write")
    if out.exists() and not force:
        raise InputError(f"{out}: already exists; pass --force to overwrite it")
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist")


def _run_steps(
    cell: LSTMParams,
    xs: fileio.NpyStream | fileio.ArraySequence,
    states: dict[str, Array],
    T: int,
    B: int | None,
    batch_first: bool,
    dtype: str,
    xs_source: str,
    chunk_steps: int | None,
    keep: bool,
    gates: bool,
    pretty: bool,
) -> tuple[Array, Array, dict[str, list[Array]], TimeBins | None, int]:
    """Step through xs chunk by chunk: (h_next, c_next, the kept sequences, heatmap bins,
    console width). Memory stays flat unless ``keep``."""
    from .sequence import GATE_NAMES, default_chunk_steps, iter_sequence  # only when run

    H = cell.n_hidden

    def chunks(steps: int) -> Iterator[Array]:  # each chunk in dtype, refusing overflow
        for chunk in xs.chunks(steps, batch_first):
            yield fileio.cast_checked(chunk, dtype, "xs", xs_source)

    bins = None
    width = 80
    if pretty:
        from .render import HEATMAP_MAX_FULL_STEPS, TimeBins, console_width

        width = console_width()  # a column per step up to a few hundred, else bins of steps
        n_cols = T if T <= HEATMAP_MAX_FULL_STEPS else max(10, width - 12)
        bins = TimeBins(T, H, n_cols)
    steps = chunk_steps or default_chunk_steps(H, B or 1, dtype)
    kept: dict[str, list[Array]] = {"h_seq": [], "c_seq": [], **{g: [] for g in GATE_NAMES}}
    h_next = c_next = None
    with _progress(T) as advance:
        for part in iter_sequence(
            cell, chunks(steps), states.get("h_prev"), states.get("c_prev"),
            dtype=dtype, return_sequences=keep or bins is not None,
            return_gates=gates, chunk_steps=steps,
        ):  # fmt: skip
            if keep and part.h_seq is not None and part.c_seq is not None:
                kept["h_seq"].append(part.h_seq)
                kept["c_seq"].append(part.c_seq)
                for g, a in (part.gates or {}).items():
                    kept[g].append(a)
            if bins is not None and part.h_seq is not None:
                bins.add(part.start, part.h_seq if B is None else part.h_seq[:, 0])
            h_next, c_next = part.h_next, part.c_next
            advance(part.n_steps)
    assert h_next is not None and c_next is not None  # T >= 1, checked with the inputs
    return h_next, c_next, kept, bins, width


@app.command()
def run(
    params: ParamsOpt = None,
    layout: FromOpt = None,
    key_prefix: KeyPrefixOpt = None,
    xs: Annotated[
        str | None,
        typer.Option(
            "--xs",
            help="Inputs (T, F), or (T, B, F) for a batch: .npy (streamed), .json, or - "
            "for stdin. Default: stdin when piped.",
        ),
    ] = None,
    h: HOpt = None,
    c: COpt = None,
    batch_first: Annotated[
        bool,
        typer.Option("--batch-first", help="A 3-D xs is (B, T, F), and saved sequences (B, T, H)."),
    ] = False,
    dtype: Annotated[DType, typer.Option(help="Compute in this dtype.")] = DType.float64,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Save h_seq, c_seq, h_next, c_next (.npz, exactly this path)."
        ),
    ] = None,
    gates: Annotated[
        bool, typer.Option("--gates", help="With --out, also save i_t, f_t, o_t, c_t_candidate.")
    ] = False,
    chunk_steps: Annotated[
        int | None,
        typer.Option(min=1, help="Steps read and projected at once. Default: about 4 MiB of work."),
    ] = None,
    clip: ClipOpt = None,
    no_clip: NoClipOpt = False,
    input_forget: InputForgetOpt = None,
    no_peepholes: NoPeepholesOpt = False,
    force: ForceOpt = False,
    max_input_mb: MaxInputOpt = DEFAULT_MAX_INPUT_MB,
    json_: JsonOpt = False,
    pretty: PrettyOpt = False,
) -> None:
    """Run the LSTM cell over a sequence and print the final h_next and c_next.

    Step t starts from step t-1's h_next and c_next (from --h/--c, else zeros, at t = 0).
    A .npy xs is read in chunks, so memory stays flat however long the sequence, unless
    --out keeps the sequences. JSON in: a list, or {"xs": ..., "h_prev": ..., "c_prev": ...}.

    \b
        lstm-cell run --params p.npz --xs xs.npy --out seq.npz

    \b
        echo '{"xs": [[1,0,0,0,0,0,0,0,0,0]]}' | lstm-cell run | jq .h_next

    ONNX's variants stored in the params file (peepholes, clip, input_forget) are
    computed as in step; the variant options below change them.
    """
    use_pretty = _use_pretty(json_, pretty)
    max_bytes = max_input_mb << 20
    if gates and out is None:
        raise typer.BadParameter("saves the gate sequences, so it needs --out PATH.npz", None,
                                 param_hint="--gates")  # fmt: skip
    if out is not None:
        _check_out(out, force)
    param_set, params_label = _load_cell(
        params, max_bytes, layout, key_prefix, clip, no_clip, input_forget, no_peepholes
    )
    cell = _cast_cell(param_set.params, dtype.value, params_label)  # variants included
    H, F = cell.n_hidden, cell.n_features
    inputs, T, B = fileio.resolve_run_inputs(
        xs, {"h_prev": h, "c_prev": c}, F, H, params_label, batch_first, max_bytes=max_bytes
    )
    with closing(inputs.xs):  # closed on every way out, errors and Ctrl-C included
        states = {
            k: fileio.cast_checked(v, dtype.value, k, inputs.sources[k])
            for k, v in inputs.states.items()
        }
        h_next, c_next, kept, bins, width = _run_steps(
            cell, inputs.xs, states, T, B, batch_first, dtype.value, inputs.sources["xs"],
            chunk_steps, keep=out is not None, gates=gates, pretty=use_pretty,
        )  # fmt: skip

    if not (np.all(np.isfinite(h_next)) and np.all(np.isfinite(c_next))):
        raise InputError(
            f"the result overflowed {dtype.value} (c_next is not finite): inputs too large",
            exit_code=1,
        )
    if out is not None:
        arrays = {k: np.concatenate(v) for k, v in kept.items() if v}
        if batch_first and B is not None:  # (T, B, H) -> (B, T, H), like the input
            arrays = {k: np.swapaxes(v, 0, 1) for k, v in arrays.items()}
        fileio.save_npz(out, {**arrays, "h_next": h_next, "c_next": c_next}, force=force)
    state_shape = list(h_next.shape)
    shapes = {
        "xs": list(inputs.xs.shape),
        "h_prev": list(inputs.states["h_prev"].shape) if "h_prev" in inputs.states else state_shape,
        "c_prev": list(inputs.states["c_prev"].shape) if "c_prev" in inputs.states else state_shape,
        "h_next": state_shape,
    }
    sources = {"h_prev": "zeros", "c_prev": "zeros", **inputs.sources, "params": params_label}
    if use_pretty:
        from .render import ShapeRow, print_view, run_view

        rows = [
            ShapeRow(k, tuple(v), dtype.value, sources.get(k, "result")) for k, v in shapes.items()
        ]
        notes = [f"Saved h_seq, c_seq{', gates' if gates else ''} to {out}."] if out else []
        print_view(run_view(rows, h_next, c_next, bins, width, notes))
        return
    payload = {
        "h_next": h_next.tolist(),
        "c_next": c_next.tolist(),
        "steps": T,
        "batch": B,
        "dtype": dtype.value,
        "shapes": shapes,
        "sources": sources,
        "out": str(out) if out is not None else None,
    }
    _write_stdout(fileio.dumps(payload))
