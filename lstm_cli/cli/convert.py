"""``lstm-cell convert``: weights from one layout (native, pytorch, keras, onnx) to another,
exactly."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from .options import (
    DEFAULT_MAX_INPUT_MB,
    DirectionOpt,
    ForceOpt,
    FromOpt,
    JsonOpt,
    KeyPrefixOpt,
    LayerOpt,
    Layout,
    MaxInputOpt,
    PrettyOpt,
)
from .output import emit, use_pretty


class PytorchNames(str, enum.Enum):
    cell = "cell"
    lstm = "lstm"


def convert(
    src: Annotated[
        Path, typer.Argument(metavar="IN", help="Weights to read: .npz, .safetensors or .onnx.")
    ],
    dst: Annotated[
        Path,
        typer.Argument(metavar="OUT", help="File to write: .npz or .safetensors (exact path)."),
    ],
    to: Annotated[
        Layout,
        typer.Option("--to", help="Layout to write: native, pytorch, keras or onnx."),
    ],
    layout: FromOpt = None,
    key_prefix: KeyPrefixOpt = None,
    layer: LayerOpt = None,
    direction: DirectionOpt = None,
    pytorch_names: Annotated[
        PytorchNames,
        typer.Option(
            help="With --to pytorch: nn.LSTMCell names (weight_ih, ...) or nn.LSTM's "
            "(weight_ih_l0, ...)."
        ),
    ] = PytorchNames.cell,
    sum_biases: Annotated[
        bool,
        typer.Option(
            help="With --to native or keras from a file with two biases (PyTorch, ONNX): write "
            "their sum rounded to the file's dtype when it is not exact there (else refused)."
        ),
    ] = False,
    max_input_mb: MaxInputOpt = DEFAULT_MAX_INPUT_MB,
    force: ForceOpt = False,
    json_: JsonOpt = False,
    pretty: PrettyOpt = False,
) -> None:
    """Convert LSTM weights between layouts, bit for bit.

    The source layout is detected from the keys (or given with --from); a file holding
    several LSTMs needs --key-prefix, a stacked or bidirectional nn.LSTM --layer and
    --direction (one cell is written). The output format follows OUT's name: .npz or
    .safetensors (.pt, .h5, .keras are refused: convert to .safetensors, which
    safetensors.torch.load_file reads for PyTorch). PyTorch output loads with load_state_dict
    as it is (both biases, bias_hh zeros, or both biases exactly as a PyTorch or ONNX source
    had them); Keras output is kernel, recurrent_kernel, bias; ONNX output is W, R, B (and
    P). Native and Keras hold one bias: the sum of a source's two biases is written only when
    it is exact in the file's dtype, unless --sum-biases.

    \b
        lstm-cell convert model.safetensors cell.npz --to native \\
            --key-prefix lstm.

    \b
        lstm-cell convert cell.npz torch_cell.safetensors --to pytorch
    """
    from lstm_cli.io.atomic import PARAM_SUFFIXES, check_writable, is_stdout, output_suffix
    from lstm_cli.io.cells import CellChoice
    from lstm_cli.io.paramfiles import load_param_set, save_arrays, save_param_set
    from lstm_cli.layouts import export_arrays
    from lstm_cli.render.written import ConvertReport

    pretty = use_pretty(json_, pretty)
    if dst.suffix.lower() != ".onnx":  # (.onnx is refused with its own message)
        output_suffix(dst, PARAM_SUFFIXES)  # refused before any work
    check_writable(dst, force)
    lay = None if layout is None else layout.value
    cell = CellChoice(layer, None if direction is None else direction.value)
    param_set = load_param_set(
        src, max_input_mb << 20, layout=lay, key_prefix=key_prefix, cell=cell
    )
    params = param_set.params
    halves = param_set.bias_halves
    if sum_biases and to.value in ("native", "keras") and halves is not None:
        params = params.with_arrays(halves.summed(params.dtype))  # rounded, as asked
        halves = None
    arrays = export_arrays(params, to.value, pytorch_names=pytorch_names.value, halves=halves)
    if to.value in ("native", "keras") and halves is not None:
        params = params.with_arrays(halves.summed(params.dtype))  # exact: export checked it
    param_set = param_set._replace(params=params, bias_halves=None)
    source_layout = param_set.meta.get("source_layout", "native")
    if to.value == "native":
        meta = {k: v for k, v in param_set.meta.items() if not k.startswith("source_")}
        if source_layout != "native":  # where the weights came from, for the record
            meta["converted_from"] = {
                k[len("source_") :]: v for k, v in param_set.meta.items() if k.startswith("source_")
            }
        save_param_set(dst, param_set._replace(meta=meta), force=force)
        if param_set.example is not None:
            arrays = {**arrays, **param_set.example.arrays()}
    else:
        # Only the framework's own arrays, so that load_state_dict / set_weights take the file
        # as it is; an ONNX cell's clip and input_forget go into meta (ONNX attributes).
        meta = params.variant.to_meta() if to.value == "onnx" else {}
        save_arrays(dst, arrays, meta or None, force=force)
    shown: dict[str, Any] = {"from": source_layout, "to": to.value}
    if not params.is_plain:
        shown["variant"] = params.variant.describe()
    if not is_stdout(dst):  # with OUT -, stdout carries the file itself
        emit(ConvertReport(dst, arrays, {}, shown, source_layout, to.value, params), pretty)
