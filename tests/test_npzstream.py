"""SpilledNpz: long arrays written chunk by chunk, saved as the .npz np.savez would write."""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lstm_cli.io import npzstream
from lstm_cli.io.npzstream import SpilledNpz


def _filled(out: Path, T: int, B: int, H: int, swap: bool, steps: int) -> tuple[SpilledNpz, dict]:
    rng = np.random.default_rng(T + B)
    full = {k: rng.standard_normal((T, B, H)) for k in ("h_seq", "c_seq")}
    names = frozenset(full) if swap else frozenset()
    sink = SpilledNpz({k: (T, B, H) for k in full}, np.float64, out, names)
    for lo in range(0, T, steps):
        for k, a in full.items():
            sink.append(k, a[lo : lo + steps])
    sink.put("h_next", full["h_seq"][-1])
    return sink, full


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("steps", [1, 7, 1000])
def test_saved_arrays_equal_the_chunks_joined(in_tmp, monkeypatch, swap, steps):
    monkeypatch.setattr(npzstream, "BLOCK_BYTES", 3 * 5 * 8 * 4)  # blocks of 4 steps
    sink, full = _filled(in_tmp / "o.npz", 50, 3, 5, swap, steps)
    with sink:
        sink.save(in_tmp / "o.npz")
    assert sorted(p.name for p in in_tmp.iterdir()) == ["o.npz"]  # no spill file left
    with np.load(in_tmp / "o.npz", allow_pickle=False) as npz:
        assert list(npz.keys()) == ["h_seq", "c_seq", "h_next"]
        for k, a in full.items():
            want = np.swapaxes(a, 0, 1) if swap else a
            assert npz[k].flags.c_contiguous
            np.testing.assert_array_equal(npz[k], want)
        np.testing.assert_array_equal(npz["h_next"], full["h_seq"][-1])


def test_streamed_to_stdout_with_data_descriptors(monkeypatch):
    """Written through (stdout), the zip is made as it goes and np.load still reads it."""
    buffer = io.BytesIO()

    class Out:
        def __init__(self) -> None:
            self.buffer = buffer

        def isatty(self) -> bool:
            return False

    monkeypatch.setattr(sys, "stdout", Out())
    sink, full = _filled(Path("-"), 20, 2, 3, True, 6)
    with sink:
        sink.save(Path("-"))
    data = buffer.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert all(info.flag_bits & 0x08 for info in zf.infolist())  # data descriptors
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["c_seq"], np.swapaxes(full["c_seq"], 0, 1))


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_written_through_to_a_device():
    sink, _ = _filled(Path("/dev/null"), 10, 1, 2, False, 3)
    with sink:
        sink.save(Path("/dev/null"))  # written through, never replaced
    assert Path("/dev/null").is_char_device()


def test_refuses_chunks_that_do_not_fit_and_incomplete_arrays(in_tmp):
    with SpilledNpz({"a": (4, 2)}, np.float32, in_tmp / "o.npz") as sink:
        with pytest.raises(ValueError, match="does not fit"):
            sink.append("a", np.zeros((1, 3)))
        sink.append("a", np.zeros((3, 2)))
        with pytest.raises(ValueError, match="more than 4 rows"):
            sink.append("a", np.zeros((2, 2)))
        with pytest.raises(ValueError, match="incomplete arrays: a"):
            sink.save(in_tmp / "o.npz")
    assert list(in_tmp.iterdir()) == []


def test_run_out_gates_batch_first_streamed(runner, in_tmp):
    """`run --out` with the gates and a batch-first input: what run_sequence returns."""
    from lstm_cli import init_params, run_sequence
    from lstm_cli.cli import app
    from lstm_cli.io.paramfiles import save_param_set

    ps = init_params(3, 4, seed=5, scheme="pytorch")
    save_param_set(Path("p.npz"), ps)
    xs = np.random.default_rng(1).standard_normal((2, 37, 3))  # (B, T, F)
    np.save("xs.npy", xs)
    args = ["run", "--params", "p.npz", "--xs", "xs.npy", "--batch-first", "--gates"]
    args += ["--backend", "numpy"]  # the reference: equal to run_sequence bit for bit
    result = runner.invoke(app, [*args, "--chunk-steps", "5", "--out", "o.npz", "--json"])
    assert result.exit_code == 0, result.output
    want = run_sequence(ps.params, xs.swapaxes(0, 1), return_sequences=True, return_gates=True)
    with np.load("o.npz", allow_pickle=False) as npz:
        np.testing.assert_allclose(npz["h_seq"], want.h_seq.swapaxes(0, 1), rtol=0, atol=1e-15)
        np.testing.assert_allclose(npz["f_t"], want.gates["f_t"].swapaxes(0, 1), rtol=0, atol=1e-15)
        np.testing.assert_array_equal(npz["h_next"], want.h_next)
    assert sorted(p.name for p in in_tmp.iterdir()) == ["o.npz", "p.npz", "xs.npy"]
