"""The package's shape: imports only point down (import-linter's contracts in pyproject.toml),
nothing but the command line and `__main__` imports it, and modules and functions stay small
enough to read, unless a reason is written beside them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scalesearch"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
REASON = "# long:"  # written above a module's first definition or in a function's first lines


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imported(path: Path) -> set[str]:
    """Every scalesearch module `path` imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("scalesearch")}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_command_line_imports_the_command_line(path):
    inside = path.relative_to(PACKAGE).parts[0] in ("cli", "__main__.py")
    if not inside:
        assert not any(n == "scalesearch.cli" or n.startswith("scalesearch.cli.")
                       for n in _imported(path))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_are_short_or_say_why(path):
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if len(lines) > MAX_MODULE_LINES:
        head = lines[:next(i for i, line in enumerate(lines)
                           if line.startswith(("def ", "class ", "@")))]
        assert any(REASON in line for line in head), (
            f"{path.name} has {len(lines)} lines; split it or say why near its top ({REASON})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                head = lines[node.lineno - 1: node.lineno + 40]
                assert any(REASON in line for line in head), (
                    f"{path.name}:{node.lineno} {node.name} has {length} lines; split it or "
                    f"say why in its first lines ({REASON})")
