"""The error-code registry (treasure.errors.CODES) is complete and says true things.

Every code the code base raises (found with the AST, not by hand) is registered; every registered
code is used somewhere; every hint that names an SSOT key names a key of spec/config.schema.json;
every hint that names a ``treasure ...`` command names a real one; kinds map to the documented
exit codes.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from treasure.errors import (CHECK, CODES, ENVIRONMENT, EXIT_BAD_INPUT, EXIT_BY_KIND, EXIT_HALTED, EXIT_INTERNAL,
                             HALTED, HINTS, INPUT, INTERNAL, TreasureError)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for d in ("treasure", "pytest_treasure") for p in (ROOT / d).rglob("*.py")
                 if "_bundle" not in p.parts)
CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^INTERNAL$")
HINT_TABLES = {"HINTS", "LIVE_HINTS", "CODES"}


def _trees() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(), str(p)) for p in SOURCES}


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    classes = {"TreasureError"}
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in classes and \
                        any(_name(b) in classes for b in node.bases):
                    classes.add(node.name)
                    grew = True
    return classes


def _builds_error_from(node: ast.AST, error_classes: set[str], source: str) -> bool:
    """Whether ``node`` constructs an error class with ``source`` (``code`` or ``self.code``) as its code."""
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and _name(call.func) in error_classes:
            args = call.args[:1] + [k.value for k in call.keywords if k.arg == "code"]
            if any(ast.unparse(a) == source for a in args):
                return True
    return False


def _code_positions(trees: dict[Path, ast.Module], error_classes: set[str]) -> dict[str, set[int]]:
    """Callables whose ``code`` argument becomes an error's code: name -> its positional index.
    Error classes (0), functions handing a ``code`` parameter to an error class, and classes whose
    ``code`` field does (``DataError(self.code, ...)``). Finding and check records are not errors."""
    positions: dict[str, set[int]] = {name: {0} for name in error_classes}
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    params = [a.arg for a in node.args.posonlyargs + node.args.args]
                    if params[:1] in (["self"], ["cls"]):
                        params = params[1:]
                    kwonly = [a.arg for a in node.args.kwonlyargs]
                    if ("code" in params or "code" in kwonly) and \
                            _builds_error_from(node, error_classes | set(positions), "code"):
                        index = params.index("code") if "code" in params else -1
                        if index not in positions.get(node.name, set()):
                            positions.setdefault(node.name, set()).add(index)
                            grew = True
                elif isinstance(node, ast.ClassDef) and node.name not in error_classes:
                    fields = [st.target.id for st in node.body if isinstance(st, ast.AnnAssign)
                              and isinstance(st.target, ast.Name)]
                    if "code" in fields and _builds_error_from(node, error_classes, "self.code") and \
                            fields.index("code") not in positions.get(node.name, set()):
                        positions.setdefault(node.name, set()).add(fields.index("code"))
                        grew = True
    return positions


def _literals(node: ast.AST | None) -> list[str]:
    if node is None:
        return []
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and CODE_RE.match(n.value)]


def raised_codes() -> dict[str, list[str]]:
    """code -> where it is raised or passed as a code (file:line)."""
    trees = _trees()
    error_classes = _error_classes(trees)
    positions = _code_positions(trees, error_classes)
    found: dict[str, list[str]] = {}

    def add(codes: list[str], path: Path, node: ast.AST) -> None:
        for code in codes:
            found.setdefault(code, []).append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}")

    for path, tree in trees.items():
        if path.name == "errors.py" and path.parent.name == "treasure":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _name(node.func) or ""
                if name in positions:
                    for keyword in node.keywords:
                        if keyword.arg == "code":
                            add(_literals(keyword.value), path, node)
                    for index in positions[name]:
                        if 0 <= index < len(node.args):
                            add(_literals(node.args[index]), path, node)
            elif isinstance(node, ast.Subscript) and _name(node.value) in HINT_TABLES:
                add(_literals(node.slice), path, node)
        # ``code = "A" if ... else "B"`` then ``raise XError(code, ...)`` in the same function
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    _builds_error_from(func, error_classes, "code"):
                for node in ast.walk(func):
                    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "code"
                                                            for t in node.targets):
                        add(_literals(node.value), path, node)
    return found


def test_the_collector_sees_known_raise_sites() -> None:
    found = raised_codes()
    # a direct raise, a code chosen in a variable, helpers taking a code (positional or keyword)
    for code in ("DATA_MISSING", "SSOT_MISSING", "DATA_PARSE", "SSOT_JSON", "CLI_USAGE",
                 "RUN_HALTED", "OUT_PROTECTED"):
        assert code in found, code


def test_every_raised_code_is_registered() -> None:
    missing = {code: where[:3] for code, where in sorted(raised_codes().items()) if code not in CODES}
    assert missing == {}, f"register these in treasure/errors.py: {missing}"


def test_every_registered_code_is_used() -> None:
    """A registered code nobody raises is a documented promise the tool cannot keep."""
    text = "\n".join(p.read_text() for p in SOURCES if not (p.name == "errors.py" and p.parent.name == "treasure"))
    unused = sorted(code for code in CODES if f'"{code}"' not in text and f"'{code}'" not in text)
    assert unused == [], f"never raised: {unused} (raise them where the case happens, or delete them)"


def test_every_code_has_a_kind_and_a_hint() -> None:
    for code, entry in CODES.items():
        assert entry.kind in EXIT_BY_KIND, code
        assert entry.hint.strip(), f"{code} has no hint"
    assert EXIT_BY_KIND == {INPUT: EXIT_BAD_INPUT, CHECK: EXIT_BAD_INPUT, ENVIRONMENT: EXIT_BAD_INPUT,
                            HALTED: EXIT_HALTED, INTERNAL: EXIT_INTERNAL}
    assert HINTS == {code: entry.hint for code, entry in CODES.items()}


def test_the_kind_decides_the_exit_code() -> None:
    assert TreasureError("RUN_HALTED", "x").exit_code == EXIT_HALTED
    assert TreasureError("INTERNAL", "x").exit_code == EXIT_INTERNAL
    assert TreasureError("DATA_GAP", "x").exit_code == EXIT_BAD_INPUT


def _schema_keys() -> set[str]:
    schema = json.loads((ROOT / "spec" / "config.schema.json").read_text())
    keys: set[str] = set()

    def walk(node: dict, prefix: str) -> None:
        for name, sub in node.get("properties", {}).items():
            keys.add(prefix + name)
            if isinstance(sub, dict):
                walk(sub, prefix + name + ".")
    walk(schema, "")
    return keys


#: dotted words in hints that are not SSOT keys: files, modules, fields of events and reports
NOT_KEYS = re.compile(r"\.(json|jsonl|csv|py|lock|log|flag|md|db|gz|npy|html|tar|schema|txt|pem)$|"
                      r"^(treasure|pytest_treasure|payload|docs|truth|spec|events|metrics|court|gates)\.|^(e\.g|i\.e)$")
DOTTED = re.compile(r"(?<![\w/.-])([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+)(?![\w/-])")


def ssot_keys_named(hint: str) -> list[str]:
    return [m for m in DOTTED.findall(hint) if not NOT_KEYS.search(m)]


def test_hint_key_finder_catches_the_old_drift() -> None:
    assert ssot_keys_named("re-fetch the bars, or set data.gaps to 'warn'") == ["data.gaps"]
    assert ssot_keys_named("see spec/ssot.json and treasure.Strategy") == []


@pytest.mark.parametrize("code", sorted(CODES))
def test_hints_name_real_ssot_keys(code: str) -> None:
    keys = _schema_keys()
    wrong = [k for k in ssot_keys_named(CODES[code].hint) if k not in keys]
    assert wrong == [], f"{code}'s hint names {wrong}, not keys of spec/config.schema.json"


def _commands() -> dict[str, set[str]]:
    """command -> its sub-actions (empty set: takes none), from the real parser."""
    import argparse

    from treasure.cli.main import build_parser

    parser = build_parser()
    found: dict[str, set[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                subs: set[str] = set()
                for inner in sub._actions:
                    if isinstance(inner, argparse._SubParsersAction):
                        subs |= set(inner.choices)
                    elif inner.dest in ("which", "action") and inner.choices:
                        subs |= set(inner.choices)
                found[name] = subs
    return found


COMMAND_IN_HINT = re.compile(r"`treasure ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")


def test_hints_name_real_commands() -> None:
    commands = _commands()
    wrong = []
    for code, entry in sorted(CODES.items()):
        for name, action in COMMAND_IN_HINT.findall(entry.hint):
            if name not in commands:
                wrong.append(f"{code}: treasure {name}")
            elif commands[name] and action and action not in commands[name]:
                wrong.append(f"{code}: treasure {name} {action}")
    assert wrong == [], wrong


def test_the_hint_command_check_can_fail() -> None:
    assert "verify" in _commands() and "approve" in _commands()["ssot"]
    assert COMMAND_IN_HINT.findall("run `treasure frobnicate`") == [("frobnicate", "")]
