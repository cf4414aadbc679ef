"""``lstm-cell vectors``: golden test vectors for a port."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstm_cli.render.learn import VectorsReport

from .options import ForceOpt, JsonOpt, PrettyOpt
from .output import emit, use_pretty


def vectors(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write (made if missing).")
    ] = Path("vectors"),
    count: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=10_000,
            help="Number of cases written, variant cases included. Default: 26 standard "
            "cases, plus 3 per variant asked for.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed of the cases.")] = 0,
    variants: Annotated[
        str,
        typer.Option(
            help="ONNX variant cases to add: none (the default), all, or a comma list of "
            "peepholes, clip, input_forget, onnx_all (all three at once)."
        ),
    ] = "none",
    force: ForceOpt = False,
    json_: JsonOpt = False,
    pretty: PrettyOpt = False,
) -> None:
    """Write golden test vectors for a port: per case the params, inputs and every
    intermediate (u, pre-activations, gates, c_next, h_next) as .json and .npz, and a
    manifest.json with the equations, the gate order and the dtypes. Deterministic for a
    seed; the default 26 standard cases cover every shape, magnitude and edge case in
    float32 and float64. --variants all (or a list) adds 3 cases of each of ONNX's variants
    (peepholes, clip, input_forget, all three), their equations in the manifest. --count is
    the number of cases written. --force replaces the vectors already in the folder, stale
    cases included. Run your port on them, then:
    lstm-cell check --vectors DIR --results FILE

    \b
        lstm-cell vectors --count 26 --seed 0 --out vectors

    \b
        lstm-cell vectors --variants all --out onnx-vectors
    """
    from lstm_cli.porting.vector_files import write_vectors
    from lstm_cli.porting.vectors import VARIANT_SPECS, VARIANTS, build_cases, default_count

    pretty = use_pretty(json_, pretty)
    chosen = _variant_list(variants, VARIANTS)
    n_variant = sum(len(VARIANT_SPECS[v]) for v in chosen)
    if count is not None and count <= n_variant:
        raise typer.BadParameter(
            f"{count} cases leave no standard case beside the {n_variant} variant cases; "
            f"give more than {n_variant}",
            param_hint="--count",
        )
    plain = default_count() if count is None else count - n_variant
    cases = build_cases(plain, seed, chosen)
    written = write_vectors(out, cases, seed, force=force)
    emit(VectorsReport(out, cases, seed, chosen, len(written)), pretty)


def _variant_list(spec: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """``all``, ``none`` or a comma list of known variant names, in the known order."""
    if spec.strip() == "all":
        return known
    if spec.strip() == "none":
        return ()
    names = [p.strip() for p in spec.split(",") if p.strip()]
    for name in names:
        if name not in known:
            raise typer.BadParameter(
                f"unknown variant {name!r}; expected all, none or a comma list of "
                + ", ".join(known),
                param_hint="--variants",
            )
    return tuple(v for v in known if v in names)
