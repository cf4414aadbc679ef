"""Options shared by several commands, each declared once, and the loading every command
does first: the params file (or the notebook's built-in cell) with the variant options
applied, cast to the compute dtype."""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, NamedTuple, TypeVar

import typer

from lstm_cli.init import NOTEBOOK_SEED, notebook_default
from lstm_cli.io.arrays import cast_checked
from lstm_cli.io.reader import DEFAULT_MAX_INPUT_BYTES
from lstm_cli.params import LAYOUTS, BiasHalves, LSTMParams, ParamSet

Layout = enum.Enum("Layout", {s: s for s in LAYOUTS}, type=str)  # type: ignore[misc]


class DType(str, enum.Enum):
    float64 = "float64"
    float32 = "float32"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print compact JSON (default in a pipe).")]
PrettyOpt = Annotated[
    bool, typer.Option("--pretty", help="Print the Rich view (default on a terminal).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]
DEFAULT_MAX_INPUT_MB = DEFAULT_MAX_INPUT_BYTES >> 20
MaxInputOpt = Annotated[
    int,
    typer.Option(
        "--max-input-mb",
        min=1,
        help="Refuse inputs larger than this: bytes on stdin, a JSON file, one array's data.",
    ),
]
ExportViewOpt = Annotated[
    Path | None,
    typer.Option(
        "--export-view",
        help="Also save the view the terminal shows: .svg, .html or .txt (with --force, "
        "replacing the file).",
    ),
]
DTypeOpt = Annotated[DType, typer.Option(help="Compute in this dtype.")]
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
LayerOpt = Annotated[
    int | None,
    typer.Option(
        "--layer",
        min=0,
        help="The layer of a stacked LSTM (nn.LSTM num_layers > 1) to read, 0 first; layer "
        "k > 0 takes D*H features (the layer below's output, both directions).",
    ),
]


class Direction(str, enum.Enum):
    forward = "forward"
    reverse = "reverse"


DirectionOpt = Annotated[
    Direction | None,
    typer.Option(
        "--direction",
        help="The direction of a bidirectional LSTM to read; the reverse cell reads the "
        "sequence last step first.",
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


class CellSource(NamedTuple):
    """Where the cell comes from, as the options say: the params file (or None for the
    notebook's cell), how to pick the LSTM in it, and the variant options."""

    params: Path | None = None
    layout: Layout | None = None
    key_prefix: str | None = None
    layer: int | None = None
    direction: Direction | None = None
    clip: float | None = None
    no_clip: bool = False
    input_forget: bool | None = None
    no_peepholes: bool = False


_CELL_OPTIONS = {
    "params": ParamsOpt,
    "layout": FromOpt,
    "key_prefix": KeyPrefixOpt,
    "layer": LayerOpt,
    "direction": DirectionOpt,
    "clip": ClipOpt,
    "no_clip": NoClipOpt,
    "input_forget": InputForgetOpt,
    "no_peepholes": NoPeepholesOpt,
}
_CELL_PARAMETERS = [
    inspect.Parameter(
        name,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=CellSource._field_defaults[name],
        annotation=annotation,
    )
    for name, annotation in _CELL_OPTIONS.items()
]
F = TypeVar("F", bound=Callable[..., Any])


def cell_options(command: F) -> F:
    """Give ``command`` the cell options (--params, --from, --key-prefix, --layer, --direction,
    --clip, --no-clip, --input-forget/--no-input-forget, --no-peepholes), declared once, here.

    The command declares one parameter annotated :class:`CellSource`; on the command line it
    becomes the nine options, and the command receives them as that one value.
    """
    signature = inspect.signature(command, eval_str=True)
    (name,) = [p.name for p in signature.parameters.values() if p.annotation is CellSource]
    parameters: list[inspect.Parameter] = []
    for p in signature.parameters.values():
        parameters.extend(_CELL_PARAMETERS if p.name == name else [p])

    @functools.wraps(command)
    def with_source(**kwargs: Any) -> Any:
        source = CellSource(**{k: kwargs.pop(k) for k in _CELL_OPTIONS})
        return command(**kwargs, **{name: source})

    with_source.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_source.__annotations__ = {p.name: p.annotation for p in parameters}
    del with_source.__wrapped__  # Typer reads the signature above, not the command's
    return with_source  # type: ignore[return-value]


def load_params(
    params: Path | None,
    max_bytes: int,
    layout: Layout | None = None,
    key_prefix: str | None = None,
    layer: int | None = None,
    direction: Direction | None = None,
) -> tuple[ParamSet, str]:
    """The params file in any layout, or the notebook's cell; with a label for messages, which
    names the cell read from a file of several (``p.pt (layer 1, reverse)``)."""
    if params is None:
        if layout is not None or key_prefix is not None or layer is not None or direction:
            raise typer.BadParameter("--from, --key-prefix, --layer and --direction need --params")
        return notebook_default(), f"built-in seed-{NOTEBOOK_SEED} cell"
    from lstm_cli.io.cells import CellChoice
    from lstm_cli.io.paramfiles import load_param_set

    lay = None if layout is None else layout.value
    cell = CellChoice(layer, None if direction is None else direction.value)
    loaded = load_param_set(params, max_bytes, layout=lay, key_prefix=key_prefix, cell=cell)
    return loaded, cell_label(str(params), loaded.meta)


def cell_label(path: str, meta: Mapping[str, Any]) -> str:
    """``path``, with the cell read when the file's LSTM holds several."""
    cell = meta.get("source_cell")
    if meta.get("source_cells", 1) > 1 and isinstance(cell, dict):
        return f"{path} (layer {cell['layer']}, {cell['direction']})"
    return path


def load_cell(source: CellSource, max_bytes: int) -> tuple[ParamSet, str]:
    """:func:`load_params`, then the variant options applied (--clip, --no-clip,
    --input-forget/--no-input-forget, --no-peepholes): what step, run and grad compute with."""
    param_set, label = load_params(
        source.params, max_bytes, source.layout, source.key_prefix, source.layer, source.direction
    )
    return param_set._replace(params=apply_variants(param_set.params, source)), label


def apply_variants(cell: LSTMParams, source: CellSource) -> LSTMParams:
    """The cell with the variant options applied (--clip, --no-clip, --input-forget, ...)."""
    if source.clip is not None and source.no_clip:
        raise typer.BadParameter("--clip and --no-clip exclude each other")
    return cell.with_variant(
        clip=source.clip,
        input_forget=source.input_forget,
        drop_clip=source.no_clip,
        drop_peepholes=source.no_peepholes,
    )


def cast_cell(
    cell: LSTMParams, dtype: str, label: str, halves: BiasHalves | None = None
) -> LSTMParams:
    """The cell with every array (peepholes included) in ``dtype``, refusing overflow. With
    ``halves`` (a framework's two biases), the bias is their sum made in float64, then cast:
    a float32 file computed in float64 gets the exact sum, as the framework on upcast weights."""
    arrays = dict(cell.all_arrays())
    if halves is not None:
        arrays.update(halves.summed("float64"))
    return cell.with_arrays({k: cast_checked(v, dtype, k, label) for k, v in arrays.items()})


def precision_notes(cell: LSTMParams, dtype: str) -> list[str]:
    """One note when the params file's floats and the computation's differ: a float32 file
    computed in float64 (a float32 engine's numbers differ by float32 rounding) or the
    reverse (the file's values rounded to float32)."""
    import numpy as np

    held = np.dtype(cell.dtype)
    if held.kind != "f" or held == np.dtype(dtype):
        return []
    if held.itemsize < np.dtype(dtype).itemsize:
        why = f"a {held} engine differs by its rounding; --dtype {held} computes as it does"
    else:
        why = f"the file's values rounded to {dtype}; --dtype {held} keeps them"
    return [f"The params file holds {held} arrays, computed in {dtype} ({why})."]
