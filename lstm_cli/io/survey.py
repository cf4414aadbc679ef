"""Every LSTM in a params file, described without computing anything: what ``inspect`` shows.

Each LSTM is named as the options that pick it name it (its key prefix, or an ONNX node's
name), with its framework layout, its cells (layers, directions), F (layer 0's input features),
H, the dtype of its weights, its ONNX variants and, for a PyTorch ``nn.LSTM``, ``proj_size``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lstm_cli.core import Array
from lstm_cli.errors import InputError
from lstm_cli.layouts import Candidate, find_candidates, refuse_gru
from lstm_cli.params import Variant

from .cells import shape_of, torch_cells
from .kerasfile import KerasLstm, describe_keras
from .paramfiles import read_lstm_file

NATIVE_META = ("native", "onnx")  # the layouts whose files store variant switches in meta


@dataclass(frozen=True)
class LstmInfo:
    """One LSTM of a file (see the module's docstring)."""

    name: str
    layout: str
    framework: str
    layers: int
    directions: int
    n_features: int
    n_hidden: int
    dtype: str
    variants: tuple[str, ...]
    proj_size: int | None
    cells: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["variants"] = list(self.variants)
        out["cells"] = list(self.cells)
        return out


class _Survey:
    layout = None

    def arrays(
        self,
        keys: set[str],
        get: Callable[[str], Array],
        get_meta: Callable[[str], dict[str, Any]],
        source: str,
    ) -> list[LstmInfo]:
        found = []
        for c in find_candidates(keys - {"meta"}):
            meta_key = c.key("meta") if c.key("meta") in keys else "meta"
            meta = get_meta(meta_key) if meta_key in keys and c.layout in NATIVE_META else {}
            switches = Variant.switches_from_meta(meta, source)
            found.append(_describe(c, keys, get, switches, source))
        return found

    def keras(self, lstms: list[KerasLstm], source: str) -> list[LstmInfo]:
        return [LstmInfo(**info) for info in describe_keras(lstms)]

    def onnx(self, data: bytes, source: str, folder: Path | None, max_bytes: int) -> list[LstmInfo]:
        from .onnxfile import describe_onnx_model

        return [LstmInfo(**info) for info in describe_onnx_model(data, source, folder, max_bytes)]


def survey_file(path: Path, max_bytes: int) -> list[LstmInfo]:
    """Every LSTM in ``path`` (any kind of params file), in the order found; InputError when
    the file cannot be read. An empty list: the file holds no LSTM."""
    return read_lstm_file(path, max_bytes, _Survey())


def _describe(
    c: Candidate,
    keys: set[str],
    get: Callable[[str], Array],
    switches: tuple[float | None, bool],
    source: str,
) -> LstmInfo:
    cells = torch_cells(c, keys)
    layers, directions = shape_of(cells)
    w_in, w_rec = (get(c.key(n)) for n in c.spec.required[:2])
    proj = None
    if c.layout != "native":
        refuse_gru(w_rec, c.key(c.spec.required[1]), c.layout == "keras", source)
    if c.layout == "native":  # Wf (H, H + F)
        H, F = w_in.shape[0], w_in.shape[1] - w_in.shape[0]
    elif c.layout == "pytorch":  # weight_ih (4H, F)
        H, F = w_in.shape[0] // 4, w_in.shape[1]
        hr = c.key(c.spec.required[0].replace("weight_ih", "weight_hr"))
        proj = int(get(hr).shape[0]) if hr in keys else None
    elif c.layout == "keras":  # kernel (F, 4H)
        H, F = w_in.shape[1] // 4, w_in.shape[0]
    else:  # onnx W (D, 4H, F)
        if w_in.ndim != 3:
            raise InputError(f"{c.key('W')} has shape {w_in.shape}, expected (D, 4H, F)")
        H, F, directions = w_in.shape[1] // 4, w_in.shape[2], w_in.shape[0]
    variants = []
    if any(c.key(n) in keys for n in ("Pi", "P")):
        variants.append("peepholes")
    if switches[0] is not None:
        variants.append(f"clip {switches[0]}")
    if switches[1]:
        variants.append("input_forget")
    return LstmInfo(
        name=c.prefix,
        layout=c.layout,
        framework=c.spec.label,
        layers=layers,
        directions=directions,
        n_features=int(F),
        n_hidden=int(H),
        dtype=str(w_rec.dtype),
        variants=tuple(variants),
        proj_size=proj,
        cells=tuple(cell.name for cell in cells),
    )
