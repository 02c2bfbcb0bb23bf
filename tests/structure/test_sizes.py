"""Small modules with one job: no function over 80 lines, no module over 400 (measured here).

Exceptions must be justified in :data:`EXCEPTIONS` (at most three).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "physflow"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400
#: path relative to the package -> why it may be longer (at most three entries)
EXCEPTIONS: dict[str, str] = {}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_exceptions_are_few_and_exist():
    assert len(EXCEPTIONS) <= 3
    for rel in EXCEPTIONS:
        assert (PACKAGE / rel).exists(), rel


def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
        and str(p.relative_to(PACKAGE)) not in EXCEPTIONS
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_80_lines():
    long = []
    for path in _sources():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({n})")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
