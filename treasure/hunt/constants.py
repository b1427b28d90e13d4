"""Keep a hunt's cases independent of which modules the process happened to import.

Hypothesis (>= 6.131) now and then draws a constant found in the source of the *local* modules
loaded so far (``hypothesis.internal.conjecture.providers._get_local_constants``). Which modules
are loaded depends on the process's history: the CLI, a pytest session, a Dask worker, or a second
hunt after the engine's lazy imports all see different pools, so the same ``--seed`` could generate
different cases. Within :func:`without_local_constants` that pool is empty (hypothesis' global
constants stay), so a hunt's cases depend on its seed and settings alone. Internal hypothesis API:
when it is missing, the context does nothing.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def without_local_constants() -> Iterator[None]:
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - another hypothesis layout
        yield
        return
    original: Any = getattr(providers, "_get_local_constants", None)
    cache: Any = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    make: Any = getattr(providers, "Constants", None)
    if original is None or cache is None or make is None:  # pragma: no cover
        yield
        return
    empty = make()
    cache.clear()  # cached (global, local) pools computed with the modules' constants
    providers._get_local_constants = lambda: empty  # type: ignore[attr-defined]
    try:
        yield
    finally:
        providers._get_local_constants = original  # type: ignore[attr-defined]
        cache.clear()
