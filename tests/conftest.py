from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
PARAMS_DIR = ROOT / "params"

# Hypothesis profiles, chosen with HYPOTHESIS_PROFILE (default "ci"):
#   ci   the full example counts, as every CI run uses them (about 2,100 examples a run);
#   dev  a fifth of them, for a quick local loop: HYPOTHESIS_PROFILE=dev pytest
# Tests ask for their count through examples(n) instead of a hard-coded max_examples=, so a
# profile scales every test alike. No deadline: the fuzz tests run whole commands, whose
# time varies with the machine's load, and a deadline would make them flaky.
HYPOTHESIS_SCALE = {"ci": 1.0, "dev": 0.2}
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if HYPOTHESIS_PROFILE not in HYPOTHESIS_SCALE:
    raise pytest.UsageError(
        f"HYPOTHESIS_PROFILE={HYPOTHESIS_PROFILE!r}: expected one of {sorted(HYPOTHESIS_SCALE)}"
    )
for _name, _scale in HYPOTHESIS_SCALE.items():
    settings.register_profile(_name, max_examples=max(1, int(100 * _scale)), deadline=None)
settings.load_profile(HYPOTHESIS_PROFILE)


def examples(n: int) -> int:
    """``n`` examples under the ci profile, a fifth of them (at least 1) under dev."""
    return max(1, int(n * HYPOTHESIS_SCALE[HYPOTHESIS_PROFILE]))


# Printed by the seed notebook, In [8].
NOTEBOOK_H_NEXT = np.array([-0.24236866, -0.47552629, -0.61342184, 0.2937933])
NOTEBOOK_C_NEXT = np.array([-2.00175213, -0.54923161, -1.26657864, 0.33225723])


def assert_notebook(h_next, c_next) -> None:
    """The notebook printed 8 decimals: agreement to 1e-8 is all the digits it shows."""
    np.testing.assert_allclose(np.asarray(h_next), NOTEBOOK_H_NEXT, rtol=0, atol=1e-8)
    np.testing.assert_allclose(np.asarray(c_next), NOTEBOOK_C_NEXT, rtol=0, atol=1e-8)


def notebook_arrays() -> dict[str, np.ndarray]:
    """The seed notebook's draws, written out here independently of lstm_cli.params."""
    np.random.seed(42)  # the notebook's own legacy, global seeding, on purpose
    F, H = 10, 4
    out = {"x_t": np.random.randn(F), "h_prev": np.random.randn(H), "c_prev": np.random.randn(H)}
    for name in ("Wf", "Wi", "Wo", "Wc"):
        out[name] = np.random.randn(H, H + F)
    for name in ("bf", "bi", "bo", "bc"):
        out[name] = np.random.randn(H)
    return out


def random_cell(rng: np.random.Generator, F: int, H: int, scale: float = 1.0):
    """Distinct weights for every gate and non-zero biases."""
    names = ("Wf", "Wi", "Wo", "Wc")
    cell = {n: scale * rng.standard_normal((H, H + F)) for n in names}
    cell.update({n: scale * rng.standard_normal(H) + 0.1 for n in ("bf", "bi", "bo", "bc")})
    return cell


@pytest.fixture
def runner() -> CliRunner:
    """A CliRunner for ``lstm_cli.cli.app``: ``result.stdout`` and ``result.stderr`` apart,
    ``result.output`` both."""
    return CliRunner()


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Run in an empty temporary folder (commands write relative paths there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
