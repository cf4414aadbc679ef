"""What the fuzzer feeds, shared with the regression test that replays its crashes."""

from __future__ import annotations

from pathlib import Path

from lstm_cli import fileio, safeload

MAX_BYTES = 1 << 20


def dispatch(data: bytes, tmp: Path) -> None:
    """The first byte picks the loader, the rest is its input. May raise only InputError."""
    if not data:
        return
    kind, body = data[0] % 3, data[1:]
    if kind == 0:
        fileio.array_from_bytes(body, "x_t", "stdin", max_bytes=MAX_BYTES)
    elif kind == 1:
        safeload.read_npy_bytes(body, "x_t", "stdin", max_bytes=MAX_BYTES)
    else:
        (tmp / "p.npz").write_bytes(body)
        fileio.load_param_set(tmp / "p.npz", max_bytes=MAX_BYTES)
