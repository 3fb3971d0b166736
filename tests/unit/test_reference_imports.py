"""The reference implementation of metrics.md shares nothing with the code it checks: it imports
only the standard library, and nothing at run time."""

import ast
import sys
from pathlib import Path

REFERENCE = Path(__file__).parents[1] / "reference.py"


def imported_modules(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
    return found


def test_the_reference_imports_only_the_standard_library():
    tree = ast.parse(REFERENCE.read_text(encoding="utf-8"))
    outside = [
        name
        for name in imported_modules(tree)
        if name != "__future__" and name.split(".")[0] not in sys.stdlib_module_names
    ]
    assert outside == []


def test_the_reference_imports_nothing_at_run_time():
    tree = ast.parse(REFERENCE.read_text(encoding="utf-8"))
    dynamic = [
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (
                isinstance(node.func, ast.Name)
                and node.func.id in {"__import__", "import_module", "exec", "eval"}
            )
            or (isinstance(node.func, ast.Attribute) and node.func.attr in {"import_module", "__import__"})
        )
    ]
    assert dynamic == []
