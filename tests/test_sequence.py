"""run_sequence / iter_sequence: T single steps == one run, batches, float32, chunk boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_cli import LSTMParams, iter_sequence, lstm_step_detailed, run_sequence
from lstm_cli.sequence import FusedCell
from tests.conftest import random_cell
from tests.reference import reference_step

T = 23


def cell(F=5, H=3, seed=0, scale=1.0) -> LSTMParams:
    return LSTMParams(**random_cell(np.random.default_rng(seed), F, H, scale))


def stepped(p: LSTMParams, xs, h0=None, c0=None):
    """T calls of the single-step core: (h_seq, c_seq, gates per name)."""
    H = p.n_hidden
    h = np.zeros(xs.shape[1:-1] + (H,), xs.dtype) if h0 is None else h0
    c = np.zeros_like(h) if c0 is None else c0
    hs, cs = [], []
    gates: dict[str, list] = {k: [] for k in ("i_t", "f_t", "o_t", "c_t_candidate")}
    for x in xs:
        r = lstm_step_detailed(x, h, c, **p.arrays())
        h, c = r.h_next, r.c_next
        hs.append(h)
        cs.append(c)
        for k, v in r.gates.items():
            gates[k].append(v)
    return np.array(hs), np.array(cs), {k: np.array(v) for k, v in gates.items()}


@pytest.mark.parametrize("shape", [(T, 5), (T, 4, 5)], ids=["unbatched", "batch"])
def test_run_equals_t_single_steps(shape):
    p = cell()
    rng = np.random.default_rng(1)
    xs = rng.standard_normal(shape)
    h0 = rng.standard_normal(shape[1:-1] + (3,))
    c0 = rng.standard_normal(shape[1:-1] + (3,))
    hs, cs, gates = stepped(p, xs, h0, c0)
    r = run_sequence(p, xs, h0, c0, return_sequences=True, return_gates=True)
    assert r.n_steps == T
    assert r.h_seq is not None and r.c_seq is not None and r.gates is not None
    assert r.h_seq.shape == r.c_seq.shape == shape[:-1] + (3,)
    np.testing.assert_allclose(r.h_seq, hs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r.c_seq, cs, rtol=1e-12, atol=1e-14)
    for k in gates:
        np.testing.assert_allclose(r.gates[k], gates[k], rtol=1e-12, atol=1e-14, err_msg=k)
    np.testing.assert_allclose(r.h_next, hs[-1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r.c_next, cs[-1], rtol=1e-12, atol=1e-14)


def test_matches_the_independent_scalar_reference():
    p = cell(F=4, H=3, seed=3)
    xs = np.random.default_rng(4).standard_normal((6, 4))
    h, c = np.zeros(3), np.zeros(3)
    for x in xs:
        ref = reference_step(x, h, c, **p.arrays())
        h, c = np.array(ref["h_next"]), np.array(ref["c_next"])
    r = run_sequence(p, xs)
    np.testing.assert_allclose(r.h_next, h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r.c_next, c, rtol=1e-12, atol=1e-14)


def test_final_state_does_not_depend_on_collecting_sequences():
    p = cell()
    xs = np.random.default_rng(2).standard_normal((T, 2, 5))
    a = run_sequence(p, xs)
    b = run_sequence(p, xs, return_sequences=True, return_gates=True)
    assert a.h_seq is None and a.c_seq is None and a.gates is None
    np.testing.assert_array_equal(a.h_next, b.h_next)
    np.testing.assert_array_equal(a.c_next, b.c_next)


def test_one_dimensional_initial_state_is_used_for_every_batch_row():
    p = cell()
    rng = np.random.default_rng(5)
    xs, h0, c0 = rng.standard_normal((7, 3, 5)), rng.standard_normal(3), rng.standard_normal(3)
    r = run_sequence(p, xs, h0, c0)
    full = run_sequence(p, xs, np.tile(h0, (3, 1)), np.tile(c0, (3, 1)))
    np.testing.assert_array_equal(r.h_next, full.h_next)
    # each row alone gives the same as that row in the batch
    for b in range(3):
        alone = run_sequence(p, xs[:, b], h0, c0)
        np.testing.assert_allclose(alone.h_next, r.h_next[b], rtol=1e-12, atol=1e-14)


def test_float32_stays_float32_and_agrees_with_float64():
    p = cell(seed=6)
    xs = np.random.default_rng(6).standard_normal((T, 2, 5))
    r64 = run_sequence(p, xs, return_sequences=True, return_gates=True)
    r32 = run_sequence(p.astype("float32"), xs.astype("float32"), return_sequences=True,
                       return_gates=True)  # fmt: skip
    assert r32.gates is not None and r32.h_seq is not None and r32.c_seq is not None
    for a in (r32.h_next, r32.c_next, r32.h_seq, r32.c_seq, *r32.gates.values()):
        assert a.dtype == np.float32
    np.testing.assert_allclose(r32.h_seq, r64.h_seq, rtol=0, atol=1e-5)
    # dtype= casts float64 params and inputs
    r = run_sequence(p, xs, dtype="float32")
    assert r.h_next.dtype == np.float32
    np.testing.assert_allclose(r.h_next, r64.h_next, rtol=0, atol=1e-5)


@pytest.mark.parametrize("chunk_steps", [1, 7, T])
def test_chunk_boundaries_do_not_change_the_result(chunk_steps):
    p = cell(seed=7)
    xs = np.random.default_rng(7).standard_normal((T, 3, 5))
    hs, cs, _ = stepped(p, xs)
    r = run_sequence(p, xs, return_sequences=True, chunk_steps=chunk_steps)
    np.testing.assert_allclose(r.h_seq, hs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r.c_seq, cs, rtol=1e-12, atol=1e-14)


def test_streaming_uneven_chunks_from_a_generator():
    p = cell(seed=8)
    xs = np.random.default_rng(8).standard_normal((T, 5))
    whole = run_sequence(p, xs, return_sequences=True, return_gates=True)
    sizes = [1, 7, 2, 13]  # sum 23

    def pieces():
        lo = 0
        for n in sizes:
            yield xs[lo : lo + n]
            lo += n

    seen = list(iter_sequence(p, pieces(), return_sequences=True, return_gates=True,
                              chunk_steps=5))  # fmt: skip
    assert [s.start for s in seen] == [0, 1, 6, 8, 10, 15, 20]  # 7 -> 5 + 2, 13 -> 5 + 5 + 3
    assert sum(s.n_steps for s in seen) == T
    np.testing.assert_allclose(np.concatenate([s.h_seq for s in seen]), whole.h_seq, atol=1e-14)
    np.testing.assert_allclose(
        np.concatenate([s.gates["f_t"] for s in seen]), whole.gates["f_t"], atol=1e-14
    )
    np.testing.assert_allclose(seen[-1].c_next, whole.c_next, atol=1e-14)
    # a callback sees the same chunks
    starts: list[int] = []
    run_sequence(p, pieces(), chunk_steps=5, on_chunk=lambda s: starts.append(s.start))
    assert starts == [0, 1, 6, 8, 10, 15, 20]


def test_zero_steps_return_the_initial_state():
    p = cell()
    h0, c0 = np.ones(3), np.full(3, 2.0)
    r = run_sequence(p, np.zeros((0, 5)), h0, c0, return_sequences=True)
    np.testing.assert_array_equal(r.h_next, h0)
    np.testing.assert_array_equal(r.c_next, c0)
    assert r.n_steps == 0 and r.h_seq is not None and r.h_seq.shape == (0, 3)


def test_huge_inputs_saturate_without_warnings():
    p = cell(seed=9)
    xs = np.full((5, 5), 1e30)  # pre-activations far beyond exp's range
    r = run_sequence(p, xs, return_gates=True)  # filterwarnings = error: a warning fails
    assert r.gates is not None
    assert np.all((r.gates["i_t"] >= 0) & (r.gates["i_t"] <= 1))
    assert np.all(np.isfinite(r.h_next)) and np.all(np.abs(r.h_next) <= 1)


def test_fused_weights_hold_every_gate_once():
    p = cell(F=2, H=3)
    f = FusedCell.from_params(p)
    H = 3
    np.testing.assert_array_equal(f.W[:H], p.Wc)  # the candidate, unscaled
    np.testing.assert_array_equal(f.W[H : 2 * H], 0.5 * p.Wo)
    np.testing.assert_array_equal(f.W[2 * H : 3 * H], 0.5 * p.Wf)
    np.testing.assert_array_equal(f.W[3 * H :], 0.5 * p.Wi)
    np.testing.assert_array_equal(f.b, np.concatenate((p.bc, 0.5 * p.bo, 0.5 * p.bf, 0.5 * p.bi)))
    assert f.W_h.shape == (4 * H, H) and f.W_xT.shape == (2, 4 * H)


@pytest.mark.parametrize(
    ("xs_shape", "h0_shape", "message"),
    [
        ((4, 6), None, "xs chunks must be (n, 5) or (n, B, 5)"),
        ((4,), None, "xs must be (T, F) or (T, B, F)"),
        ((4, 2, 5), (3, 3), "h0 must have shape (3,) or (2, 3), got (3, 3)"),
        ((4, 5), (2, 3), "h0 must have shape (3,), got (2, 3)"),
    ],
)
def test_refused_shapes_name_the_array(xs_shape, h0_shape, message):
    p = cell()
    h0 = None if h0_shape is None else np.zeros(h0_shape)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_sequence(p, np.zeros(xs_shape), h0)


VARIANTS = [
    {"peepholes": True},
    {"clip": 0.7},
    {"input_forget": True},
    {"peepholes": True, "clip": 1.5, "input_forget": True},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "+".join(v))
@pytest.mark.parametrize(("batch", "chunk_steps"), [(None, 3), (4, 1), (4, None)])
def test_variant_cells_run_as_they_step(variant, batch, chunk_steps):
    """ONNX's variants over a sequence equal T calls of the variant step (lstm_step_variant)."""
    from lstm_cli import init_params

    cell = init_params(n_features=5, n_hidden=3, seed=11, **variant).params
    assert not cell.is_plain
    rng = np.random.default_rng(2)
    T = 9
    xs = rng.standard_normal((T, 5) if batch is None else (T, batch, 5)) * 2
    state = (3,) if batch is None else (batch, 3)
    h0, c0 = rng.standard_normal(state), rng.standard_normal(state) * 3
    r = run_sequence(cell, xs, h0, c0, return_sequences=True, return_gates=True,
                     chunk_steps=chunk_steps)  # fmt: skip
    h, c = h0, c0
    for t in range(T):
        s = cell.step(xs[t], h, c)
        np.testing.assert_allclose(r.h_seq[t], s.h_next, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(r.c_seq[t], s.c_next, rtol=1e-12, atol=1e-13)
        for g in ("i_t", "f_t", "o_t", "c_t_candidate"):
            np.testing.assert_allclose(r.gates[g][t], getattr(s, g), rtol=1e-12, atol=1e-13)
        h, c = s.h_next, s.c_next
    np.testing.assert_allclose(r.h_next, h, rtol=1e-12, atol=1e-13)


def test_a_variant_changes_the_sequence():
    """The variant loop is really taken: the same weights without the variant differ."""
    from lstm_cli import init_params

    cell = init_params(n_features=5, n_hidden=3, seed=11, clip=0.3).params
    plain = cell.with_variant(drop_clip=True)
    xs = np.random.default_rng(3).standard_normal((6, 5)) * 3
    assert not np.allclose(run_sequence(cell, xs).h_next, run_sequence(plain, xs).h_next)


@pytest.mark.parametrize("backend", ["numpy", "compiled"])
@pytest.mark.parametrize(("H", "batch"), [(4, ()), (1, (5,)), (3, (9,))])
def test_each_chunk_keeps_its_own_state_and_sequence(backend, H, batch):
    """What a chunk hands back is its own: the next chunks (the state updated in place, the
    stacked operands' buffer refilled) leave it as it was. Chunks of one step too."""
    from lstm_cli import compiled, init_params, iter_sequence

    if backend == "compiled" and not compiled.available():
        pytest.skip("the compiled kernel was not built (no C compiler)")
    p = init_params(3, H, seed=0, scheme="pytorch").params
    xs = np.random.default_rng(0).standard_normal((6, *batch, 3))
    whole = run_sequence(p, xs, return_sequences=True, backend="numpy")
    for steps in (1, 2):
        chunks = list(iter_sequence(p, [xs], chunk_steps=steps, return_sequences=True,
                                    backend=backend))  # fmt: skip
        for c in chunks:
            last = c.start + c.n_steps - 1
            np.testing.assert_allclose(c.h_next, whole.h_seq[last], rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(c.c_next, whole.c_seq[last], rtol=1e-13, atol=1e-15)
        h_seq = np.concatenate([c.h_seq for c in chunks])
        np.testing.assert_allclose(h_seq, whole.h_seq, rtol=1e-13, atol=1e-15)
