"""What the fuzzer feeds, shared with the regression test that replays its crashes."""

from __future__ import annotations

from pathlib import Path

from lstm_cli.io import paramfiles, reader, safeload
from lstm_cli.io.survey import load_wired_stack, survey_file

MAX_BYTES = 1 << 20
PT_KINDS = (4, 5, 6)  # the kind bytes that feed PyTorch checkpoint bytes
KERAS_KIND = 7  # Keras .keras / .weights.h5 bytes
STACK_KIND = 8  # .keras bytes read as run --stack reads them (the model's chain of LSTM layers)
KINDS = 9


def dispatch(data: bytes, tmp: Path) -> None:
    """The first byte picks the loader (modulo KINDS), the rest is its input. May raise only
    InputError."""
    if not data:
        return
    kind, body = data[0] % KINDS, data[1:]
    if kind == 0:  # an input array: .npy or JSON bytes (stdin, --x)
        reader.array_from_bytes(body, "x_t", "stdin", max_bytes=MAX_BYTES)
    elif kind == 1:  # the .npy header and data reader alone
        safeload.read_npy_bytes(body, "x_t", "stdin", max_bytes=MAX_BYTES)
    elif kind == 2:  # a params .npz in any layout
        (tmp / "p.npz").write_bytes(body)
        paramfiles.load_param_set(tmp / "p.npz", max_bytes=MAX_BYTES)
    elif kind == 3:  # a params .safetensors in any layout
        (tmp / "p.safetensors").write_bytes(body)
        paramfiles.load_param_set(tmp / "p.safetensors", max_bytes=MAX_BYTES)
    else:
        _checkpoint(kind, body, tmp)


def _checkpoint(kind: int, body: bytes, tmp: Path) -> None:
    """PyTorch checkpoint bytes (zip or legacy format): loaded by name (4), surveyed as
    ``inspect`` does (5), or read as from a pipe, without a name (6); Keras file bytes (7),
    surveyed; ``.keras`` bytes (8) read as ``run --stack`` reads them, wiring and cells."""
    if kind == 4:
        (tmp / "p.pt").write_bytes(body)
        paramfiles.load_param_set(tmp / "p.pt", max_bytes=MAX_BYTES)
    elif kind == 5:
        (tmp / "p.pt").write_bytes(body)
        survey_file(tmp / "p.pt", MAX_BYTES)
    elif kind == KERAS_KIND:
        (tmp / "p.weights.h5").write_bytes(body)
        survey_file(tmp / "p.weights.h5", MAX_BYTES)
    elif kind == STACK_KIND:
        (tmp / "p.keras").write_bytes(body)
        load_wired_stack(tmp / "p.keras", MAX_BYTES)
    else:
        pick = paramfiles._Pick(None, None, None)
        paramfiles._load_buffered(body, "stdin", MAX_BYTES, pick)
