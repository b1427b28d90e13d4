"""Regenerate the module map of ARCHITECTURE.md from the modules' own docstrings.

``python -m treasure._architecture`` rewrites the part of ARCHITECTURE.md between the map
markers; tests/test_architecture.py fails when a module is missing from the map, so the map
cannot drift from the code. The first docstring line of each module is its job.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

BEGIN = "<!-- module map: begin (python -m treasure._architecture) -->"
END = "<!-- module map: end -->"
PACKAGES = ("treasure", "pytest_treasure")


def modules(root: Path) -> list[tuple[str, str]]:
    """``(dotted module name, first docstring line)`` of every module in the packages, sorted."""
    out = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            line = " ".join(doc.strip().split("\n\n")[0].split())
            out.append((name, line))
    return sorted(out)


def render(root: Path) -> str:
    rows = ["| module | its job |", "| --- | --- |"]
    rows += [f"| `{name}` | {job.replace('|', '/')} |" for name, job in modules(root)]
    return "\n".join([BEGIN, *rows, END])


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[1]
    target = root / "ARCHITECTURE.md"
    text = target.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    target.write_text(text[:start] + render(root) + text[end:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
