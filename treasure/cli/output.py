"""Printing for commands: human text by default, one JSON document with --json."""

from __future__ import annotations

import sys
from typing import Any

import orjson


def print_json(document: Any) -> None:
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n")


def emit(args: Any, human: str, document: Any) -> None:
    if getattr(args, "json", False):
        print_json(document)
    elif human:
        print(human)


def pct(value: float) -> str:
    return f"{value * 100:+.2f}%"


class Progress:
    """A one-line progress bar on stderr, shown only on a TTY and only once a run passes 1 s."""

    def __init__(self, label: str, *, enabled: bool) -> None:
        import time

        self._clock = time.monotonic  # treasure: allow-nondeterminism progress display only
        self._start = self._clock()
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        elapsed = self._clock() - self._start
        if elapsed < 1.0 and done < total:
            return
        if not self._shown and done >= total:
            return
        self._shown = True
        width = 30
        filled = int(width * done / total) if total else width
        rate = done / elapsed if elapsed > 0 else 0.0
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                         f"bars {rate:,.0f}/s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
