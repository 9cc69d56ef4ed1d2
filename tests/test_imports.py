"""The house: no import circle among paramsched's modules, and the core imports no framework."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

SOURCE = pathlib.Path(__file__).parent.parent / "src" / "paramsched"


def imports() -> dict[str, set[str]]:
    """Each module and the paramsched modules it imports (at any depth in the file)."""
    modules = {path.stem: path for path in SOURCE.glob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= (
                    {node.module.split(".")[0]}
                    if node.module
                    else {alias.name for alias in node.names}
                )
        graph[name] = found & set(modules)
    return graph


def test_no_module_imports_itself_through_others():
    graph = imports()

    def reaches(start, target, seen):
        return any(
            nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt}))
            for nxt in graph[start]
        )

    assert [name for name in graph if reaches(name, name, {name})] == []


@pytest.mark.slow
def test_the_core_imports_no_framework():
    code = (
        "import sys, paramsched, paramsched.cli, paramsched.preview; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'megatron') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
