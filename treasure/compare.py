"""Canonical comparison of evidence: equal or a readable, bounded explanation of how not.

Documents are compared in RFC 8785 canonical form after dropping volatile fields (declared in the
schemas in truth/). Equality is decided on canonical bytes (exact, cheap); only when they differ
is ``deepdiff`` asked to explain, so comparing two large event logs costs one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import orjson

from treasure.canonical import canonical_bytes, drop_paths
from treasure.jsonio import atomic_write_bytes

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Comparison:
    """Outcome of a comparison. ``summary`` is short enough for an assertion message."""

    equal: bool
    summary: str = ""
    full: str = ""

    def __bool__(self) -> bool:
        return self.equal


def _explain(expected: Any, actual: Any, *, max_lines: int, prefix: str = "") -> tuple[list[str], str]:
    from deepdiff import DeepDiff  # imported lazily: only needed when something differs

    diff = DeepDiff(expected, actual, ignore_order=False, verbose_level=2)
    lines: list[str] = []
    for kind, changes in sorted(diff.items()):
        if isinstance(changes, dict):
            for path, change in sorted(changes.items()):
                path = prefix + path.replace("root", "", 1)
                if isinstance(change, dict) and "old_value" in change:
                    lines.append(f"{path}: {_short(change['old_value'])} -> {_short(change['new_value'])}")
                elif kind.endswith("_added"):
                    lines.append(f"{path}: added {_short(change)}")
                elif kind.endswith("_removed"):
                    lines.append(f"{path}: removed {_short(change)}")
                else:
                    lines.append(f"{path}: {kind} {_short(change)}")
        else:
            for path in sorted(changes):
                lines.append(f"{prefix}{str(path).replace('root', '', 1)}: {kind}")
    return lines[:max_lines] + ([f"... and {len(lines) - max_lines} more"] if len(lines) > max_lines else []), \
        diff.pretty() if hasattr(diff, "pretty") else str(diff)


def _short(value: Any, limit: int = 80) -> str:
    text = orjson.dumps(value, default=str).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compare_documents(expected: Any, actual: Any, *, volatile: Iterable[str] = (),
                      max_lines: int = 12) -> Comparison:
    """Compare two JSON documents canonically, ignoring the ``volatile`` dot paths."""
    volatile = list(volatile)
    left = drop_paths(expected, volatile) if volatile else expected
    right = drop_paths(actual, volatile) if volatile else actual
    if canonical_bytes(left) == canonical_bytes(right):
        return Comparison(True)
    lines, pretty = _explain(left, right, max_lines=max_lines)
    full = "\n".join(["# canonical diff (expected -> actual)", *lines, "", "# deepdiff", pretty, "",
                      "# expected (canonical)", canonical_bytes(left).decode(), "",
                      "# actual (canonical)", canonical_bytes(right).decode(), ""])
    return Comparison(False, "\n".join(lines) or "documents differ", full)


def _events(source: Path | Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    if isinstance(source, (str, Path)):
        from treasure.eventlog import read_events

        return read_events(Path(source))
    return source


def compare_event_logs(expected: Path | Iterable[dict[str, Any]], actual: Path | Iterable[dict[str, Any]], *,
                       drop: Iterable[str] = (), max_events: int = 5, max_lines: int = 12) -> Comparison:
    """Compare two event logs event by event in canonical form (streaming for files).

    ``drop`` removes fields from every event first (e.g. ``run_id``, ``prev``, ``hash`` when two
    runs differ only by id). Reports the first few differing events by ``seq``.
    """
    drop = list(drop)
    left_iter, right_iter = iter(_events(expected)), iter(_events(actual))
    lines: list[str] = []
    details: list[str] = []
    differing = 0
    count = 0
    while True:
        a = next(left_iter, None)  # events are dicts: None marks the end of a log
        b = next(right_iter, None)
        if a is None and b is None:
            break
        if a is None or b is None:
            missing = "expected" if a is None else "actual"
            lines.append(f"event #{count}: only in {'actual' if missing == 'expected' else 'expected'} "
                         f"(log lengths differ)")
            differing += 1
            break
        left = drop_paths(a, drop) if drop else a
        right = drop_paths(b, drop) if drop else b
        if canonical_bytes(left) != canonical_bytes(right):
            differing += 1
            if differing <= max_events:
                explained, pretty = _explain(left, right, max_lines=max_lines,
                                             prefix=f"event seq={a.get('seq', count)} ({a.get('event_type', '?')})")
                lines.extend(explained)
                details.append(pretty)
        count += 1
    if not differing:
        return Comparison(True)
    summary = "\n".join(lines[: max_lines] + ([f"... {differing} differing event(s) in all"] if differing > 1 else []))
    full = "\n".join(["# event log diff (expected -> actual)", *lines, "", "# deepdiff per event", *details, ""])
    return Comparison(False, summary, full)


def write_diff(directory: Path, name: str, comparison: Comparison) -> Path:
    """Write the full explanation to ``directory/<name>.txt`` (atomically) and return its path."""
    safe = _SAFE_NAME.sub("_", name).strip("_")[:180] or "diff"
    path = Path(directory) / f"{safe}.txt"
    atomic_write_bytes(path, comparison.full.encode("utf-8"), durable=False)
    return path
