"""``lstm-cell check``: a port (a Python function, or a results file) against this cell."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lstm_cli.render.learn import CheckReport

from .options import (
    DEFAULT_MAX_INPUT_MB,
    ExportViewOpt,
    ForceOpt,
    JsonOpt,
    MaxInputOpt,
    PrettyOpt,
)
from .output import check_export, emit, use_pretty

if TYPE_CHECKING:
    from lstm_cli.porting.vectors import Case


class Signature(str, enum.Enum):
    """The signature of the user's function (``--layout``); ``seed`` is the native layout."""

    seed = "seed"
    pytorch = "pytorch"
    keras = "keras"
    onnx = "onnx"


def check(
    target: Annotated[
        str | None,
        typer.Argument(help="Your function as MODULE:FUNCTION (or path/to/file.py:FUNCTION)."),
    ] = None,
    layout: Annotated[
        Signature,
        typer.Option(help="Your function's signature: seed, pytorch, keras or onnx."),
    ] = Signature.seed,
    vectors_dir: Annotated[
        Path | None, typer.Option("--vectors", help="Golden vectors folder (for --results).")
    ] = None,
    results: Annotated[
        Path | None, typer.Option("--results", help="Your port's outputs on --vectors (JSON).")
    ] = None,
    count: Annotated[int, typer.Option(min=1, max=10_000, help="Number of cases.")] = 26,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed of the cases.")] = 0,
    atol: Annotated[
        float | None,
        typer.Option(min=0, help="Absolute tolerance. Default: 1e-10 (float64), 2e-5 (float32)."),
    ] = None,
    rtol: Annotated[
        float | None,
        typer.Option(min=0, help="Relative tolerance. Default: 1e-8 (float64), 1e-4 (float32)."),
    ] = None,
    no_batch: Annotated[
        bool, typer.Option("--no-batch", help="Only cases without a batch axis.")
    ] = False,
    batch_only: Annotated[
        bool,
        typer.Option("--batch-only", help="Only cases with a batch axis (a batch-only function)."),
    ] = False,
    skip_variant: Annotated[
        list[str] | None,
        typer.Option(
            "--skip-variant",
            help="Leave out an ONNX variant's cases (peepholes, clip, input_forget, onnx_all); "
            "repeat it or give a comma list.",
        ),
    ] = None,
    max_input_mb: MaxInputOpt = DEFAULT_MAX_INPUT_MB,
    export_view: ExportViewOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
    pretty: PrettyOpt = False,
) -> None:
    """Check your LSTM cell against this one and name the likely bug when it disagrees.

    Runs your Python function on generated cases (random, edge and extreme; float32 and
    float64; with and without a batch), compares h_next and c_next, and reports per case the
    max absolute and relative error, the worst case and the likely culprit (gate order,
    [x, h] order, a missing bias, an overflowing sigmoid, ...). Exit 0 only if all agree.

    \b
        lstm-cell check my_lstm:lstm_step

    \b
        lstm-cell check my_torch_port:cell --layout pytorch

    \b
        lstm-cell check my_onnx_port:lstm --layout onnx

    A port in another language runs the golden vectors (lstm-cell vectors) and writes its
    outputs as JSON (see README), then:

    \b
        lstm-cell check --vectors vectors --results my_results.json
    """
    from lstm_cli.porting.check import SIGNATURES, check_function, check_outcomes
    from lstm_cli.porting.usercode import load_function
    from lstm_cli.porting.vectors import build_cases

    pretty = use_pretty(json_, pretty)
    check_export(export_view, force)
    if (vectors_dir is None) != (results is None):
        raise typer.BadParameter("--vectors and --results go together")
    if target is not None and vectors_dir is not None:
        raise typer.BadParameter("give MODULE:FUNCTION or --vectors/--results, not both")
    if target is None and vectors_dir is None:
        raise typer.BadParameter("give MODULE:FUNCTION, or --vectors DIR --results FILE")
    if no_batch and batch_only:
        raise typer.BadParameter("--no-batch and --batch-only exclude each other")
    lay = SIGNATURES[layout.value]
    skipped = _skipped_variants(skip_variant or [])
    if target is not None:
        fn, label = load_function(target)
        cases = build_cases(count, seed)
        cases = _select(cases, (no_batch, batch_only), skipped)
        result = check_function(fn, label, cases, lay, atol, rtol)
    else:
        assert vectors_dir is not None and results is not None
        from lstm_cli.porting.results import load_results
        from lstm_cli.porting.vector_files import load_vectors

        cases = load_vectors(vectors_dir, max_input_mb << 20)
        cases = _select(cases, (no_batch, batch_only), skipped)
        outcomes = load_results(results, cases, max_input_mb << 20)
        result = check_outcomes(str(results), lay, cases, outcomes, atol, rtol)
    emit(CheckReport(result), pretty, export_view, force)
    if not result.ok:
        if not (pretty and _on_terminal()):  # on a terminal the view has the verdict
            culprit = f" Likely culprit: {result.diagnoses[0].culprit}" if result.diagnoses else ""
            typer.echo(f"{result.summary()}{culprit}", err=True)
        raise typer.Exit(1)


def _on_terminal() -> bool:
    """stdout is a terminal (the view printed there already holds the verdict)."""
    return sys.stdout.isatty()


def _skipped_variants(values: list[str]) -> set[str]:
    """The variant names of --skip-variant (repeated or comma lists), each a known one."""
    from lstm_cli.porting.vectors import VARIANT_SPECS

    names = {v.strip() for value in values for v in value.split(",") if v.strip()}
    unknown = sorted(names - set(VARIANT_SPECS))
    if unknown:
        raise typer.BadParameter(
            f"unknown variant {unknown[0]!r}; expected one of {', '.join(VARIANT_SPECS)}",
            param_hint="--skip-variant",
        )
    return names


def _select(cases: list[Case], batch: tuple[bool, bool], skipped: set[str]) -> list[Case]:
    """The cases to check: without a batch axis only (``batch[0]``, --no-batch), with one
    only (``batch[1]``, --batch-only), none of the ``skipped`` variants."""
    no_batch, batch_only = batch
    return [
        cs
        for cs in cases
        if not (no_batch and cs.batch is not None)
        and not (batch_only and cs.batch is None)
        and cs.variant not in skipped
    ]
