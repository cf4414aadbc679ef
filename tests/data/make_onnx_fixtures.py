"""Writes the ONNX models of tests/data with the onnx package: a bidirectional LSTM node
(layout 1) whose W and R live in an external data file beside it, the arrays it holds as an
.npz, and a hostile model whose external data location leads out of its folder.

Run from the repository's root with onnx installed: python tests/data/make_onnx_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
F, H = 3, 2


def _external(arr: np.ndarray, name: str, location: str, offset: int) -> TensorProto:
    """An initializer whose bytes are at ``offset`` in the file ``location``."""
    tensor = numpy_helper.from_array(arr, name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", arr.nbytes)):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, str(value)
    return tensor


def _model(initializers: list[TensorProto]) -> onnx.ModelProto:
    node = helper.make_node(
        "LSTM", ["X", "W", "R", "B"], ["Y"], name="bi", hidden_size=H,
        direction="bidirectional", layout=1,
    )  # fmt: skip
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, F])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=initializers,
    )
    return helper.make_model(graph)


def main() -> None:
    rng = np.random.default_rng(7)  # distinct weights per gate, non-zero biases (Rb too)
    W = rng.normal(size=(2, 4 * H, F)).astype(np.float32)
    R = rng.normal(size=(2, 4 * H, H)).astype(np.float32)
    B = rng.normal(size=(2, 8 * H)).astype(np.float32)
    np.savez(HERE / "onnx_bi_external.npz", W=W, R=R, B=B)
    (HERE / "onnx_bi_external.onnx.data").write_bytes(W.tobytes() + R.tobytes())
    data = "onnx_bi_external.onnx.data"
    inits = [_external(W, "W", data, 0), _external(R, "R", data, W.nbytes)]
    inits.append(numpy_helper.from_array(B, "B"))
    onnx.save_model(_model(inits), str(HERE / "onnx_bi_external.onnx"))
    hostile = [_external(W, "W", "../hostile.py", 0), _external(R, "R", data, W.nbytes)]
    onnx.save_model(
        _model([*hostile, numpy_helper.from_array(B, "B")]), str(HERE / "onnx_escape.onnx")
    )


if __name__ == "__main__":
    main()
