"""``lstm-cell run``: the cell over a whole sequence, streamed from .npy in flat memory."""

from __future__ import annotations

import enum
import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import numpy as np
import typer

from lstm_cli.core import Array
from lstm_cli.errors import InputError, OutputError
from lstm_cli.io.arrays import cast_checked
from lstm_cli.io.atomic import check_writable, is_stdout, output_suffix
from lstm_cli.params import LSTMParams
from lstm_cli.render.run import RunReport

from . import options as opt
from .inputs import resolve_run_inputs
from .output import check_export, emit, use_pretty
from .stack import refuse_stack_options, run_stacked

PROGRESS_MIN_STEPS = 20_000  # shorter runs end before a progress bar would help


class Backend(str, enum.Enum):
    numpy = "numpy"
    compiled = "compiled"
    auto = "auto"


if TYPE_CHECKING:
    from lstm_cli.io.npystream import ArraySequence, NpyStream
    from lstm_cli.io.npzstream import SpilledNpz
    from lstm_cli.render.plot import BucketMeans
    from lstm_cli.render.run import RunTrace
    from lstm_cli.sequence import SequenceChunk


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A callable advancing a progress bar on stderr: only on a terminal and for long runs."""
    if total < PROGRESS_MIN_STEPS or not sys.stderr.isatty():
        yield lambda n: None
        return
    from lstm_cli.render.console import make_progress

    with make_progress() as progress:
        task = progress.add_task("steps", total=total)
        yield lambda n: progress.advance(task, n)


def _run_steps(
    cell: LSTMParams,
    xs: NpyStream | ArraySequence,
    states: dict[str, Array],
    T: int,
    B: int | None,
    batch_first: bool,
    dtype: str,
    xs_source: str,
    chunk_steps: int | None,
    backend: str,
    keep: bool,
    gates: bool,
    sink: SpilledNpz | None,
    watchers: Sequence[Watcher],
) -> tuple[Array, Array, dict[str, list[Array]]]:
    """Step through xs chunk by chunk: (h_next, c_next, the kept sequences). An .npz --out
    takes the sequences as they are computed (``sink``: memory stays flat); another format
    keeps them in memory (``keep``). Each watcher (the view's trace, the plot's buckets) sees
    every chunk's gates and states of batch row 0."""
    from lstm_cli.sequence import GATE_NAMES, default_chunk_steps, iter_sequence  # only when run

    H = cell.n_hidden

    def chunks(steps: int) -> Iterator[Array]:  # each chunk in dtype, refusing overflow
        for chunk in xs.chunks(steps, batch_first):
            yield cast_checked(chunk, dtype, "xs", xs_source)

    steps = chunk_steps or default_chunk_steps(H, B or 1, dtype)
    kept: dict[str, list[Array]] = {"h_seq": [], "c_seq": [], **{g: [] for g in GATE_NAMES}}
    h_next = c_next = None
    with _progress(T) as advance:
        for part in iter_sequence(
            cell, chunks(steps), states.get("h_prev"), states.get("c_prev"),
            dtype=dtype, return_sequences=keep or sink is not None or bool(watchers),
            return_gates=gates or bool(watchers), chunk_steps=steps, backend=backend,
        ):  # fmt: skip
            if sink is not None and part.h_seq is not None and part.c_seq is not None:
                sink.append("h_seq", part.h_seq)
                sink.append("c_seq", part.c_seq)
                for g, a in (part.gates or {}).items() if gates else ():
                    sink.append(g, a)
            elif keep and part.h_seq is not None and part.c_seq is not None:
                kept["h_seq"].append(part.h_seq)
                kept["c_seq"].append(part.c_seq)
                for g, a in (part.gates or {}).items() if gates else ():
                    kept[g].append(a)
            for watcher in watchers:
                watcher.add(_row0(part, B is not None))
            h_next, c_next = part.h_next, part.c_next
            advance(part.n_steps)
    assert h_next is not None and c_next is not None  # T >= 1, checked with the inputs
    return h_next, c_next, kept


class Watcher(Protocol):
    def add(self, values: dict[str, Array]) -> None: ...


def _watchers(
    view: bool, plot: Path | None, T: int, H: int
) -> tuple[RunTrace | None, BucketMeans | None, int]:
    """The view's trace (as wide as the terminal) and the plot's buckets, when wanted."""
    trace, buckets, width = None, None, 80
    if view:
        from lstm_cli.render.console import console_width
        from lstm_cli.render.run import EXACT_MAX_STEPS, RunTrace

        width = console_width()  # every step up to a few hundred, else the last that fit
        trace = RunTrace(T, H, T if T <= EXACT_MAX_STEPS else max(10, width - 12))
    if plot is not None:
        from lstm_cli.render.plot import BucketMeans

        buckets = BucketMeans(T, H)
    return trace, buckets, width


def _row0(part: SequenceChunk, batched: bool) -> dict[str, Array]:
    """The chunk's gates and states for the view: batch row 0, each (n, H)."""
    values = {**(part.gates or {}), "c": part.c_seq, "h": part.h_seq}
    return {k: v[:, 0] if batched else v for k, v in values.items() if v is not None}


@opt.cell_options
def run(
    source: opt.CellSource = opt.CellSource(),  # noqa: B008 (the cell options: see opt.cell_options)
    xs: Annotated[
        str | None,
        typer.Option(
            "--xs",
            help="Inputs (T, F), or (T, B, F) for a batch: .npy (streamed), .json, or - "
            "for stdin. Default: stdin when piped.",
        ),
    ] = None,
    h: opt.HOpt = None,
    c: opt.COpt = None,
    batch_first: Annotated[
        bool,
        typer.Option("--batch-first", help="A 3-D xs is (B, T, F), and saved sequences (B, T, H)."),
    ] = False,
    dtype: opt.DTypeOpt = opt.DType.float64,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Save h_seq, c_seq, h_next, c_next: .npz, .json or .safetensors."
        ),
    ] = None,
    gates: Annotated[
        bool, typer.Option("--gates", help="With --out, also save i_t, f_t, o_t, c_t_candidate.")
    ] = False,
    chunk_steps: Annotated[
        int | None,
        typer.Option(min=1, help="Steps read and projected at once. Default: about 4 MiB of work."),
    ] = None,
    backend: Annotated[
        Backend,
        typer.Option(
            help="The step loop: numpy (the reference), compiled (the optional C kernel, plain "
            "cells only) or auto (compiled when installed, for a plain cell with H <= 128 or a "
            "batch of 8 or more; -v says which loop runs).",
        ),
    ] = Backend.auto,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Say on stderr which backend runs.")
    ] = False,
    export_view: opt.ExportViewOpt = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Also draw the gates and states over time: .png, .svg or .pdf (needs the "
            "optional extra plot).",
        ),
    ] = None,
    whole: Annotated[
        bool,
        typer.Option(
            "--stack",
            help="Run every layer and direction of the file's LSTM (nn.LSTM, an ONNX node, a "
            ".keras model's chain of LSTM layers) as the framework does: prints h_n, c_n "
            "(L*D, [B,] H); --h/--c are (L*D, [B,] H); --out saves y (T, [B,] D*H), h_n, c_n "
            "and each layer's output y_l0, y_l1, ...",
        ),
    ] = False,
    force: opt.ForceOpt = False,
    max_input_mb: opt.MaxInputOpt = opt.DEFAULT_MAX_INPUT_MB,
    json_: opt.JsonOpt = False,
    pretty: opt.PrettyOpt = False,
) -> None:
    """Run the LSTM cell over a sequence and print the final h_next and c_next.

    Step t starts from step t-1's h_next and c_next (from --h/--c, else zeros, at t = 0).
    A .npy xs is read in chunks and an .npz --out is written as the steps are computed, so
    memory stays flat however long the sequence. JSON in: a list, or {"xs": ..., "h_prev":
    ..., "c_prev": ...}.

    \b
        lstm-cell run --params p.npz --xs xs.npy --out seq.npz

    \b
        echo '{"xs": [[1,0,0,0,0,0,0,0,0,0]]}' | lstm-cell run | jq .h_next

    ONNX's variants stored in the params file (peepholes, clip, input_forget) are
    computed as in step; the variant options below change them.
    """
    pretty = use_pretty(json_, pretty)
    _check_outputs(out, gates, export_view, plot, force)
    max_bytes = max_input_mb << 20
    if whole:  # every layer and direction: cli/stack.py
        refuse_stack_options(source, gates, plot, chunk_steps)
        go = functools.partial(_backend, backend.value, verbose=verbose)
        return run_stacked(source, xs, (h, c), dtype.value, out, force, max_bytes, pretty,
                           batch_first, go, export_view)  # fmt: skip
    param_set, label = opt.load_cell(source, max_bytes)
    cell = opt.cast_cell(param_set.params, dtype.value, label, param_set.bias_halves)  # +variants
    _backend(backend.value, cell, None, verbose=False)  # refused before reading the inputs
    inputs, T, B = resolve_run_inputs(
        xs, {"h_prev": h, "c_prev": c}, cell.n_features, cell.n_hidden, label, batch_first,
        max_bytes=max_bytes,
    )  # fmt: skip
    chosen = _backend(backend.value, cell, B, verbose)
    streamed = out is not None and output_suffix(out) == ".npz"
    sink = _sink(out, T, B, cell.n_hidden, dtype.value, gates, batch_first) if streamed else None
    with closing(inputs.xs), ExitStack() as stack:  # closed on every way out, Ctrl-C included
        if sink is not None:
            stack.enter_context(sink)  # the spill files go with it
        states = {
            k: cast_checked(v, dtype.value, k, inputs.sources[k]) for k, v in inputs.states.items()
        }
        trace, buckets, width = _watchers(pretty or bool(export_view), plot, T, cell.n_hidden)
        watchers = [w for w in (trace, buckets) if w is not None]
        h_next, c_next, kept = _run_steps(
            cell, inputs.xs, states, T, B, batch_first, dtype.value, inputs.sources["xs"],
            chunk_steps, chosen, keep=out is not None and not streamed, gates=gates, sink=sink,
            watchers=watchers,
        )  # fmt: skip
        if not (np.all(np.isfinite(h_next)) and np.all(np.isfinite(c_next))):
            raise OutputError(
                f"the result overflowed {dtype.value} (c_next is not finite): inputs too large"
            )
        if out is not None and sink is not None:
            sink.put("h_next", h_next)
            sink.put("c_next", c_next)
            sink.save(out, force)
    if buckets is not None and plot is not None:
        from lstm_cli.render.plot import save_plot

        which = "" if B is None else f", batch row 0 of {B}"
        save_plot(buckets, plot, force, f"lstm-cell run{which}")
    if out is not None and not streamed:
        _save_sequences(out, kept, h_next, c_next, batch_first and B is not None, force)
    if out is not None and is_stdout(out):  # stdout carries the .npz itself
        return
    state_shape = list(h_next.shape)
    shapes = {
        "xs": list(inputs.xs.shape),
        **{k: list(inputs.states[k].shape) if k in inputs.states else state_shape
           for k in ("h_prev", "c_prev")},
        "h_next": state_shape,
    }  # fmt: skip
    sources = {"h_prev": "zeros", "c_prev": "zeros", **inputs.sources, "params": label}
    notes = opt.precision_notes(param_set.params, dtype.value)
    notes += [f"Saved h_seq, c_seq{', gates' if gates else ''} to {out}."] if out else []
    report = RunReport(h_next, c_next, T, B, dtype.value, shapes, sources, out, notes, trace, width)
    emit(report, pretty, export_view, force)


def _backend(asked: str, cell: LSTMParams, B: int | None, verbose: bool) -> str:
    """The backend that runs (``compiled`` unavailable or a variant cell: an input error)."""
    from lstm_cli.compiled import choose, describe, kernel_path

    try:
        chosen = choose(asked, cell.is_plain, cell.n_hidden, B or 1)
    except ValueError as e:
        raise InputError(f"--backend {asked}: {e}") from None
    if verbose:
        path = describe(cell.n_hidden, B or 1, cell.n_features, cell.dtype.itemsize)
        how = f"{kernel_path()}; {path}"
        where = f" ({how})" if chosen == "compiled" else ""
        why = "" if asked != "auto" else f" (auto: {_auto_reason(chosen, cell)})"
        typer.echo(f"backend: {chosen}{where}{why}", err=True)
    return chosen


def _auto_reason(chosen: str, cell: LSTMParams) -> str:
    from lstm_cli.compiled import AUTO_MAX_FUSED_HIDDEN, THREADS_MIN_BATCH, available, has_threads

    if chosen == "compiled":
        if cell.n_hidden <= AUTO_MAX_FUSED_HIDDEN:
            return f"a plain cell, H <= {AUTO_MAX_FUSED_HIDDEN}"
        return f"a plain cell, a batch of {THREADS_MIN_BATCH} or more"
    if not available():
        return "no compiled kernel installed"
    if not cell.is_plain:
        return "a variant cell"
    if not has_threads():
        return f"H > {AUTO_MAX_FUSED_HIDDEN} (this kernel has no threaded loop)"
    return f"H > {AUTO_MAX_FUSED_HIDDEN} and a batch below {THREADS_MIN_BATCH}"


def _save_sequences(
    out: Path,
    kept: dict[str, list[Array]],
    h_next: Array,
    c_next: Array,
    batch_first: bool,
    force: bool,
) -> None:
    """The kept sequences (T, ...), or (B, T, H) like a batch-first input, and the final state."""
    from lstm_cli.io.paramfiles import save_result

    arrays = {k: np.concatenate(v) for k, v in kept.items() if v}
    if batch_first:  # (T, B, H) -> (B, T, H), like the input
        arrays = {k: np.swapaxes(v, 0, 1) for k, v in arrays.items()}
    save_result(out, {**arrays, "h_next": h_next, "c_next": c_next}, force=force)


def _check_outputs(
    out: Path | None, gates: bool, export_view: Path | None, plot: Path | None, force: bool
) -> None:
    """Refuse every output that cannot be written before spending time on the run."""
    check_export(export_view, force)
    if plot is not None:
        from lstm_cli.render.plot import check_plot_path

        check_plot_path(plot, force)
    if gates and out is None:
        raise typer.BadParameter("saves the gate sequences, so it needs --out PATH.npz", None,
                                 param_hint="--gates")  # fmt: skip
    if out is not None:
        output_suffix(out)
        check_writable(out, force)


def _sink(
    out: Path | None, T: int, B: int | None, H: int, dtype: str, gates: bool, batch_first: bool
) -> SpilledNpz | None:
    """Where --out's sequences go as they are computed: h_seq, c_seq (and the gates), each
    (T, [B,] H), saved (B, T, H) like a batch-first input."""
    if out is None:
        return None
    from lstm_cli.io.npzstream import SpilledNpz
    from lstm_cli.sequence import GATE_NAMES

    state = (H,) if B is None else (B, H)
    names = ("h_seq", "c_seq", *(GATE_NAMES if gates else ()))
    swap = frozenset(names) if batch_first and B is not None else frozenset()
    return SpilledNpz({k: (T, *state) for k in names}, dtype, out, swap)
