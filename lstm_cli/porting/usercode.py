"""Loading the user's code for ``check``: ``MODULE:FUNCTION`` or ``path/to/file.py:FUNCTION``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lstm_cli.errors import InputError, UserCodeError


def load_function(target: str) -> tuple[Callable[..., Any], str]:
    """Import ``MODULE:FUNCTION`` (or ``path/to/file.py:FUNCTION``) like ``python -m`` would:
    the current folder is on the import path. Missing module or function: InputError (2);
    an exception while importing the user's module: InputError (1)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"{target!r}: expected MODULE:FUNCTION, e.g. my_lstm:lstm_step")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, "")
    module = _import(module_name)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"{module_name!r} has no function {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"{target}: {type(obj).__name__} is not callable")
    return obj, target


def _import(module_name: str) -> Any:
    """The user's module (a dotted name, or a path ending in ``.py``), imported."""
    try:
        if module_name.endswith(".py"):
            return _import_file(module_name)
        return importlib.import_module(module_name)
    except InputError:
        raise
    except ModuleNotFoundError as e:
        if e.name is not None and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise InputError(
                f"cannot import {module_name!r}: no such module (run from the folder that "
                "holds it, or give path/to/file.py:FUNCTION)"
            ) from None
        raise UserCodeError(f"importing {module_name!r} failed: {type(e).__name__}: {e}") from None
    except BaseException as e:  # the user's module ran and raised: report it, no traceback
        if isinstance(e, KeyboardInterrupt):
            raise
        raise UserCodeError(f"importing {module_name!r} failed: {type(e).__name__}: {e}") from None


def _import_file(name: str) -> Any:
    """A module imported from a ``.py`` file, registered in ``sys.modules`` as an import
    would (dataclasses need it). The file's folder goes first on the import path, as
    ``python path/to/file.py`` would put it, so its sibling modules import."""
    path = Path(name)
    if not path.is_file():
        raise InputError(f"{name}: no such file")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"_lstm_check_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InputError(f"{name}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
