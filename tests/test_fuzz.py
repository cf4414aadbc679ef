"""Property-based fuzzing: the loaders and the CLI never fail with anything but a clean
refusal. Loaders raise only InputError; the CLI exits 0, 1 or 2 with no traceback."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.errors import InputError
from lstm_cli.io.jsonio import parse_json
from lstm_cli.io.paramfiles import load_param_set
from lstm_cli.io.reader import array_from_bytes
from tests.conftest import PARAMS_DIR, examples

pytestmark = pytest.mark.slow
runner = CliRunner()
# tmp_path and monkeypatch are shared by a test's examples on purpose: each example writes to
# a fresh file or cleans up after itself.
SHARED_FIXTURES = [HealthCheck.function_scoped_fixture]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(["x_t", "x", "h", "c_prev", "zz"]), children, max_size=4)
    ),
    max_leaves=30,
)


def ok_array(arr) -> None:
    assert isinstance(arr, np.ndarray)
    assert arr.dtype.kind == "f" and np.all(np.isfinite(arr))


@settings(max_examples=examples(400), deadline=None)
@given(value=json_values)
def test_json_values_load_or_are_refused(value):
    text = json.dumps(value)  # may contain NaN/Infinity: they must be refused
    try:
        ok_array(array_from_bytes(text.encode(), "x_t", "stdin"))
    except InputError as e:
        refusal = str(e)
    else:
        return
    assert refusal.startswith("stdin: ")


@settings(max_examples=examples(400), deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_load_or_are_refused(data):
    with contextlib.suppress(InputError):
        ok_array(array_from_bytes(data, "x_t", "stdin"))


@settings(max_examples=examples(300), deadline=None)
@given(text=st.text(alphabet='[]{}",:0123456789.eE+-NaInfity tuefalsx_', max_size=60))
def test_json_like_text(text):
    try:
        parse_json(text, "f.json")
    except InputError as e:
        refusal = str(e)
    else:
        return
    assert refusal.startswith("f.json: ")


SEED42 = (PARAMS_DIR / "seed42.npz").read_bytes()


@settings(max_examples=examples(150), deadline=None, suppress_health_check=SHARED_FIXTURES)
@given(
    cut=st.integers(0, len(SEED42)),
    flips=st.lists(st.tuples(st.integers(0, len(SEED42) - 1), st.integers(1, 255)), max_size=6),
)
def test_damaged_params_files_are_refused_cleanly(tmp_path, cut, flips):
    raw = bytearray(SEED42[:cut] if cut < len(SEED42) else SEED42)
    for pos, mask in flips:
        if pos < len(raw):
            raw[pos] ^= mask
    path = tmp_path / "p.npz"
    path.write_bytes(bytes(raw))
    try:
        ps = load_param_set(path)
    except InputError as e:
        refusal = str(e)
    else:
        for arr in ps.params.arrays().values():  # a flip that keeps the file valid
            ok_array(arr)
        return
    assert refusal.startswith(str(path))


OPTION_VALUES = {
    "--params": [str(PARAMS_DIR / "seed42.npz"), str(PARAMS_DIR / "x_t.npy"), "missing.npz", "."],
    "--x": [str(PARAMS_DIR / "x_t.npy"), str(PARAMS_DIR / "inputs.json"), "-", "nope", "."],
    "--h": [str(PARAMS_DIR / "h_prev.npy"), "-", str(PARAMS_DIR / "x_t.npy")],
    "--c": [str(PARAMS_DIR / "c_prev.npy"), str(PARAMS_DIR / "inputs.json")],
    "--dtype": ["float32", "float64", "float16", ""],
    "--max-input-mb": ["1", "0", "-5", "x"],
    "--out": ["out.npz", ".", "no/dir/x.npz"],
    "--n-features": ["3", "0", "abc"],
    "--n-hidden": ["2", "-1"],
    "--seed": ["0", "42", "-1", "99999999999"],
    "--scheme": ["notebook", "pytorch", "keras", "bogus"],
    "--xs": [str(PARAMS_DIR / "x_t.npy"), "-", "nope.npy", "."],
    "--dh-next": [str(PARAMS_DIR / "h_prev.npy"), str(PARAMS_DIR / "x_t.npy"), "-"],
    "--count": ["1", "0", "2"],
    "--vectors": [".", "nope"],
    "--results": [str(PARAMS_DIR / "inputs.json"), "nope.json"],
    "--to": ["native", "pytorch", "keras", "onnx", "tf"],
    "--from": ["native", "pytorch", "keras", "onnx", "x"],
    "--key-prefix": ["lstm.", ""],
    "--clip": ["0.5", "-1", "nan", "inf"],
    "--layer": ["0", "1", "-1", "x"],
    "--direction": ["forward", "reverse", "sideways"],
    "--export-view": ["v.txt", "v.svg", "v.png"],
}
# File kinds drawn for every path argument, made in the example's folder by file_kinds():
# a folder, a dangling symbolic link, /dev/null (read and written through) and, as root, a
# scratch character device node. Never a FIFO: opening one with no writer would block.
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
FILE_KINDS = ["kind-dir", "kind-dangling", os.devnull] + (["kind-null"] if IS_ROOT else [])
for _opt in ("--params", "--x", "--h", "--c", "--xs", "--dh-next", "--out", "--results"):
    OPTION_VALUES[_opt] = OPTION_VALUES[_opt] + FILE_KINDS
OPTION_VALUES["--vectors"] = OPTION_VALUES["--vectors"] + FILE_KINDS


def file_kinds(folder: Path) -> None:
    """The FILE_KINDS in ``folder`` (kept between a test's examples)."""
    (folder / "kind-dir").mkdir(exist_ok=True)
    if not (folder / "kind-dangling").is_symlink():
        (folder / "kind-dangling").symlink_to("kind-nowhere.npz")
    if IS_ROOT and not (folder / "kind-null").exists():
        os.mknod(folder / "kind-null", stat.S_IFCHR | 0o666, os.makedev(1, 3))


POSITIONAL = [
    str(PARAMS_DIR / "seed42.npz"), "out.npz", "out.safetensors", "nope.npz", "mod:fn",
    *FILE_KINDS,
]  # fmt: skip
FLAGS = [
    "--json",
    "--pretty",
    "--force",
    "--help",
    "--gates",
    "--batch-first",
    "--explain",
    "--check",
]


@settings(max_examples=examples(600), deadline=None, suppress_health_check=SHARED_FIXTURES)
@given(
    command=st.sampled_from(
        ["step", "init", "run", "grad", "vectors", "check", "convert", "inspect", "bogus", ""]
    ),
    positional=st.lists(st.sampled_from(POSITIONAL), max_size=2),
    options=st.lists(st.sampled_from(sorted(OPTION_VALUES)), max_size=4),
    flags=st.lists(st.sampled_from(FLAGS), max_size=2),
    picks=st.lists(st.integers(0, 10), min_size=4, max_size=4),
    stdin=st.sampled_from(
        [
            "",
            "[1, 2]",
            '{"x": [0,0,0,0,0,0,0,0,0,0]}',
            '{"xs": [[0,0,0,0,0,0,0,0,0,0]]}',
            "{",
            "NaN",
        ]
    ),
)
def test_random_command_lines_never_crash(
    tmp_path, monkeypatch, command, positional, options, flags, picks, stdin
):
    monkeypatch.chdir(tmp_path)
    file_kinds(tmp_path)
    args = ([command] if command else []) + positional
    args += _picked(options, OPTION_VALUES, picks) + flags
    assert_clean(runner.invoke(app, args, input=stdin), args, tmp_path)


def _picked(options: list[str], values: dict[str, list[str]], picks: list[int]) -> list[str]:
    """Each option followed by the value its pick chooses among ``values[option]``."""
    args = []
    for opt, pick in zip(options, picks, strict=False):
        args += [opt, values[opt][pick % len(values[opt])]]
    return args


def assert_clean(result: Any, args: list[str], tmp_path: Path) -> None:
    """Exit 0, 1 or 2 without a traceback; the file kinds intact; only complete outputs left."""
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    assert "Traceback" not in result.output
    assert (tmp_path / "kind-dir").is_dir() and (tmp_path / "kind-dangling").is_symlink()
    if IS_ROOT:
        assert stat.S_ISCHR((tmp_path / "kind-null").stat().st_mode)  # written through
    for leftover in tmp_path.iterdir():  # only complete outputs are ever left
        if leftover.suffix == ".safetensors":
            from safetensors.numpy import load_file

            assert load_file(str(leftover)), leftover
        elif leftover.suffix == ".json" and leftover.is_file():  # results, vectors' cases
            assert json.loads(leftover.read_text()) is not None, leftover
        elif leftover.suffix in (".txt", ".svg") and leftover.is_file():  # --export-view
            text = leftover.read_text()
            assert text.strip() and (leftover.suffix == ".txt" or "<svg" in text), leftover
        elif leftover.is_file():
            assert zipfile.is_zipfile(leftover), leftover


DATA = Path(__file__).parent / "data"
STACK_VALUES = {
    "--params": [str(DATA / n) for n in ("torch_lstm_2x2.pt", "torch_lstm_2x2.npz",
                 "keras_stack.keras", "keras_merge.keras", "keras_model.keras",
                 "keras_model.weights.h5", "onnx_bi_external.onnx", "torch_cell.pt")]
                + [str(PARAMS_DIR / "seed42.npz")],
    "--xs": [str(DATA / "torch_lstm_2x2_xs.npy"), str(DATA / "keras_stack_xs.npy"),
             str(DATA / "x4.npy"), str(PARAMS_DIR / "xs.npy"), str(PARAMS_DIR / "xs-batch.npy"),
             "-", "nope.npy"],
    "--h": [str(DATA / "x4.npy"), "in/h0.npy", str(PARAMS_DIR / "h_prev.npy")],
    "--c": ["in/h0.npy", str(PARAMS_DIR / "c_prev.npy")],
    "--backend": ["numpy", "compiled", "auto", "gpu"],
    "--dtype": ["float32", "float64"],
    "--out": ["out.npz", "out.json", "out.safetensors", "-"],
    "--export-view": ["v.txt", "v.svg"],
    "--key-prefix": ["enc", "bi", "lstm."],
    "--layer": ["0", "1"],
    "--direction": ["reverse"],
    "--clip": ["0.5"],
    "--chunk-steps": ["2"],
    "--max-input-mb": ["1", "0"],
}  # fmt: skip
STACK_FLAGS = ["--batch-first", "--pretty", "--json", "--force", "--no-peepholes", "-v"]


@settings(max_examples=examples(300), deadline=None, suppress_health_check=SHARED_FIXTURES)
@given(
    options=st.lists(st.sampled_from(sorted(STACK_VALUES)), max_size=5),
    flags=st.lists(st.sampled_from(STACK_FLAGS), max_size=3),
    picks=st.lists(st.integers(0, 10), min_size=5, max_size=5),
    stdin=st.sampled_from(["", "[[1, 2, 3]]", '{"xs": [[0, 0, 0]]}', "{", "5", "[]", "[[[]]]"]),
)
def test_random_stack_command_lines_never_crash(tmp_path, monkeypatch, options, flags, picks,
                                                stdin):  # fmt: skip
    """``run --stack`` on the committed torch, ONNX and Keras files with any mix of options."""
    pytest.importorskip("h5py")
    monkeypatch.chdir(tmp_path)
    file_kinds(tmp_path)
    (tmp_path / "in").mkdir(exist_ok=True)
    np.save("in/h0.npy", np.zeros((4, 2, 2)))  # a folder: the leftover check skips it
    args = ["run", "--stack", *_picked(options, STACK_VALUES, picks), *flags]
    assert_clean(runner.invoke(app, args, input=stdin), args, tmp_path)


def _replace(tree: Any, path: list[int], value: Any) -> Any:
    """``tree`` with the node reached by ``path`` (each int picks a key or an item) replaced."""
    if not path or not isinstance(tree, (dict, list)) or not tree:
        return value
    keys = sorted(tree) if isinstance(tree, dict) else list(range(len(tree)))
    key = keys[path[0] % len(keys)]
    new = dict(tree) if isinstance(tree, dict) else list(tree)
    new[key] = _replace(tree[key], path[1:], value)
    return new


@settings(max_examples=examples(300), deadline=None, suppress_health_check=SHARED_FIXTURES)
@given(
    edits=st.lists(
        st.tuples(st.lists(st.integers(0, 40), max_size=8), json_values), min_size=1, max_size=3
    ),
    batch_first=st.booleans(),
)
def test_mutated_keras_configs_run_or_are_refused(tmp_path, monkeypatch, edits, batch_first):
    """A .keras model whose config.json has random nodes replaced: ``run --stack`` runs it or
    refuses it with one line, never a crash."""
    pytest.importorskip("h5py")
    monkeypatch.chdir(tmp_path)
    file_kinds(tmp_path)
    with zipfile.ZipFile(DATA / "keras_stack.keras") as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    for path, value in edits:
        config = _replace(config, path, value)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile("m.keras", "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    args = ["run", "--params", "m.keras", "--stack", "--xs", str(DATA / "keras_stack_xs.npy")]
    result = runner.invoke(app, [*args, *(["--batch-first"] if batch_first else [])])
    assert_clean(result, args, tmp_path)
    if result.exit_code:
        assert result.output.startswith("Error: ") and result.output.count("\n") <= 2


@settings(max_examples=examples(200), deadline=None, suppress_health_check=SHARED_FIXTURES)
@given(
    cases=st.dictionaries(
        st.sampled_from(["case_000_notebook_float64", "case_001_small_float64", "zz"]),
        st.dictionaries(st.sampled_from(["h_next", "c_next", "x"]), json_values, max_size=3),
        max_size=3,
    ),
    extra=st.dictionaries(
        st.sampled_from(["format", "implementation", "other"]), json_values, max_size=2
    ),
)
def test_results_files_load_or_are_refused(tmp_path_factory, cases, extra):
    """A port's results file (check --results): judged or refused, never a crash."""
    from lstm_cli.porting.results import load_results
    from lstm_cli.porting.vectors import build_cases

    folder = tmp_path_factory.mktemp("results")
    path = folder / "results.json"
    path.write_text(json.dumps({**extra, "cases": cases}))
    try:
        outcomes = load_results(path, build_cases(2, seed=0))
    except InputError as e:
        refusal = str(e)
    else:
        assert len(outcomes) == 2
        return
    assert refusal.startswith(str(path))
