"""Framework layouts: exact round trips, detection from keys and prefixes, ambiguity, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_cli.errors import Hint, InputError
from lstm_cli.io import paramfiles
from lstm_cli.layouts import choose_candidate, export_arrays, from_onnx, to_onnx
from lstm_cli.params import LSTMParams

from .conftest import random_cell

F, H = 3, 2


def savez(path: Path, arrays: dict[str, Any]) -> None:
    np.savez(path, **arrays)


def cell(seed: int = 0, peepholes: bool = False, dtype: str = "float64", **variant) -> LSTMParams:
    rng = np.random.default_rng(seed)
    arrays = random_cell(rng, F, H)
    if peepholes:
        arrays.update({k: rng.standard_normal(H) for k in ("Pi", "Pf", "Po")})
    return LSTMParams.from_mapping(arrays, **variant).astype(dtype)


def same_bits(a: LSTMParams, b: LSTMParams) -> bool:
    aa, bb = a.all_arrays(), b.all_arrays()
    return aa.keys() == bb.keys() and all(
        aa[k].dtype == bb[k].dtype and aa[k].tobytes() == bb[k].tobytes() for k in aa
    )


def roundtrip(params: LSTMParams, layout: str, tmp_path: Path, suffix: str, **kw) -> LSTMParams:
    path = tmp_path / f"{layout}{suffix}"
    meta = {"clip": params.clip_value} if params.clip_value is not None else None
    if params.coupled:
        meta = {**(meta or {}), "input_forget": True}
    paramfiles.save_arrays(path, export_arrays(params, layout, **kw), meta, force=True)
    return paramfiles.load_param_set(path).params


@pytest.mark.parametrize("layout", ["native", "pytorch", "keras", "onnx"])
@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_is_bit_for_bit(tmp_path: Path, layout: str, suffix: str, dtype: str):
    p = cell(1, dtype=dtype)
    back = roundtrip(p, layout, tmp_path, suffix)
    assert same_bits(p, back)


def test_pytorch_nn_lstm_names_round_trip(tmp_path: Path):
    p = cell(2)
    arrays = export_arrays(p, "pytorch", pytorch_names="lstm")
    assert list(arrays) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert same_bits(p, roundtrip(p, "pytorch", tmp_path, ".npz", pytorch_names="lstm"))


def test_onnx_round_trip_keeps_the_variants(tmp_path: Path):
    p = cell(3, peepholes=True, clip=0.5, input_forget=True)
    back = roundtrip(p, "onnx", tmp_path, ".npz")
    assert same_bits(p, back) and back.variant.switches() == p.variant.switches()


def test_negative_zero_biases_survive(tmp_path: Path):
    p = cell(4)
    arrays = p.arrays()
    arrays["bf"] = np.array([-0.0, 1.0])
    p = LSTMParams.from_mapping(arrays)
    for layout in ("pytorch", "keras", "onnx"):
        assert same_bits(p, roundtrip(p, layout, tmp_path, ".npz"))


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 5),
    st.integers(1, 5),
    st.sampled_from(["pytorch", "keras", "onnx"]),
    st.integers(0, 2**31),
)
def test_round_trip_any_shape_in_memory(f: int, h: int, layout: str, seed: int):
    rng = np.random.default_rng(seed)
    p = LSTMParams.from_mapping(random_cell(rng, f, h))
    arrays = export_arrays(p, layout)
    back = paramfiles._param_set_from(
        set(arrays), arrays.__getitem__, lambda k: {}, "mem", None, None
    ).params
    assert same_bits(p, back)


def test_layout_shapes_and_gate_orders():
    p = cell(5)
    Wx = {g: getattr(p, f"W{g}")[:, H:] for g in "ifoc"}
    Wh = {g: getattr(p, f"W{g}")[:, :H] for g in "ifoc"}
    torch_ = export_arrays(p, "pytorch")
    np.testing.assert_array_equal(torch_["weight_ih"][2 * H : 3 * H], Wx["c"])  # i, f, g, o
    np.testing.assert_array_equal(torch_["weight_hh"][3 * H :], Wh["o"])
    np.testing.assert_array_equal(torch_["bias_hh"], np.zeros(4 * H))
    keras = export_arrays(p, "keras")
    assert keras["kernel"].shape == (F, 4 * H) and keras["recurrent_kernel"].shape == (H, 4 * H)
    np.testing.assert_array_equal(keras["kernel"][:, 2 * H : 3 * H], Wx["c"].T)  # i, f, c, o
    pp = cell(5, peepholes=True)
    onnx = to_onnx(pp)
    assert onnx["W"].shape == (1, 4 * H, F) and onnx["R"].shape == (1, 4 * H, H)
    assert onnx["B"].shape == (1, 8 * H) and onnx["P"].shape == (1, 3 * H)
    np.testing.assert_array_equal(onnx["W"][0, H : 2 * H], Wx["o"])  # i, o, f, c
    np.testing.assert_array_equal(onnx["B"][0, 2 * H : 3 * H], p.bf)
    assert pp.peepholes is not None
    np.testing.assert_array_equal(onnx["P"][0, H : 2 * H], pp.peepholes["Po"])  # P: i, o, f


def test_both_biases_are_summed_on_import(tmp_path: Path):
    p = cell(6)
    t = export_arrays(p, "pytorch")
    split = np.linspace(-1, 1, 4 * H)
    t["bias_ih"], t["bias_hh"] = t["bias_ih"] - split, split
    savez(tmp_path / "t.npz", t)
    back = paramfiles.load_param_set(tmp_path / "t.npz").params
    np.testing.assert_allclose(back.bf, p.bf, rtol=0, atol=1e-15)
    o = to_onnx(p)
    B = o["B"].copy()
    B[0, : 4 * H] -= split
    B[0, 4 * H :] = split
    np.testing.assert_allclose(from_onnx(o["W"], o["R"], B).bc, p.bc, rtol=0, atol=1e-15)


def test_absent_biases_are_zeros(tmp_path: Path):
    p = cell(7)
    t = export_arrays(p, "pytorch")
    np.savez(tmp_path / "nobias.npz", weight_ih=t["weight_ih"], weight_hh=t["weight_hh"])
    back = paramfiles.load_param_set(tmp_path / "nobias.npz").params
    np.testing.assert_array_equal(back.bi, np.zeros(H))
    np.testing.assert_array_equal(back.Wc, p.Wc)


@pytest.mark.parametrize("prefix", ["lstm.", "model.rnn.", "lstm/lstm_cell/", "encoder:", "a.b.c."])
@pytest.mark.parametrize("layout", ["pytorch", "keras", "onnx", "native"])
def test_prefixed_keys_are_found(tmp_path: Path, prefix: str, layout: str):
    p = cell(8)
    arrays = export_arrays(p, layout, prefix=prefix)
    arrays[prefix + "other_thing"] = np.ones(3)  # the rest of a model is ignored
    savez(tmp_path / "m.npz", arrays)
    ps = paramfiles.load_param_set(tmp_path / "m.npz")
    assert same_bits(p, ps.params)
    if layout != "native":
        assert ps.meta["source_layout"] == layout and ps.meta["source_key_prefix"] == prefix


def _two_lstms(tmp_path: Path) -> Path:
    arrays = {
        **export_arrays(cell(9), "pytorch", pytorch_names="lstm", prefix="encoder."),
        **export_arrays(cell(10), "pytorch", pytorch_names="lstm", prefix="decoder."),
    }
    savez(tmp_path / "two.npz", arrays)
    return tmp_path / "two.npz"


def test_several_lstms_are_listed(tmp_path: Path):
    path = _two_lstms(tmp_path)
    with pytest.raises(InputError) as e:
        paramfiles.load_param_set(path)
    msg = str(e.value)
    assert "holds 2 LSTMs" in msg and "'encoder.'" in msg and "'decoder.'" in msg
    assert e.value.hint is Hint.PICK_PREFIX  # the CLI says: Choose one with --key-prefix


@pytest.mark.parametrize("given", ["decoder.", "decoder"])
def test_key_prefix_picks_one(tmp_path: Path, given: str):
    ps = paramfiles.load_param_set(_two_lstms(tmp_path), key_prefix=given)
    assert same_bits(ps.params, cell(10))


def test_unknown_key_prefix_lists_what_is_there(tmp_path: Path):
    with pytest.raises(InputError, match="no LSTM with key prefix 'middle.' found; it holds") as e:
        paramfiles.load_param_set(_two_lstms(tmp_path), key_prefix="middle.")
    assert "'encoder.'" in str(e.value)


def test_two_layouts_under_one_prefix_need_from(tmp_path: Path):
    arrays = {**export_arrays(cell(11), "keras"), **export_arrays(cell(12), "onnx")}
    savez(tmp_path / "both.npz", arrays)
    with pytest.raises(InputError, match="holds 2 LSTMs") as e:
        paramfiles.load_param_set(tmp_path / "both.npz")
    assert e.value.hint is Hint.PICK_LAYOUT  # the CLI says: Choose one with --from
    ps = paramfiles.load_param_set(tmp_path / "both.npz", layout="onnx")
    assert same_bits(ps.params, cell(12))


def test_nothing_found_says_what_is_missing():
    with pytest.raises(InputError) as e:
        choose_candidate({"lstm.weight_ih_l0", "lstm.bias_ih_l0"}, "x.npz")
    assert "missing lstm.weight_hh_l0" in str(e.value)
    with pytest.raises(InputError, match="x.npz: no LSTM found"):
        choose_candidate({"foo", "bar"}, "x.npz")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"weight_ih": np.ones((8, 3)), "weight_hh": np.ones((8, 3))},
            "weight_hh has shape (8, 3)",
        ),
        (
            {"weight_ih": np.ones((4, 3)), "weight_hh": np.ones((8, 2))},
            "weight_ih has shape (4, 3)",
        ),
        (
            {
                "weight_ih": np.ones((8, 3)),
                "weight_hh": np.ones((8, 2)),
                "bias_ih": np.ones(7),
                "bias_hh": np.ones(8),
            },
            "bias_ih has shape (7,)",
        ),
        (
            {"weight_ih": np.ones((8, 3)), "weight_hh": np.ones((8, 2)), "bias_hh": np.ones(8)},
            "has bias_hh but not bias_ih",
        ),
        ({"kernel": np.ones((3, 8)), "recurrent_kernel": np.ones((2, 7))}, "recurrent_kernel"),
        (
            {"kernel": np.ones((3, 4)), "recurrent_kernel": np.ones((2, 8))},
            "kernel has shape (3, 4)",
        ),
        ({"W": np.ones((1, 8, 3)), "R": np.ones((8, 2))}, "R has shape (8, 2)"),
        ({"W": np.ones((2, 8, 3)), "R": np.ones((2, 8, 2))}, "bidirectional"),
        ({"W": np.ones((1, 8, 3)), "R": np.ones((1, 8, 2)), "B": np.ones((1, 8))}, "B has shape"),
        ({"W": np.ones((1, 8, 3)), "R": np.ones((1, 8, 2)), "P": np.ones((1, 4))}, "P has shape"),
        (
            {
                "weight_ih_l0": np.ones((8, 3)),
                "weight_hh_l0": np.ones((8, 1)),
                "weight_hr_l0": np.ones((1, 2)),
            },
            "proj_size",
        ),
        ({"weight_ih": np.ones((8, 3), bool), "weight_hh": np.ones((8, 2))}, "boolean dtype"),
        ({"W": np.full((1, 8, 3), np.nan), "R": np.ones((1, 8, 2))}, "W contains nan"),
    ],
)
def test_bad_framework_arrays_are_refused(tmp_path: Path, arrays, message):
    savez(tmp_path / "bad.npz", arrays)
    with pytest.raises(InputError) as e:
        paramfiles.load_param_set(tmp_path / "bad.npz")
    assert str(e.value).startswith(str(tmp_path / "bad.npz"))
    assert message in str(e.value)


@pytest.mark.parametrize("layout", ["pytorch", "keras"])
def test_variants_are_not_exported_to_frameworks_without_them(layout: str):
    for p in (cell(13, peepholes=True), cell(13, clip=1.0), cell(13, input_forget=True)):
        with pytest.raises(InputError, match=f"cannot export to {layout}"):
            export_arrays(p, layout)


def test_pickled_arrays_are_never_loaded(tmp_path: Path):
    t = export_arrays(cell(14), "pytorch")
    savez(tmp_path / "p.npz", {**t, "evil": np.array([{"a": 1}], dtype=object)})
    # the LSTM's arrays are read, the object array never is
    assert same_bits(paramfiles.load_param_set(tmp_path / "p.npz").params, cell(14))
    t["weight_hh"] = np.array([None] * 8, dtype=object)
    savez(tmp_path / "q.npz", t)
    with pytest.raises(InputError, match="weight_hh is an object"):
        paramfiles.load_param_set(tmp_path / "q.npz")
