"""A scoped workaround that makes many small runs affordable: memoized schema self-checks.

Each engine run re-validates every JSON Schema it loads against the draft 2020-12 meta-schema
(``treasure.contracts.check_schema``, ~50 ms a schema), which dominates the cost of the tiny runs
a hunt makes thousands of. The check is a pure function of the schema document, so remembering
which documents already passed is exact. This patches the two module attributes the engine calls
for the duration of a ``with`` block only, and steps aside if the engine caches by itself.
Wanted upstream instead: a content-keyed cache inside ``treasure.contracts.check_schema``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import orjson

_passed: set[bytes] = set()
_depth = 0
_saved: list[tuple[Any, str, Callable[..., None]]] = []


def _memoized(original: Callable[..., None]) -> Callable[..., None]:
    def check_schema(schema: Any, *, source: str) -> None:
        try:
            key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            original(schema, source=source)
            return
        if key not in _passed:
            original(schema, source=source)
            _passed.add(key)

    check_schema.__wrapped__ = original  # type: ignore[attr-defined]
    return check_schema


@contextlib.contextmanager
def fast_schema_checks() -> Iterator[None]:
    """Within the block, each distinct schema is meta-validated once per process."""
    global _depth
    import treasure.config as config_module
    import treasure.contracts as contracts_module

    if _depth == 0:
        original = contracts_module.check_schema
        if not hasattr(original, "cache_info") and not hasattr(original, "__wrapped__"):
            fast = _memoized(original)
            for module in (contracts_module, config_module):
                if getattr(module, "check_schema", None) is original:
                    _saved.append((module, "check_schema", original))
                    setattr(module, "check_schema", fast)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            while _saved:
                module, name, original = _saved.pop()
                setattr(module, name, original)
