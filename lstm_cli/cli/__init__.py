"""The ``lstm-cell`` command line: :mod:`.app` (the lazy group and error handling),
:mod:`.options` (options shared by commands), :mod:`.inputs` (where arrays come from),
:mod:`.output` (JSON or the Rich view, stdout safely), and one module per command."""

from .app import app, main

__all__ = ["app", "main"]
