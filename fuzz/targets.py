"""What the fuzzer feeds, shared with the regression test that replays its crashes."""

from __future__ import annotations

from pathlib import Path

from lstm_cli.io import paramfiles, reader, safeload

MAX_BYTES = 1 << 20


def dispatch(data: bytes, tmp: Path) -> None:
    """The first byte picks the loader, the rest is its input. May raise only InputError."""
    if not data:
        return
    kind, body = data[0] % 4, data[1:]
    if kind == 0:  # an input array: .npy or JSON bytes (stdin, --x)
        reader.array_from_bytes(body, "x_t", "stdin", max_bytes=MAX_BYTES)
    elif kind == 1:  # the .npy header and data reader alone
        safeload.read_npy_bytes(body, "x_t", "stdin", max_bytes=MAX_BYTES)
    elif kind == 2:  # a params .npz in any layout
        (tmp / "p.npz").write_bytes(body)
        paramfiles.load_param_set(tmp / "p.npz", max_bytes=MAX_BYTES)
    else:  # a params .safetensors in any layout
        (tmp / "p.safetensors").write_bytes(body)
        paramfiles.load_param_set(tmp / "p.safetensors", max_bytes=MAX_BYTES)
