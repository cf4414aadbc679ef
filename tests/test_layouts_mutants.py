"""Written from the survivors of mutation testing of lstm_cli/layouts.py (docs/mutation.md):
the refusals users see, word for word (which array, which shape, which layout, which file);
the variants PyTorch and Keras lack refused on import; a float32 file without biases stays
float32; the defaults of the import functions; which partial LSTM a file is said to hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from lstm_cli.errors import Hint, InputError
from lstm_cli.layouts import (
    SPECS,
    Candidate,
    choose_candidate,
    export_arrays,
    from_keras,
    from_onnx,
    from_pytorch,
    import_bias_halves,
    import_params,
)
from lstm_cli.params import PARAM_NAMES, BiasHalves, LSTMParams

from .conftest import random_cell

F, H = 3, 2
EXPECTED = (
    "Expected native (Wf, Wi, Wo, Wc, bf, bi, bo, bc), pytorch (weight_ih, weight_hh, "
    "bias_ih, bias_hh, or their _l0 names), keras (kernel, recurrent_kernel, bias) or "
    "onnx (W, R, B)."
)


def refusal(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InputError) as e:
        fn(*args, **kwargs)
    return e.value.message


def cell(seed: int = 0, dtype: str = "float64") -> LSTMParams:
    return LSTMParams(**random_cell(np.random.default_rng(seed), F, H)).astype(dtype)


def spec(layout: str, flavour: str = "") -> Any:
    return next(s for s in SPECS if s.layout == layout and s.flavour == flavour)


def imported(arrays: dict[str, np.ndarray], layout: str, flavour: str = "", **kw: Any):
    """import_params on ``arrays`` as a file named f.npz holding them (no key prefix)."""
    return import_params(Candidate(spec(layout, flavour), ""), arrays.__getitem__, arrays,
                         "f.npz", **kw)  # fmt: skip


# --------------------------------------------------------------------------- choosing an LSTM


def test_several_lstms_are_listed_by_prefix_and_first_key():
    keys = ["weight_ih", "weight_hh", "a.weight_ih", "a.weight_hh"]
    assert refusal(choose_candidate, keys, "f.npz") == (
        "f.npz: holds 2 LSTMs: nn.LSTMCell (no prefix: weight_ih, ...); "
        "nn.LSTMCell (prefix 'a.': a.weight_ih, ...)"
    )
    assert refusal(choose_candidate, keys, "f.npz", "keras") == (
        "f.npz: no keras LSTM found; it holds: nn.LSTMCell (no prefix: weight_ih, ...); "
        "nn.LSTMCell (prefix 'a.': a.weight_ih, ...)"
    )


def test_an_unknown_layout_is_refused_with_the_known_ones():
    want = "unknown layout 'torch'; expected one of native, pytorch, keras, onnx"
    assert refusal(choose_candidate, ["W", "R"], "f.npz", "torch") == want
    assert refusal(export_arrays, cell(), "torch") == want


@pytest.mark.parametrize(
    ("keys", "shown"),
    [
        ([], "nothing"),
        (["x"], "x"),  # one short key: no partial LSTM in it
        ([f"k{n:02}" for n in range(12)], ", ".join(f"k{n:02}" for n in range(12))),
        ([f"k{n:02}" for n in range(13)], ", ".join(f"k{n:02}" for n in range(12)) + ", ..."),
    ],
)
def test_nothing_found_shows_the_first_twelve_keys(keys, shown):
    want = f"f.npz: no LSTM found (found {shown})\n{EXPECTED}"
    assert refusal(choose_candidate, keys, "f.npz") == want


@pytest.mark.parametrize(
    ("keys", "label", "missing"),
    [
        (["kernel", "W"], "Keras LSTM", "recurrent_kernel"),  # a tie: the first layout
        # the prefix with the most arrays present, wherever it is listed
        (["a.Wf", "a.Wi", "a.Wo", "a.Wc", "a.bf", "a.bi", "b.Wf"], "native", "a.bo, a.bc"),
        (["b.Wf", "a.Wf", "a.Wi", "a.Wo", "a.Wc", "a.bf", "a.bi"], "native", "a.bo, a.bc"),
    ],
)
def test_a_partial_lstm_is_named_with_its_missing_keys(keys, label, missing):
    shown = ", ".join(sorted(keys))
    assert refusal(choose_candidate, keys, "f.npz") == (
        f"f.npz: no LSTM found: {label} arrays, missing {missing} (found {shown})\n{EXPECTED}"
    )


# --------------------------------------------------------------------------- import refusals


def torch_arrays(p: LSTMParams) -> dict[str, np.ndarray]:
    return export_arrays(p, "pytorch")


@pytest.mark.parametrize("layout", ["pytorch", "keras"])
@pytest.mark.parametrize("switch", [{"clip": 3.0}, {"input_forget": True}])
def test_variants_are_refused_for_frameworks_without_them(layout, switch):
    arrays = export_arrays(cell(), layout)
    flavour = "cell" if layout == "pytorch" else ""
    assert refusal(imported, arrays, layout, flavour, **switch) == (
        f"f.npz: its metadata sets clip/input_forget, which {layout} LSTMs do not have"
    )


def test_import_defaults_to_the_plain_cell():
    p = cell(1)
    for layout, flavour in (("pytorch", "cell"), ("keras", ""), ("onnx", "")):
        back = import_params(
            Candidate(spec(layout, flavour), ""), export_arrays(p, layout).__getitem__,
            export_arrays(p, layout), "f.npz",
        )  # fmt: skip
        assert back.is_plain
        for name in PARAM_NAMES:
            np.testing.assert_array_equal(getattr(back, name), getattr(p, name))
    o = export_arrays(p, "onnx")
    assert from_onnx(o["W"], o["R"], o["B"]).is_plain


@pytest.mark.parametrize("layout", ["pytorch", "keras", "onnx"])
def test_a_float32_file_without_biases_stays_float32(layout):
    p = cell(2, "float32")
    arrays = export_arrays(p, layout)
    for bias in ("bias_ih", "bias_hh", "bias", "B"):
        arrays.pop(bias, None)
    back = imported(arrays, layout, "cell" if layout == "pytorch" else "")
    assert back.dtype == np.float32 and back.bf.dtype == np.float32
    np.testing.assert_array_equal(back.bi, np.zeros(H, np.float32))
    np.testing.assert_array_equal(back.Wo, p.Wo)


def test_pytorch_refusals_name_the_array_and_the_expected_shape():
    t = torch_arrays(cell())
    assert refusal(imported, {**t, "weight_hr": np.zeros((8, 2))}, "pytorch", "cell") == (
        "f.npz: weight_hr is an nn.LSTM with proj_size, whose h is projected; "
        "this tool's cell has no projection"
    )
    del t["bias_hh"]
    assert refusal(imported, t, "pytorch", "cell") == (
        "f.npz: has bias_ih but not bias_hh; a PyTorch LSTM saves both biases (bias=True) "
        "or neither (bias=False)"
    )
    t["bias_hh"] = np.zeros(5)
    assert refusal(imported, t, "pytorch", "cell") == (
        "f.npz: bias_hh has shape (5,), expected (8,) (4H,)"
    )
    t = torch_arrays(cell())
    assert refusal(imported, {**t, "weight_hh": np.zeros((7, 2))}, "pytorch", "cell") == (
        "f.npz: weight_hh has shape (7, 2), expected (4H, H)"
    )
    assert refusal(imported, {**t, "weight_ih": np.zeros((6, 3))}, "pytorch", "cell") == (
        "f.npz: weight_ih has shape (6, 3), expected (8, F) (4H, F), with H = 2 from weight_hh"
    )
    assert refusal(imported, {**t, "weight_hh": np.zeros((6, 2))}, "pytorch", "cell") == (
        "f.npz: this looks like a GRU (3 gate blocks), not an LSTM: weight_hh has shape (6, 2); "
        "an LSTM's is (4H, H)"
    )


def test_keras_refusals_name_the_array_and_the_expected_shape():
    k = export_arrays(cell(), "keras")
    assert refusal(imported, {**k, "bias": np.zeros(5)}, "keras") == (
        "f.npz: bias has shape (5,), expected (8,) (4H,)"
    )
    assert refusal(imported, {**k, "recurrent_kernel": np.zeros((2, 7))}, "keras") == (
        "f.npz: recurrent_kernel has shape (2, 7), expected (H, 4H)"
    )
    assert refusal(imported, {**k, "kernel": np.zeros((3, 6))}, "keras") == (
        "f.npz: kernel has shape (3, 6), expected (F, 8) (F, 4H), with H = 2 from recurrent_kernel"
    )
    gru = "f.npz: this looks like a GRU (3 gate blocks), not an LSTM: recurrent_kernel has shape"
    assert refusal(imported, {**k, "recurrent_kernel": np.zeros((2, 6))}, "keras") == (
        f"{gru} (2, 6); an LSTM's is (H, 4H)"
    )
    # the last two axes decide, as Keras stores them (H, 3H)
    assert refusal(imported, {**k, "recurrent_kernel": np.zeros((1, 2, 6))}, "keras") == (
        f"{gru} (1, 2, 6); an LSTM's is (H, 4H)"
    )


def test_the_smallest_gru_is_named_and_an_empty_matrix_is_not_a_gru():
    t = torch_arrays(cell())
    gru = refusal(imported, {**t, "weight_hh": np.zeros((3, 1))}, "pytorch", "cell")
    assert gru.startswith("f.npz: this looks like a GRU")
    empty = refusal(imported, {**t, "weight_hh": np.zeros((0, 0))}, "pytorch", "cell")
    assert empty == "f.npz: weight_hh has shape (0, 0), expected (4H, H)"


def test_a_native_file_refusal_names_the_file():
    arrays = {k: getattr(cell(), k) for k in PARAM_NAMES}
    arrays["bi"] = np.zeros(3)
    assert refusal(imported, arrays, "native") == (
        "f.npz: bi has shape (3,), expected (2,) (H,), with H from Wf"
    )


# --------------------------------------------------------------------------- from_* directly


def onnx_arrays(p: LSTMParams) -> dict[str, np.ndarray]:
    return export_arrays(p, "onnx")


def test_from_onnx_refuses_each_misshapen_array_by_name():
    o = onnx_arrays(cell())
    W, R = o["W"], o["R"]
    assert refusal(from_onnx, np.zeros((2, 8, 3)), R) == (
        "onnx: W has shape (2, 8, 3): a bidirectional ONNX LSTM; this tool reads one "
        "direction (num_directions = 1)"
    )
    assert refusal(from_onnx, W, np.zeros((2, 8, 2)))[:24] == "onnx: R has shape (2, 8,"
    assert refusal(from_onnx, W, np.zeros((1, 6, 2))) == (
        "onnx: this looks like a GRU (3 gate blocks), not an LSTM: R has shape (1, 6, 2); "
        "an LSTM's is (4H, H)"
    )
    for bad_R in [(1, 5, 2), (3, 8, 2), (1, 8), (1, 0, 0)]:
        assert refusal(from_onnx, W, np.zeros(bad_R)) == (
            f"onnx: R has shape {bad_R}, expected (1, 4H, H)"
        )
    for bad_W in [(1, 5, 3), (1, 8, 3, 1), (1, 8, 0)]:
        assert refusal(from_onnx, np.zeros(bad_W), R) == (
            f"onnx: W has shape {bad_W}, expected (1, 8, F) (1, 4H, F), with H = 2 from R"
        )
    assert refusal(from_onnx, W, R, np.zeros((1, 5))) == (
        "onnx: B has shape (1, 5), expected (1, 16) (1, 8H) = [Wb, Rb]"
    )
    assert refusal(from_onnx, W, R, None, np.zeros((1, 5))) == (
        "onnx: P has shape (1, 5), expected (1, 6) (1, 3H) = [Pi, Po, Pf]"
    )
    assert refusal(from_onnx, W, R, clip=-1.0, source="m.onnx") == (
        "m.onnx: clip must be a finite number > 0, got -1.0"
    )


def test_a_prefixed_onnx_file_names_its_own_keys():
    o = export_arrays(cell(), "onnx", prefix="m.")
    o["m.B"] = np.zeros((1, 5))
    found = choose_candidate(list(o), "f.npz")
    assert refusal(import_params, found, o.__getitem__, o, "f.npz") == (
        "f.npz: m.B has shape (1, 5), expected (1, 16) (1, 8H) = [Wb, Rb]"
    )


def test_one_unit_and_one_feature_import_exactly_in_onnx_gate_order():
    rng = np.random.default_rng(3)
    W, R, B = rng.standard_normal((1, 4, 1)), rng.standard_normal((1, 4, 1)), np.zeros((1, 8))
    p = from_onnx(W, R, B)
    for n, gate in enumerate("iofc"):  # ONNX stacks the gates i, o, f, c
        np.testing.assert_array_equal(getattr(p, f"W{gate}"), [[R[0, n, 0], W[0, n, 0]]])


@pytest.mark.parametrize(
    ("fn", "name", "blocks"),
    [
        (from_pytorch, "pytorch", lambda Wx, Wh, b: (Wx, Wh, b, np.zeros_like(b))),
        (from_keras, "keras", lambda Wx, Wh, b: (Wx.T, Wh.T, b)),
    ],
)
def test_from_blocks_refuses_inconsistent_shapes(fn, name, blocks):
    Wx, Wh, b = np.ones((8, 3)), np.ones((8, 2)), np.ones(8)
    for bad in [(Wx, Wh, np.ones(5)), (np.ones((9, 3)), Wh, b), (Wx, np.ones((5, 2)), b)]:
        msg = refusal(fn, *blocks(*bad))
        shapes = [a.shape for a in bad]
        assert msg == (
            f"{name}: inconsistent shapes: input weights {shapes[0]} (4H, F), recurrent "
            f"weights {shapes[1]} (4H, H), bias {shapes[2]} (4H,)"
        )
    assert refusal(fn, *blocks(np.ones((8, 0)), Wh, b)).startswith(f"{name}: Wf has shape (2, 2)")


# --------------------------------------------------------------------------- export


def test_export_refusals_name_the_variants_and_hint_at_the_layout():
    p = cell()
    for variant, used in (({"input_forget": True}, "input_forget"), ({"clip": 2.0}, "clip")):
        with pytest.raises(InputError) as e:
            export_arrays(LSTMParams.from_mapping(p.arrays(), **variant), "keras")
        assert e.value.message == (
            f"cannot export to keras: the cell uses {used}, which keras's LSTM does not have"
        )
        assert e.value.hint is Hint.EXPORT_LAYOUT
    both = LSTMParams.from_mapping(p.arrays(), clip=2.0, input_forget=True)
    assert refusal(export_arrays, both, "pytorch") == (
        "cannot export to pytorch: the cell uses clip, input_forget, which pytorch's LSTM "
        "does not have"
    )
    assert refusal(export_arrays, p, "pytorch", pytorch_names="rnn") == (
        "unknown PyTorch names 'rnn'; expected cell or lstm"
    )


def test_native_export_is_the_native_arrays():
    p = cell(4)
    out = export_arrays(p, "native", prefix="x.")
    assert sorted(out) == sorted(f"x.{k}" for k in PARAM_NAMES)
    for k in PARAM_NAMES:
        np.testing.assert_array_equal(out[f"x.{k}"], getattr(p, k))


def halves_of(p: LSTMParams, second: float) -> BiasHalves:
    first = {k: getattr(p, k) - np.asarray(second, p.dtype) for k in ("bf", "bi", "bo", "bc")}
    return BiasHalves(first, {k: np.full(H, second, p.dtype) for k in first})


def test_kept_halves_are_summed_in_the_cells_dtype_or_refused():
    p = cell(5, "float32")
    out = export_arrays(p, "native", halves=halves_of(p, 0.5))
    assert out["bf"].dtype == np.float32
    inexact = BiasHalves({k: np.full(H, 1.0) for k in ("bf", "bi", "bo", "bc")},
                         {k: np.full(H, 1e-12) for k in ("bf", "bi", "bo", "bc")})  # fmt: skip
    assert refusal(export_arrays, p, "keras", halves=inexact) == (
        "cannot convert to keras exactly: keras has one bias, and the sum of the file's two "
        "biases is not exact in float32 for 8 of 8 entries"
    )


def test_kept_halves_of_mixed_dtypes_are_kept_in_the_wider_one():
    t = torch_arrays(cell(6, "float32"))
    t["bias_hh"] = np.full(8, 0.1)  # float64, not exact in float32
    for swap in (False, True):
        arrays = dict(t)
        if swap:
            arrays["bias_ih"], arrays["bias_hh"] = t["bias_hh"], t["bias_ih"] + 1
        halves = import_bias_halves(Candidate(spec("pytorch", "cell"), ""), arrays.__getitem__,
                                    arrays)  # fmt: skip
        assert halves is not None
        assert {v.dtype for v in [*halves.first.values(), *halves.second.values()]} == {
            np.dtype(np.float64)
        }
