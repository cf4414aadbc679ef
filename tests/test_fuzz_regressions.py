"""Inputs that once crashed a loader under the coverage-guided fuzzer (fuzz/fuzz_loaders.py),
replayed through the same entry point: each must now be refused with an InputError."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from fuzz.targets import dispatch
from lstm_cli.errors import InputError

CASES = sorted((Path(__file__).parent / "fuzz_regressions").iterdir())


def test_there_are_regressions_to_replay():
    assert CASES


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_fuzzer_crash_is_now_a_clean_refusal(path, tmp_path):
    with contextlib.suppress(InputError):
        dispatch(path.read_bytes(), tmp_path)
