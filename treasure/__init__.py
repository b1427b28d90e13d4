"""Treasure: a deterministic, event-driven trading simulation engine with verification gates.

The public API: run a simulation (:func:`run` with a :class:`RunRequest`), write strategies
(:class:`Strategy`, :class:`Intent`, :class:`Bar`), and handle errors (:class:`TreasureError`).

Importing ``treasure`` is cheap (PEP 562): each name is imported from its module on first use,
so ``import treasure.gate_history`` (or the pytest plugin) does not pull in the engine or numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY = {
    "TreasureError": "treasure.errors",
    "Bar": "treasure.strategy",
    "Intent": "treasure.strategy",
    "Strategy": "treasure.strategy",
    "run": "treasure.engine",
    "RunRequest": "treasure.engine",
    "RunResult": "treasure.engine",
    "prepare_run": "treasure.engine",
    "execute_run": "treasure.engine",
    "Workspace": "treasure.workspace",
}

if TYPE_CHECKING:  # pragma: no cover
    from treasure.engine import RunRequest, RunResult, execute_run, prepare_run, run
    from treasure.errors import TreasureError
    from treasure.strategy import Bar, Intent, Strategy
    from treasure.workspace import Workspace


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'treasure' has no attribute {name!r}")
    import importlib

    # Not cached in globals(): an in-process pytester run may drop and re-import the module,
    # and a cached class would then differ from the one ``except``/``isinstance`` check against.
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["__version__", "TreasureError", "Bar", "Intent", "Strategy", "run", "RunRequest",
           "RunResult", "Workspace"]
