"""Written from the survivors of mutation testing of lstm_cli/sequence.py (docs/mutation.md):
a sequence of zero steps (batched, float32, with sequences asked for), float32 runs fed
float64 inputs or states, what a chunk hands back when only some sequences are asked for,
an input projection that overflows, the refusals' words, the default chunk size, and which
step loop runs."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_cli import LSTMParams, compiled, iter_sequence, lstm_step, run_sequence, sequence
from lstm_cli.compiled import (
    AUTO_MAX_FUSED_HIDDEN,
    AUTO_MAX_HIDDEN,
    available,
    stacked_fused,
    stacked_loop,
    stacked_threads,
    steps_compiled,
    steps_fused,
)
from lstm_cli.core import lstm_step_variant
from lstm_cli.fused import _steps_plain
from lstm_cli.params import Variant
from lstm_cli.sequence import _step_loop_for, default_chunk_steps

from .conftest import random_cell

F, H, B = 5, 3, 4


def cell(seed: int = 0, dtype: str = "float64", n_hidden: int = H) -> LSTMParams:
    return LSTMParams(**random_cell(np.random.default_rng(seed), F, n_hidden)).astype(dtype)


def states(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# --------------------------------------------------------------------------- zero steps


def test_zero_steps_of_a_batch_return_each_rows_initial_state():
    h0, c0 = states(1, (B, H)), states(2, (B, H))
    r = run_sequence(cell(), np.zeros((0, B, F)), h0, c0, return_sequences=True)
    np.testing.assert_array_equal(r.h_next, h0)
    np.testing.assert_array_equal(r.c_next, c0)
    assert r.h_seq is not None and r.h_seq.shape == (0, B, H)


@pytest.mark.parametrize("batched", [False, True])
def test_zero_steps_in_float32_stay_float32(batched):
    h0 = states(3, (B, H) if batched else (H,))  # float64, cast to the compute dtype
    xs = np.zeros((0, B, F) if batched else (0, F), np.float32)
    r = run_sequence(cell(dtype="float32"), xs, h0, h0, return_sequences=True, return_gates=True)
    assert r.h_next.dtype == r.c_next.dtype == np.float32
    np.testing.assert_array_equal(r.h_next, h0.astype(np.float32))
    assert r.h_seq is not None and r.h_seq.dtype == np.float32
    assert r.gates is not None and r.gates["i_t"].dtype == np.float32
    zero = run_sequence(cell(dtype="float32"), xs)
    assert zero.h_next.dtype == np.float32


def test_no_chunks_at_all_return_the_initial_state():
    h0 = states(9, (H,))
    r = run_sequence(cell(), iter([]), h0, return_sequences=True)
    np.testing.assert_array_equal(r.h_next, h0)
    np.testing.assert_array_equal(r.c_next, np.zeros(H))
    assert r.n_steps == 0 and r.h_seq is not None and r.h_seq.shape == (0, H)


@pytest.mark.parametrize("xs", [np.zeros((0, F)), np.zeros((2, F)), []], ids=["0", "2", "none"])
@pytest.mark.parametrize("name", ["h0", "c0"])
def test_a_misshapen_initial_state_is_refused_by_its_name(xs, name):
    with pytest.raises(ValueError, match=r"(shape|dtype)") as e:
        run_sequence(cell(), xs, **{name: np.zeros(4)})
    assert str(e.value) == f"{name} must have shape ({H},), got (4,)"


# --------------------------------------------------------------------------- refusals


def test_a_chunk_unlike_the_first_is_refused_with_both_shapes():
    chunks = [np.zeros((3, B, F)), np.zeros((2, B + 1, F))]
    with pytest.raises(ValueError, match=r"(shape|dtype)") as e:
        list(iter_sequence(cell(), chunks))
    assert str(e.value) == (
        f"xs chunk at step 3 has shape (2, {B + 1}, {F}), expected (n, {B}, {F}) like the "
        "first chunk"
    )


def test_an_integer_dtype_is_refused():
    with pytest.raises(ValueError, match=r"(shape|dtype)") as e:
        run_sequence(cell(), np.zeros((2, F)), dtype="int64")
    assert str(e.value) == "dtype must be a floating dtype, got int64"


# --------------------------------------------------------------------------- what is handed back


@pytest.mark.parametrize("batch", [(), (B,)])
def test_a_chunk_holds_only_what_was_asked_for(batch):
    xs = states(4, (6, *batch, F))
    p = cell()
    plain = list(iter_sequence(p, [xs[:2], xs[2:]]))
    assert [c.start for c in plain] == [0, 2]
    assert all(c.h_seq is None and c.c_seq is None and c.gates is None for c in plain)
    seqs = list(iter_sequence(p, [xs], return_sequences=True))
    assert seqs[0].gates is None and seqs[0].h_seq is not None
    gates = list(iter_sequence(p, [xs], return_gates=True))
    assert gates[0].h_seq is None and gates[0].c_seq is None and gates[0].gates is not None
    only_gates = run_sequence(p, xs, return_gates=True)
    assert only_gates.gates is not None and only_gates.gates["o_t"].shape == (6, *batch, H)


def test_iter_sequence_computes_in_the_cells_dtype_by_default():
    p = cell(dtype="float32")
    (chunk,) = iter_sequence(p, [states(5, (3, F))])
    assert chunk.h_next.dtype == np.float32


@pytest.mark.parametrize("batch", [(), (B,)])
def test_float64_inputs_to_a_float32_cell_are_cast_first(batch):
    p = cell(6, "float32")
    xs = states(7, (5, *batch, F)) * 3
    got = run_sequence(p, xs)
    want = run_sequence(p, xs.astype(np.float32))
    np.testing.assert_array_equal(got.h_next, want.h_next)
    np.testing.assert_array_equal(got.c_next, want.c_next)


@pytest.mark.parametrize("batch", [(), (B,)])
def test_an_overflowing_input_projection_is_recomputed_as_the_step_does(batch):
    """Two inputs at the float64 maximum with weights +1 and -1 on them: a plain product
    gives inf - inf = nan; the rescaled product (as ``core.project``) cancels them exactly,
    so the run equals the steps with those inputs at 0."""
    p = cell(8)
    big = np.finfo(np.float64).max
    xs = np.zeros((2, *batch, F))
    xs[..., 0], xs[..., 1] = big, big
    arrays = p.arrays()
    for name in ("Wf", "Wi", "Wo", "Wc"):
        arrays[name][:, H : H + 2] = [4.0, -4.0]  # each product overflows; they cancel
    q = LSTMParams(**arrays)
    r = run_sequence(q, xs)
    h, c = np.zeros((*batch, H)), np.zeros((*batch, H))
    for _ in xs:
        h, c = lstm_step(np.zeros((*batch, F)), h, c, **arrays)
    assert np.all(np.isfinite(r.h_next))
    np.testing.assert_allclose(r.h_next, h, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.c_next, c, rtol=1e-12, atol=1e-15)


def test_overflows_and_infinities_give_no_warning():
    """float16: a projection near its maximum overflows when the bias is added; an infinite
    input makes inf * 0 = nan. Both are results to report, not warnings (which fail here)."""
    a = cell(10).arrays()
    a["Wc"][:, H:] = 0.0
    a["Wc"][:, H] = 1.0
    a["bc"][:] = 100.0
    q = LSTMParams(**a)
    xs = np.zeros((2, F))
    xs[:, 0] = 65504.0  # float16's largest
    r = run_sequence(q, xs, dtype=np.float16)
    assert r.h_next.dtype == np.float16 and np.all(np.isfinite(r.h_next))
    xs[:, 1] = np.inf
    assert run_sequence(q, xs).h_next.shape == (H,)


def test_the_repr_and_html_describe_the_result():
    r = run_sequence(cell(), np.zeros((2, F)), return_sequences=True)
    assert repr(r).startswith("SequenceResult(") and "n_steps=2" in repr(r)
    assert "h_next" in r._repr_html_()


# --------------------------------------------------------------------------- chunks and loops


def test_the_default_chunk_is_about_four_mebibytes_of_projection():
    assert default_chunk_steps(1024, 1, np.float64) == (4 << 20) // (4 * 1024 * 8)
    assert default_chunk_steps(1024, 8, np.float32) == (4 << 20) // (4 * 1024 * 8 * 4)
    assert default_chunk_steps(1024, 0, np.float32) == (4 << 20) // (4 * 1024 * 4)
    # At least MIN_CHUNK_STEPS (16) when a step's projection is over 4 MiB / 16, unless 16
    # steps would pass 64 MiB: then as many as fit, and never fewer than one.
    assert default_chunk_steps(1024, 256, np.float32) == 16  # 4 MiB a step: 64 MiB
    assert default_chunk_steps(1024, 64, np.float32) == 16  # 1 MiB a step: 16 MiB, not 4
    assert default_chunk_steps(2048, 256, np.float32) == 8  # 8 MiB a step: 64 MiB at most
    assert default_chunk_steps(1 << 20, 1, np.float64) == 2  # 32 MiB a step
    assert default_chunk_steps(1 << 22, 2, np.float64) == 1  # 256 MiB a step: at least one
    assert default_chunk_steps(1, 1, np.float64) == 4096  # at most MAX_CHUNK_STEPS


@pytest.mark.skipif(not available(), reason="the compiled backend is not built here")
def test_the_step_loop_follows_the_backend_and_the_batch():
    small, large = cell(), cell(n_hidden=AUTO_MAX_HIDDEN + 1)
    assert _step_loop_for(small, "numpy", 1) is _steps_plain
    if not available():
        assert _step_loop_for(small, "auto", 1) is _steps_plain
        return
    assert _step_loop_for(small, "compiled", 1) is steps_compiled  # the whole loop in C
    assert _step_loop_for(small, "auto", 1) is steps_compiled
    assert _step_loop_for(small, "auto", B) is steps_fused  # NumPy's product + fused kernel
    assert _step_loop_for(large, "auto", 1) is steps_fused
    huge = cell(n_hidden=AUTO_MAX_FUSED_HIDDEN + 1)  # auto keeps NumPy's path: as fast there
    assert _step_loop_for(huge, "auto", 1) is _steps_plain
    assert _step_loop_for(huge, "auto", B) is _steps_plain
    assert _step_loop_for(huge, "compiled", B) is steps_fused


@pytest.mark.skipif(not available(), reason="the compiled backend is not built here")
@pytest.mark.parametrize(("batch", "compiled"), [((), True), ((B,), False)])
def test_auto_runs_the_compiled_loop_for_one_sequence_only(monkeypatch, batch, compiled):
    calls = []

    def counted(*args):
        calls.append(1)
        return steps_compiled(*args)

    monkeypatch.setattr(sequence, "steps_compiled", counted)
    run_sequence(cell(), states(11, (3, *batch, F)), backend="auto")
    assert bool(calls) is compiled


@pytest.mark.skipif(not available(), reason="the compiled backend is not built here")
@pytest.mark.parametrize("batch", [B, compiled.THREADS_MIN_BATCH])
def test_a_batch_on_the_compiled_backend_runs_the_kernels_stacked_loop(monkeypatch, batch):
    """A batch of a plain cell: one product per step in the compiled loop for its size (the
    threaded loop from THREADS_MIN_BATCH on where the kernel has it, else the fused kernel's
    elementwise part beside NumPy's product), and the same numbers as the NumPy backend."""
    calls = []

    def counted(fused, size):
        loop = stacked_loop(fused, size)
        calls.append(loop)
        return loop

    monkeypatch.setattr(sequence, "stacked_loop", counted)
    xs = states(12, (4, batch, F))
    r = run_sequence(cell(), xs, backend="compiled")
    big = compiled.threaded(batch, H, F, 8)
    assert big == (batch >= compiled.THREADS_MIN_BATCH and compiled.has_threads())
    assert calls and set(calls) == {stacked_threads if big else stacked_fused}
    np.testing.assert_allclose(r.h_next, run_sequence(cell(), xs).h_next, rtol=1e-13)


@pytest.mark.parametrize("batch", [(), (2,)])
def test_a_float32_peephole_run_is_the_float32_step_bit_for_bit(batch):
    """Weights and inputs on a grid of quarters, so that every projection is exact; peepholes
    and c0 need all of float32's bits: the peephole terms are float32 products, as in the
    step, not float64 ones rounded afterwards."""
    rng = np.random.default_rng(4)
    a = {f"W{g}": rng.integers(-2, 3, (H, H + F)) / 4 for g in "fioc"}
    a |= {f"b{g}": rng.integers(-2, 3, H) / 4 for g in "fioc"}
    peep = {k: 1 + rng.integers(1, 2**20, H) * 2.0**-21 for k in ("Pi", "Pf", "Po")}
    f32 = {k: v.astype(np.float32) for k, v in (a | peep).items()}
    p = LSTMParams(**{k: f32[k] for k in a}, variant=Variant(**{k: f32[k] for k in peep}))
    x = (rng.integers(-4, 5, (1, *batch, F)) / 4).astype(np.float32)
    h0 = (rng.integers(-4, 5, (*batch, H)) / 8).astype(np.float32)
    c0 = (1 + rng.integers(1, 2**20, (*batch, H)) * 2.0**-21).astype(np.float32)
    r = run_sequence(p, x, h0, c0)
    step = lstm_step_variant(x[0], h0, c0, **f32)
    assert r.h_next.dtype == np.float32
    np.testing.assert_array_equal(r.h_next, step.h_next)
    np.testing.assert_array_equal(r.c_next, step.c_next)
