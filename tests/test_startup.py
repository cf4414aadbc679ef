"""Start-up: the built-in cell is exact literals, and `step --json` loads only what it uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from lstm_cli.init import NOTEBOOK_N_FEATURES, NOTEBOOK_N_HIDDEN, init_params, notebook_default

ROOT = Path(__file__).resolve().parents[1]


def test_builtin_cell_literals_equal_randomstate_42_bit_for_bit():
    """The literals are the notebook's draws from RandomState(42), every bit of every float."""
    literal = notebook_default()
    drawn = init_params(NOTEBOOK_N_FEATURES, NOTEBOOK_N_HIDDEN, 42, "notebook")
    a, b = literal.params.all_arrays(), drawn.params.all_arrays()
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype == np.float64, name
        assert a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name
    assert literal.example is not None and drawn.example is not None
    for name in ("x_t", "h_prev", "c_prev"):
        x, y = getattr(literal.example, name), getattr(drawn.example, name)
        assert x.shape == y.shape and x.tobytes() == y.tobytes(), name
    assert literal.meta == drawn.meta
    assert literal.params.variant == drawn.params.variant


def test_builtin_cell_is_a_fresh_copy_each_time():
    first = notebook_default()
    first.params.Wf[...] = 0.0  # a caller changing its copy changes nobody else's
    assert notebook_default().params.Wf.any()


def test_step_json_does_not_import_numpy_random():
    """`step --json` with the built-in cell draws nothing: numpy.random stays unloaded."""
    code = (
        "import sys; from lstm_cli.cli import app; sys.argv=['lstm-cell','step','--json'];\n"
        "try:\n    app(prog_name='lstm-cell')\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        check=False,
    )
    assert '"h_next"' in proc.stdout
    imported = proc.stderr.split()
    assert "lstm_cli.cli.step" in imported
    unused = (
        "numpy.random", "lstm_cli.layouts", "zipfile", "lstm_cli.io.atomic",
        "lstm_cli.render.console", "lstm_cli.render.run", "lstm_cli.render.written",
    )  # fmt: skip
    assert [m for m in imported if m.startswith(unused)] == []
    # Nothing on the path defines a dataclass (each costs about 1 ms to create on Python
    # 3.11), and numpy.typing (about 1 ms) is for the type checker only.
    assert [m for m in imported if m in ("dataclasses", "numpy.typing")] == []
