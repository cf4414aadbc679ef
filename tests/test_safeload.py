"""Hostile .npy/.npz files: absurd headers and zip bombs are refused before allocating."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_cli.cli import app
from lstm_cli.errors import InputError
from lstm_cli.io.paramfiles import load_param_set
from lstm_cli.io.safeload import NpzReader, read_npy_bytes
from tests.conftest import PARAMS_DIR, notebook_arrays

runner = CliRunner()


def npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def absurd_header(shape=(10**12,), descr="<f8") -> bytes:
    """A valid .npy header declaring a huge array, followed by 16 bytes of data."""
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + b"\0" * 16


def test_absurd_shape_is_refused_before_allocating():
    with pytest.raises(InputError, match=r"declares shape \(1000000000000,\) float64"):
        read_npy_bytes(absurd_header(), "x_t", "x.npy")


def test_header_declaring_more_than_the_file_holds():
    with pytest.raises(InputError, match="truncated: its header declares 800 bytes"):
        read_npy_bytes(absurd_header((100,)), "x_t", "x.npy")


def test_cap_can_be_raised():
    data = npy_bytes(np.zeros(1000))
    with pytest.raises(InputError, match="over the 4000 bytes limit"):
        read_npy_bytes(data, "x_t", "x.npy", max_bytes=4000)
    assert read_npy_bytes(data, "x_t", "x.npy", max_bytes=8000).shape == (1000,)


def test_fortran_order_and_big_endian_are_read_right():
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(read_npy_bytes(npy_bytes(np.asfortranarray(a)), "a", "s"), a)
    np.testing.assert_array_equal(read_npy_bytes(npy_bytes(a.astype(">f8")), "a", "s"), a)


@pytest.mark.parametrize(
    "data",
    [
        b"\x93NUMPY",
        b"\x93NUMPY\x09\x00",
        b"\x93NUMPY\x01\x00\xff\xff{'descr':",
        b"\x93NUMPY\x01\x00\x10\x00{'a': 1}       \n",
    ],
)
def test_corrupt_headers(data):
    with pytest.raises(InputError, match="x.npy: x_t: corrupt .npy header"):
        read_npy_bytes(data, "x_t", "x.npy")


def make_npz(path, members: dict[str, bytes], compress: bool = True) -> None:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)


def test_zip_bomb_is_refused_without_inflating(tmp_path):
    a = notebook_arrays()
    members = {k: npy_bytes(v) for k, v in a.items()}
    # 300 MiB of zeros compress to about 300 KiB: over the 256 MiB default, never inflated
    members["Wf"] = npy_bytes(np.zeros((300 << 20) // 8))
    path = tmp_path / "bomb.npz"
    make_npz(path, members)
    assert path.stat().st_size < 2 << 20
    with pytest.raises(InputError, match=r"Wf inflates to 300 MiB, over the 256 MiB limit"):
        load_param_set(path)
    result = runner.invoke(app, ["step", "--params", str(path)])
    assert result.exit_code == 2 and "--max-input-mb" in result.stderr


def test_member_whose_header_lies_about_its_size(tmp_path):
    a = notebook_arrays()
    members = {k: npy_bytes(v) for k, v in a.items()}
    members["bi"] = absurd_header((4, 10**6))  # declares 32 MB, holds 16 bytes
    make_npz(tmp_path / "lie.npz", members)
    with pytest.raises(InputError, match="bi is truncated"):
        load_param_set(tmp_path / "lie.npz")


def test_crc_mismatch_is_corrupt(tmp_path):
    raw = bytearray((PARAMS_DIR / "seed42.npz").read_bytes())
    i = raw.index(b"\x93NUMPY") + 140  # inside the first member's data (stored, not deflated)
    raw[i] ^= 0xFF
    (tmp_path / "crc.npz").write_bytes(bytes(raw))
    with pytest.raises(InputError, match="is corrupt"):
        load_param_set(tmp_path / "crc.npz")


def test_reader_lists_members(tmp_path):
    with NpzReader(PARAMS_DIR / "seed42.npz") as npz:
        assert {"Wf", "bc", "x_t", "meta"} <= set(npz.names)
        assert npz.read("Wf").shape == (4, 14)


def test_max_input_mb_limits_stdin():
    big = "[" + ",".join(["0.5"] * 600_000) + "]"  # about 2.4 MB of JSON
    result = runner.invoke(app, ["step", "--max-input-mb", "1", "--x", "-"], input=big)
    assert result.exit_code == 2
    assert (
        "stdin: more than 1 MiB, over the input limit; raise it with --max-input-mb"
        in result.stderr
    )
