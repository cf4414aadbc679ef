"""The fuzz target fed PyTorch checkpoint bytes: the committed .pt fixtures (zip and legacy
format), truncated at random points and with random bytes flipped, are refused with an
InputError, never another exception, by every .pt entry point of fuzz/targets.py; so are the
committed Keras files, truncated, surveyed and read as a stack."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

from fuzz.targets import KERAS_KIND, PT_KINDS, STACK_KIND, dispatch
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


KERAS_FILES = [DATA / "keras_model.keras", DATA / "keras_model.weights.h5"]


@pytest.mark.parametrize("path", KERAS_FILES, ids=[p.name for p in KERAS_FILES])
def test_truncated_keras_files_raise_only_input_error(path: Path, tmp_path: Path):
    pytest.importorskip("h5py")
    data = path.read_bytes()
    dispatch(bytes([KERAS_KIND]) + data, tmp_path)  # a whole file surveys cleanly
    rng = np.random.default_rng(len(data))
    for cut in sorted({0, 1, len(data) - 1, *rng.integers(0, len(data), CUTS).tolist()}):
        with pytest.raises(InputError):
            dispatch(bytes([KERAS_KIND]) + data[:cut], tmp_path)


def test_truncated_keras_stacks_raise_only_input_error(tmp_path: Path):
    pytest.importorskip("h5py")
    data = (DATA / "keras_stack.keras").read_bytes()
    dispatch(bytes([STACK_KIND]) + data, tmp_path)  # the whole model loads as a stack
    rng = np.random.default_rng(len(data) + 1)
    for cut in sorted({0, 1, len(data) - 1, *rng.integers(0, len(data), CUTS).tolist()}):
        with pytest.raises(InputError):
            dispatch(bytes([STACK_KIND]) + data[:cut], tmp_path)
