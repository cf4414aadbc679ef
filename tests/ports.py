"""Users' LSTM cells for `lstm-cell check`: one correct, and the classic mistakes, each written
the way a person porting the seed would write it (plain NumPy, the seed's signature unless
the name says otherwise). Shared by nothing in lstm_cli."""

from __future__ import annotations

import numpy as np


def _stable_sigmoid(z):
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def correct(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    u = np.concatenate((h_prev, x_t), axis=-1)
    i = _stable_sigmoid(u @ Wi.T + bi)
    f = _stable_sigmoid(u @ Wf.T + bf)
    o = _stable_sigmoid(u @ Wo.T + bo)
    g = np.tanh(u @ Wc.T + bc)
    c = f * c_prev + i * g
    return o * np.tanh(c), c


def swapped_gates(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """Input and forget gate swapped (the weights passed to the wrong gate)."""
    return correct(x_t, h_prev, c_prev, Wi, Wf, Wo, Wc, bi, bf, bo, bc)


def concat_x_first(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """u = [x, h] (Keras/PyTorch style reading of the columns) instead of the seed's [h, x]."""
    u = np.concatenate((x_t, h_prev), axis=-1)
    i = _stable_sigmoid(u @ Wi.T + bi)
    f = _stable_sigmoid(u @ Wf.T + bf)
    o = _stable_sigmoid(u @ Wo.T + bo)
    g = np.tanh(u @ Wc.T + bc)
    c = f * c_prev + i * g
    return o * np.tanh(c), c


def mirror_concat(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """The mirror image of concat_x_first: W's columns rearranged for u = [x, h] (its first
    H columns moved to the end), then u = [h, x] built as the seed does."""
    H = h_prev.shape[-1]
    Ws = [np.concatenate((W[:, H:], W[:, :H]), axis=1) for W in (Wf, Wi, Wo, Wc)]
    return correct(x_t, h_prev, c_prev, *Ws, bf, bi, bo, bc)


def transposed_read(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """Each W's (H, H + F) buffer read as (H + F, H) and transposed."""
    H = h_prev.shape[-1]
    Ws = [np.ascontiguousarray(W).reshape(W.shape[1], H).T for W in (Wf, Wi, Wo, Wc)]
    return correct(x_t, h_prev, c_prev, *Ws, bf, bi, bo, bc)


def batch_only(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """CS231n-style: x is (N, D), prev_h is (N, H); a 1-D input raises IndexError."""
    N, _ = x_t.shape
    h = np.broadcast_to(h_prev, (N, h_prev.shape[-1]))
    c = np.broadcast_to(c_prev, (N, c_prev.shape[-1]))
    return correct(x_t, h, c, Wf, Wi, Wo, Wc, bf, bi, bo, bc)


def naive_sigmoid_float32(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """Everything in float32 with the textbook sigmoid exp(z) / (1 + exp(z))."""

    def sig(z):
        e = np.exp(z.astype(np.float32))
        return e / (np.float32(1) + e)

    args = [np.asarray(a, dtype=np.float32) for a in (x_t, h_prev, c_prev)]
    x_t, h_prev, c_prev = args
    u = np.concatenate((h_prev, x_t), axis=-1)
    i = sig(u @ Wi.T + bi)
    f = sig(u @ Wf.T + bf)
    o = sig(u @ Wo.T + bo)
    g = np.tanh(u @ Wc.T + bc)
    c = f * c_prev + i * g
    return o * np.tanh(c), c


def missing_forget_bias(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    return correct(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, np.zeros_like(bf), bi, bo, bc)


def returns_c_h(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    h, c = correct(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)
    return c, h


def no_tanh_on_c(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    _h, c = correct(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)
    o = _stable_sigmoid(np.concatenate((h_prev, x_t), axis=-1) @ Wo.T + bo)
    return o * c, c


def in_float32(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    args = (x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)
    return correct(*(np.asarray(a, dtype=np.float32) for a in args))


def off_by_a_little(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """A bug no known mistake describes: the output gate's pre-activation is scaled."""
    u = np.concatenate((h_prev, x_t), axis=-1)
    i = _stable_sigmoid(u @ Wi.T + bi)
    f = _stable_sigmoid(u @ Wf.T + bf)
    o = _stable_sigmoid(1.5 * (u @ Wo.T + bo))
    g = np.tanh(u @ Wc.T + bc)
    c = f * c_prev + i * g
    return o * np.tanh(c), c


def unbatched_only(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """The seed's own code: concatenate along axis 0, which breaks on a batch."""
    u = np.concatenate((h_prev, x_t), axis=0)
    i = _stable_sigmoid(Wi @ u + bi)
    f = _stable_sigmoid(Wf @ u + bf)
    o = _stable_sigmoid(Wo @ u + bo)
    g = np.tanh(Wc @ u + bc)
    c = f * c_prev + i * g
    return o * np.tanh(c), c


def returns_one_array(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    return correct(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)[0]


# --------------------------------------------------------------------------- PyTorch layout


def _torch_style(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, order):
    z = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh  # (B, 4H)
    blocks = dict(zip(order, np.split(z, 4, axis=-1), strict=True))
    i, f, o = (_stable_sigmoid(blocks[k]) for k in "ifo")
    g = np.tanh(blocks["g"])
    c_next = f * c + i * g
    return o * np.tanh(c_next), c_next


def pytorch_correct(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    return _torch_style(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, "ifgo")


def pytorch_ifog(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """Reads the blocks as i, f, o, g (the seed's gate order) instead of PyTorch's i, f, g, o."""
    return _torch_style(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, "ifog")


def pytorch_one_bias(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    return _torch_style(x, h, c, weight_ih, weight_hh, bias_ih, 0 * bias_hh, "ifgo")


def keras_correct(x, h, c, kernel, recurrent_kernel, bias):
    z = x @ kernel + h @ recurrent_kernel + bias
    i, f, g, o = np.split(z, 4, axis=-1)
    c_next = _stable_sigmoid(f) * c + _stable_sigmoid(i) * np.tanh(g)
    return _stable_sigmoid(o) * np.tanh(c_next), c_next


# --------------------------------------------------------------------------- ONNX layout


def _onnx_style(x, h, c, W, R, B, order):
    H = R.shape[-1]
    z = x @ W[0].T + h @ R[0].T + B[0, : 4 * H] + B[0, 4 * H :]  # (B, 4H): Wb + Rb
    blocks = dict(zip(order, np.split(z, 4, axis=-1), strict=True))
    i, f, o = (_stable_sigmoid(blocks[k]) for k in "ifo")
    c_next = f * c + i * np.tanh(blocks["c"])
    return o * np.tanh(c_next), c_next


def onnx_correct(x, h, c, W, R, B):
    """ONNX's LSTM for one direction: gate blocks i, o, f, c; bias Wb + Rb."""
    return _onnx_style(x, h, c, W, R, B, "iofc")


def onnx_ifoc(x, h, c, W, R, B):
    """Reads ONNX's blocks in the seed's i, f, o, c order instead of ONNX's i, o, f, c."""
    return _onnx_style(x, h, c, W, R, B, "ifoc")


def onnx_wb_only(x, h, c, W, R, B):
    """Adds only the first half of B (Wb)."""
    H = R.shape[-1]
    return _onnx_style(x, h, c, W, R, np.concatenate((B[:, : 4 * H], 0 * B[:, 4 * H :]), 1),
                       "iofc")  # fmt: skip


def raises(x_t, *args):
    raise ValueError("shapes not aligned: my port is unfinished")


NOT_A_FUNCTION = 3


# --------------------------------------------------------------------------- the seed itself


def sigmoid(x):  # the notebook's, verbatim
    return 1 / (1 + np.exp(-x))


def lstm_step(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """The seed notebook's function, verbatim (debug print and unbatched concat included)."""
    unioned = np.concatenate((h_prev, x_t), axis=0)
    print(
        f"After and before Concatenation shapes:\n\nConcatenated{unioned.shape}\n"
        f"prev_state:{h_prev.shape}\nInput x:{x_t.shape}\n\n"
    )
    i_t = sigmoid(np.dot(Wi, unioned) + bi)
    f_t = sigmoid(np.dot(Wf, unioned) + bf)
    o_t = sigmoid(np.dot(Wo, unioned) + bo)
    c_t_candidate = np.tanh(np.dot(Wc, unioned) + bc)
    c_t = f_t * c_prev + i_t * c_t_candidate
    h_t = o_t * np.tanh(c_t)
    return h_t, c_t


# --------------------------------------------------------------------------- a float32 engine


def float32_engine(case: dict):
    """An engine like onnxruntime: ONNX's variants done right (peepholes, clip,
    input_forget, from a golden vector's JSON: its params, inputs and settings), but every
    array and every operation in float32."""
    f32 = np.float32
    p = {k: np.asarray(v, dtype=f32) for k, v in case["params"].items()}
    x, h, c = (np.asarray(case["inputs"][k], dtype=f32) for k in ("x_t", "h_prev", "c_prev"))
    st = case.get("settings", {})
    clip, peep = st.get("clip"), st.get("peepholes", False)

    def cl(z):
        return z if clip is None else np.clip(z, f32(-clip), f32(clip))

    def peek(name, state):
        return p[name] * state if peep else f32(0)

    u = np.concatenate((h, x), axis=-1)
    i = _stable_sigmoid(cl(u @ p["Wi"].T + p["bi"] + peek("Pi", c)))
    if st.get("input_forget"):
        f = f32(1) - i
    else:
        f = _stable_sigmoid(cl(u @ p["Wf"].T + p["bf"] + peek("Pf", c)))
    g = np.tanh(cl(u @ p["Wc"].T + p["bc"]))
    c_next = f * c + i * g
    o = _stable_sigmoid(cl(u @ p["Wo"].T + p["bo"] + peek("Po", c_next)))
    return o * np.tanh(c_next), c_next
