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
from lstm_cli.params import ParamSet, Variant
from lstm_cli.stack import LayerWiring

from .cells import DIRECTIONS, CellChoice, shape_of, torch_cells
from .kerasfile import KerasLstm, describe_keras
from .paramfiles import is_keras_zip, load_param_set, read_lstm_file
from .reader import ZIP_MAGIC, check_readable, is_regular_file, read_file

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


@dataclass(frozen=True)
class WiredStack:
    """The cells of each layer of one LSTM (forward, then reverse), and, for a Keras model,
    each layer's wiring, name, and the layers after the last LSTM layer (not run)."""

    sets: list[list[ParamSet]]
    wiring: list[LayerWiring] | None = None
    names: list[str] | None = None
    left_out: list[str] | None = None


def load_stack(
    path: Path, max_bytes: int, layout: str | None = None, key_prefix: str | None = None
) -> list[list[ParamSet]]:
    """Every cell of one LSTM of ``path``, per layer: :func:`load_wired_stack`'s cells."""
    return load_wired_stack(path, max_bytes, layout, key_prefix).sets


def load_wired_stack(
    path: Path, max_bytes: int, layout: str | None = None, key_prefix: str | None = None
) -> WiredStack:
    """Every cell of one LSTM of ``path``, per layer (forward, then reverse): what
    :func:`lstm_cli.stack.run_stack` runs, once each cell is cast. A PyTorch ``nn.LSTM``, an
    ONNX LSTM node (one layer), any one-cell LSTM, or the chain of LSTM layers of a Keras
    model (a ``.keras`` archive, wired by its config: :mod:`.kerasmodel`).

    The file is opened once per cell; a pipe (which can be read only once) is first read
    whole, under ``max_bytes``, into a temporary copy of the same name."""
    check_readable(path)
    if is_regular_file(path):
        return _load_wired(path, max_bytes, layout, key_prefix)
    import tempfile

    data = read_file(path, max_bytes)
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / (path.name or "params")
        if data.startswith(ZIP_MAGIC) and is_keras_zip(data):  # found by its name otherwise
            copy = copy.with_name(f"{copy.name}.keras")
        copy.write_bytes(data)
        try:
            return _load_wired(copy, max_bytes, layout, key_prefix)
        except InputError as e:
            raise type(e)(e.message.replace(str(copy), str(path)), e.hint) from None


def _load_wired(
    path: Path, max_bytes: int, layout: str | None, key_prefix: str | None
) -> WiredStack:
    found = [
        i
        for i in survey_file(path, max_bytes)
        if key_prefix in (None, i.name) and layout in (None, i.layout)
    ]
    if found and found[0].layout == "keras":
        from .kerasmodel import load_keras_stack

        if key_prefix is not None:
            raise InputError(
                f"{path}: a Keras stack is the model's whole chain of LSTM layers, not the "
                f"layer {key_prefix!r} alone"
            )
        k = load_keras_stack(path, max_bytes)
        return WiredStack(k.sets, k.wiring, k.names, k.left_out)
    if len(found) == 1:
        layers, directions = found[0].layers, found[0].directions
    else:  # none or several: the loader below says which
        layers, directions = 1, 1
    return WiredStack([
        [
            load_param_set(
                path, max_bytes, layout=layout, key_prefix=key_prefix,
                cell=CellChoice(k, DIRECTIONS[d]) if layers * directions > 1 else None,
            )
            for d in range(directions)
        ]
        for k in range(layers)
    ])  # fmt: skip
