"""Remake the example files in params/ with the tool itself (run from the repository root):

    python params/make_examples.py

- seed42.npz: `lstm-cell init --seed 42`, the seed notebook's cell and inputs;
- x_t.npy, h_prev.npy, c_prev.npy: the notebook's inputs, one array each;
- inputs.json: the same inputs as one JSON object, as `lstm-cell step` reads it on stdin;
- xs.npy (T = 50, F = 10) and xs-batch.npy (T = 20, B = 3, F = 10): sequences for
  `lstm-cell run`, drawn with np.random.RandomState(0).

tests/test_examples.py checks that the committed files equal what this script makes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make(folder: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lstm_cli",
            "init",
            "--seed",
            "42",
            "--json",
            "--force",
            "--out",
            str(folder / "seed42.npz"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    with np.load(folder / "seed42.npz") as npz:
        inputs = {name: npz[name] for name in ("x_t", "h_prev", "c_prev")}
    for name, arr in inputs.items():
        np.save(folder / f"{name}.npy", arr)
    text = json.dumps({k: v.tolist() for k, v in inputs.items()}, indent=1)
    (folder / "inputs.json").write_text(text + "\n")
    rng = np.random.RandomState(0)
    np.save(folder / "xs.npy", rng.randn(50, 10))
    np.save(folder / "xs-batch.npy", rng.randn(20, 3, 10))


if __name__ == "__main__":
    make(HERE)
