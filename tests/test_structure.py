"""The code's shape, checked rather than remembered: no function body over 60 lines, no
module over 500, no file in the package pointing outside the repository."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "lstm_cli"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_BODY_LINES = 60
MAX_MODULE_LINES = 500


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of the body, docstring excluded."""
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_size_and_function_bodies(path: Path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name} is over {MAX_MODULE_LINES}"
    long = {
        f"{fn.name} (line {fn.lineno})": _body_lines(fn)
        for fn in _functions(ast.parse(text))
        if _body_lines(fn) > MAX_BODY_LINES
    }
    assert not long, f"function bodies over {MAX_BODY_LINES} lines: {long}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pointer_outside_the_repository(path: Path):
    text = path.read_text()
    guide, shared = "GUIDE" + ".md", "../" + "shared"  # spelled apart: this file is clean too
    for word in (guide, shared, "issue #", "issue 1", "issue 2", "issue 3"):
        assert word not in text, f"{path.name} mentions {word!r}"


def test_the_helper_itself_measures_bodies():
    tree = ast.parse("def f():\n    '''doc'''\n    a = 1\n    b = 2\n    return a + b\n")
    assert [_body_lines(fn) for fn in _functions(tree)] == [3]
