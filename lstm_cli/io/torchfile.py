"""PyTorch checkpoints (``torch.save``: .pt, .pth, .bin) read without torch and without running
any pickled code.

A checkpoint's pickle is read by a restricted unpickler modelled on torch's own
``weights_only=True`` loader: it resolves only the globals a tensor state dict needs (the
tensor and parameter rebuild functions, storages by dtype, ``OrderedDict``, torch dtypes), each
mapped to a harmless stand-in defined here; any other global is refused by name before anything
is called. Tensors are views of storages, read only when an LSTM's array is asked for, each
under the size limit:

- the zip format (torch >= 1.6): ``NAME/data.pkl``, storages in ``NAME/data/<key>`` (raw,
  in the byte order of ``NAME/byteorder``, little-endian when absent);
- the legacy format (``_use_new_zipfile_serialization=False``): a magic number, a protocol
  version and system info (three small pickles), the state dict pickle, the list of storage
  keys, then each storage as an 8-byte element count and its raw bytes.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError

from .safeload import mib

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
LEGACY_HEAD = b"\x80\x02\x8a\x0a"  # pickle protocol 2, then the magic number as LONG1
TORCH_SUFFIXES = (".pt", ".pth", ".bin")

_STORAGE_DTYPES = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "b1",
    "UntypedStorage": "u1",
    "BFloat16Storage": "",  # NumPy has no bfloat16: refused when a tensor uses it
}
_DTYPE_NAMES = (
    "float64", "double", "float32", "float", "float16", "half", "bfloat16",
    "int64", "long", "int32", "int", "int16", "short", "int8", "uint8", "bool",
)  # fmt: skip
_REBUILDS = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter")


class _StandIn:
    """Base of the stand-ins: no pickled state may be applied to them (BUILD is refused)."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise pickle.UnpicklingError("object state in a tensor state dict")


@dataclass(frozen=True, eq=False)
class StorageType(_StandIn):
    """``torch.FloatStorage`` and the like: the element dtype of a storage (``""``: none)."""

    __slots__ = ("dtype", "name")
    name: str
    dtype: str


@dataclass(frozen=True, eq=False)
class TorchDType(_StandIn):
    """``torch.float32`` and the like, kept as a name."""

    __slots__ = ("name",)
    name: str


@dataclass(frozen=True, eq=False)
class Storage(_StandIn):
    """A storage: its key in the file, its element type and count."""

    __slots__ = ("key", "numel", "type")
    key: str
    type: StorageType
    numel: int


@dataclass(frozen=True, eq=False)
class LazyTensor(_StandIn):
    """A tensor as a view of a storage: element offset, shape and strides (in elements)."""

    __slots__ = ("offset", "shape", "storage", "stride")
    storage: Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _ints(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise pickle.UnpicklingError(f"a tensor's {what} is not a tuple of sizes")
    return value


def _rebuild_tensor(
    storage: object, offset: object, size: object, stride: object, *_: object
) -> LazyTensor:
    """Stand-in for ``torch._utils._rebuild_tensor(_v2)``: a :class:`LazyTensor`, checked."""
    if not isinstance(storage, Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    (off,) = _ints((offset,), "offset")
    shape, strides = _ints(size, "size"), _ints(stride, "stride")
    if len(shape) != len(strides):
        raise pickle.UnpicklingError("a tensor's size and stride differ in length")
    if 0 not in shape:
        last = off + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
        if last >= storage.numel:
            raise pickle.UnpicklingError("a tensor reaches past the end of its storage")
    return LazyTensor(storage, off, shape, strides)


def _rebuild_parameter(data: object, *_: object) -> object:
    """Stand-in for ``torch._utils._rebuild_parameter``: the tensor itself."""
    if not isinstance(data, LazyTensor):
        raise pickle.UnpicklingError("a parameter without a tensor")
    return data


class _OrderedDict(dict[Any, Any]):
    """Stand-in for ``collections.OrderedDict`` (a dict keeps order). The attributes torch
    pickles on a state dict (``_metadata``: module versions) are dropped, never set."""

    def __setstate__(self, state: object) -> None:
        pass


def _allowed(module: str, name: str) -> object | None:
    """The stand-in for global ``module.name``, or None when it is not allowed."""
    if module == "collections" and name == "OrderedDict":
        return _OrderedDict
    if module == "torch._utils" and name in _REBUILDS:
        return _rebuild_parameter if name == "_rebuild_parameter" else _rebuild_tensor
    if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
        return StorageType(name, _STORAGE_DTYPES[name])
    if module == "torch" and name in _DTYPE_NAMES:
        return TorchDType(name)
    return None


class _Unpickler(pickle.Unpickler):
    """Resolves only :func:`_allowed` globals; persistent ids are storages."""

    def __init__(self, f: IO[bytes], source: str, legacy: bool) -> None:
        super().__init__(f)
        self.source = source
        self.legacy = legacy
        self.storages: dict[str, Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        found = _allowed(module, name)
        if found is None:
            raise RefusedGlobal(module, name)
        return found

    def persistent_load(self, pid: Any) -> Storage:
        n = 6 if self.legacy else 5
        if not (isinstance(pid, tuple) and len(pid) == n and pid[0] == "storage"):
            raise pickle.UnpicklingError("a persistent id that is not a storage")
        _, stype, key, _location, numel = pid[:5]
        if not isinstance(stype, StorageType) or not isinstance(key, str):
            raise pickle.UnpicklingError("a storage of unknown type")
        (count,) = _ints((numel,), "storage size")
        if self.legacy and pid[5] is not None:
            raise pickle.UnpicklingError("a legacy storage view")
        if key in self.storages:
            return self.storages[key]
        storage = Storage(key, stype, count)
        self.storages[key] = storage
        return storage


class RefusedGlobal(pickle.UnpicklingError):
    """A global outside the allow-list: the name, never looked up."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


def _unpickle(f: IO[bytes], source: str, legacy: bool) -> tuple[Any, dict[str, Storage]]:
    unpickler = _Unpickler(f, source, legacy)
    try:
        return unpickler.load(), unpickler.storages
    except RefusedGlobal as e:
        why = (
            "a whole model object; save model.state_dict() instead"
            if (e.qualname.startswith("torch.nn."))
            else "not part of a tensor state dict"
        )
        raise InputError(
            f"{source}: refused to unpickle {e.qualname} ({why}); nothing in the file was run"
        ) from None
    except InputError:
        raise
    except Exception as e:
        raise InputError(
            f"{source}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})"
        ) from None


def is_torch_zip(names: list[str]) -> bool:
    """A zip written by ``torch.save``: one ``NAME/data.pkl`` at the top."""
    return any(n.count("/") == 1 and n.endswith("/data.pkl") for n in names)


def is_torch_legacy(head: bytes) -> bool:
    return head.startswith(LEGACY_HEAD)


class TorchCheckpoint:
    """The tensors of a checkpoint by flattened key (``model.lstm.weight_ih_l0`` for nested
    dicts); each read, under ``max_bytes``, by :meth:`read`."""

    def __init__(self, data: IO[bytes], source: str, max_bytes: int) -> None:
        self.source, self.max_bytes = source, max_bytes
        head = data.read(4)
        data.seek(0)
        self._zip: zipfile.ZipFile | None = None
        self._data, self._prefix, self._order = data, "", "<"
        self._offsets: dict[str, int] = {}
        if is_torch_legacy(head):
            obj, self._offsets = _read_legacy(data, source, max_bytes)
        else:
            self._zip, obj, self._prefix, self._order = _open_zip(data, source, max_bytes)
        self.tensors = dict(_flatten(obj, source))

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> TorchCheckpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, name: str) -> Array:
        """Tensor ``name`` as a NumPy array (a copy), its bytes read under the limit."""
        t = self.tensors[name]
        if not t.storage.type.dtype:
            raise InputError(
                f"{self.source}: {name} has a dtype NumPy cannot hold "
                f"({t.storage.type.name}); save it as float32 or float64"
            )
        dtype = np.dtype(self._order + t.storage.type.dtype)
        n_bytes = t.storage.numel * dtype.itemsize
        if n_bytes > self.max_bytes:
            raise InputError(
                f"{self.source}: {name} holds {mib(n_bytes)}, over the {mib(self.max_bytes)} limit",
                Hint.RAISE_INPUT_LIMIT,
            )
        raw = self._storage_bytes(t.storage, n_bytes, name)
        flat = np.frombuffer(raw, dtype=dtype, count=t.storage.numel)
        view = np.lib.stride_tricks.as_strided(
            flat[t.offset :],
            shape=t.shape,
            strides=tuple(s * dtype.itemsize for s in t.stride),
            writeable=False,
        )
        return np.array(view, dtype=dtype.newbyteorder("="))

    def _storage_bytes(self, storage: Storage, n_bytes: int, name: str) -> bytes:
        if self._zip is None:
            offset = self._offsets.get(storage.key)
            if offset is None:
                raise InputError(f"{self.source}: {name}'s storage is missing from the file")
            self._data.seek(offset)
            raw = self._data.read(n_bytes)
        else:
            raw = _zip_member(self._zip, f"{self._prefix}data/{storage.key}", self, n_bytes)
        if len(raw) < n_bytes:
            raise InputError(f"{self.source}: {name}'s storage is truncated")
        return raw[:n_bytes]


def _zip_member(z: zipfile.ZipFile, member: str, ckpt: TorchCheckpoint, n_bytes: int) -> bytes:
    """A member's bytes: at most ``n_bytes`` + 1 are inflated (a bomb stops there)."""
    try:
        with z.open(member) as f:
            return f.read(n_bytes + 1)
    except KeyError:
        raise InputError(f"{ckpt.source}: {member} is missing from the archive") from None
    except Exception as e:  # a damaged zip raises many kinds (BadZipFile, NotImplementedError)
        raise InputError(f"{ckpt.source}: {member} is corrupt ({e})") from None


def _open_zip(
    data: IO[bytes], source: str, max_bytes: int
) -> tuple[zipfile.ZipFile, Any, str, str]:
    """The archive, its unpickled ``data.pkl``, the members' prefix and the byte order."""
    try:
        z = zipfile.ZipFile(data)
    except Exception as e:  # a damaged zip raises many kinds
        raise InputError(f"{source}: not a readable zip archive ({e})") from None
    pkl = next((n for n in z.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")), None)
    if pkl is None:
        z.close()
        raise InputError(f"{source}: a zip without NAME/data.pkl, not a PyTorch checkpoint")
    prefix = pkl[: -len("data.pkl")]
    try:
        with z.open(pkl) as f:
            raw = f.read(max_bytes + 1)
        order = z.read(prefix + "byteorder") if prefix + "byteorder" in z.namelist() else b""
    except Exception as e:  # a damaged zip raises many kinds (BadZipFile, NotImplementedError)
        z.close()
        raise InputError(f"{source}: {pkl} is corrupt ({e})") from None
    if len(raw) > max_bytes:
        z.close()
        raise InputError(
            f"{source}: {pkl} is over the {mib(max_bytes)} limit", Hint.RAISE_INPUT_LIMIT
        )
    obj, _ = _unpickle(io.BytesIO(raw), source, legacy=False)
    if order not in (b"", b"little", b"big"):
        raise InputError(f"{source}: byteorder is {order[:20]!r}, expected little or big")
    return z, obj, prefix, "<" if order != b"big" else ">"


def _read_legacy(data: IO[bytes], source: str, max_bytes: int) -> tuple[Any, dict[str, int]]:
    """The legacy format's pickles, and where each storage's bytes start."""
    magic, _ = _unpickle(data, source, legacy=True)
    protocol, _ = _unpickle(data, source, legacy=True)
    info, _ = _unpickle(data, source, legacy=True)
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL or not isinstance(info, dict):
        raise InputError(f"{source}: not a PyTorch checkpoint (bad legacy header)")
    if info.get("little_endian") is not True:
        raise InputError(f"{source}: a big-endian legacy checkpoint is not supported")
    obj, storages = _unpickle(data, source, legacy=True)
    keys, _ = _unpickle(data, source, legacy=True)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InputError(f"{source}: not a PyTorch checkpoint (bad storage list)")
    offsets: dict[str, int] = {}
    for key in keys:
        head = data.read(8)
        if len(head) < 8 or key not in storages:
            raise InputError(f"{source}: storage {key!r} is missing or truncated")
        count = int.from_bytes(head, "little")
        itemsize = np.dtype(storages[key].type.dtype or "u2").itemsize
        offsets[key] = data.tell()
        if count != storages[key].numel or count * itemsize > max_bytes:
            raise InputError(f"{source}: storage {key!r} has a bad size or is over the limit")
        data.seek(count * itemsize, io.SEEK_CUR)
    return obj, offsets


def _flatten(obj: Any, source: str, prefix: str = "") -> Iterator[tuple[str, LazyTensor]]:
    """Every tensor in nested dicts, keyed by the path of keys joined with dots."""
    if prefix == "" and not isinstance(obj, Mapping):
        raise InputError(
            f"{source}: holds a {type(obj).__name__}, not a state dict (a dict of tensors)"
        )
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, LazyTensor):
            yield name, value
        elif isinstance(value, Mapping):
            yield from _flatten(value, source, name + ".")


def open_checkpoint(data: IO[bytes], source: str, max_bytes: int) -> TorchCheckpoint:
    """A :class:`TorchCheckpoint` over a seekable binary file (zip or legacy format)."""
    return TorchCheckpoint(data, source, max_bytes)
