"""The ``lstm-cell`` group: a lazy registry of commands, the ``--version`` option, and the one
place where errors become exit codes.

Commands are listed here as ``"name" -> "module:function"`` and imported only when invoked
(the lazy-loading pattern from Click's documentation), so ``lstm-cell step`` never pays for
the other commands' modules. Each command module is parse, load, call, emit.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NoReturn

import typer
import typer.main
from typer.core import TyperGroup

from lstm_cli.errors import LstmCellError

from .output import internal_error, render_error

DEBUG_ENV = "LSTM_CELL_DEBUG"  # set to 1: an unexpected error shows its full traceback
COMMANDS = {
    "init": "lstm_cli.cli.init:init",
    "step": "lstm_cli.cli.step:step",
    "run": "lstm_cli.cli.run:run",
    "convert": "lstm_cli.cli.convert:convert",
    "grad": "lstm_cli.cli.grad:grad",
    "vectors": "lstm_cli.cli.vectors:vectors",
    "check": "lstm_cli.cli.check:check",
    "inspect": "lstm_cli.cli.inspect:inspect_file",
}


def load_command(name: str) -> Any:
    """The click command of ``name``: its module imported, its function converted by Typer."""
    module_name, function_name = COMMANDS[name].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    one = typer.Typer(add_completion=False, rich_markup_mode=None)
    one.command(name)(function)
    command = typer.main.get_command(one)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The top-level group: builds a command when it is asked for; turns every
    :class:`~lstm_cli.errors.LstmCellError` into one plain line on stderr and its exit code,
    Ctrl-C into exit 130, for every command (CliRunner included)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = load_command(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LstmCellError as e:
            typer.echo(render_error(e), err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(130) from None
        except Exception as e:
            if type(e).__module__.startswith(("typer", "click")) or os.environ.get(DEBUG_ENV):
                raise  # usage errors and exits are click's to print; debugging wants it all
            typer.echo(internal_error(e), err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=LazyGroup,
    name="lstm-cell",
    no_args_is_help=True,
    # Shell completion (--install-completion, --show-completion) is on: `import typer` loads
    # its completion module either way (python -X importtime), so it adds no start-up cost.
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,  # locals would dump weight matrices and paths
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        from lstm_cli.compiled import available, has_threads, threading_in_words

        backend = "compiled kernel" if available() else "numpy only (no compiled kernel)"
        if has_threads():
            backend += f" (batches: threaded loop, {threading_in_words()})"
        typer.echo(f"lstm-cell {version('lstm-cell')}, backend: {backend}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the installed version and exit.",
    ),
) -> None:
    """A reference LSTM cell in NumPy that shows every gate. Start with: lstm-cell step"""


def main() -> NoReturn:
    """Console-script entry point: runs the command, then ends the process at once.

    Once the command has returned and stdout and stderr are flushed, nothing is left for the
    interpreter's teardown to do that a user could see: every file a command writes is
    closed (and renamed into place) before it returns, and no command starts a thread that
    outlives it. That teardown (freeing every module, OpenBLAS stopping its threads) took
    about 27 ms, a fifth of `lstm-cell step`'s whole run (docs/speed.md); ``os._exit`` skips
    it. An exception that escapes the command still ends the process the usual way.
    """
    try:
        app(prog_name="lstm-cell")
        code: object = 0
    except SystemExit as e:
        code = e.code
    os._exit(exit_status(code))


def exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` would end with, once stdout and stderr are flushed: None
    is 0, an int itself, anything else is printed to stderr and is 1. A reader of stdout that
    has gone makes it 1 without a word, as while writing (``output.quiet_broken_pipe``)."""
    status = 0 if code is None else code if isinstance(code, int) else 1
    if not isinstance(code, int | None):
        print(code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to say on it
            if stream is sys.stdout:
                status = status or 1
    return status
