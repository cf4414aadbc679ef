"""The one exception the CLI turns into a plain error line and an exit code."""

from __future__ import annotations


class InputError(Exception):
    """Rejected input: a bad file, array, shape or value. The message is shown as it is.

    ``exit_code`` is 2 for rejected input (the GUIDE's contract) and 1 for runtime failures
    such as an output file that cannot be written.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
