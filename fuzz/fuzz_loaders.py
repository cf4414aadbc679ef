"""Coverage-guided fuzzing of the loaders with atheris (not part of the test suite).

    pip install atheris
    python fuzz/make_corpus.py fuzz/corpus
    PYTHONPATH=. python fuzz/fuzz_loaders.py -max_total_time=300 fuzz/corpus

Feeds arbitrary bytes to every loader a user's input reaches: .npy/JSON array bytes, the JSON
object of step inputs, params .npz and .safetensors files, PyTorch checkpoints (.pt bytes,
by name, surveyed, and through a pipe), Keras files, and .keras models read as ``run --stack``
reads them (config.json's wiring and every cell). Any exception other than InputError is a crash:
atheris stops and writes the input to crash-<hash>; copy it to tests/fuzz_regressions/ so that
tests/test_fuzz_regressions.py replays it forever.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from fuzz.targets import dispatch
    from lstm_cli.errors import InputError

TMP = Path(tempfile.mkdtemp(prefix="lstm-fuzz-"))


def one_input(data: bytes) -> None:
    with contextlib.suppress(InputError):
        dispatch(data, TMP)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
