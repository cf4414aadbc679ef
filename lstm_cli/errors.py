"""The errors the library raises on purpose; the command line turns each into one plain line
and an exit code.

Library messages say what is wrong in the library's own words; what the user can do about
it is a :class:`Hint`, a name and not command-line text, because the library is used from
Python too. The command line renders a hint as the option that fixes it (``"raise it with
--max-input-mb"``); Python callers can read ``error.hint`` and act on it.
"""

from __future__ import annotations

import enum


class Hint(str, enum.Enum):
    """What would fix an error, named without the command line's words."""

    RAISE_INPUT_LIMIT = "raise_input_limit"  # a size cap was hit
    RAISE_INPUT_LIMIT_OR_STREAM = "raise_input_limit_or_stream"  # JSON too large: .npy streams
    FORCE = "force"  # the output exists
    PICK_PREFIX = "pick_prefix"  # several LSTMs in one file: choose by key prefix
    PICK_LAYOUT = "pick_layout"  # several layouts match: name the layout
    PICK_CELL = "pick_cell"  # several cells (layers, directions) in one LSTM: choose one
    GIVE_X = "give_x"  # a step needs x_t
    GIVE_INPUTS = "give_inputs"  # no input, and no example inputs stored
    GIVE_XS = "give_xs"  # a sequence needs xs
    NO_BATCH = "no_batch"  # the user's function does not take batches
    BATCH_ONLY = "batch_only"  # the user's function takes only batches
    PLAIN_VECTORS = "plain_vectors"  # a port without ONNX's variants
    LOOSEN_TOLERANCE = "loosen_tolerance"  # float32 arithmetic
    EXPORT_LAYOUT = "export_layout"  # the layout cannot hold this variant
    MAKE_VECTORS = "make_vectors"  # no vectors folder: the vectors command makes one
    KEEP_BIAS_HALVES = "keep_bias_halves"  # two biases whose sum one bias cannot hold exactly


class LstmCellError(Exception):
    """Base of the errors raised on purpose. ``message`` is shown as it is; ``hint`` names
    what would fix it (see :class:`Hint`). ``exit_code`` is what the command line exits with."""

    exit_code = 1

    def __init__(self, message: str, hint: Hint | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(LstmCellError):
    """Rejected input: a bad file, array, shape or value (exit 2)."""

    exit_code = 2


class OutputError(LstmCellError):
    """A result that cannot be written, or cannot be represented (exit 1)."""

    exit_code = 1


class UserCodeError(LstmCellError):
    """The user's own code (a port under ``check``) failed to import or to run (exit 1)."""

    exit_code = 1
