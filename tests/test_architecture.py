"""ARCHITECTURE.md's module map lists every module with the job its docstring states."""

from __future__ import annotations

from pathlib import Path

from treasure import _architecture

ROOT = Path(__file__).resolve().parents[1]


def test_module_map_is_current() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert _architecture.render(ROOT) in text, "run `python -m treasure._architecture` and commit ARCHITECTURE.md"


def test_every_module_says_what_it_is_for() -> None:
    missing = [name for name, job in _architecture.modules(ROOT) if not job and not name.endswith("__main__")]
    assert missing == [], f"modules without a docstring: {missing}"
