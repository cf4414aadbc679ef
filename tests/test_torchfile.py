"""PyTorch checkpoints read without torch and without running pickled code: files written by
torch.save (committed in tests/data, made by tests/data/make_torch_fixtures.py) and hostile
pickles, refused by name with nothing run."""

from __future__ import annotations

import builtins
import collections
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lstm_cli.cli import app
from lstm_cli.io import paramfiles
from lstm_cli.io.torchfile import LEGACY_MAGIC
from lstm_cli.layouts import from_pytorch

DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("torch_cell.pt", None),
        ("torch_cell_legacy.pt", None),
        ("torch_checkpoint.pth", "model.rnn."),
    ],
)
def test_torch_save_files_read_exactly(name, prefix):
    ps = paramfiles.load_param_set(DATA / name, key_prefix=prefix)
    want = dict(np.load(DATA / "torch_cell.npz"))
    assert all(v.dtype == np.float32 for v in want.values())
    ref = from_pytorch(want["weight_ih"], want["weight_hh"], want["bias_ih"], want["bias_hh"])
    for k, v in ref.arrays().items():
        np.testing.assert_array_equal(getattr(ps.params, k), v)
    assert ps.bias_halves is not None  # bias_hh kept: summed in the compute dtype
    assert ps.meta["source_layout"] == "pytorch"


def test_step_on_a_pt_equals_step_on_its_arrays(runner, in_tmp):
    np.save("x.npy", np.array([0.5, -1.0, 2.0]))
    outs = []
    for f in ("torch_cell.pt", "torch_cell_legacy.pt", "torch_cell.npz"):
        r = runner.invoke(app, ["step", "--params", str(DATA / f), "--x", "x.npy", "--json"])
        assert r.exit_code == 0, r.output
        outs.append(json.loads(r.stdout)["h_next"])
    assert outs[0] == outs[1] == outs[2]


def test_a_pt_through_a_pipe_is_read_from_its_bytes():
    for name in ("torch_cell.pt", "torch_cell_legacy.pt"):
        data = (DATA / name).read_bytes()
        ps = paramfiles._load_buffered(data, "stdin", 1 << 20, paramfiles._Pick(None, None, None))
        assert ps.meta["source_layout"] == "pytorch"


def test_convert_a_pt_to_safetensors_keeps_both_biases(runner, in_tmp):
    from safetensors.numpy import load_file

    r = runner.invoke(
        app, ["convert", str(DATA / "torch_cell.pt"), "o.safetensors", "--to", "pytorch"]
    )
    assert r.exit_code == 0, r.output
    out, want = load_file("o.safetensors"), dict(np.load(DATA / "torch_cell.npz"))
    for k, v in want.items():
        np.testing.assert_array_equal(out[k], v)


# --------------------------------------------------------------------------- hostile pickles


class Reduce:
    """Pickles as ``func(*args)``: what a malicious checkpoint runs on load."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _payloads(marker: Path) -> dict[str, bytes]:
    m = str(marker)
    getattr_trick = (
        b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(V" + b"os" + b"\ntRVmkdir\ntR(V"
        + m.encode() + b"\ntR."
    )  # fmt: skip
    return {
        "os.system": pickle.dumps(Reduce(os.system, f"mkdir {m}")),
        "eval": pickle.dumps(Reduce(builtins.eval, f"__import__('os').mkdir({m!r})")),
        "getattr": getattr_trick,
        "nested": pickle.dumps(collections.OrderedDict(w=Reduce(os.mkdir, m))),
        "rebuild": pickle.dumps(
            collections.OrderedDict(w=Reduce(collections.OrderedDict, [("x", Reduce(os.mkdir, m))]))
        ),
    }


def _zip_pt(path: Path, pkl: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")


def _legacy_pt(path: Path, pkl: bytes) -> None:
    head = pickle.dumps(LEGACY_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)
    path.write_bytes(head + pickle.dumps({"little_endian": True}, protocol=2) + pkl)


@pytest.mark.parametrize("kind", ["os.system", "eval", "getattr", "nested", "rebuild"])
@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_malicious_pickles_are_refused_and_nothing_runs(runner, in_tmp, kind, fmt):
    marker = in_tmp / "pwned"
    pkl = _payloads(marker)[kind]
    (_zip_pt if fmt == "zip" else _legacy_pt)(in_tmp / "evil.pt", pkl)
    for name in ("evil.pt",):
        r = runner.invoke(app, ["step", "--params", name, "--x", "[1, 2, 3]"])
        assert r.exit_code == 2, r.output
        assert "refused to unpickle" in r.stderr and "nothing in the file was run" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert not marker.exists()


def test_a_whole_model_is_refused_by_name(runner, in_tmp):
    pkl = b"\x80\x02ctorch.nn.modules.rnn\nLSTM\n)\x81."
    _zip_pt(in_tmp / "model.pt", pkl)
    r = runner.invoke(app, ["step", "--params", "model.pt"])
    assert r.exit_code == 2
    assert "refused to unpickle torch.nn.modules.rnn.LSTM (a whole model object" in r.stderr


def test_bad_torch_files(runner, in_tmp):
    Path("raw.pt").write_bytes(pickle.dumps({"a": 1}))
    Path("list.pt").write_bytes(b"")
    _zip_pt(in_tmp / "list2.pt", pickle.dumps([1, 2]))
    for name, message in (
        ("raw.pt", "not a readable zip archive"),
        ("list2.pt", "holds a list, not a state dict"),
    ):
        r = runner.invoke(app, ["step", "--params", name])
        assert r.exit_code == 2, r.output
        assert message in r.stderr
