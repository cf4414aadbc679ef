"""The fuzz target fed PyTorch checkpoint bytes: the committed .pt fixtures (zip and legacy
format), truncated at random points and with random bytes flipped, are refused with an
InputError, never another exception, by every .pt entry point of fuzz/targets.py."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

from fuzz.targets import PT_KINDS, dispatch
from lstm_cli.errors import InputError

DATA = Path(__file__).resolve().parent / "data"
FIXTURES = sorted(p for p in DATA.iterdir() if p.suffix in (".pt", ".pth"))
CUTS = 60  # random truncation points per fixture and entry point


def test_there_are_checkpoints_to_cut():
    assert {p.name for p in FIXTURES} >= {"torch_cell.pt", "torch_cell_legacy.pt"}


@pytest.mark.parametrize("kind", PT_KINDS)
@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_whole_checkpoints_load(path: Path, kind: int, tmp_path: Path):
    with contextlib.suppress(InputError):  # a multi-cell file is refused: that is fine too
        dispatch(bytes([kind]) + path.read_bytes(), tmp_path)


@pytest.mark.parametrize("kind", PT_KINDS)
@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_truncated_checkpoints_raise_only_input_error(path: Path, kind: int, tmp_path: Path):
    data = path.read_bytes()
    rng = np.random.default_rng(len(data) * 10 + kind)
    for cut in sorted({0, 1, len(data) - 1, *rng.integers(0, len(data), CUTS).tolist()}):
        with pytest.raises(InputError):
            dispatch(bytes([kind]) + data[:cut], tmp_path)


@pytest.mark.parametrize("kind", PT_KINDS)
@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_flipped_bytes_raise_only_input_error(path: Path, kind: int, tmp_path: Path):
    data = path.read_bytes()
    rng = np.random.default_rng(len(data) * 10 + kind + 1)
    for _ in range(CUTS):
        bad = bytearray(data)
        at = int(rng.integers(0, len(data)))
        bad[at] ^= int(rng.integers(1, 256))
        with contextlib.suppress(InputError):
            dispatch(bytes([kind]) + bytes(bad), tmp_path)
