"""The ``lstm-cell`` command line: thin Typer commands wiring the core, params, I/O and
rendering layers. Each command's docstring is its ``--help``."""

from __future__ import annotations

import dataclasses
import enum
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import numpy as np
import typer
from typer.core import TyperGroup

from . import fileio
from .errors import InputError
from .params import (
    LAYOUTS,
    NOTEBOOK_SEED,
    SCHEMES,
    LSTMParams,
    ParamSet,
    init_params,
    notebook_default,
)

F = TypeVar("F", bound=Callable[..., Any])


class _LazyTyper(typer.Typer):
    """A Typer app whose commands are turned into click commands only when used.

    Typer converts every registered command (inspecting its signature, building each option)
    when the app starts: about 2 ms per command here, paid by every short ``step --json``.
    Here ``@app.command()`` puts each command on a one-command Typer of its own, and
    :class:`_Group` converts just the one that is invoked (all of them only for ``--help``).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lazy_commands: dict[str, typer.Typer] = {}

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
        def register(fn: F) -> F:
            sub = typer.Typer(add_completion=False, rich_markup_mode=None)
            sub.command(name, **kwargs)(fn)
            self.lazy_commands[name or fn.__name__.lower().replace("_", "-")] = sub
            return fn

        return register


class _Group(TyperGroup):
    """The top-level group: builds a command when it is asked for (see :class:`_LazyTyper`);
    turns :class:`InputError` into one plain line on stderr and its exit code, Ctrl-C into
    exit 130, for every command (CliRunner included)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *app.lazy_commands]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in app.lazy_commands:
            import typer.main

            command = typer.main.get_command(app.lazy_commands[cmd_name])
            command.name = cmd_name
            self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as e:
            typer.echo(f"Error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(130) from None


app = _LazyTyper(
    cls=_Group,
    name="lstm-cell",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would dump weight matrices and paths
    rich_markup_mode=None,
)


@app.callback()
def _main() -> None:
    """A reference LSTM cell in NumPy that shows every gate. Start with: lstm-cell step"""


Scheme = enum.Enum("Scheme", {s: s for s in SCHEMES}, type=str)  # type: ignore[misc]


class DType(str, enum.Enum):
    float64 = "float64"
    float32 = "float32"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print compact JSON (default in a pipe).")]
PrettyOpt = Annotated[
    bool, typer.Option("--pretty", help="Print the Rich view (default on a terminal).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]
MaxInputOpt = Annotated[
    int,
    typer.Option(
        "--max-input-mb",
        min=1,
        help="Refuse inputs larger than this: bytes on stdin, a JSON file, one array's data.",
    ),
]
DEFAULT_MAX_INPUT_MB = fileio.DEFAULT_MAX_INPUT_BYTES >> 20

Layout = enum.Enum("Layout", {s: s for s in LAYOUTS}, type=str)  # type: ignore[misc]
FromOpt = Annotated[
    Layout | None,
    typer.Option("--from", help="Layout of the params file (default: detected from its keys)."),
]
KeyPrefixOpt = Annotated[
    str | None,
    typer.Option(
        help="Prefix of the LSTM's keys (such as lstm. or model/lstm/) when the file holds "
        "several; for an .onnx model, the LSTM node's name."
    ),
]
ClipOpt = Annotated[
    float | None,
    typer.Option(
        help="ONNX cell clip: bound every pre-activation to (-C, C) before its activation.",
    ),
]
ParamsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Params file (.npz, .safetensors or .onnx) in any layout: native (from init), "
        "pytorch, keras or onnx; its ONNX variants included. Default: the notebook's seed-42 cell."
    ),
]
XOpt = Annotated[
    str | None, typer.Option("--x", help="x_t, (F,) or (B, F): .npy, .json, or - for stdin.")
]
HOpt = Annotated[
    str | None,
    typer.Option("--h", help="h_prev (h0 of a sequence), (H,) or (B, H). Default: zeros."),
]
COpt = Annotated[
    str | None,
    typer.Option("--c", help="c_prev (c0 of a sequence), (H,) or (B, H). Default: zeros."),
]
NoClipOpt = Annotated[bool, typer.Option("--no-clip", help="Ignore the file's clip.")]
NoPeepholesOpt = Annotated[
    bool, typer.Option("--no-peepholes", help="Ignore the file's peephole weights.")
]
InputForgetOpt = Annotated[
    bool | None,
    typer.Option(
        "--input-forget/--no-input-forget",
        help="ONNX's coupled input-forget gate, f_t = 1 - i_t (default: as the params file says).",
    ),
]


def _load_params(
    params: Path | None, max_bytes: int, layout: Any = None, key_prefix: str | None = None
) -> tuple[ParamSet, str]:
    """The params file in any layout, or the notebook's cell; with a label for messages."""
    if params is None:
        if layout is not None or key_prefix is not None:
            raise typer.BadParameter("--from and --key-prefix need --params")
        return notebook_default(), f"built-in seed-{NOTEBOOK_SEED} cell"
    lay = None if layout is None else layout.value
    loaded = fileio.load_param_set(params, max_bytes, layout=lay, key_prefix=key_prefix)
    return loaded, str(params)


def _load_cell(
    params: Path | None,
    max_bytes: int,
    layout: Any = None,
    key_prefix: str | None = None,
    clip: float | None = None,
    no_clip: bool = False,
    input_forget: bool | None = None,
    no_peepholes: bool = False,
) -> tuple[ParamSet, str]:
    """:func:`_load_params`, then the variant options applied (--clip, --no-clip,
    --input-forget/--no-input-forget, --no-peepholes): what step and run compute with."""
    if clip is not None and no_clip:
        raise typer.BadParameter("--clip and --no-clip exclude each other")
    param_set, label = _load_params(params, max_bytes, layout, key_prefix)
    cell = param_set.params.with_variant(
        clip=clip, input_forget=input_forget, drop_clip=no_clip, drop_peepholes=no_peepholes
    )
    return dataclasses.replace(param_set, params=cell), label


def _cast_cell(cell: LSTMParams, dtype: str, label: str) -> LSTMParams:
    """The cell with every array (peepholes included) in ``dtype``, refusing overflow."""
    return cell.with_arrays(
        {k: fileio.cast_checked(v, dtype, k, label) for k, v in cell.all_arrays().items()}
    )


def _use_pretty(json_: bool, pretty: bool) -> bool:
    if json_ and pretty:
        raise typer.BadParameter("--json and --pretty exclude each other")
    if json_ or pretty:
        return pretty
    return sys.stdout.isatty()


def _write_stdout(text: str) -> None:
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
        _quiet_broken_pipe()


def _quiet_broken_pipe() -> NoReturn:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    raise typer.Exit(1)


@app.command()
def init(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="File to write (exactly this path).")
    ] = Path("params.npz"),
    n_features: Annotated[int, typer.Option(min=1, help="F, input features.")] = 10,
    n_hidden: Annotated[int, typer.Option(min=1, help="H, hidden units.")] = 4,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=2**32 - 1,
            help="Seed of np.random.RandomState. Default: a fresh one, stored in the file.",
        ),
    ] = None,
    scheme: Annotated[
        Scheme, typer.Option(help="Initialisation: notebook (randn), pytorch or keras.")
    ] = Scheme.notebook,  # type: ignore[attr-defined]
    peepholes: Annotated[
        bool, typer.Option("--peepholes", help="Add ONNX peephole weights Pi, Pf, Po, (H,).")
    ] = False,
    clip: ClipOpt = None,
    input_forget: Annotated[
        bool, typer.Option("--input-forget", help="Couple the gates: f_t = 1 - i_t (ONNX).")
    ] = False,
    force: ForceOpt = False,
    json_: JsonOpt = False,
    pretty: PrettyOpt = False,
) -> None:
    """Generate LSTM parameters and example inputs into an .npz file.

    The notebook scheme draws x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc with
    randn in that order, so --seed 42 reproduces the seed notebook exactly:

    \b
        lstm-cell init --seed 42 --out p.npz

    ONNX's variants are stored in the file: --peepholes (drawn after everything else),
    --clip C and --input-forget. A path ending in .safetensors writes that format.
    """
    use_pretty = _use_pretty(json_, pretty)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    param_set = init_params(n_features, n_hidden, seed, scheme.value, peepholes, clip, input_forget)
    fileio.save_param_set(out, param_set, force=force)
    arrays = dict(param_set.params.all_arrays())
    if param_set.example is not None:
        arrays.update(param_set.example.arrays())
    if use_pretty:
        from .render import init_view, print_view

        print_view(init_view(out, arrays, param_set.meta))
    else:
        shapes = {k: list(v.shape) for k, v in arrays.items()}
        _write_stdout(fileio.dumps({"path": str(out), "meta": param_set.meta, "shapes": shapes}))


@app.command()
def step(
    params: ParamsOpt = None,
    layout: FromOpt = None,
    key_prefix: KeyPrefixOpt = None,
    x: XOpt = None,
    h: HOpt = None,
    c: COpt = None,
    dtype: Annotated[DType, typer.Option(help="Compute in this dtype.")] = DType.float64,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also save every array of the result (.npz).")
    ] = None,
    clip: ClipOpt = None,
    no_clip: NoClipOpt = False,
    input_forget: InputForgetOpt = None,
    no_peepholes: NoPeepholesOpt = False,
    force: ForceOpt = False,
    max_input_mb: MaxInputOpt = DEFAULT_MAX_INPUT_MB,
    json_: JsonOpt = False,
    pretty: PrettyOpt = False,
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
    use_pretty = _use_pretty(json_, pretty)
    max_bytes = max_input_mb << 20
    param_set, params_label = _load_cell(
        params, max_bytes, layout, key_prefix, clip, no_clip, input_forget, no_peepholes
    )
    source_layout = param_set.meta.get("source_layout")
    inputs, sources, notes = fileio.resolve_step_inputs(
        {"x_t": x, "h_prev": h, "c_prev": c}, param_set, params_label, max_bytes=max_bytes
    )
    cell = _cast_cell(param_set.params, dtype.value, params_label)
    x_t, h_prev, c_prev = (
        fileio.cast_checked(inputs[k], dtype.value, k, sources[k])
        for k in ("x_t", "h_prev", "c_prev")
    )
    result = cell.step(x_t, h_prev, c_prev)
    if not (np.all(np.isfinite(result.h_next)) and np.all(np.isfinite(result.c_next))):
        raise InputError(
            f"the result overflowed {dtype.value} (c_next is not finite): inputs too large",
            exit_code=1,
        )
    if out is not None:
        fileio.save_npz(out, result.arrays(), force=force)
    shapes = {
        k: list(v.shape)
        for k, v in result.arrays().items()
        if k in ("x_t", "h_prev", "c_prev", "u")
    }
    shapes.update({k: list(v.shape) for k, v in cell.all_arrays().items()})
    if explain:
        from .explain import print_explanation

        return print_explanation(result, cell, use_pretty, notes)
    if use_pretty:
        from .render import ShapeRow, print_view, step_view

        rows = [ShapeRow(k, tuple(v.shape), str(v.dtype), sources[k]) for k, v in inputs.items()]
        rows.append(
            ShapeRow(
                "u = [h_prev, x_t]", tuple(result.u.shape), str(result.u.dtype), "concatenated"
            )
        )
        rows += [
            ShapeRow(k, tuple(v.shape), str(v.dtype), params_label)
            for k, v in cell.all_arrays().items()
        ]
        if out is not None:
            notes = [*notes, f"Saved every array of the result to {out}."]
        if not cell.is_plain:
            notes = [*notes, _describe_variant(cell)]
        if source_layout in SOURCE_GATE_ORDERS:
            notes = [*notes, f"Read as {SOURCE_GATE_ORDERS[source_layout]}."]
        print_view(step_view(result, rows, notes))
        return
    payload = {
        "h_next": fileio.json_list(result.h_next),
        "c_next": fileio.json_list(result.c_next),
        "gates": {k: fileio.json_list(v) for k, v in result.gates.items()},
        "pre_activations": {k: fileio.json_list(v) for k, v in result.pre_activations.items()},
        "shapes": shapes,
        "dtype": dtype.value,
        "sources": {**sources, "params": params_label},
        "variant": cell.variant(),
    }
    _write_stdout(fileio.dumps(payload))


SOURCE_GATE_ORDERS = {
    "pytorch": "PyTorch weights (gate blocks i, f, g, o; bias = bias_ih + bias_hh)",
    "keras": "Keras weights (gate blocks i, f, c, o; kernel transposed)",
    "onnx": "ONNX weights (gate blocks i, o, f, c; bias = Wb + Rb)",
}


def _describe_variant(cell: Any) -> str:
    """One line naming the ONNX variants a cell uses."""
    parts = []
    if cell.has_peepholes:
        parts.append("peepholes (z_i, z_f += P * c_prev; z_o += Po * c_next)")
    if cell.clip_value is not None:
        parts.append(f"clip {cell.clip_value:g} (every pre-activation bounded)")
    if cell.coupled:
        parts.append("input_forget (f_t = 1 - i_t)")
    return "ONNX variant: " + ", ".join(parts) + "."


# The other commands register themselves on ``app`` when imported.
from . import cli_run  # noqa: E402,F401,I001  (run)
from . import cli_convert  # noqa: E402,F401,I001  (convert)
from . import cli_learn  # noqa: E402,F401,I001  (grad, vectors, check)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="lstm-cell")
