"""The example notebook runs from top to bottom (so it never rots), and results show
themselves briefly in a notebook: shapes in a repr, the gate table as HTML."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_cli import notebook_default, run_sequence
from tests.conftest import ROOT

NOTEBOOK = ROOT / "examples" / "lstm_cell.ipynb"


def test_reprs_are_short():
    cell = notebook_default()
    r = cell.params.step(**cell.example.arrays())
    assert repr(r) == "StepResult(x_t=(10,), h_next=(4,), dtype=float64)"
    assert repr(cell.params) == "LSTMParams(F=10, H=4, dtype=float64, variant='none')"
    seq = run_sequence(cell.params, np.ones((5, 10)), return_sequences=True)
    assert repr(seq) == (
        "SequenceResult(n_steps=5, h_next=(4,), dtype=float64, kept=['h_seq', 'c_seq'])"
    )
    assert max(len(repr(x)) for x in (r, cell.params, seq)) < 120


def test_html_shows_the_gate_table():
    cell = notebook_default()
    r = cell.params.step(**cell.example.arrays())
    page = r._repr_html_()
    for header in ("input i_t", "forget f_t", "output o_t", "candidate", "c_next", "h_next"):
        assert header in page
    assert "0.3854" in page and "-0.2424" in page  # i_t[0] and h_next[0] of the notebook
    batched = cell.params.step(np.ones((3, 10)), np.zeros(4), np.zeros(4))
    assert "batch row 0 of 3" in batched._repr_html_()
    assert "Wf" in cell.params._repr_html_() and "(4, 14)" in cell.params._repr_html_()
    seq = run_sequence(cell.params, np.ones((5, 10)), return_gates=True, return_sequences=True)
    assert "after 5 steps" in seq._repr_html_() and "f_t" in seq._repr_html_()


@pytest.mark.slow
def test_the_example_notebook_runs():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("Gate activations" in h for h in html)
    text = "".join(o.get("text", "") for o in outputs)
    assert "the seed notebook's numbers, to 1e-8" in text
