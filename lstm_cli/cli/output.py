"""What a command prints: JSON or the Rich view (stdout), errors with the option that fixes
them (stderr), and a reader that went away (``| head``) handled quietly."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import typer

from lstm_cli.errors import Hint, LstmCellError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import RenderableType

    from lstm_cli.core import StepResult
    from lstm_cli.params import LSTMParams

# How the command line says what fixes an error; each text begins with its own separator.
HINT_TEXT = {
    Hint.RAISE_INPUT_LIMIT: "; raise it with --max-input-mb",
    Hint.RAISE_INPUT_LIMIT_OR_STREAM: "; raise it with --max-input-mb, or pipe a .npy file "
    "(streamed)",
    Hint.FORCE: "; pass --force to overwrite it",
    Hint.PICK_PREFIX: ". Choose one with --key-prefix",
    Hint.PICK_LAYOUT: ". Choose one with --from",
    Hint.PICK_CELL: ". Choose one with --layer N and --direction forward|reverse",
    Hint.GIVE_X: "; pass --x",
    Hint.GIVE_INPUTS: "; pass --x (and --h, --c)",
    Hint.GIVE_XS: "; pass --xs FILE",
    Hint.NO_BATCH: "; for a function without batch support pass --no-batch",
    Hint.BATCH_ONLY: "; for a function that takes only batches pass --batch-only",
    Hint.PLAIN_VECTORS: "; a port without ONNX's variants takes: lstm-cell vectors --variants none",
    Hint.LOOSEN_TOLERANCE: "; loosen --atol/--rtol if acceptable",
    Hint.EXPORT_LAYOUT: "; use --to onnx or --to native",
    Hint.MAKE_VECTORS: " (make one with: lstm-cell vectors)",
    Hint.KEEP_BIAS_HALVES: "; use --to pytorch or --to onnx (both biases kept), or pass "
    "--sum-biases to write their sum rounded",
}


def render_error(e: LstmCellError) -> str:
    """``Error: <message><what fixes it>``: the line a user sees."""
    return f"Error: {e.message}{HINT_TEXT[e.hint] if e.hint is not None else ''}"


def internal_error(e: BaseException) -> str:
    """The last resort's two lines: what broke, and how to report it (no traceback, no paths
    or arrays from local variables)."""
    message = str(e).splitlines()[0] if str(e) else ""
    return (
        f"internal error: {type(e).__name__}: {message}\n"
        "This is a bug in lstm-cell: please report it with the command line; "
        "LSTM_CELL_DEBUG=1 shows the traceback."
    )


def use_pretty(json_: bool, pretty: bool) -> bool:
    """The Rich view on a terminal, JSON in a pipe; ``--json`` / ``--pretty`` force one."""
    if json_ and pretty:
        raise typer.BadParameter("--json and --pretty exclude each other")
    if json_ or pretty:
        return pretty
    return sys.stdout.isatty()


class Report(Protocol):
    """A command's result: its JSON payload and its terminal view."""

    def to_json(self) -> dict[str, Any]: ...

    def view(self) -> RenderableType: ...


EXPORT_SUFFIXES = (".svg", ".html", ".txt")


def check_export(path: Path | None, force: bool) -> None:
    """Refuse an --export-view path before any work: its format comes from its extension."""
    if path is None:
        return
    if path.suffix.lower() not in EXPORT_SUFFIXES:
        raise typer.BadParameter(
            f"{path}: the view is exported as .svg, .html or .txt, "
            f"not {path.suffix or 'no extension'!r}",
            param_hint="--export-view",
        )
    from lstm_cli.io.atomic import check_writable

    check_writable(path, force)


def export_view(view: RenderableType, path: Path, force: bool) -> None:
    """Write exactly the view the terminal shows (same width) as SVG, HTML or text,
    atomically."""
    import io

    from rich.console import Console

    from lstm_cli.io.atomic import write_bytes
    from lstm_cli.render.console import console_width

    console = Console(record=True, file=io.StringIO(), width=console_width(), highlight=False)
    console.print(view, soft_wrap=False)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        text = console.export_svg(title=f"lstm-cell: {path.stem}")
    elif suffix == ".html":
        text = console.export_html(inline_styles=True)
    else:
        text = console.export_text()
    write_bytes(path, text.encode(), force)


def emit(report: Report, pretty: bool, export: Path | None = None, force: bool = False) -> None:
    """Print ``report`` as its Rich view or as one line of strict JSON; with ``export``, also
    save the view to that file (see :func:`export_view`)."""
    if export is not None:
        export_view(report.view(), export, force)
    if pretty:
        from lstm_cli.render.console import print_view

        print_view(report.view())
    else:
        from lstm_cli.io.jsonio import dumps

        write_stdout(dumps(report.to_json()))


def write_stdout(text: str) -> None:
    """Print the result; a reader that went away (``| head``) ends the command quietly, exit 1.

    Written to the binary stream in a loop: with ``PYTHONUNBUFFERED`` set, stdout is a raw
    file whose ``write`` may stop short when the reader closes the pipe, without an error,
    and the broken pipe would go unnoticed (exit 0 with truncated output).
    """
    data = memoryview((text + "\n").encode())
    out = getattr(sys.stdout, "buffer", None)
    try:
        if out is None:  # a text-only stream (some embedding): no partial writes to handle
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            return
        sys.stdout.flush()
        while data:
            written = out.write(data)
            data = data[written if written is not None else len(data) :]
        out.flush()
    except BrokenPipeError:
        quiet_broken_pipe()


def quiet_broken_pipe() -> NoReturn:
    """Exit 1 without a word when stdout's reader has gone (no second error at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    raise typer.Exit(1)


def print_explanation(
    result: StepResult,
    cell: LSTMParams,
    pretty: bool,
    notes: Sequence[str] = (),
    export: Path | None = None,
    force: bool = False,
) -> None:
    """``step --explain``: coloured on a terminal (``pretty``), plain text otherwise, at the
    terminal's width (else ``COLUMNS``, else 80); with ``export``, also saved to that file."""
    if export is not None:
        from lstm_cli.render.console import console_width
        from lstm_cli.render.explain import explain_view

        export_view(explain_view(result, cell, console_width(), notes), export, force)
    if pretty:
        from lstm_cli.render.console import make_console
        from lstm_cli.render.explain import explain_view

        console = make_console()
        console.print(explain_view(result, cell, console.width, notes), soft_wrap=True)
        return
    import shutil

    from lstm_cli.render.explain import explain_text

    width = shutil.get_terminal_size((80, 24)).columns
    write_stdout("\n".join([*notes, explain_text(result, cell, width)]))
