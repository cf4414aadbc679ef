"""The compiled backend (lstm_cli/_kernel.c) against the NumPy reference, and --backend.

Agreement: float64 to 1e-13 relative to each array's largest magnitude, float32 to 4 ulp at
that magnitude, on every case family: batch and not, chunk boundaries, non-zero h0/c0 (larger
than 1), saturating and overflowing inputs, several H and F. Skipped only when the kernel was
not built (no C compiler at install); in CI (``CI`` set) its absence is a failure.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lstm_cli import compiled, init_params, run_sequence
from lstm_cli.cli import app
from lstm_cli.params import LSTMParams

needs_kernel = pytest.mark.skipif(
    not compiled.available(), reason="the compiled kernel was not built (no C compiler)"
)


def test_the_kernel_is_built_in_ci():
    if os.environ.get("CI") and not compiled.available():
        pytest.fail("CI installs with a C compiler: the compiled kernel must be there")


def both(p: LSTMParams, xs, h0=None, c0=None, chunk_steps=None):
    kw = {"return_sequences": True, "return_gates": True, "chunk_steps": chunk_steps}
    ref = run_sequence(p, xs, h0, c0, backend="numpy", **kw)
    got = run_sequence(p, xs, h0, c0, backend="compiled", **kw)
    return ref, got


def assert_agree(ref, got) -> None:
    arrays = {"h_next": ref.h_next, "c_next": ref.c_next, "h_seq": ref.h_seq, "c_seq": ref.c_seq}
    arrays.update(ref.gates)
    mine = {"h_next": got.h_next, "c_next": got.c_next, "h_seq": got.h_seq, "c_seq": got.c_seq}
    mine.update(got.gates)
    for name, a in arrays.items():
        b = mine[name]
        assert b.dtype == a.dtype and b.shape == a.shape, name
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), name
        fa, fb = a[np.isfinite(a)], b[np.isfinite(b)]
        scale = float(np.max(np.abs(fa), initial=0.0))
        f32 = a.dtype == np.float32
        tol = 4 * float(np.spacing(np.float32(scale))) if f32 else 1e-13 * scale
        err = float(np.max(np.abs(fa - fb), initial=0.0))
        assert err <= tol, f"{name}: {err:.3g} > {tol:.3g}"


def count_kernel_calls(monkeypatch, getter: str) -> dict[str, int]:
    """Counts the calls of the kernel function that ``compiled.<getter>(dtype)`` returns
    (``calls``) and the steps NumPy redoes (``redone``) while a test runs."""
    calls = {"calls": 0, "redone": 0}
    get, redo = getattr(compiled, getter), compiled._numpy_cell

    def counted_getter(dt):
        fn = get(dt)

        def counted(*args):
            calls["calls"] += 1
            return fn(*args)

        return counted

    def counted_redo(*args, **kw):
        calls["redone"] += 1
        return redo(*args, **kw)

    monkeypatch.setattr(compiled, getter, counted_getter)
    monkeypatch.setattr(compiled, "_numpy_cell", counted_redo)
    return calls


def cell(F: int, H: int, dtype: str, seed: int = 0) -> LSTMParams:
    return init_params(F, H, seed=seed, scheme="pytorch").params.astype(dtype)


@needs_kernel
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("B", [None, 1, 5])
@pytest.mark.parametrize(("F", "H"), [(1, 1), (10, 4), (3, 16), (7, 33)])
def test_the_backends_agree(dtype, B, F, H):
    rng = np.random.default_rng(F * 100 + H)
    T = 300
    xs = rng.standard_normal((T, F) if B is None else (T, B, F)).astype(dtype)
    ref, got = both(cell(F, H, dtype), xs)
    assert_agree(ref, got)


@needs_kernel
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("chunk_steps", [1, 7, 40, 4096])
@pytest.mark.parametrize("batched", [False, True])
def test_chunk_boundaries_and_initial_state(dtype, chunk_steps, batched):
    rng = np.random.default_rng(chunk_steps)
    shape = (123, 3, 6) if batched else (123, 6)
    xs = rng.standard_normal(shape).astype(dtype)
    state = shape[1:-1] + (5,)
    h0 = (3 * rng.standard_normal(state)).astype(dtype)  # larger than 1: not a tanh output
    c0 = (10 * rng.standard_normal(state)).astype(dtype)
    ref, got = both(cell(6, 5, dtype, seed=2), xs, h0, c0, chunk_steps)
    assert_agree(ref, got)


@needs_kernel
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scale", [1e3, 1e30, "max"])
def test_saturating_and_overflowing_inputs(dtype, scale):
    rng = np.random.default_rng(3)
    big = float(np.finfo(dtype).max) / 4 if scale == "max" else scale
    xs = (rng.standard_normal((50, 2, 4)) * big).astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        ref, got = both(cell(4, 3, dtype), xs, chunk_steps=16)
    assert_agree(ref, got)


def test_choose():
    assert compiled.choose("numpy", True) == "numpy"
    assert compiled.choose("auto", False) == "numpy"  # a variant: NumPy's variant loop
    want = "compiled" if compiled.available() else "numpy"
    assert compiled.choose("auto", True, n_hidden=4, batch=1) == want
    assert compiled.choose("auto", True, n_hidden=compiled.AUTO_MAX_HIDDEN + 1) == want
    assert compiled.choose("auto", True, n_hidden=4, batch=2) == want  # the fused kernel
    assert compiled.choose("auto", True, compiled.AUTO_MAX_FUSED_HIDDEN, 2) == want
    big = compiled.AUTO_MAX_FUSED_HIDDEN + 1  # NumPy's path is as fast: BLAS dominates
    assert compiled.choose("auto", True, n_hidden=big, batch=2) == "numpy"
    assert compiled.choose("auto", True, n_hidden=big, batch=1) == "numpy"
    assert compiled.whole_loop(compiled.AUTO_MAX_HIDDEN, 1)
    assert not compiled.whole_loop(compiled.AUTO_MAX_HIDDEN + 1, 1)
    assert not compiled.whole_loop(4, 2)
    with pytest.raises(ValueError, match="backend must be one of"):
        compiled.choose("fortran", True)


def test_compiled_refused_when_absent(monkeypatch):
    monkeypatch.setattr(compiled, "available", lambda: False)
    with pytest.raises(ValueError, match="not installed"):
        compiled.choose("compiled", True)
    assert compiled.choose("auto", True) == "numpy"


@needs_kernel
def test_a_variant_is_refused_by_compiled_and_routed_to_numpy_by_auto():
    p = cell(4, 3, "float64").with_variant(clip=0.5)
    xs = np.random.default_rng(0).standard_normal((20, 4))
    with pytest.raises(ValueError, match="plain cells only"):
        compiled.choose("compiled", False)
    with pytest.raises(ValueError, match="plain cells only"):
        run_sequence(p, xs, backend="compiled")
    a = run_sequence(p, xs, backend="auto", return_sequences=True)
    b = run_sequence(p, xs, backend="numpy", return_sequences=True)
    assert np.array_equal(a.h_seq, b.h_seq)


XS = json.dumps({"xs": [[1.0] + [0.0] * 9, [0.0, 2.0] + [0.0] * 8]})


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_run_backend_and_verbose(runner, backend):
    result = runner.invoke(app, ["run", "--backend", backend, "--verbose", "--json"], input=XS)
    assert result.exit_code == 0, result.output
    chosen = "compiled" if backend == "auto" and compiled.available() else "numpy"
    assert result.stderr.startswith(f"backend: {chosen}")
    assert "h_next" in json.loads(result.stdout)


@needs_kernel
def test_run_compiled_equals_numpy(runner):
    outs = [
        json.loads(runner.invoke(app, ["run", "--backend", b, "--json"], input=XS).stdout)
        for b in ("numpy", "compiled")
    ]
    np.testing.assert_allclose(outs[0]["h_next"], outs[1]["h_next"], rtol=1e-13, atol=1e-15)


def test_run_compiled_refused_in_one_line(runner, monkeypatch):
    monkeypatch.setattr(compiled, "available", lambda: False)
    result = runner.invoke(app, ["run", "--backend", "compiled", "--json"], input=XS)
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "not installed" in result.stderr


@needs_kernel
def test_run_compiled_refuses_a_variant_in_one_line(runner):
    result = runner.invoke(app, ["run", "--backend", "compiled", "--clip", "1", "--json"], input=XS)
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "plain cells only" in result.stderr


def test_version_names_the_backend(runner, monkeypatch):
    result = runner.invoke(app, ["--version"])
    want = "compiled kernel" if compiled.available() else "numpy only"
    assert want in result.stdout
    monkeypatch.setattr(compiled, "available", lambda: False)
    assert "numpy only" in runner.invoke(app, ["--version"]).stdout
