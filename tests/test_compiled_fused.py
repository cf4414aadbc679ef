"""The compiled backend's fused elementwise kernel (``lstm_cell_f64/f32`` in _kernel.c, run by
``compiled.steps_fused`` and ``compiled.stacked_fused``) against the NumPy reference.

Agreement as in test_compiled.py: float64 to 1e-13 relative to each array's largest
magnitude, float32 to 4 ulp at that magnitude, for every family: float32/64, B in {2, 3, 64}
and unbatched, H in {1, 5, 64, 256}, with and without the gates, initial states larger than a
step makes them, saturating and overflowing inputs (the exact NumPy fallback), T = 1, and the
CLI. The kernel's activations are also checked alone, element by element. Skipped only when
the kernel was not built (test_compiled.py fails in CI if so).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstm_cli import compiled, init_params, run_sequence
from lstm_cli.cli import app
from lstm_cli.params import LSTMParams

from .test_compiled import assert_agree, count_kernel_calls

pytestmark = pytest.mark.skipif(
    not compiled.available(), reason="the compiled kernel was not built (no C compiler)"
)


def cell(F: int, H: int, dtype: str, seed: int = 0) -> LSTMParams:
    return init_params(F, H, seed=seed, scheme="pytorch").params.astype(dtype)


def both(p: LSTMParams, xs, h0=None, c0=None, gates=True, chunk_steps=None):
    kw = {"return_sequences": gates, "return_gates": gates, "chunk_steps": chunk_steps}
    ref = run_sequence(p, xs, h0, c0, backend="numpy", **kw)
    got = run_sequence(p, xs, h0, c0, backend="compiled", **kw)
    return ref, got


def agree(ref, got) -> None:
    if ref.gates is not None:
        assert_agree(ref, got)
        return
    for a, b in ((ref.h_next, got.h_next), (ref.c_next, got.c_next)):
        scale = float(np.max(np.abs(a)))
        tol = 4 * float(np.spacing(np.float32(scale))) if a.dtype == np.float32 else 1e-13 * scale
        assert a.dtype == b.dtype and float(np.max(np.abs(a - b))) <= tol


@pytest.fixture(autouse=True)
def fused_not_threaded(monkeypatch):
    """Batches of every size take the fused kernel here; the threaded loop, which takes
    batches of ``THREADS_MIN_BATCH`` and more, has its own tests (test_compiled_threads.py)."""
    monkeypatch.setattr(compiled, "THREADS_MIN_BATCH", 10**9)


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the fused kernel's steps (and NumPy's redone ones) while a test runs."""
    return count_kernel_calls(monkeypatch, "_cell_fn")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("B", [2, 3, 64])
@pytest.mark.parametrize("H", [1, 5, 64, 256])
@pytest.mark.parametrize("gates", [True, False])
def test_the_fused_kernel_agrees(dtype, B, H, gates, kernel_calls):
    F, T = 7, (12 if H * B >= 4096 else 60)
    rng = np.random.default_rng(H * 10 + B)
    xs = rng.standard_normal((T, B, F)).astype(dtype)
    ref, got = both(cell(F, H, dtype, seed=H), xs, gates=gates)
    agree(ref, got)
    assert kernel_calls["calls"] == T and kernel_calls["redone"] == 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("H", [17, 64])
def test_unbatched_large_cells_take_the_fused_kernel(dtype, H, kernel_calls):
    """B = 1 and H above the whole C loop's limit: the projected path with the kernel
    (the chunk's input projection added by the kernel), across chunk boundaries."""
    xs = np.random.default_rng(H).standard_normal((50, 9)).astype(dtype)
    ref, got = both(cell(9, H, dtype), xs, chunk_steps=7)
    assert_agree(ref, got)
    assert kernel_calls["calls"] == 50


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("chunk_steps", [1, 7, None])
def test_initial_state_and_chunks(dtype, chunk_steps):
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((40, 3, 6)).astype(dtype)
    h0 = (3 * rng.standard_normal((3, 64))).astype(dtype)  # larger than 1: not a tanh output
    c0 = (3 * rng.standard_normal((3, 64))).astype(dtype)
    assert_agree(*both(cell(6, 64, dtype, seed=2), xs, h0, c0, chunk_steps=chunk_steps))
    assert_agree(*both(cell(6, 64, dtype, seed=2), xs, h0[0], c0[0]))  # (H,): every row


def test_float32_with_a_large_cell_state_is_as_accurate_as_numpy():
    """With c0 ~ 10 a 1-ulp difference of f is ~10 ulp of c_next: float32 NumPy itself is
    4.5 ulp (of h) away from correctly rounded activations at the first step, so there the
    kernel is held to NumPy's own accuracy against the float64 run of the same cell."""
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((40, 3, 6)).astype(np.float32)
    h0, c0 = (k * rng.standard_normal((3, 64)).astype(np.float32) for k in (3, 10))
    p = cell(6, 64, "float32", seed=2)
    kw = {"return_sequences": True}
    truth = run_sequence(p.astype("float64"), xs, h0, c0, dtype="float64", **kw)
    errs = {}
    for b in ("numpy", "compiled"):
        got = run_sequence(p, xs, h0, c0, backend=b, **kw)
        errs[b] = [float(np.max(np.abs(getattr(got, k) - getattr(truth, k)))) for k in
                   ("h_seq", "c_seq")]  # fmt: skip
    assert errs["compiled"][0] <= 1.25 * errs["numpy"][0], errs
    assert errs["compiled"][1] <= 1.25 * errs["numpy"][1], errs


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("B", [2, 64])
def test_one_step(dtype, B):
    xs = np.random.default_rng(B).standard_normal((1, B, 5)).astype(dtype)
    assert_agree(*both(cell(5, 64, dtype), xs))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scale", [1e3, 1e30])
def test_saturating_inputs(dtype, scale, kernel_calls):
    """Gates at exactly 0 or 1 and tanh at +-1: still the kernel, nothing redone."""
    xs = (np.random.default_rng(3).standard_normal((30, 4, 5)) * scale).astype(dtype)
    assert_agree(*both(cell(5, 32, dtype), xs, chunk_steps=8))
    assert kernel_calls["calls"] == 30 and kernel_calls["redone"] == 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_overflow_is_redone_by_numpy(dtype, kernel_calls):
    """Inputs near the dtype's maximum: the stacked bound fails, the projection overflows to
    +-inf, the kernel reports it and NumPy redoes those steps: NumPy's numbers exactly."""
    big = float(np.finfo(dtype).max)  # 32 features: many sums of |W x| exceed it
    xs = (np.sign(np.random.default_rng(4).standard_normal((20, 3, 32))) * big).astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        assert_agree(*both(cell(32, 8, dtype), xs, chunk_steps=16))
    assert kernel_calls["redone"] > 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_non_finite_initial_cell_state(dtype, kernel_calls):
    xs = np.random.default_rng(6).standard_normal((5, 2, 3)).astype(dtype)
    c0 = np.array([[np.inf, 1.0], [np.nan, -np.inf]], dtype)
    with np.errstate(invalid="ignore"):
        assert_agree(*both(cell(3, 2, dtype), xs, None, c0))
    assert kernel_calls["redone"] > 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_kernel_alone(dtype):
    """One call on every kind of value: the activations within 3 ulp of the correctly
    rounded ones (computed in float64 by NumPy), +-inf saturating, NaN propagating, and
    the non-finite flag; the cell update as NumPy computes it from those gates."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(7)
    v = np.concatenate([np.linspace(-12, 12, 4001), rng.standard_normal(4000) * 30])
    v = np.concatenate([v, [0.0, -0.0, 1e-30, -1e-30, 0.6249, 0.6251, 50, -50]]).astype(dt)
    HB = v.size
    z = np.concatenate([v, rng.permutation(v), rng.permutation(v), rng.permutation(v)])
    c_prev = (rng.standard_normal(HB) * 5).astype(dt)
    c_next, h_next, gates = (np.empty(n * HB, dt) for n in (1, 1, 4))
    fn = compiled._cell_fn(dt)
    args = (z, None, c_prev, c_next, h_next, gates)
    assert fn(HB, *(None if a is None else a.ctypes.data for a in args)) == 0
    z64 = z.astype(np.float64)
    with np.errstate(over="ignore"):
        want = np.concatenate([np.tanh(z64[:HB]), 1 / (1 + np.exp(-2 * z64[HB:]))])
    ulp = np.spacing(np.abs(want).astype(dt)).astype(np.float64)
    if dt == np.float32:  # float32: 0.5 tanh + 0.5 as NumPy's loop, 2 ulp of tanh absolute
        ulp[HB:] = np.spacing(np.float32(1)) / 2
    ulp[HB:][want[HB:] < 2e-35] = 2e-35 / 3  # the sigmoid is 0 where it is below 2e-35
    assert np.all(np.abs(gates - want) <= 3 * np.maximum(ulp, np.finfo(dt).smallest_subnormal))
    assert np.signbit(gates[HB - 7]) and gates[HB - 7] == 0  # tanh(-0) = -0
    g, o, f, i = gates.reshape(4, HB)
    assert np.array_equal(c_next, f * c_prev + i * g)  # each product and the sum rounded
    np.testing.assert_allclose(h_next, o * np.tanh(c_next), rtol=4 * np.finfo(dt).eps, atol=0)
    special = np.array([np.inf, -np.inf, np.nan, 1.0], dt)
    z2 = np.tile(special, 4)
    c2, n2, h2, g2 = (np.zeros(k * 4, dt) for k in (1, 1, 1, 4))
    assert fn(4, z2.ctypes.data, None, c2.ctypes.data, n2.ctypes.data, h2.ctypes.data,
              g2.ctypes.data) == 1  # fmt: skip
    assert list(g2[:2]) == [1, -1] and list(g2[4:6]) == [1, 0] and np.isnan(g2[2])


def cli_files(runner, tmp_path, n_hidden: int, batch: int):
    """A params file made by `init` (F = 6, pytorch scheme) and xs.npy (30, batch, 6)."""
    p = tmp_path / "p.npz"
    args = ["init", "--n-features", "6", "--n-hidden", str(n_hidden), "--scheme", "pytorch",
            "--seed", "1", "--out", str(p), "--json"]  # fmt: skip
    made = runner.invoke(app, args)
    assert made.exit_code == 0, made.output
    xs = tmp_path / "xs.npy"
    np.save(xs, np.random.default_rng(8).standard_normal((30, batch, 6)))
    return p, xs


def test_auto_takes_the_fused_kernel_for_a_batch(runner, tmp_path):
    """Through the CLI: --backend compiled and auto give NumPy's numbers for a batch of a
    larger cell, and --verbose names the backend that ran."""
    p, xs = cli_files(runner, tmp_path, 64, 5)
    outs = {}
    for b in ("numpy", "compiled", "auto"):
        args = ["run", "--params", str(p), "--xs", str(xs), "--backend", b, "--verbose", "--json"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert result.stderr.startswith(f"backend: {'numpy' if b == 'numpy' else 'compiled'}")
        outs[b] = json.loads(result.stdout)
    for b in ("compiled", "auto"):
        for k in ("h_next", "c_next"):
            np.testing.assert_allclose(outs[b][k], outs["numpy"][k], rtol=1e-13, atol=1e-15)
