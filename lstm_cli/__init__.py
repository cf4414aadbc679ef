"""lstm-cell: a reference LSTM cell in NumPy that shows every gate.

The library in one screen::

    from lstm_cli import lstm_step, lstm_step_detailed, init_params, notebook_default

    h_next, c_next = lstm_step(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)
    cell = notebook_default()                     # the seed notebook's cell and inputs
    r = cell.params.step(**cell.example.arrays())  # StepResult: every intermediate
    r.i_t, r.f_t, r.o_t, r.c_t_candidate, r.c_next, r.h_next
    seq = run_sequence(cell.params, xs)            # xs (T, F) or (T, B, F): seq.h_next, ...
"""

from typing import TYPE_CHECKING, Any

from .core import StepResult, lstm_step, lstm_step_detailed, sigmoid
from .init import init_params, notebook_default
from .params import ExampleInputs, LSTMParams, ParamSet, Variant

if TYPE_CHECKING:
    from .layouts import (
        export_arrays,
        from_keras,
        from_onnx,
        from_pytorch,
        to_keras,
        to_onnx,
        to_pytorch,
    )
    from .sequence import SequenceChunk, SequenceResult, iter_sequence, run_sequence

_LAZY = {
    "SequenceChunk": "sequence",
    "SequenceResult": "sequence",
    "iter_sequence": "sequence",
    "run_sequence": "sequence",
    "export_arrays": "layouts",
    "from_keras": "layouts",
    "from_pytorch": "layouts",
    "to_keras": "layouts",
    "to_pytorch": "layouts",
    "from_onnx": "layouts",
    "to_onnx": "layouts",
}


def __getattr__(name: str) -> Any:
    """The sequence and ONNX layout APIs are imported on first use (``lstm-cell step`` never
    pays for them), and ``__version__`` is read from the installed metadata."""
    if name == "__version__":
        return _version()
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ExampleInputs",
    "LSTMParams",
    "ParamSet",
    "SequenceChunk",
    "SequenceResult",
    "StepResult",
    "Variant",
    "export_arrays",
    "from_keras",
    "from_onnx",
    "from_pytorch",
    "init_params",
    "iter_sequence",
    "lstm_step",
    "lstm_step_detailed",
    "notebook_default",
    "run_sequence",
    "sigmoid",
    "to_keras",
    "to_onnx",
    "to_pytorch",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lstm-cell")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"
