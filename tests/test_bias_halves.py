"""Two biases (PyTorch's bias_ih + bias_hh, ONNX's Wb + Rb) summed in the compute dtype, and
kept exactly by ``convert`` to a two-bias layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from lstm_cli.cli import app
from lstm_cli.io import paramfiles

F, H = 3, 2


def _repro(path, layout: str = "pytorch") -> None:
    """The issue's repro: zero weights, bias_ih = 1 and bias_hh = 2**-24 (float32)."""
    if layout == "pytorch":
        arrays = {
            "weight_ih": np.zeros((4 * H, F), np.float32),
            "weight_hh": np.zeros((4 * H, H), np.float32),
            "bias_ih": np.ones(4 * H, np.float32),
            "bias_hh": np.full(4 * H, 2.0**-24, np.float32),
        }
    else:
        B = np.concatenate([np.ones(4 * H), np.full(4 * H, 2.0**-24)])[None]
        arrays = {
            "W": np.zeros((1, 4 * H, F), np.float32),
            "R": np.zeros((1, 4 * H, H), np.float32),
            "B": B.astype(np.float32),
        }
    save_file(arrays, str(path))


@pytest.mark.parametrize("layout", ["pytorch", "onnx"])
def test_float32_biases_summed_in_float64(runner, in_tmp, layout):
    _repro(in_tmp / "m.safetensors", layout)
    np.save("x.npy", np.zeros(F))
    r = runner.invoke(app, ["step", "--params", "m.safetensors", "--x", "x.npy", "--json"])
    assert r.exit_code == 0, r.output
    z_i = json.loads(r.stdout)["pre_activations"]["z_i"]
    assert z_i == [1.0000000596046448] * H  # 1 + 2**-24 exactly; float32 would give 1.0


def test_float32_compute_rounds_the_sum(runner, in_tmp):
    _repro(in_tmp / "m.safetensors")
    np.save("x.npy", np.zeros(F))
    r = runner.invoke(
        app, ["step", "--params", "m.safetensors", "--x", "x.npy", "--dtype", "float32", "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["pre_activations"]["z_i"] == [1.0] * H


def test_run_uses_the_exact_sum(runner, in_tmp):
    _repro(in_tmp / "m.safetensors")
    np.save("xs.npy", np.zeros((2, F)))
    r = runner.invoke(app, ["run", "--params", "m.safetensors", "--xs", "xs.npy", "--out", "o.npz"])
    assert r.exit_code == 0, r.output
    # c_1 = i * g with i = g = sigmoid/tanh of 1 + 2**-24: differs from the float32 sum's
    c1 = np.load("o.npz")["c_seq"][0]
    z = 1 + 2.0**-24
    np.testing.assert_allclose(c1, 1 / (1 + np.exp(-z)) * np.tanh(z), rtol=0, atol=1e-16)


@pytest.mark.parametrize("layout", ["pytorch", "onnx"])
def test_convert_keeps_both_halves(runner, in_tmp, layout):
    _repro(in_tmp / "m.safetensors", layout)
    src = load_file("m.safetensors")
    for to in ("pytorch", "onnx"):
        r = runner.invoke(app, ["convert", "m.safetensors", f"{to}.safetensors", "--to", to])
        assert r.exit_code == 0, r.output
        out = load_file(f"{to}.safetensors")
        first, second = (
            (out["bias_ih"], out["bias_hh"]) if to == "pytorch" else np.split(out["B"][0], 2)
        )
        want = (src["bias_ih"], src["bias_hh"]) if layout == "pytorch" else np.split(src["B"][0], 2)
        # all gates share one value here, so gate order does not move them
        np.testing.assert_array_equal(first, want[0])
        np.testing.assert_array_equal(second, want[1])
        assert first.dtype == np.float32
        again = paramfiles.load_param_set(in_tmp / f"{to}.safetensors")
        assert again.bias_halves is not None


def test_convert_round_trip_keeps_distinct_halves_bit_for_bit(runner, in_tmp):
    rng = np.random.default_rng(3)
    arrays = {
        "weight_ih": rng.standard_normal((4 * H, F)).astype(np.float32),
        "weight_hh": rng.standard_normal((4 * H, H)).astype(np.float32),
        "bias_ih": rng.standard_normal(4 * H).astype(np.float32),
        "bias_hh": rng.standard_normal(4 * H).astype(np.float32),
    }
    save_file(arrays, "t.safetensors")
    assert (
        runner.invoke(app, ["convert", "t.safetensors", "o.safetensors", "--to", "onnx"]).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, ["convert", "o.safetensors", "b.safetensors", "--to", "pytorch"]
        ).exit_code
        == 0
    )
    back = load_file("b.safetensors")
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v)


@pytest.mark.parametrize("to", ["native", "keras"])
def test_convert_to_one_bias_refuses_an_inexact_sum(runner, in_tmp, to):
    _repro(in_tmp / "m.safetensors")
    r = runner.invoke(app, ["convert", "m.safetensors", "o.npz", "--to", to])
    assert r.exit_code == 2
    assert "not exact in float32 for 8 of 8 entries" in r.stderr
    assert "--sum-biases" in r.stderr
    assert not (in_tmp / "o.npz").exists()
    r = runner.invoke(app, ["convert", "m.safetensors", "o.npz", "--to", to, "--sum-biases"])
    assert r.exit_code == 0, r.output
    bias = np.load("o.npz")["bias" if to == "keras" else "bi"]
    assert np.all(bias == np.float32(1.0))


def test_convert_to_one_bias_writes_an_exact_sum(runner, in_tmp):
    arrays = {
        "weight_ih": np.ones((4 * H, F), np.float32),
        "weight_hh": np.ones((4 * H, H), np.float32),
        "bias_ih": np.full(4 * H, 0.5, np.float32),
        "bias_hh": np.full(4 * H, 0.25, np.float32),
    }
    save_file(arrays, "t.safetensors")
    r = runner.invoke(app, ["convert", "t.safetensors", "n.npz", "--to", "native"])
    assert r.exit_code == 0, r.output
    assert np.all(np.load("n.npz")["bf"] == np.float32(0.75))
