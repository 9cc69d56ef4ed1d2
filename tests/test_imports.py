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


def test_the_package_ships_its_type_marker_and_license():
    """py.typed is in the package and its package data (PEP 561), and LICENSE holds the
    license pyproject.toml names."""
    import tomllib

    root = SOURCE.parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert (SOURCE / "py.typed").is_file()
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["paramsched"]
    assert project["project"]["license"] == {"text": "Apache-2.0"}
    license_text = (root / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text


def test_the_changelog_names_this_version():
    import paramsched

    changelog = (SOURCE.parent.parent / "CHANGELOG.md").read_text()
    assert f"\n## {paramsched.__version__}\n" in changelog
