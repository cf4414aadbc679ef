"""The commands for learners and porters: ``grad``, ``vectors`` and ``check``.

Registered on :data:`lstm_cli.cli.app`; the heavy modules (backward, vectors, check, Rich)
are imported inside the commands.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import IO, Annotated, Any

import numpy as np
import typer

from . import fileio
from .cli import (
    DEFAULT_MAX_INPUT_MB,
    ClipOpt,
    COpt,
    DType,
    ForceOpt,
    FromOpt,
    HOpt,
    InputForgetOpt,
    JsonOpt,
    KeyPrefixOpt,
    MaxInputOpt,
    NoClipOpt,
    NoPeepholesOpt,
    ParamsOpt,
    PrettyOpt,
    XOpt,
    _cast_cell,
    _describe_variant,
    _load_cell,
    _use_pretty,
    _write_stdout,
    app,
)
from .core import Array
from .errors import InputError
from .params import ParamSet

CHECK_MAX_ENTRIES = 200  # the gradient check samples larger arrays


def _load(spec: str, name: str) -> Array:
    """An array from a .npy/.json path or ``-`` (stdin)."""
    if spec == fileio.STDIN:
        return fileio.array_from_bytes(fileio.read_stdin(), name, "stdin")
    return fileio.load_array(Path(spec), name)


def _state(spec: str | None, name: str, H: int, batch: tuple[int, ...], label: str) -> Array:
    if spec is None:
        return np.zeros(batch + (H,))
    arr = _load(spec, name)
    if arr.shape not in ((H,), batch + (H,)):
        want = f"({H},)" + (f" or {batch + (H,)}" if batch else "")
        raise InputError(
            f"{'stdin' if spec == '-' else spec}: {name} has shape {arr.shape}, expected {want} "
            f"(H = {H} from {label})"
        )
    return arr


def _sequence_inputs(
    xs: str, h: str | None, c: str | None, param_set: ParamSet, label: str
) -> tuple[dict[str, Array], dict[str, str]]:
    F, H = param_set.params.n_features, param_set.params.n_hidden
    arr = _load(xs, "xs")
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[-1] != F:
        raise InputError(
            f"{'stdin' if xs == '-' else xs}: xs has shape {arr.shape}, expected (T, {F}) or "
            f"(T, B, {F}) with T >= 1 (F = {F} from {label})"
        )
    batch = arr.shape[1:-1]
    inputs = {
        "xs": arr,
        "h0": _state(h, "h0", H, batch, label),
        "c0": _state(c, "c0", H, batch, label),
    }
    sources = {"xs": xs, "h0": h or "zeros", "c0": c or "zeros"}
    return inputs, {k: "stdin" if v == "-" else v for k, v in sources.items()}


def _upstream(spec: str | None, name: str, shape: tuple[int, ...]) -> Array | None:
    if spec is None:
        return None
    arr = _load(spec, name)
    if arr.shape not in (shape, shape[-1:]):
        raise InputError(
            f"{'stdin' if spec == '-' else spec}: {name} has shape {arr.shape}, expected "
            f"{shape}" + (f" or {shape[-1:]}" if len(shape) > 1 else "")
        )
    return arr


@app.command()
def grad(
    params: ParamsOpt = None,
    layout: FromOpt = None,
    key_prefix: KeyPrefixOpt = None,
    x: XOpt = None,
    h: HOpt = None,
    c: COpt = None,
    xs: Annotated[
        str | None,
        typer.Option("--xs", help="A sequence, (T, F) or (T, B, F): backpropagate through time."),
    ] = None,
    dh_next: Annotated[
        str | None,
        typer.Option("--dh-next", help="Upstream gradient of h_next (of h_T). Default: ones."),
    ] = None,
    dc_next: Annotated[
        str | None,
        typer.Option("--dc-next", help="Upstream gradient of c_next (of c_T). Default: zeros."),
    ] = None,
    dhs: Annotated[
        str | None,
        typer.Option(
            "--dhs", help="With --xs: upstream gradient of every h_t, (T, H) or (T, B, H)."
        ),
    ] = None,
    dtype: Annotated[DType, typer.Option(help="Compute in this dtype.")] = DType.float64,
    check: Annotated[
        bool, typer.Option("--check", help="Also run a numerical gradient check (float64).")
    ] = False,
    check_tol: Annotated[
        float, typer.Option(min=0, help="--check fails (exit 1) above this relative error.")
    ] = 1e-6,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Also save the gradients: .json, else .npz."),
    ] = None,
    clip: ClipOpt = None,
    no_clip: NoClipOpt = False,
    input_forget: InputForgetOpt = None,
    no_peepholes: NoPeepholesOpt = False,
    force: ForceOpt = False,
    max_input_mb: MaxInputOpt = DEFAULT_MAX_INPUT_MB,
    json_: JsonOpt = False,
    pretty: PrettyOpt = False,
) -> None:
    """The backward pass of one step (or of a sequence with --xs): gradients of every input,
    weight and bias, named dx_t, dh_prev, dc_prev, dWf, ..., dbc (dxs, dh0, dc0 for --xs),
    and dPi, dPf, dPo for a cell with peepholes.

    The loss is sum(dh_next * h_next) + sum(dc_next * c_next), plus sum(dhs[t] * h_t) for a
    sequence; by default dh_next is ones and dc_next zeros, the gradients of sum(h_next).
    Inputs and ONNX's variants (peepholes, clip, input_forget) are given as for step; the
    clip's derivative is taken as 0 where a pre-activation sits exactly on +-clip.

    \b
        lstm-cell grad --check

    \b
        lstm-cell grad --xs seq.npy --dh-next dh.json --out grads.npz
    """
    from .backward import gradient_check, lstm_sequence_backward, lstm_step_backward

    use_pretty = _use_pretty(json_, pretty)
    if xs is not None and x is not None:
        raise typer.BadParameter("give --x (one step) or --xs (a sequence), not both")
    if dhs is not None and xs is None:
        raise typer.BadParameter("--dhs needs --xs (it is the gradient of every h_t)")
    specs = [s for s in (x, h, c, xs, dh_next, dc_next, dhs) if s == fileio.STDIN]
    if len(specs) > 1:
        raise InputError("only one input can come from stdin")
    max_bytes = max_input_mb << 20
    param_set, label = _load_cell(
        params, max_bytes, layout, key_prefix, clip, no_clip, input_forget, no_peepholes
    )
    cell = _cast_cell(param_set.params, dtype.value, label)
    variant: dict[str, Any] = {"clip": cell.clip_value, "input_forget": cell.coupled}
    cell_arrays: dict[str, Any] = dict(cell.all_arrays())
    notes: list[str] = []
    if xs is None:
        inputs, sources, notes = fileio.resolve_step_inputs(
            {"x_t": x, "h_prev": h, "c_prev": c}, param_set, label, max_bytes=max_bytes
        )
        state_shape = inputs["x_t"].shape[:-1] + (cell.n_hidden,)
    else:
        inputs, sources = _sequence_inputs(xs, h, c, param_set, label)
        state_shape = inputs["xs"].shape[1:-1] + (cell.n_hidden,)
    inputs = {k: v.astype(dtype.value) for k, v in inputs.items()}
    up = {
        "dh_next": _upstream(dh_next, "dh_next", state_shape),
        "dc_next": _upstream(dc_next, "dc_next", state_shape),
    }
    if dhs is not None:
        up["dhs"] = _upstream(dhs, "dhs", (inputs["xs"].shape[0],) + state_shape)
    up_cast = {k: None if v is None else v.astype(dtype.value) for k, v in up.items()}
    if xs is None:
        g = lstm_step_backward(
            inputs["x_t"], inputs["h_prev"], inputs["c_prev"], **cell_arrays,
            dh_next=up_cast["dh_next"], dc_next=up_cast["dc_next"], **variant,
        )  # fmt: skip
    else:
        g = lstm_sequence_backward(
            inputs["xs"], inputs["h0"], inputs["c0"], cell_arrays,
            dh_next=up_cast["dh_next"], dc_next=up_cast["dc_next"], dhs=up_cast.get("dhs"),
            **variant,
        )  # fmt: skip
    if not all(np.all(np.isfinite(v)) for v in g.grads.values()):
        raise InputError(f"a gradient overflowed {dtype.value}: inputs too large", exit_code=1)
    rows = None
    if check:
        names = ("x_t", "h_prev", "c_prev") if xs is None else ("xs", "h0", "c0")
        rows = gradient_check(
            inputs[names[0]],
            inputs[names[1]],
            inputs[names[2]],
            param_set.params.all_arrays(),
            dh_next=up["dh_next"],
            dc_next=up["dc_next"],
            dhs=up.get("dhs"),
            sequence=xs is not None,
            max_entries=CHECK_MAX_ENTRIES,
            **variant,
        )  # fmt: skip
        if any(r.checked < r.size for r in rows):
            notes.append(
                f"The gradient check sampled {CHECK_MAX_ENTRIES} random entries of each "
                "larger array."
            )
    payload: dict[str, Any] = {
        "grads": {k: v.tolist() for k, v in g.grads.items()},
        "h_next": g.h_next.tolist(),
        "c_next": g.c_next.tolist(),
        "loss": (
            "sum(dh_next * h_next) + sum(dc_next * c_next)"
            if xs is None
            else "sum_t sum(dhs[t] * h_t) + sum(dh_next * h_T) + sum(dc_next * c_T)"
        ),
        "upstream": {
            "dh_next": dh_next or "ones",
            "dc_next": dc_next or "zeros",
            **({"dhs": dhs} if xs is not None else {}),
        },
        "shapes": {k: list(v.shape) for k, v in g.grads.items()},
        "dtype": dtype.value,
        "sources": {**sources, "params": label},
        "variant": cell.variant(),
    }
    if not cell.is_plain:
        notes.append(_describe_variant(cell))
    if rows is not None:
        payload["check"] = {
            "method": "central differences in float64, eps 1e-6; rel_error = "
            "||analytic - numerical|| / (||analytic|| + ||numerical||)",
            "tolerance": check_tol,
            "ok": all(r.rel_error <= check_tol for r in rows),
            "arrays": {
                r.name: {
                    "rel_error": r.rel_error,
                    "max_abs_error": r.max_abs_error,
                    "checked": r.checked,
                    "size": r.size,
                }
                for r in rows
            },
        }
    if out is not None:
        if out.suffix.lower() == ".json":
            text = fileio.dumps(payload).encode() + b"\n"

            def write(f: IO[bytes]) -> None:
                f.write(text)

            fileio.atomic_write(out, write, force=force)
        else:
            fileio.save_npz(out, {**g.grads, "h_next": g.h_next, "c_next": g.c_next}, force)
        notes.append(f"Saved the gradients to {out}.")
    if use_pretty:
        from .render import print_view
        from .render_learn import grad_view

        print_view(grad_view(g.grads, notes, rows, check_tol))
    else:
        _write_stdout(fileio.dumps(payload))
    if rows is not None and not all(r.rel_error <= check_tol for r in rows):
        worst = max(rows, key=lambda r: r.rel_error)
        typer.echo(
            f"Error: gradient check failed: {worst.name} has relative error "
            f"{worst.rel_error:.2e} > {check_tol:g}",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def vectors(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write (made if missing).")
    ] = Path("vectors"),
    count: Annotated[int, typer.Option(min=1, max=10_000, help="Number of cases.")] = 26,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed of the cases.")] = 0,
    variants: Annotated[
        str,
        typer.Option(
            help="ONNX variant cases to add: all, none, or a comma list of peepholes, clip, "
            "input_forget, onnx_all (all three at once)."
        ),
    ] = "all",
    force: ForceOpt = False,
    json_: JsonOpt = False,
    pretty: PrettyOpt = False,
) -> None:
    """Write golden test vectors for a port: per case the params, inputs and every
    intermediate (u, pre-activations, gates, c_next, h_next) as .json and .npz, and a
    manifest.json with the equations, the gate order and the dtypes. Deterministic for a
    seed; the default 26 standard cases cover every shape, magnitude and edge case in
    float32 and float64, then 3 cases of each of ONNX's variants follow (peepholes, clip,
    input_forget, all three), their equations in the manifest. A port without the variants
    takes --variants none. Run your port on them, then:
    lstm-cell check --vectors DIR --results FILE

    \b
        lstm-cell vectors --count 26 --seed 0 --out vectors

    \b
        lstm-cell vectors --variants none --out plain-vectors
    """
    from .vectors import VARIANTS, build_cases, write_vectors

    use_pretty = _use_pretty(json_, pretty)
    chosen = _variant_list(variants, VARIANTS)
    cases = build_cases(count, seed, chosen)
    written = write_vectors(out, cases, seed, force=force)
    if use_pretty:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        from .render import make_console

        table = Table(
            title=f"Wrote {len(written)} files to {out}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        table.add_column("case", no_wrap=True)
        table.add_column("shape", no_wrap=True)
        table.add_column("what")
        for cs in cases:
            table.add_row(cs.name, cs.shape_label(), Text(f"{cs.kind}: {cs.spec.description}"))
        make_console().print(table)
    else:
        summary = {
            "path": str(out),
            "seed": seed,
            "variants": list(chosen),
            "cases": [cs.name for cs in cases],
        }
        _write_stdout(fileio.dumps({**summary, "files": len(written)}))


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


class Layout(str, enum.Enum):
    seed = "seed"
    pytorch = "pytorch"
    keras = "keras"
    onnx = "onnx"


@app.command()
def check(
    target: Annotated[
        str | None,
        typer.Argument(help="Your function as MODULE:FUNCTION (or path/to/file.py:FUNCTION)."),
    ] = None,
    layout: Annotated[
        Layout, typer.Option(help="Your function's signature: seed, pytorch, keras or onnx.")
    ] = Layout.seed,
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
    max_input_mb: MaxInputOpt = DEFAULT_MAX_INPUT_MB,
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
    from .check import LAYOUTS, check_function, check_outcomes, load_function
    from .vectors import build_cases, load_vectors

    use_pretty = _use_pretty(json_, pretty)
    if (vectors_dir is None) != (results is None):
        raise typer.BadParameter("--vectors and --results go together")
    if target is not None and vectors_dir is not None:
        raise typer.BadParameter("give MODULE:FUNCTION or --vectors/--results, not both")
    if target is None and vectors_dir is None:
        raise typer.BadParameter("give MODULE:FUNCTION, or --vectors DIR --results FILE")
    lay = LAYOUTS[layout.value]
    if target is not None:
        fn, label = load_function(target)
        cases = build_cases(count, seed)
        if no_batch:
            cases = [cs for cs in cases if cs.batch is None]
        result = check_function(fn, label, cases, lay, atol, rtol)
    else:
        assert vectors_dir is not None and results is not None
        from .check_results import load_results

        cases = load_vectors(vectors_dir)
        if no_batch:
            cases = [cs for cs in cases if cs.batch is None]
        outcomes = load_results(results, cases, max_input_mb << 20)
        result = check_outcomes(str(results), lay, cases, outcomes, atol, rtol)
    if use_pretty:
        from .render import print_view
        from .render_learn import check_view

        print_view(check_view(result))
    else:
        _write_stdout(fileio.dumps(result.to_json()))
    if not result.ok:
        failed = sum(not r.ok for r in result.reports)
        culprit = f"; likely culprit: {result.diagnoses[0].culprit}" if result.diagnoses else ""
        typer.echo(f"{failed} of {len(result.reports)} cases disagree{culprit}", err=True)
        raise typer.Exit(1)
