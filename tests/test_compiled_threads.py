"""The compiled backend's threaded loop (``lstm_threads_f64/f32`` in _kernel.c, run by
``compiled.stacked_threads``) against the NumPy reference.

Batches of ``THREADS_MIN_BATCH`` and more of a plain cell: each step's product by the kernel's
own GEMM on packed weights, and the fused elementwise step, split by hidden unit across
threads. Agreement as in test_compiled.py (float64 to 1e-13 relative to each array's largest
magnitude, float32 to 4 ulp at that magnitude) for every family: float32/64, batch sizes on
and off the vector width (8, 13, 16, 37, 64), H from 1 to 256, with and without the kept
sequences and gates, chunk boundaries, initial states larger than a step makes them, every
instruction set the CPU has (AVX-512, AVX2, the baseline), 1 to 5 threads (the same bits
whatever the count), a value that is not finite (the step redone by NumPy, mid-chunk too),
and the CLI. Skipped only when the kernel was not built (test_compiled.py fails in CI if so).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstm_cli import compiled, run_sequence
from lstm_cli.cli import app

from .test_compiled import assert_agree, count_kernel_calls
from .test_compiled_fused import agree, both, cell, cli_files

pytestmark = pytest.mark.skipif(
    not compiled.has_threads(), reason="the compiled kernel was not built with threads"
)
LEVELS = {0: "baseline", 1: "AVX2", 2: "AVX-512"}


def _levels_here() -> list[int]:
    """The instruction sets this build has and this CPU runs (the cap restored after)."""
    lib = compiled._library()
    if lib is None or lib.lstm_threads_f32 is None:
        return []
    here = [k for k in LEVELS if lib.lstm_threads_isa(k) == k]
    lib.lstm_threads_isa(2)
    return here


@pytest.fixture
def loop_calls(monkeypatch):
    """Counts the threaded kernel's calls and the steps NumPy redid while a test runs."""
    return count_kernel_calls(monkeypatch, "_threads_fn")


@pytest.fixture
def level():
    """Yields a function that caps the kernel's instruction set (0, 1, 2); the cap is lifted
    after the test."""

    lib = compiled._library()
    assert lib is not None

    def cap(k: int) -> None:
        assert lib.lstm_threads_isa(k) == k

    yield cap
    lib.lstm_threads_isa(2)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("B", [8, 13, 16, 37, 64])
@pytest.mark.parametrize("H", [1, 5, 33, 256])
@pytest.mark.parametrize("kept", [True, False])
def test_the_threaded_loop_agrees(dtype, B, H, kept, loop_calls):
    F, T = 7, (12 if H * B >= 4096 else 40)
    xs = np.random.default_rng(H * 100 + B).standard_normal((T, B, F)).astype(dtype)
    agree(*both(cell(F, H, dtype, seed=H), xs, gates=kept))
    assert loop_calls["calls"] >= 1 and loop_calls["redone"] == 0


@pytest.mark.parametrize("isa", _levels_here())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_instruction_set_agrees(isa, dtype, level):
    """On x86-64 the loop is compiled for AVX-512 and for AVX2 + FMA: each one this CPU has
    is held to the same agreement (B = 21: full vectors and a padded tail in each width).
    The baseline build, for other architectures, is test_the_baseline_build's."""
    level(isa)
    assert compiled.isa() == LEVELS[isa]
    states_like_a_run(dtype)


def states_like_a_run(dtype: str) -> None:
    """Agreement on batches on and off the vector widths from states a run makes (|h0| < 1,
    c0 ~ 3); float64 also from h0 ~ 3 and c0 ~ 10. float32 from those larger states: as
    accurate as NumPy against the float64 run (the kernel sums each product in order, k = 0
    .. K-1; OpenBLAS's small-matrix kernels may not, and with |h| ~ 3 the two roundings of z
    put g 3 ulp apart, each as far from the float64 truth)."""
    for B in (8, 21, 64):
        rng = np.random.default_rng(B)
        xs = rng.standard_normal((30, B, 9)).astype(dtype)
        h0, c0 = rng.uniform(-1, 1, (B, 40)), 3 * rng.standard_normal((B, 40))
        agree(*both(cell(9, 40, dtype, seed=3), xs, h0.astype(dtype), c0.astype(dtype)))
        if dtype == "float64":
            h0, c0 = 3 * rng.standard_normal((B, 40)), 10 * rng.standard_normal((B, 40))
            agree(*both(cell(9, 40, dtype, seed=3), xs, h0, c0))
    if dtype == "float32":
        float32_as_accurate_as_numpy()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_thread_count_changes_no_bit(dtype, monkeypatch):
    """Each unit's sums run in the same order whichever thread has it: 1 to 5 threads (and
    more threads than units, H = 3) give the same bits."""
    xs = np.random.default_rng(7).standard_normal((25, 19, 6)).astype(dtype)
    for H in (3, 30):
        p = cell(6, H, dtype, seed=H)
        outs = []
        for n in (1, 2, 3, 5):
            monkeypatch.setenv("OMP_NUM_THREADS", str(n))
            assert compiled.threads() == n
            r = run_sequence(p, xs, backend="compiled", return_sequences=True, return_gates=True)
            outs.append(r)
        for r in outs[1:]:
            assert np.array_equal(r.h_seq, outs[0].h_seq) and np.array_equal(r.c_seq, outs[0].c_seq)
            assert all(np.array_equal(r.gates[k], outs[0].gates[k]) for k in r.gates)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("chunk_steps", [1, 7, None])
def test_initial_state_and_chunks(dtype, chunk_steps, loop_calls):
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((40, 16, 6)).astype(dtype)
    h0 = rng.uniform(-1, 1, (16, 64)).astype(dtype)  # float32 from larger h0: states_like_a_run
    c0 = (3 * rng.standard_normal((16, 64))).astype(dtype)
    assert_agree(*both(cell(6, 64, dtype, seed=2), xs, h0, c0, chunk_steps=chunk_steps))
    assert loop_calls["calls"] == -(-40 // (chunk_steps or 40))  # one per chunk
    assert_agree(*both(cell(6, 64, dtype, seed=2), xs, h0[0], c0[0]))  # (H,): every row


def test_float32_with_a_large_cell_state_is_as_accurate_as_numpy():
    float32_as_accurate_as_numpy()


def float32_as_accurate_as_numpy() -> None:
    """As test_compiled_fused's: against the float64 run of the same cell, the threaded loop's
    float32 error is NumPy's own (c0 ~ 10 makes 1 ulp of f ~10 ulp of c_next)."""
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((40, 16, 6)).astype(np.float32)
    h0, c0 = (k * rng.standard_normal((16, 64)).astype(np.float32) for k in (3, 10))
    p = cell(6, 64, "float32", seed=2)
    truth = run_sequence(p.astype("float64"), xs, h0, c0, dtype="float64", return_sequences=True)
    errs = {}
    for b in ("numpy", "compiled"):
        got = run_sequence(p, xs, h0, c0, backend=b, return_sequences=True)
        errs[b] = [float(np.max(np.abs(getattr(got, k) - getattr(truth, k)))) for k in
                   ("h_seq", "c_seq")]  # fmt: skip
    assert errs["compiled"][0] <= 1.25 * errs["numpy"][0], errs
    assert errs["compiled"][1] <= 1.25 * errs["numpy"][1], errs


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_non_finite_cell_state_is_redone_by_numpy(dtype, loop_calls):
    """c0 with inf and NaN: the kernel reports step 0, NumPy redoes it, the kernel goes on
    (and reports again, each step, where c stays inf or NaN): NumPy's numbers exactly."""
    xs = np.random.default_rng(6).standard_normal((5, 8, 3)).astype(dtype)
    c0 = np.ones((8, 2), dtype)
    c0[0, 0], c0[3, 1], c0[5, 0] = np.inf, np.nan, -np.inf
    with np.errstate(invalid="ignore"):
        assert_agree(*both(cell(3, 2, dtype), xs, None, c0))
    assert loop_calls["redone"] == 5 and loop_calls["calls"] >= 5


@pytest.mark.parametrize("kept", [True, False])
def test_a_step_reported_mid_chunk_is_redone_and_the_loop_goes_on(kept, monkeypatch):
    """The kernel's report of step t (a value not finite) mid-chunk: NumPy redoes step t from
    its intact inputs, then the kernel runs the rest; the result is the same as without."""
    threads_fn = compiled._threads_fn
    seen = []

    def stops_at_step_3_once(dt):
        fn = threads_fn(dt)

        def run(n, *args):  # as the kernel stops: after the barrier of the step it reports
            seen.append(n)
            return fn(min(n, 3), *args) if len(seen) == 1 else fn(n, *args)

        return run

    p = cell(4, 24, "float64", seed=1)
    xs = np.random.default_rng(8).standard_normal((20, 9, 4))
    ref = run_sequence(p, xs, backend="compiled", return_sequences=kept, return_gates=kept)
    monkeypatch.setattr(compiled, "_threads_fn", stops_at_step_3_once)
    got = run_sequence(p, xs, backend="compiled", return_sequences=kept, return_gates=kept)
    assert seen == [20, 16]  # steps 0-2 by the kernel, 3 by NumPy, 4-19 by the kernel
    agree(ref, got)


def test_threads_follow_the_blas_settings(monkeypatch):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert compiled.threads() == min(cpus or 1, compiled._MAX_THREADS)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert compiled.threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "5,2")  # OpenMP's nested list: the outer level
    assert compiled.threads() == 5
    for junk in ("0", "", "two", "-1"):  # not a count: the next setting
        monkeypatch.setenv("OMP_NUM_THREADS", junk)
        assert compiled.threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1000")
    assert compiled.threads() == compiled._MAX_THREADS


def test_more_threads_than_the_kernel_starts_runs_nothing():
    """The kernel refuses a thread count past its limit before touching anything (0 steps
    done: the caller would then redo the steps with NumPy)."""
    fn = compiled._threads_fn(np.dtype("float64"))
    null = np.zeros(1)
    ptr = null.ctypes.data
    assert fn(1, 1, 3, 8, compiled._MAX_THREADS + 1, ptr, ptr, None, None, None, ptr) == 0


def fused_cell(F: int, H: int, dtype: str):
    from lstm_cli.fused import FusedCell

    return FusedCell.from_params(cell(F, H, dtype), np.dtype(dtype))


def test_auto_takes_the_threaded_loop_from_the_batch_size():
    big = compiled.AUTO_MAX_FUSED_HIDDEN * 2
    n = compiled.THREADS_MIN_BATCH
    assert compiled.choose("auto", True, big, n) == "compiled"
    assert compiled.choose("auto", True, big, n - 1) == "numpy"
    assert compiled.choose("auto", False, big, n) == "numpy"  # a variant
    fused = fused_cell(10, big, "float32")
    assert compiled.stacked_loop(fused, n) is compiled.stacked_threads
    assert compiled.stacked_loop(fused, n - 1) is compiled.stacked_fused
    assert compiled.describe(big, n, 10, 4).startswith("threaded loop, ")
    assert compiled.describe(big, n - 1, 10, 4) == "fused kernel beside NumPy's product"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_operand_past_the_cache_bound_takes_the_fused_kernel(dtype, loop_calls):
    """A step's operand [h; x_t; 1] of more than THREADS_MAX_OPERAND_BYTES (every thread
    reads it whole): the fused kernel beside NumPy's product runs, with NumPy's numbers; at
    the largest batch that fits, the threaded loop (a batch of 5242 float32 columns)."""
    size = np.dtype(dtype).itemsize
    H, F = 40, 9
    B = compiled.THREADS_MAX_OPERAND_BYTES // ((H + F + 1) * size)  # the largest that fits
    fused = fused_cell(F, H, dtype)
    assert compiled.stacked_loop(fused, B) is compiled.stacked_threads
    assert compiled.stacked_loop(fused, B + 1) is compiled.stacked_fused
    assert compiled.describe(H, B + 1, F, size) == "fused kernel beside NumPy's product"
    xs = np.random.default_rng(9).standard_normal((6, B + 1, F)).astype(dtype)
    agree(*both(cell(F, H, dtype), xs, gates=False))
    assert loop_calls["calls"] == 0
    agree(*both(cell(F, H, dtype), xs[:, :B], gates=False))  # the largest that fits: threaded
    assert loop_calls["calls"] == 1


def test_the_cli_names_the_threaded_loop_and_agrees(runner, tmp_path, monkeypatch):
    """run --verbose says which loop, instruction set and threads ran and why auto took it;
    --version says the kernel has the loop; the numbers are NumPy's."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    p, xs = cli_files(runner, tmp_path, 200, 12)
    outs = {}
    for b in ("numpy", "auto"):
        args = ["run", "--params", str(p), "--xs", str(xs), "--backend", b, "--verbose", "--json"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outs[b] = json.loads(result.stdout)
    assert result.stderr.startswith("backend: compiled (")
    assert f"; threaded loop, {compiled.isa()}, 2 threads)" in result.stderr
    assert "(auto: a plain cell, a batch of 8 or more)" in result.stderr
    for k in ("h_next", "c_next"):
        np.testing.assert_allclose(outs["auto"][k], outs["numpy"][k], rtol=1e-13, atol=1e-15)
    version = runner.invoke(app, ["--version"])
    assert f"(batches: threaded loop, {compiled.isa()}, 2 threads)" in version.stdout


def _build_baseline(tmp_path, flags: list[str]):
    """The kernel built for the baseline alone (as for an architecture other than x86-64),
    with ``flags``; None when there is no C compiler here."""
    import shutil
    import subprocess
    import sysconfig
    from pathlib import Path

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src = Path(compiled.__file__).with_name("_kernel.c")
    out = tmp_path / "kernel_baseline.so"
    cmd = [cc, "-O3", "-ffp-contract=off", "-fno-trapping-math", "-shared", "-fPIC", "-pthread",
           "-DLSTM_BASELINE_ONLY", *flags, f"-I{sysconfig.get_paths()['include']}",
           "-o", str(out), str(src)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return compiled._load(str(out))


@pytest.mark.skipif(
    not {1, 2} & set(_levels_here()),
    reason="the baseline build is checked with -mfma, on an x86-64 CPU with FMA",
)
def test_the_baseline_build(tmp_path, monkeypatch):
    """The baseline build (what other architectures get: the compiler fuses multiply-add
    there) agrees with NumPy; built without fused multiply-add it has no threaded loop, so
    auto keeps the fused kernel (float32 would not hold 4 ulp)."""
    lib = _build_baseline(tmp_path, ["-mfma"])
    if lib is None:
        pytest.fail("no C compiler: the kernel itself could not have been built")
    assert lib.lstm_threads_isa(-1) == 0
    monkeypatch.setattr(compiled, "_library", lambda: lib)
    assert compiled.isa() == "baseline" and compiled.has_threads()
    for dtype in ("float64", "float32"):
        states_like_a_run(dtype)
    plain = tmp_path / "plain"
    plain.mkdir()
    lib = _build_baseline(plain, ["-mno-fma"])
    assert lib is not None and lib.lstm_threads_isa(-1) == -1
    monkeypatch.setattr(compiled, "_library", lambda: lib)
    assert compiled.isa() == "none" and not compiled.has_threads()
    assert compiled.stacked_loop(fused_cell(9, 40, "float32"), 64) is compiled.stacked_fused
