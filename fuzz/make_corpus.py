"""Seed corpus for fuzz_loaders.py: valid inputs of each kind, prefixed by the kind byte."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def safetensors_bytes() -> bytes:
    from safetensors.numpy import save

    with np.load(ROOT / "params" / "seed42.npz") as npz:
        arrays = {k: npz[k] for k in ("Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")}
    return save(arrays)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, np.arange(10.0))
    inputs = json.loads((ROOT / "params" / "inputs.json").read_text())
    seeds = {
        "json-list": b"\x00" + json.dumps(inputs["x_t"]).encode(),
        "json-object": b"\x00" + json.dumps(inputs).encode(),
        "npy-as-array": b"\x00" + buf.getvalue(),
        "npy": b"\x01" + buf.getvalue(),
        "npz": b"\x02" + (ROOT / "params" / "seed42.npz").read_bytes(),
        "safetensors": b"\x03" + safetensors_bytes(),
    }
    for pt in sorted((ROOT / "tests" / "data").glob("torch_*.pt*")):
        for kind in (4, 5, 6):
            seeds[f"{pt.name}-{kind}"] = bytes([kind]) + pt.read_bytes()
    for keras_file in sorted((ROOT / "tests" / "data").glob("keras_model.*")):
        seeds[f"{keras_file.name}-7"] = b"\x07" + keras_file.read_bytes()
    for name in ("keras_stack.keras", "keras_merge.keras"):
        seeds[f"{name}-8"] = b"\x08" + (ROOT / "tests" / "data" / name).read_bytes()
    for name, data in seeds.items():
        (out / name).write_bytes(data)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus"))
