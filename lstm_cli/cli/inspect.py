"""``lstm-cell inspect``: every LSTM in a params file, without computing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import options as opt
from .output import emit, use_pretty


def inspect_file(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="A params file: .npz, .safetensors, .onnx or a PyTorch .pt/.pth/.bin.",
        ),
    ],
    max_input_mb: opt.MaxInputOpt = opt.DEFAULT_MAX_INPUT_MB,
    json_: opt.JsonOpt = False,
    pretty: opt.PrettyOpt = False,
) -> None:
    """List every LSTM in FILE: its name (key prefix or ONNX node), framework layout, layers,
    directions, F, H, dtype, variants and proj_size. A table on a terminal, JSON in a pipe.

    \b
        lstm-cell inspect model.pt

    The name is what --key-prefix takes; a stacked or bidirectional LSTM's cells are what
    --layer and --direction pick. A file without any LSTM is refused (exit 2).
    """
    from lstm_cli.errors import InputError
    from lstm_cli.io.reader import check_readable
    from lstm_cli.io.survey import survey_file
    from lstm_cli.render.inspect_report import InspectReport

    pretty = use_pretty(json_, pretty)
    check_readable(file)
    lstms = survey_file(file, max_input_mb << 20)
    if not lstms:
        raise InputError(f"{file}: no LSTM found")
    emit(InspectReport(str(file), lstms), pretty)
