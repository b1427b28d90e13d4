"""Dependencies run one way: ``treasure`` <- ``pytest_treasure``. The engine library never imports
the pytest plugin (an AST scan of every module), so there is no import cycle between the two, and
Treasure's core does not need hypothesis (or pytest) to import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement in ``path`` names (anywhere: top level or in a function)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend([(node.lineno, node.module)]
                         + [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names])
    return found


def _package_imports(package: str, other: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line}: {name}"
            for path in sorted((ROOT / package).rglob("*.py"))
            for line, name in _imports(path) if name == other or name.startswith(other + ".")]


def test_no_module_under_treasure_imports_pytest_treasure() -> None:
    assert _package_imports("treasure", "pytest_treasure") == []


def test_no_import_cycle_between_the_two_packages() -> None:
    """pytest_treasure builds on treasure; the reverse edge would close a cycle."""
    assert _package_imports("pytest_treasure", "treasure")  # the one allowed direction exists
    assert _package_imports("treasure", "pytest_treasure") == []


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from pytest_treasure.invariants import check_outcome\n")
    assert (2, "pytest_treasure.invariants") in _imports(module)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("module", ["treasure.engine", "treasure.invariants", "treasure.hunt.search",
                                    "treasure.plugins", "treasure.strategy"])
def test_the_core_imports_without_hypothesis_or_pytest(module: str) -> None:
    loaded = _modules_after(f"import {module}")
    assert "hypothesis" not in loaded and "pytest" not in loaded and "_pytest" not in loaded
    assert not any(name.startswith("pytest_treasure") for name in loaded)


def test_the_invariants_add_nothing_heavy_to_importing_treasure() -> None:
    """``pytest_treasure.invariants`` (and ``treasure.invariants`` under it) cost no more than
    ``treasure.errors``: no numpy, jsonschema or engine of their own."""
    base = _modules_after("import treasure.errors")
    added = _modules_after("import pytest_treasure.invariants") - base
    heavy = {"numpy", "jsonschema", "fastjsonschema", "hypothesis", "treasure.engine", "treasure.contracts"}
    assert not {name.split(".")[0] for name in added} & heavy
    assert not added & heavy
