"""``run --stack`` on a Keras model: tests/data/keras_stack.keras, written by Keras 3 itself
(make_keras_stack_fixture.py: LSTM -> Dropout -> Bidirectional(LSTM) -> LSTM(go_backwards,
last step) -> Dense), equals what Keras computed for it (keras_stack_out.npz) to 1e-10, time
first and batch first, as Functional and as Sequential; the view; every Keras refusal, on
copies of the archive whose config.json is edited."""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_cli.cli.app import app
from lstm_cli.cli.options import cast_cell
from lstm_cli.io.survey import load_wired_stack
from lstm_cli.stack import run_stack

pytest.importorskip("h5py", reason="h5py is not installed: pip install -e '.[keras]'")

DATA = Path(__file__).parent / "data"
MODEL = DATA / "keras_stack.keras"
TOL = 1e-10


def keras_out() -> dict[str, np.ndarray]:
    with np.load(DATA / "keras_stack_out.npz") as f:
        return dict(f)


def config() -> dict[str, Any]:
    with zipfile.ZipFile(MODEL) as z:
        return json.loads(z.read("config.json"))


def write_model(path: Path, cfg: dict[str, Any]) -> Path:
    """A copy of the fixture whose config.json is ``cfg``."""
    with zipfile.ZipFile(MODEL) as z, zipfile.ZipFile(path, "w") as out:
        for name in z.namelist():
            data = json.dumps(cfg).encode() if name == "config.json" else z.read(name)
            out.writestr(name, data)
    return path


def layer(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    return next(x for x in cfg["config"]["layers"] if x["config"]["name"] == name)


def sequential(cfg: dict[str, Any]) -> dict[str, Any]:
    """The same layers as a Sequential model's config (no inbound nodes)."""
    layers = [{k: v for k, v in x.items() if k != "inbound_nodes"} for x in cfg["config"]["layers"]]
    return {"class_name": "Sequential", "config": {"name": "seq", "layers": layers}}


def assert_like_keras(saved: dict[str, np.ndarray], report: dict[str, Any]) -> None:
    want = keras_out()
    np.testing.assert_allclose(saved["y"], want["y"], rtol=0, atol=TOL)
    for i in range(4):
        for s in ("h", "c"):
            np.testing.assert_allclose(saved[f"{s}_n_{i}"], want[f"{s}_n_{i}"], rtol=0, atol=TOL)
            np.testing.assert_allclose(report[f"{s}_n"][i], want[f"{s}_n_{i}"], rtol=0, atol=TOL)
    assert "h_n" not in saved  # the layers differ in H: one array per cell


@pytest.mark.parametrize("kind", ["functional", "sequential"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_run_stack_equals_keras(runner, in_tmp, kind, batch_first):
    path = MODEL if kind == "functional" else write_model(in_tmp / "s.keras", sequential(config()))
    xs = keras_out()["xs"]  # (B, T, F), as Keras reads it
    np.save("xs.npy", xs if batch_first else xs.transpose(1, 0, 2))
    args = ["run", "--params", str(path), "--stack", "--xs", "xs.npy", "-o", "o.npz", "--json"]
    result = runner.invoke(app, [*args, *(["--batch-first"] if batch_first else [])])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["layers"], report["directions"], report["y"]) == (3, [1, 2, 1], [2, 2])
    assert report["left_out"] == ["'head' (Dense)"]
    assert [(c["name"], c["F"], c["H"], c["backwards"]) for c in report["cells"]] == [
        ("enc", 3, 4, False), ("bi", 4, 3, False), ("bi", 4, 3, True), ("dec", 6, 2, True)
    ]  # fmt: skip
    with np.load("o.npz") as f:
        saved = dict(f)
    assert_like_keras(saved, report)
    y_l1 = saved["y_l1"]  # bi's sequence, in the input's layout
    assert y_l1.shape == ((2, 5, 6) if batch_first else (5, 2, 6))


def test_the_library_runs_the_keras_chain():
    wired = load_wired_stack(MODEL, 1 << 30)
    assert wired.names == ["enc", "bi", "dec"] and wired.left_out == ["'head' (Dense)"]
    assert wired.wiring is not None
    layers = [
        [cast_cell(ps.params, "float64", "m", ps.bias_halves) for ps in s] for s in wired.sets
    ]
    want = keras_out()
    r = run_stack(layers, want["xs"], wiring=wired.wiring, batch_first=True)
    np.testing.assert_allclose(r.y, want["y"], rtol=0, atol=TOL)
    np.testing.assert_allclose(r.c_cells[3], want["c_n_3"], rtol=0, atol=TOL)
    assert not r.uniform
    with pytest.raises(ValueError, match="the cells differ in H"):
        _ = r.h_n
    with pytest.raises(ValueError, match="h0 is given, but the cells differ in H"):
        run_stack(layers, want["xs"], h0=np.zeros((4, 2, 3)), wiring=wired.wiring)


def test_the_view_names_cells_states_and_what_was_left_out(runner):
    args = ["run", "--params", str(MODEL), "--stack", "--xs", str(DATA / "keras_stack_xs.npy")]
    result = runner.invoke(app, [*args, "--pretty"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert not text.lstrip().startswith("{")
    for part in (
        "layer",
        "h_n, batch row 0",
        "reverse ←",
        "left out",
        "'head' (Dense)",
        "y (2, 2)",
        "(2, 4) (2, 3) (2, 3) (2, 2) (one per cell)",
        "dec: returns its last",
    ):
        assert part in text, part  # fmt: skip
    want = keras_out()
    assert f"{want['h_n_3'][0, 0]:+.4f} {want['h_n_3'][0, 1]:+.4f}" in text
    assert f"{want['c_n_0'][0, 0]:+.4f}" in text


def _edit(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    cfg = copy.deepcopy(config())
    fn(cfg)
    return cfg


EDITS: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "layer-between": (
        lambda c: layer(c, "drop").update(class_name="BatchNormalization"),
        "layer 'drop' (BatchNormalization) sits in the chain of LSTM layers",
    ),
    "two-outputs": (
        lambda c: c["config"].update(output_layers=[["dec", 0, 0], ["head", 0, 0]]),
        "the model has 1 inputs and 2 outputs",
    ),
    "two-tensors": (
        lambda c: layer(c, "bi")["inbound_nodes"][0]["args"].append(
            copy.deepcopy(layer(c, "bi")["inbound_nodes"][0]["args"][0])
        ),
        "layer 'bi' (Bidirectional) reads 2 tensors in 1 calls",
    ),
    "off-chain": (
        lambda c: c["config"]["layers"].append(
            {**layer(c, "drop"), "config": {**layer(c, "drop")["config"], "name": "extra"}}
        ),
        "layer 'extra' (Dropout) is off the chain from input to output",
    ),
    "reads-a-state": (
        lambda c: layer(c, "bi")["inbound_nodes"][0]["args"][0]["config"].update(
            keras_history=["drop", 0, 1]
        ),
        "layer 'bi' (Bidirectional) reads 1 tensors in 1 calls",
    ),
    "last-step-feeds": (
        lambda c: layer(c, "enc")["config"].update(return_sequences=False),
        "layer 'enc' (LSTM) returns its last step only (return_sequences=False) but feeds "
        "layer 'bi' (Bidirectional)",
    ),
    "activation": (
        lambda c: layer(c, "dec")["config"].update(activation="relu"),
        "layer 'dec' (LSTM) has activation 'relu'; only 'tanh' is computed",
    ),
    "recurrent-activation": (
        lambda c: layer(c, "bi")["config"]["layer"]["config"].update(
            recurrent_activation="hard_sigmoid"
        ),
        "layer 'bi' (Bidirectional) has recurrent_activation 'hard_sigmoid'",
    ),
    "merge-none": (
        lambda c: layer(c, "bi")["config"].update(merge_mode=None),
        "layer 'bi' (Bidirectional) has merge_mode None",
    ),
    "wraps-gru": (
        lambda c: layer(c, "bi")["config"]["layer"].update(class_name="GRU"),
        "layer 'bi' (Bidirectional) wraps a GRU, not an LSTM",
    ),
    "model-kind": (lambda c: c.update(class_name="Foo"), "holds a Foo model, not Sequential"),
    "not-a-config": (lambda c: c["config"].pop("layers"), "config.json is not a Keras model"),
    "no-lstm": (
        lambda c: c.update(class_name="Sequential", config={"layers": [layer(c, "head")]}),
        "the model has no LSTM layer",
    ),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_keras_refusals(runner, in_tmp, edit):
    fn, message = EDITS[edit]
    path = write_model(in_tmp / "m.keras", _edit(fn))
    args = ["run", "--params", str(path), "--stack", "--xs", str(DATA / "keras_stack_xs.npy")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("params", "extra", "message"),
    [
        ("keras_model.weights.h5", [], "a .weights.h5 file has no model config, and a stack's "
         "wiring (return_sequences, merge_mode, go_backwards) is in the .keras archive's config"),
        ("keras_model.weights.h5", [], "(without --stack: --key-prefix NAME --direction"),
        ("keras_stack.keras", ["--key-prefix", "enc"], "a Keras stack is the model's whole chain"),
        ("keras_stack.keras", ["--h", "h.npy"], "h0 is given, but the stack's layers differ in H "
         "(2, 3, 4)"),
    ],
)  # fmt: skip
def test_keras_stack_option_refusals(runner, in_tmp, params, extra, message):
    np.save("xs.npy", np.zeros((5, 3)))
    np.save("h.npy", np.zeros((4, 3)))
    args = ["run", "--params", str(DATA / params), "--stack", "--xs", "xs.npy", *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "xs", "message"),
    [
        ("torch_lstm_2x2.pt", "torch_lstm_2x2_xs.npy", None),
        ("keras_stack.keras", "keras_stack_xs.npy", None),
        ("keras_model.weights.h5", "x4.npy", "(without --stack: --key-prefix NAME"),
    ],
)
def test_a_stack_through_a_fifo_is_read_once(tmp_path, name, xs, message):
    """A pipe can be read only once: the stack's cells all come from one read (a second open
    of the FIFO would wait for a writer forever: the timeout catches it)."""
    import os
    import subprocess
    import sys
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write((DATA / name).read_bytes())

    threading.Thread(target=feed, daemon=True).start()
    args = ["run", "--params", str(fifo), "--stack", "--xs", str(DATA / xs), "--json"]
    proc = subprocess.run([sys.executable, "-m", "lstm_cli", *args], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    if message is None:
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["params"] == str(fifo)
    else:
        assert proc.returncode == 2 and message in proc.stderr
        assert str(fifo) in proc.stderr and "tmp" not in proc.stderr.replace(str(tmp_path), "")


def test_merge_modes_sum_ave_mul_equal_keras(runner, in_tmp):
    """keras_merge.keras (Sequential, written by Keras): Bidirectional layers merged by sum,
    ave, and mul (the last returning its last step, without bias), every cell of H = 2."""
    with np.load(DATA / "keras_merge_out.npz") as f:
        want = dict(f)
    np.save("xs.npy", want["xs"])
    args = ["run", "--params", str(DATA / "keras_merge.keras"), "--stack", "--xs", "xs.npy"]
    result = runner.invoke(app, [*args, "--batch-first", "-o", "o.npz", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["directions"] == [2, 2, 2] and report["left_out"] == []
    assert [c["F"] for c in report["cells"]] == [3, 3, 2, 2, 2, 2]  # sum, ave: X = H
    with np.load("o.npz") as saved:
        np.testing.assert_allclose(saved["y"], want["y"], rtol=0, atol=TOL)
        assert saved["h_n"].shape == (6, 2, 2)  # one H: the states stack
        for i in range(6):
            np.testing.assert_allclose(saved["h_n"][i], want[f"h_n_{i}"], rtol=0, atol=TOL)
            np.testing.assert_allclose(saved["c_n"][i], want[f"c_n_{i}"], rtol=0, atol=TOL)
    np.save("h0.npy", np.zeros((6, 2, 2)))  # one H: initial states are accepted
    result = runner.invoke(app, [*args, "--batch-first", "--h", "h0.npy", "--json"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(json.loads(result.stdout)["h_n"], saved_h(want), atol=TOL)


def saved_h(want: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([want[f"h_n_{i}"] for i in range(6)])
