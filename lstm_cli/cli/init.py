"""``lstm-cell init``: a new cell and example inputs, written to a params file."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from lstm_cli.init import SCHEMES

from .options import ClipOpt, ForceOpt, JsonOpt, PrettyOpt
from .output import emit, use_pretty

Scheme = enum.Enum("Scheme", {s: s for s in SCHEMES}, type=str)  # type: ignore[misc]


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
    import numpy as np

    from lstm_cli.init import init_params
    from lstm_cli.io.atomic import PARAM_SUFFIXES, check_writable, is_stdout, output_suffix
    from lstm_cli.io.paramfiles import save_param_set
    from lstm_cli.render.written import InitReport

    pretty = use_pretty(json_, pretty)
    output_suffix(out, PARAM_SUFFIXES)  # refused before any work
    check_writable(out, force)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    param_set = init_params(n_features, n_hidden, seed, scheme.value, peepholes, clip, input_forget)
    save_param_set(out, param_set, force=force)
    arrays = dict(param_set.params.all_arrays())
    if param_set.example is not None:
        arrays.update(param_set.example.arrays())
    if not is_stdout(out):  # with --out -, stdout carries the file itself
        emit(InitReport(out, arrays, param_set.meta), pretty)
