"""pytest-treasure: Treasure's operator gates as pytest markers, fixtures and hypothesis strategies.

Public API for gate authors and plugin writers (importing it is cheap: each name is imported on
first use, PEP 562; no engine, no numpy):

* ``hookimpl`` / ``hookspec``: pluggy markers of the "treasure" hooks (:mod:`pytest_treasure.hookspecs`)
* ``GateSpec``: what ``treasure_gates()`` returns
* ``manager(config)``: the session's Treasure plugin manager (``manager(config).hook.<hook>(...)``)
* ``check_event(config, event, workspace)``: every ``treasure_check_event`` problem, flattened
* ``known_gates(config)``: every declared gate by name
* ``workspace_of(run_result)``: the temporary workspace a ``treasure_run`` wrote into
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "hookimpl": "pytest_treasure.hookspecs",
    "hookspec": "pytest_treasure.hookspecs",
    "GateSpec": "pytest_treasure.registry",
    "check_event": "pytest_treasure.registry",
    "known_gates": "pytest_treasure.registry",
    "manager": "pytest_treasure.registry",
    "workspace_of": "pytest_treasure.fresh_runs",
}

if TYPE_CHECKING:  # pragma: no cover
    from pytest_treasure.hookspecs import hookimpl, hookspec
    from pytest_treasure.registry import GateSpec, check_event, known_gates, manager
    from pytest_treasure.fresh_runs import workspace_of


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_treasure' has no attribute {name!r}")
    import importlib

    # Not cached in globals(): an in-process pytester run may drop and re-import the module,
    # and a cached class would then differ from the one ``isinstance`` checks against.
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["hookimpl", "hookspec", "GateSpec", "manager", "check_event", "known_gates", "workspace_of"]
