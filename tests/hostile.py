"""Builds the folder of hostile files that docs/failures.md refers to as {bad}."""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from lstm_cli import init_params, to_keras, to_pytorch
from lstm_cli.io.paramfiles import save_param_set
from lstm_cli.porting.vector_files import write_vectors
from lstm_cli.porting.vectors import build_cases
from tests.conftest import PARAMS_DIR, notebook_arrays


class Payload:
    """Unpickling this would create {bad}/pwned: proof that nothing is ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def npy_bytes(arr, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def header_only(shape, descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + b"\0" * 16


def write_npz(path: Path, members: dict[str, bytes], deflate: bool = False) -> None:
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)


def cell_members(**changes) -> dict[str, bytes]:
    arrays = notebook_arrays()
    members = {k: npy_bytes(v) for k, v in arrays.items()}
    for k, v in changes.items():
        if v is None:
            del members[k]
        else:
            members[k] = v if isinstance(v, bytes) else npy_bytes(v, allow_pickle=True)
    return members


def build(bad: Path) -> None:
    a = notebook_arrays()
    bad.mkdir(parents=True, exist_ok=True)
    seed42 = (PARAMS_DIR / "seed42.npz").read_bytes()
    (bad / "empty.npz").write_bytes(b"")
    (bad / "text.npz").write_text("hello")
    (bad / "truncated.npz").write_bytes(seed42[: len(seed42) // 2])
    crc = bytearray(seed42)
    crc[crc.index(b"\x93NUMPY") + 140] ^= 0xFF
    (bad / "crc.npz").write_bytes(bytes(crc))
    (bad / "single.npz").write_bytes(npy_bytes(a["Wf"]))
    write_npz(bad / "bomb.npz", cell_members(Wf=npy_bytes(np.zeros((300 << 20) // 8))), True)
    write_npz(bad / "absurd.npz", cell_members(Wf=header_only((10**12,))))
    write_npz(bad / "pickled.npz", cell_members(Wf=np.array([Payload(bad / "pwned")])))
    write_npz(
        bad / "structured.npz", cell_members(bc=np.zeros(4, dtype=[("a", "f8"), ("b", "i4")]))
    )
    write_npz(bad / "complex.npz", cell_members(Wi=a["Wi"] + 1j))
    write_npz(bad / "bool.npz", cell_members(bf=a["bf"] > 0))
    write_npz(bad / "string.npz", cell_members(bo=np.array(["a", "b", "c", "d"])))
    write_npz(
        bad / "int.npz",
        cell_members(**{k: np.round(a[k] * 10).astype(np.int64) for k in ("Wf", "Wi", "Wo", "Wc")}),
    )
    nan = a["bi"].copy()
    nan[2] = np.nan
    write_npz(bad / "nan.npz", cell_members(bi=nan))
    inf = a["Wc"].copy()
    inf[1, 3] = -np.inf
    write_npz(bad / "inf.npz", cell_members(Wc=inf))
    write_npz(bad / "missing-key.npz", cell_members(bc=None, Wo=None))
    write_npz(bad / "disagree.npz", cell_members(Wi=a["Wi"][:, :13]))
    write_npz(bad / "bias-shape.npz", cell_members(bo=np.zeros(5)))
    write_npz(bad / "example-shape.npz", cell_members(x_t=np.zeros(3)))
    write_npz(bad / "bad-meta.npz", cell_members(meta=np.array([1, 2])))
    write_npz(bad / "extra-keys.npz", cell_members(notes=np.arange(3.0)))
    # single arrays for --x / --h / --c
    (bad / "x_t.npy").write_bytes(npy_bytes(a["x_t"]))
    (bad / "xs.npy").write_bytes(npy_bytes(np.stack([a["x_t"], a["x_t"]])))
    (bad / "empty.npy").write_bytes(b"")
    (bad / "truncated.npy").write_bytes(npy_bytes(a["x_t"])[:-20])
    (bad / "absurd.npy").write_bytes(header_only((10**6, 10**6)))
    (bad / "pickled.npy").write_bytes(npy_bytes(np.array([Payload(bad / "pwned")]), True))
    (bad / "complex.npy").write_bytes(npy_bytes(a["x_t"] + 1j))
    (bad / "bool.npy").write_bytes(npy_bytes(a["x_t"] > 0))
    (bad / "structured.npy").write_bytes(npy_bytes(np.zeros(10, dtype=[("a", "f8")])))
    (bad / "int.npy").write_bytes(npy_bytes(np.arange(10)))
    (bad / "nan.npy").write_bytes(npy_bytes(np.full(10, np.nan)))
    (bad / "x3.npy").write_bytes(npy_bytes(np.zeros(3)))
    (bad / "x3d.npy").write_bytes(npy_bytes(np.zeros((2, 3, 10))))
    (bad / "h5.npy").write_bytes(npy_bytes(np.zeros(5)))
    (bad / "xbatch3.npy").write_bytes(npy_bytes(np.zeros((3, 10))))
    (bad / "cbatch2.npy").write_bytes(npy_bytes(np.zeros((2, 4))))
    (bad / "hbatch3.npy").write_bytes(npy_bytes(np.zeros((3, 4))))
    (bad / "inputs.npz").write_bytes(seed42)
    (bad / "empty.json").write_text(" \n")
    (bad / "object-no-x.json").write_text(json.dumps({"h": [0, 0, 0, 0]}))
    (bad / "empty-object.json").write_text("{}")
    (bad / "existing.npz").write_bytes(b"precious")
    (bad / "sub").mkdir(exist_ok=True)
    # sequences, golden vectors and results files for run / check
    (bad / "xs-ragged.json").write_text('{"xs": [[1, 2], [3]]}')
    write_vectors(bad / "vectors", build_cases(3, seed=1), seed=1)
    (bad / "results-empty.json").write_text("{}")
    (bad / "results-malformed.json").write_text("[1")
    # framework layouts
    t = to_pytorch(init_params(10, 4, 1).params)
    members = {f"enc.{k}": v for k, v in t.items()} | {f"dec.{k}": v for k, v in t.items()}
    write_npz(bad / "two-lstms.npz", {k: npy_bytes(v) for k, v in members.items()})
    half = {k: npy_bytes(v) for k, v in t.items() if k != "bias_hh"}
    write_npz(bad / "torch-half-bias.npz", half)
    write_npz(
        bad / "torch-shape.npz",
        {**{k: npy_bytes(v) for k, v in t.items()}, "weight_hh": npy_bytes(np.zeros((16, 5)))},
    )
    k = to_keras(init_params(10, 4, 1).params)
    write_npz(
        bad / "keras-shape.npz",
        {**{n: npy_bytes(v) for n, v in k.items()}, "kernel": npy_bytes(np.zeros((10, 15)))},
    )
    gru = np.random.default_rng(3)  # GRU state dicts: 3 gate blocks of H = 4
    gru_torch = {"weight_ih": (12, 10), "weight_hh": (12, 4), "bias_ih": (12,), "bias_hh": (12,)}
    write_npz(
        bad / "gru-torch.npz",
        {f"{k}_l0": npy_bytes(gru.standard_normal(v)) for k, v in gru_torch.items()},
    )
    gru_keras = {"kernel": (10, 12), "recurrent_kernel": (4, 12), "bias": (2, 12)}
    write_npz(
        bad / "gru-keras.npz", {k: npy_bytes(gru.standard_normal(v)) for k, v in gru_keras.items()}
    )
    write_npz(bad / "nothing.npz", {"a": npy_bytes(np.zeros(3))})
    (bad / "garbage.safetensors").write_bytes(b"garbage")
    (bad / "garbage.onnx").write_bytes(b"garbage")
    save_param_set(bad / "clip.npz", init_params(10, 4, 1, clip=2.0))
    split = {k: v.astype(np.float32) for k, v in t.items()}
    split["bias_hh"] = np.full_like(split["bias_ih"], 2.0**-24) + split["bias_ih"] * 2**-20
    write_npz(bad / "torch-split-bias.npz", {k: npy_bytes(v) for k, v in split.items()})
    # PyTorch checkpoints: hostile pickles in torch.save's zip layout
    evil = pickle.dumps(collections.OrderedDict(w=Payload(bad / "pwned")))
    with zipfile.ZipFile(bad / "evil.pt", "w") as z:
        z.writestr("archive/data.pkl", evil)
    with zipfile.ZipFile(bad / "model.pt", "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02ctorch.nn.modules.rnn\nLSTM\n)\x81.")
    (bad / "raw-pickle.pt").write_bytes(pickle.dumps({"a": 1}))
    two_layer = {f"{k}_l{n}": v for k, v in t.items() for n in (0, 1)}
    write_npz(bad / "torch-2-layers.npz", {k: npy_bytes(v) for k, v in two_layer.items()})
