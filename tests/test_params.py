"""The parameter set: init schemes, validation, framework layouts."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_cli import from_keras, from_pytorch, init_params, to_keras, to_pytorch
from lstm_cli.errors import InputError
from lstm_cli.params import LSTMParams
from tests.conftest import notebook_arrays, random_cell


def test_notebook_scheme_seed_42_is_the_notebook():
    ps = init_params(10, 4, 42, "notebook")
    expected = notebook_arrays()
    for name, arr in {**ps.params.arrays(), **ps.example.arrays()}.items():
        np.testing.assert_array_equal(arr, expected[name], err_msg=name)
    assert ps.meta == {
        "format_version": 1,
        "scheme": "notebook",
        "seed": 42,
        "n_features": 10,
        "n_hidden": 4,
    }


@pytest.mark.parametrize("scheme", ["notebook", "pytorch", "keras"])
def test_schemes_are_deterministic_and_shaped(scheme):
    a, b = init_params(3, 5, 9, scheme), init_params(3, 5, 9, scheme)
    for name, arr in a.params.arrays().items():
        np.testing.assert_array_equal(arr, b.params.arrays()[name])
        assert arr.shape == ((5, 8) if name.startswith("W") else (5,))
    assert a.params.n_features == 3 and a.params.n_hidden == 5
    c = init_params(3, 5, 10, scheme)
    assert not np.array_equal(a.params.Wf, c.params.Wf)


def test_pytorch_scheme_bounds():
    H = 16
    p = init_params(8, H, 0, "pytorch").params
    k = 1 / np.sqrt(H)
    for name in ("Wf", "Wi", "Wo", "Wc"):
        assert np.all(np.abs(getattr(p, name)) <= k)
    # the native bias is bias_ih + bias_hh: each within k, so the sum within 2k, and wider than k
    biases = np.concatenate([p.bf, p.bi, p.bo, p.bc])
    assert np.all(np.abs(biases) <= 2 * k) and np.max(np.abs(biases)) > k / 2


def test_keras_scheme_glorot_orthogonal_unit_forget_bias():
    F, H = 6, 3
    p = init_params(F, H, 1, "keras").params
    k = to_keras(p)
    limit = np.sqrt(6 / (F + 4 * H))
    assert np.all(np.abs(k["kernel"]) <= limit)
    rk = k["recurrent_kernel"]  # (H, 4H) with orthonormal rows
    np.testing.assert_allclose(rk @ rk.T, np.eye(H), atol=1e-12)
    np.testing.assert_array_equal(p.bf, np.ones(H))
    for name in ("bi", "bo", "bc"):
        np.testing.assert_array_equal(getattr(p, name), np.zeros(H))


def test_pytorch_layout_round_trip_and_gate_order():
    rng = np.random.default_rng(3)
    F, H = 4, 3
    p = LSTMParams.from_mapping(random_cell(rng, F, H))
    t = to_pytorch(p)
    assert t["weight_ih"].shape == (4 * H, F) and t["weight_hh"].shape == (4 * H, H)
    # PyTorch's blocks are i, f, g, o; rows H:2H are the forget gate's input weights
    np.testing.assert_array_equal(t["weight_ih"][H : 2 * H], p.Wf[:, H:])
    np.testing.assert_array_equal(t["weight_hh"][2 * H : 3 * H], p.Wc[:, :H])
    np.testing.assert_array_equal(t["bias_ih"][3 * H :], p.bo)
    back = from_pytorch(**t)
    for name, arr in p.arrays().items():
        np.testing.assert_array_equal(getattr(back, name), arr, err_msg=name)


def test_pytorch_biases_are_summed_on_import():
    rng = np.random.default_rng(4)
    H, F = 2, 3
    w_ih, w_hh = rng.standard_normal((4 * H, F)), rng.standard_normal((4 * H, H))
    b_ih, b_hh = rng.standard_normal(4 * H), rng.standard_normal(4 * H)
    p = from_pytorch(w_ih, w_hh, b_ih, b_hh)
    np.testing.assert_allclose(p.bi, b_ih[:H] + b_hh[:H])
    np.testing.assert_allclose(p.bc, b_ih[2 * H : 3 * H] + b_hh[2 * H : 3 * H])


def test_keras_layout_round_trip():
    rng = np.random.default_rng(5)
    p = LSTMParams.from_mapping(random_cell(rng, 5, 2))
    back = from_keras(**to_keras(p))
    for name, arr in p.arrays().items():
        np.testing.assert_array_equal(getattr(back, name), arr, err_msg=name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Wi": np.zeros((4, 13))}, "Wi has shape (4, 13), expected (4, 14)"),
        ({"bo": np.zeros(5)}, "bo has shape (5,), expected (4,)"),
        ({"Wf": np.zeros((4, 4))}, "Wf has shape (4, 4), expected a 2-D (H, H + F)"),
        ({"Wf": np.zeros(14)}, "Wf has shape (14,)"),
    ],
)
def test_from_mapping_names_the_bad_array(change, message):
    arrays = {**notebook_arrays(), **change}
    with pytest.raises(InputError) as e:
        LSTMParams.from_mapping(arrays, "p.npz")
    assert str(e.value).startswith("p.npz: ") and message in str(e.value)


def test_from_mapping_lists_missing_arrays():
    arrays = notebook_arrays()
    del arrays["bc"], arrays["Wo"]
    with pytest.raises(InputError, match="missing array"):
        LSTMParams.from_mapping(arrays, "p.npz")


@pytest.mark.parametrize(("F", "H"), [(0, 4), (10, 0)])
def test_init_refuses_empty_cells(F, H):
    with pytest.raises(InputError):
        init_params(F, H, 0)
