"""A vectors folder on disk: written atomically as a whole, read back under the input limit."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import Hint, InputError, OutputError
from lstm_cli.io.atomic import sync_file
from lstm_cli.io.jsonio import parse_json
from lstm_cli.io.reader import DEFAULT_MAX_INPUT_BYTES, read_file
from lstm_cli.params import PEEPHOLE_NAMES, LSTMParams, Variant

from .vectors import (
    DTYPES,
    EQUATIONS,
    GATE_ORDER,
    INPUT_NAMES,
    MANIFEST,
    MANIFEST_FORMAT_VERSION,
    REFERENCES,
    TOLERANCES,
    VARIANT_EQUATIONS,
    VARIANT_SETTINGS,
    Case,
    CaseSpec,
)


def _lists(arrays: dict[str, Array]) -> dict[str, Any]:
    # float32 values become the exact doubles they are: parse as double, cast to float32.
    return {k: np.asarray(v, dtype=np.float64).tolist() for k, v in arrays.items()}


def case_json(case: Case) -> dict[str, Any]:
    """The JSON object of one case (see README: golden vectors)."""
    e = case.expected
    groups = {
        "pre_activations": ("z_i", "z_f", "z_o", "z_c"),
        "gates": ("i_t", "f_t", "o_t", "c_t_candidate"),
        "outputs": ("h_next", "c_next"),
    }
    out: dict[str, Any] = {
        "name": case.name,
        "kind": case.kind,
        "description": case.spec.description,
        "variant": case.variant,
        **({"settings": case.settings} if case.variant != "standard" else {}),
        "dtype": case.dtype,
        "shapes": {"B": case.batch, "F": case.n_features, "H": case.n_hidden},
        "params": _lists(case.params),
        "inputs": _lists(case.inputs),
        "u": np.asarray(e["u"]).tolist(),
    }
    for group, names in groups.items():
        out[group] = _lists({k: e[k] for k in names})
    extra = {k: v for k, v in e.items() if k not in ("u",) + sum(groups.values(), ())}
    if extra:
        out["other"] = _lists(extra)
    return out


def manifest_json(cases: Sequence[Case], seed: int) -> dict[str, Any]:
    return {
        "format": "lstm-cell golden vectors",
        "format_version": MANIFEST_FORMAT_VERSION,
        "generator": f"lstm-cell {_version()}",
        "seed": seed,
        "count": len(cases),
        "equations": EQUATIONS,
        "variants": {
            v: {"settings": VARIANT_SETTINGS[v], "equations": VARIANT_EQUATIONS[v]}
            for v in VARIANT_SETTINGS
            if any(c.variant == v for c in cases)
        },
        "gate_order": GATE_ORDER,
        "dtype": (
            "per case: params and inputs are exactly representable in the case's dtype "
            "(float32 values are written as the exact doubles they are); expected values are "
            "computed in float64 from them"
        ),
        "tolerances": TOLERANCES,
        "results_file": (
            'JSON {"format": "lstm-cell results", "format_version": 1, "cases": {NAME: '
            '{"h_next": [...], "c_next": [...]}}}; non-finite values as null, "NaN", '
            '"Infinity" or "-Infinity"; check with: lstm-cell check --vectors DIR --results FILE'
        ),
        "cases": [
            {
                "name": c.name,
                "kind": c.kind,
                "variant": c.variant,
                **({"settings": c.settings} if c.variant != "standard" else {}),
                "dtype": c.dtype,
                "description": c.spec.description,
                "B": c.batch,
                "F": c.n_features,
                "H": c.n_hidden,
                "json": c.name + ".json",
                "npz": c.name + ".npz",
            }
            for c in cases
        ],
    }


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, allow_nan=False, indent=1) + "\n").encode()


def _npz_bytes(case: Case) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **case.params, **case.inputs, **case.expected)  # type: ignore[arg-type]
    return buf.getvalue()


def _vector_files(cases: Sequence[Case], seed: int) -> dict[str, bytes]:
    """Every file of a vectors folder by name: each case's .json and .npz, the manifest."""
    files: dict[str, bytes] = {}
    for c in cases:
        files[c.name + ".json"] = _json_bytes(case_json(c))
        files[c.name + ".npz"] = _npz_bytes(c)
    files[MANIFEST] = _json_bytes(manifest_json(cases, seed))
    return files


VECTOR_FILE = re.compile(r"manifest\.json|case_\d+(_\w+)?\.(json|npz)")


def vector_files_in(out_dir: Path) -> list[str]:
    """The names in ``out_dir`` that a vectors folder holds: manifest.json, case_NNN.*."""
    if not out_dir.is_dir():
        return []
    return sorted(p.name for p in out_dir.iterdir() if VECTOR_FILE.fullmatch(p.name))


def _check_target(out_dir: Path, force: bool) -> None:
    """Refuse a target that is not a folder, lacks a parent, or already holds vectors (any
    manifest or case file, not only the names about to be written: no stale case is left)."""
    if out_dir.is_symlink() and not out_dir.exists():
        target = os.readlink(out_dir)
        raise InputError(f"{out_dir}: a symbolic link to {target}, which does not exist")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    if not out_dir.parent.is_dir():
        raise InputError(f"{out_dir}: folder {out_dir.parent} does not exist")
    if not force:
        clash = vector_files_in(out_dir)
        if clash:
            more = f" and {len(clash) - 1} more" if len(clash) > 1 else ""
            raise InputError(f"{out_dir / clash[0]}{more}: already exist(s)", Hint.FORCE)


real_replace = os.replace  # the rollback's own reference (tests make os.replace fail)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_vectors(
    out_dir: Path, cases: Sequence[Case], seed: int, force: bool = False
) -> list[str]:
    """Write every case (.json and .npz) and ``manifest.json`` into ``out_dir``.

    Nothing is written when the folder already holds vectors (without ``force``) or anything
    fails: the files are made in a temporary folder beside ``out_dir`` and moved in at the
    end. With ``force``, every vector file already there (manifest, case files, stale ones of
    a larger count too) is replaced: the folder holds this set and no other; files that are
    not vectors are left alone. The folder and files honour the umask. Returns the file names
    written.
    """
    out_dir = Path(out_dir)
    files = _vector_files(cases, seed)
    _check_target(out_dir, force)
    try:
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: a teammate could not read it
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot write: {e.strerror or e}") from None
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                f.write(data)
                sync_file(f)
        _move_in(tmp, out_dir, list(files), force)
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot write: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return list(files)


def _move_in(tmp: Path, out_dir: Path, names: Sequence[str], force: bool) -> None:
    """Move the finished files from ``tmp`` into ``out_dir`` (the whole folder when it does
    not exist yet). With ``force`` the vector files already there are first moved aside into
    ``tmp/.old`` and deleted with it; on failure the new files are removed and the old ones
    put back."""
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    old = vector_files_in(out_dir)
    if old and not force:
        raise InputError(f"{out_dir / old[0]}: already exists", Hint.FORCE)
    aside = tmp / ".old"
    aside.mkdir()
    moved: list[Path] = []
    try:
        for name in old:
            os.replace(out_dir / name, aside / name)
        for name in names:
            os.replace(tmp / name, out_dir / name)
            moved.append(out_dir / name)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        for name in os.listdir(aside):
            real_replace(aside / name, out_dir / name)
        raise


# --------------------------------------------------------------------------- reading


def load_vectors(directory: Path, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> list[Case]:
    """Read a folder written by :func:`write_vectors`, validating every array; the manifest
    and every case file are read under ``max_bytes`` each.

    Only the JSON files are read (the .npz files hold the same numbers). Cases of variants
    without a reference function are skipped.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder", Hint.MAKE_VECTORS)
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path}: no such file; is {directory} a vectors folder?")
    manifest = parse_json(read_file(manifest_path, max_bytes), str(manifest_path))
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cases"), list):
        raise InputError(f"{manifest_path}: expected an object with a list of cases")
    cases: list[Case] = []
    for k, entry in enumerate(manifest["cases"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("json"), str):
            raise InputError(f"{manifest_path}: case {k} has no json file name")
        if entry.get("variant", "standard") not in REFERENCES:
            continue
        name = entry["json"]
        if Path(name).name != name:
            raise InputError(f"{manifest_path}: case file {name!r} is not a plain file name")
        path = directory / name
        try:
            obj = parse_json(read_file(path, max_bytes), str(path))
        except FileNotFoundError:
            raise InputError(f"{path}: no such file (listed in {manifest_path})") from None
        cases.append(_case_from_json(k, obj, name, str(path)))
    if not cases:
        raise InputError(f"{manifest_path}: lists no case this version can check")
    return cases


def _case_from_json(k: int, obj: Any, name: str, src: str) -> Case:
    """Case ``k`` from its parsed JSON file (``name`` in the manifest), validated."""
    dtype = obj.get("dtype") if isinstance(obj, dict) else None
    if dtype not in DTYPES:
        raise InputError(f"{src}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    params, inputs = _case_arrays(obj, src)
    x = inputs["x_t"]
    variant = obj.get("variant", "standard")
    settings = _settings(obj, variant, params, src)
    spec = CaseSpec(
        name=str(obj.get("name", name)),
        kind=str(obj.get("kind", "")),
        description=str(obj.get("description", "")),
        n_features=x.shape[-1],
        n_hidden=params["bf"].shape[0],
        batch=None if x.ndim == 1 else int(x.shape[0]),
        dtype=dtype,
        variant=variant,
    )
    params = {k: v.astype(dtype) for k, v in params.items()}
    inputs = {k: v.astype(dtype) for k, v in inputs.items()}
    case = _LoadedCase(k, spec, dtype, params, inputs, settings=settings)
    return replace(case, expected=REFERENCES[variant](case.cell, inputs))


def _case_arrays(obj: dict[str, Any], src: str) -> tuple[dict[str, Array], dict[str, Array]]:
    """A case file's params (the eight, and any variant extras) and inputs, shapes checked."""
    from lstm_cli.io.jsonio import json_to_array

    for group in ("params", "inputs"):
        if not isinstance(obj.get(group), dict):
            raise InputError(f"{src}: missing object {group!r}")
    raw = {k: json_to_array(v, k, src) for k, v in obj["params"].items()}
    params = LSTMParams.from_mapping(raw, src).arrays()
    params.update({k: v for k, v in raw.items() if k not in params})  # variant extras
    inputs = {}
    for n in INPUT_NAMES:
        if n not in obj["inputs"]:
            raise InputError(f"{src}: inputs has no {n}")
        inputs[n] = json_to_array(obj["inputs"][n], n, src)
    H, F = params["bf"].shape[0], params["Wf"].shape[1] - params["bf"].shape[0]
    x = inputs["x_t"]
    if x.ndim not in (1, 2) or x.shape[-1] != F:
        raise InputError(f"{src}: x_t has shape {x.shape}, expected ({F},) or (B, {F})")
    for n in ("h_prev", "c_prev"):
        if inputs[n].shape != x.shape[:-1] + (H,):
            raise InputError(
                f"{src}: {n} has shape {inputs[n].shape}, expected {x.shape[:-1] + (H,)}"
            )
    return params, inputs


def _settings(
    obj: dict[str, Any], variant: str, params: dict[str, Array], src: str
) -> dict[str, Any]:
    """A case file's variant settings, validated against its params (standard: none)."""
    if variant == "standard":
        return {}
    raw = obj.get("settings")
    if not isinstance(raw, dict) or set(raw) - {"peepholes", "clip", "input_forget"}:
        raise InputError(
            f"{src}: variant {variant!r} needs settings {{peepholes, clip, input_forget}}"
        )
    clip, input_forget = Variant.switches_from_meta(raw, src)
    peepholes = raw.get("peepholes", False)
    has_p = all(n in params for n in PEEPHOLE_NAMES)
    if not isinstance(peepholes, bool) or peepholes != has_p:
        raise InputError(
            f"{src}: settings say peepholes {peepholes!r} but the params "
            f"{'hold' if has_p else 'lack'} Pi, Pf, Po"
        )
    return {"peepholes": peepholes, "clip": clip, "input_forget": input_forget}


@dataclass(frozen=True)
class _LoadedCase(Case):
    """A case read from a folder: its name is the one in the file."""

    @property
    def name(self) -> str:
        return self.spec.name


def _version() -> str:
    from importlib.metadata import version

    return version("lstm-cell")
