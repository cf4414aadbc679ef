"""``lstm-cell convert`` and ``step`` over framework layouts: results, and every refusal
(exit code, message, nothing written)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli import init_params
from lstm_cli.cli import app
from lstm_cli.io import paramfiles
from lstm_cli.layouts import export_arrays
from lstm_cli.params import LSTMParams

from .conftest import random_cell

runner = CliRunner()


def savez(path: Path, arrays: dict[str, Any]) -> None:
    np.savez(path, **arrays)


def native(path: Path, seed: int = 0, **init: Any) -> LSTMParams:
    ps = init_params(n_features=3, n_hidden=2, seed=seed, **init)
    paramfiles.save_param_set(path, ps)
    return ps.params


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("to", ["native", "pytorch", "keras", "onnx"])
@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_convert_there_and_back_is_exact(in_tmp: Path, to: str, suffix: str):
    p = native(in_tmp / "cell.npz")
    result = runner.invoke(app, ["convert", "cell.npz", f"out{suffix}", "--to", to])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["to"] == to and summary["from"] == "native"
    result = runner.invoke(app, ["convert", f"out{suffix}", "back.npz", "--to", "native"])
    assert result.exit_code == 0, result.output
    back = paramfiles.load_param_set(in_tmp / "back.npz").params
    for k, v in p.arrays().items():
        assert back.arrays()[k].tobytes() == v.tobytes()


def test_pytorch_output_holds_only_the_state_dict(in_tmp: Path):
    native(in_tmp / "cell.npz")
    for names, keys in (
        ("cell", ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]),
        ("lstm", ["bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"]),
    ):
        out = f"t_{names}.npz"
        args = ["convert", "cell.npz", out, "--to", "pytorch", "--pytorch-names", names]
        assert runner.invoke(app, args).exit_code == 0
        with np.load(out) as z:
            assert sorted(z.files) == keys
            assert not np.any(z[keys[0]])  # bias_hh: zeros


def test_convert_keeps_the_onnx_variant(in_tmp: Path):
    p = native(in_tmp / "cell.npz", peepholes=True, clip=0.75, input_forget=True)
    assert runner.invoke(app, ["convert", "cell.npz", "o.npz", "--to", "onnx"]).exit_code == 0
    with np.load("o.npz") as z:
        assert sorted(z.files) == ["B", "P", "R", "W", "meta"]
    back = paramfiles.load_param_set(in_tmp / "o.npz").params
    assert back.variant.switches() == p.variant.switches()


def test_step_reads_every_layout_with_the_same_result(in_tmp: Path):
    p = native(in_tmp / "cell.npz", seed=4)
    x = [0.5, -1.0, 2.0]
    (in_tmp / "x.json").write_text(json.dumps(x))
    expected = p.step(np.array(x), np.zeros(2), np.zeros(2)).h_next
    for to in ("pytorch", "keras", "onnx"):
        out = f"{to}.safetensors"
        assert runner.invoke(app, ["convert", "cell.npz", out, "--to", to]).exit_code == 0
        result = runner.invoke(app, ["step", "--params", out, "--x", "x.json", "--json"])
        assert result.exit_code == 0, result.output
        np.testing.assert_array_equal(json.loads(result.output)["h_next"], expected)


def test_step_and_convert_pick_one_of_several(in_tmp: Path):
    rng = np.random.default_rng(1)
    a = LSTMParams.from_mapping(random_cell(rng, 3, 2))
    b = LSTMParams.from_mapping(random_cell(rng, 3, 2))
    savez(
        in_tmp / "model.npz",
        {
            **export_arrays(a, "pytorch", pytorch_names="lstm", prefix="encoder.lstm."),
            **export_arrays(b, "pytorch", pytorch_names="lstm", prefix="decoder.lstm."),
        },
    )
    result = runner.invoke(app, ["step", "--params", "model.npz", "--x", "-"], input="[1, 2, 3]")
    assert result.exit_code == 2
    assert "holds 2 LSTMs" in result.output and "'decoder.lstm.'" in result.output
    result = runner.invoke(
        app,
        ["step", "--params", "model.npz", "--key-prefix", "decoder.lstm", "--x", "-", "--json"],
        input="[1, 2, 3]",
    )
    assert result.exit_code == 0, result.output
    want = b.step(np.array([1.0, 2, 3]), np.zeros(2), np.zeros(2)).h_next
    np.testing.assert_array_equal(json.loads(result.output)["h_next"], want)
    args = ["convert", "model.npz", "enc.npz", "--to", "native", "--key-prefix", "encoder.lstm."]
    assert runner.invoke(app, args).exit_code == 0
    assert paramfiles.load_param_set(in_tmp / "enc.npz").params.Wf.tobytes() == a.Wf.tobytes()


def test_from_forces_the_layout(in_tmp: Path):
    p = native(in_tmp / "cell.npz")
    savez(in_tmp / "k.npz", export_arrays(p, "keras"))
    result = runner.invoke(app, ["convert", "k.npz", "o.npz", "--to", "onnx", "--from", "pytorch"])
    assert result.exit_code == 2
    assert "no pytorch LSTM found" in result.output
    assert "o.npz" not in files(in_tmp)
    result = runner.invoke(app, ["convert", "k.npz", "o.npz", "--to", "onnx", "--from", "keras"])
    assert result.exit_code == 0, result.output


def test_pretty_convert_shows_what_was_written(in_tmp: Path):
    native(in_tmp / "cell.npz")
    result = runner.invoke(app, ["convert", "cell.npz", "k.npz", "--to", "keras", "--pretty"])
    assert result.exit_code == 0, result.output
    assert "Wrote k.npz" in result.output and "recurrent_kernel" in result.output


# --------------------------------------------------------------------------- refusals


def _bool_file(folder: Path) -> None:
    savez(folder / "in.npz", {"kernel": np.ones((3, 8), bool), "recurrent_kernel": np.ones((2, 8))})


def _nan_file(folder: Path) -> None:
    savez(folder / "in.npz", {"W": np.full((1, 8, 3), np.nan), "R": np.ones((1, 8, 2))})


def _two_file(folder: Path) -> None:
    p = native(folder / "tmp.npz")
    (folder / "tmp.npz").unlink()
    savez(
        folder / "in.npz",
        {**export_arrays(p, "keras", prefix="a/"), **export_arrays(p, "keras", prefix="b/")},
    )


def _variant_file(folder: Path) -> None:
    native(folder / "in.npz", peepholes=True)


def _garbage_file(folder: Path) -> None:
    (folder / "in.npz").write_bytes(b"this is not an archive")


def _bad_safetensors(folder: Path) -> None:
    header = json.dumps(
        {
            "W": {"dtype": "BF16", "shape": [1, 8, 3], "data_offsets": [0, 48]},
            "R": {"dtype": "F32", "shape": [1, 8, 2], "data_offsets": [48, 112]},
        }
    ).encode()
    blob = len(header).to_bytes(8, "little") + header + b"\0" * 112
    (folder / "in.safetensors").write_bytes(blob)


def _truncated_safetensors(folder: Path) -> None:
    (folder / "in.safetensors").write_bytes(b"\xff" * 8 + b"{")


def _pickled(folder: Path) -> None:
    savez(folder / "in.npz", {"W": np.array([None], dtype=object), "R": np.ones((1, 8, 2))})


@pytest.mark.parametrize(
    ("make", "src", "args", "message"),
    [
        (None, "missing.npz", ["--to", "native"], "missing.npz: no such file"),
        (_bool_file, "in.npz", ["--to", "native"], "in.npz: kernel has boolean dtype"),
        (_nan_file, "in.npz", ["--to", "native"], "in.npz: W contains nan"),
        (_two_file, "in.npz", ["--to", "native"], "holds 2 LSTMs"),
        (_variant_file, "in.npz", ["--to", "pytorch"], "cannot export to pytorch"),
        (_variant_file, "in.npz", ["--to", "keras"], "cannot export to keras"),
        (_garbage_file, "in.npz", ["--to", "native"], "in.npz: not a .npz archive"),
        (_bad_safetensors, "in.safetensors", ["--to", "native"], "NumPy cannot hold"),
        (_truncated_safetensors, "in.safetensors", ["--to", "native"], "not a readable"),
        (_pickled, "in.npz", ["--to", "native"], "W is an object (pickled) array"),
        (_variant_file, "in.npz", ["--to", "keras", "--from", "tensorflow"], "Invalid value"),
        (_variant_file, "in.npz", [], "Missing option '--to'"),
    ],
)
def test_refused_inputs_write_nothing(in_tmp: Path, make, src, args, message):
    if make is not None:
        make(in_tmp)
    before = files(in_tmp)
    result = runner.invoke(app, ["convert", src, "out.npz", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert files(in_tmp) == before  # no output, no temp file


def test_existing_output_needs_force(in_tmp: Path):
    native(in_tmp / "cell.npz")
    (in_tmp / "out.npz").write_bytes(b"keep me")
    result = runner.invoke(app, ["convert", "cell.npz", "out.npz", "--to", "keras"])
    assert result.exit_code == 2
    assert "out.npz: already exists; pass --force" in result.output
    assert (in_tmp / "out.npz").read_bytes() == b"keep me"
    result = runner.invoke(app, ["convert", "cell.npz", "out.npz", "--to", "keras", "--force"])
    assert result.exit_code == 0, result.output
    assert paramfiles.load_param_set(in_tmp / "out.npz").meta["source_layout"] == "keras"


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("model.onnx", "writing .onnx models is not supported"),
        ("nowhere/out.npz", "folder nowhere does not exist"),
        (".", "is a directory"),
    ],
)
def test_bad_output_paths(in_tmp: Path, out: str, message: str):
    native(in_tmp / "cell.npz")
    result = runner.invoke(app, ["convert", "cell.npz", out, "--to", "onnx"])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert files(in_tmp) == ["cell.npz"]


def test_onnx_model_without_the_onnx_package(in_tmp: Path, monkeypatch):
    (in_tmp / "m.onnx").write_bytes(b"\x08\x07")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    result = runner.invoke(app, ["convert", "m.onnx", "o.npz", "--to", "native"])
    assert result.exit_code == 2
    assert "m.onnx: reading .onnx models needs the onnx package (pip install onnx)" in result.output
    assert files(in_tmp) == ["m.onnx"]


def test_step_option_errors(in_tmp: Path):
    result = runner.invoke(app, ["step", "--key-prefix", "lstm."])
    assert result.exit_code == 2
    assert "--from, --key-prefix, --layer and --direction need --params" in result.output


def test_a_converted_native_file_records_where_it_came_from(in_tmp: Path):
    p = native(in_tmp / "cell.npz")
    savez(in_tmp / "t.npz", export_arrays(p, "pytorch", pytorch_names="lstm", prefix="rnn."))
    out = json.loads(runner.invoke(app, ["convert", "t.npz", "n.npz", "--to", "native"]).output)
    assert out["from"] == "pytorch"
    meta = paramfiles.load_param_set(in_tmp / "n.npz").meta
    assert meta["converted_from"] == {
        "layout": "pytorch",
        "key_prefix": "rnn.",
        "cell": {"layer": 0, "direction": "forward"},  # which cell of the nn.LSTM, of how many
        "cells": 1,
    }
    out = json.loads(runner.invoke(app, ["convert", "n.npz", "k.npz", "--to", "keras"]).output)
    assert out["from"] == "native"


def test_input_limit_applies_to_safetensors(in_tmp: Path):
    from safetensors.numpy import save_file

    big = {"W": np.ones((1, 4 * 64, 1024)), "R": np.ones((1, 4 * 64, 64))}  # W: 2 MiB
    save_file(big, str(in_tmp / "big.safetensors"))
    args = ["convert", "big.safetensors", "o.npz", "--to", "native"]
    result = runner.invoke(app, [*args, "--max-input-mb", "1"])
    assert result.exit_code == 2
    assert "big.safetensors: W holds 2 MiB or more, over the 1 MiB limit" in result.output
    assert files(in_tmp) == ["big.safetensors"]
    assert runner.invoke(app, args).exit_code == 0


def test_run_reads_framework_layouts_and_refuses_variants(in_tmp: Path):
    p = native(in_tmp / "cell.npz", seed=5)
    assert (
        runner.invoke(app, ["convert", "cell.npz", "t.safetensors", "--to", "pytorch"]).exit_code
        == 0
    )
    xs = np.random.default_rng(0).standard_normal((4, 3))
    np.save(in_tmp / "xs.npy", xs)
    result = runner.invoke(app, ["run", "--params", "t.safetensors", "--xs", "xs.npy", "--json"])
    assert result.exit_code == 0, result.output
    h: np.ndarray = np.zeros(2)
    c: np.ndarray = np.zeros(2)
    for x in xs:
        r = p.step(x, h, c)
        h, c = r.h_next, r.c_next
    np.testing.assert_allclose(json.loads(result.output)["h_next"], h, rtol=0, atol=1e-12)
    # a file with a variant runs with its variant (as step computes it)
    v = native(in_tmp / "v.npz", seed=5, clip=0.5)
    result = runner.invoke(app, ["run", "--params", "v.npz", "--xs", "xs.npy", "--json"])
    assert result.exit_code == 0, result.output
    h, c = np.zeros(2), np.zeros(2)
    for x in xs:
        r = v.step(x, h, c)
        h, c = r.h_next, r.c_next
    np.testing.assert_allclose(json.loads(result.output)["h_next"], h, rtol=0, atol=1e-12)


@pytest.mark.parametrize("suffix", [".npz", ".json", ".safetensors"])
@pytest.mark.parametrize("command", ["step", "run", "grad"])
def test_out_format_follows_the_extension(in_tmp: Path, command: str, suffix: str):
    """A file named .json holds JSON, .safetensors safetensors, .npz a zip: never a lie."""
    args = [command, "--out", f"r{suffix}", "--json"]
    if command == "run":
        args += ["--xs", str(Path(__file__).parent.parent / "params" / "xs.npy")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = Path(f"r{suffix}").read_bytes()
    if suffix == ".json":
        obj = json.loads(data)
        assert "h_next" in obj or "grads" in obj or any(k.startswith("d") for k in obj)
    elif suffix == ".npz":
        assert data.startswith(b"PK\x03\x04")
        with np.load(f"r{suffix}", allow_pickle=False) as npz:
            assert "h_next" in npz.files
    else:
        from safetensors.numpy import load_file

        assert "h_next" in load_file(f"r{suffix}")


@pytest.mark.parametrize("out", ["out.pt", "out.pth", "out.h5", "out.keras", "out.bin"])
def test_convert_refuses_formats_it_cannot_write(in_tmp: Path, out: str):
    runner.invoke(app, ["init", "--n-features", "3", "--n-hidden", "2", "--out", "p.npz"])
    to = "keras" if out.endswith(("h5", "keras")) else "pytorch"
    result = runner.invoke(app, ["convert", "p.npz", out, "--to", to])
    assert result.exit_code == 2
    assert "write one of .npz, .safetensors" in result.stderr
    assert not Path(out).exists()


def test_step_out_stdout_is_still_npz_bytes():
    result = runner.invoke(app, ["step", "--out", "-"])
    assert result.exit_code == 0
    assert result.stdout_bytes.startswith(b"PK\x03\x04")
