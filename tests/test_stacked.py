"""One matrix product per step (``[W_h | W_x | b] @ [h; x_t; 1]``, batches of a plain cell):
equal to the single-step core to 1e-13 relative (float64), and an exact fallback whenever the
overflow bound cannot rule out an overflow."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_cli import fused, init_params, run_sequence
from lstm_cli.fused import FusedCell, stacked_is_safe
from tests.test_sequence import stepped


@pytest.fixture
def spy(monkeypatch):
    """Counts the chunks run by the one-product loop."""
    calls = []
    real = fused.steps_stacked

    def counting(*args):
        calls.append(args[2].shape[0] - 1)
        return real(*args)

    import lstm_cli.sequence as sequence

    monkeypatch.setattr(sequence, "steps_stacked", counting)
    return calls


def _close(actual, desired, name=""):
    """Each element within 1e-13 relative of the core's, or of the array's largest magnitude
    (an element near zero by cancellation has no relative accuracy in either)."""
    scale = float(np.max(np.abs(desired)))
    np.testing.assert_allclose(actual, desired, rtol=1e-13, atol=1e-13 * scale, err_msg=name)


def _assert_close(r, hs, cs, gates):
    _close(r.h_seq, hs, "h_seq")
    _close(r.c_seq, cs, "c_seq")
    for k in gates:
        _close(r.gates[k], gates[k], k)
    _close(r.h_next, hs[-1], "h_next")
    _close(r.c_next, cs[-1], "c_next")


@pytest.mark.parametrize("chunk_steps", [1, 7, 40])
@pytest.mark.parametrize("scheme", ["pytorch", "keras", "notebook"])
def test_one_product_per_step_equals_the_core(spy, chunk_steps, scheme):
    p = init_params(6, 5, seed=3, scheme=scheme).params
    rng = np.random.default_rng(chunk_steps)
    xs = rng.standard_normal((40, 4, 6))
    h0 = 3 * rng.standard_normal((4, 5))  # larger than 1: the bound takes |h0|
    c0 = rng.standard_normal((4, 5))
    hs, cs, gates = stepped(p, xs, h0, c0)
    r = run_sequence(
        p, xs, h0, c0, return_sequences=True, return_gates=True, chunk_steps=chunk_steps
    )
    assert sum(spy) == 40  # every step ran through the one-product loop
    _assert_close(r, hs, cs, gates)


def test_without_sequences_the_state_is_the_same(spy):
    p = init_params(3, 4, seed=1, scheme="pytorch").params
    xs = np.random.default_rng(2).standard_normal((25, 2, 3))
    hs, cs, _ = stepped(p, xs)
    r = run_sequence(p, xs, chunk_steps=6)
    assert sum(spy) == 25
    _close(r.h_next, hs[-1])
    _close(r.c_next, cs[-1])


def test_unbatched_and_variant_cells_keep_their_loops(spy):
    p = init_params(3, 4, seed=1, scheme="pytorch").params
    run_sequence(p, np.ones((5, 3)))  # B = 1: the projected chunk wins there
    run_sequence(p.with_variant(clip=1.0), np.ones((5, 2, 3)))  # variants: their own loop
    assert spy == []


@pytest.mark.parametrize("x_scale", [np.finfo(np.float64).max, -np.finfo(np.float64).max])
def test_inputs_past_the_bound_fall_back_to_the_exact_path(spy, x_scale):
    """|W x| may overflow: the chunk is projected and rescaled exactly, as the core does."""
    p = init_params(3, 4, seed=1, scheme="pytorch").params
    xs = np.random.default_rng(5).standard_normal((6, 2, 3))
    xs[2, 1, 0] = x_scale
    hs, cs, gates = stepped(p, xs)
    r = run_sequence(p, xs, return_sequences=True, return_gates=True, chunk_steps=3)
    assert sum(spy) == 3  # the first chunk is safe; the second (with the huge x) is not
    _assert_close(r, hs, cs, gates)


def test_the_bound_is_sound_and_fails_on_nan():
    p = init_params(3, 4, seed=1, scheme="pytorch").params
    cell = FusedCell.from_params(p)
    A_h, A_x, A_b = cell.abs_rows
    u = np.array([1.0] * 4 + [2.0] * 3 + [1.0])
    assert np.all(np.abs(cell.W_u) @ u <= A_h + 2 * A_x + A_b + 1e-12)
    assert stacked_is_safe(cell, 1.0, 2.0)
    assert not stacked_is_safe(cell, 1.0, 1e308)
    assert not stacked_is_safe(cell, float("nan"), 1.0)
    assert not stacked_is_safe(cell, 1.0, float("inf"))
    f32 = FusedCell.from_params(p, np.float32)
    assert stacked_is_safe(f32, 1.0, 1e30) and not stacked_is_safe(f32, 1.0, 1e39)
