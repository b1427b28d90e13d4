"""Treasure's plugin manager: the one way adapters, strategies and event checks are found.

One :class:`pluggy.PluginManager` per process, built on first use (importing this module builds
nothing and imports no adapter): the hookspecs of :mod:`treasure.hookspecs`, Treasure's own
adapters and strategies as the plugin "treasure-builtin" (:class:`Builtin`), then every package
exposing a ``treasure`` entry point. Lookups ask the hooks each time, so a plugin registered
later (:func:`registered`) is seen at once.

Strategy references are resolved here without importing anything a reference merely names:

* a bare name must be declared by a plugin (``treasure_strategies``);
* ``path/to/file.py:Class`` is a workspace file (the engine keeps it inside the workspace);
* ``module:Class`` must be well formed and its module vouched for: declared by a plugin
  (``treasure_strategies`` / ``treasure_strategy_modules``) or listed in the environment variable
  ``TREASURE_STRATEGY_MODULES`` (comma-separated; ``pkg.*`` allows a package). Anything else is
  refused with STRATEGY_UNKNOWN *before* an import, so an SSOT naming ``this:X`` prints nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import pluggy

from treasure import hookspecs
from treasure.hookspecs import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from treasure.execution.base import ExecutionAdapter
    from treasure.workspace import Workspace

#: Environment variable: extra modules whose classes an SSOT may name as ``module:Class``.
ALLOW_ENV = "TREASURE_STRATEGY_MODULES"
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE_REF = re.compile(rf"({_IDENT}(?:\.{_IDENT})*):({_IDENT})")
_BUILTIN_NAME = "treasure-builtin"
_manager: pluggy.PluginManager | None = None
_entry_points_loaded = False


class Builtin:
    """Treasure's own adapters and strategies, registered like any third-party plugin."""

    @hookimpl
    def treasure_execution_adapters(self) -> Mapping[str, Callable[..., "ExecutionAdapter"]]:
        from treasure.execution.dryrun import DryRunAdapter
        from treasure.execution.replay_live import ReplayLiveAdapter
        from treasure.execution.sim import SimAdapter

        return {"sim": SimAdapter, "dryrun": DryRunAdapter, "replay-live": ReplayLiveAdapter}

    @hookimpl
    def treasure_strategies(self) -> Mapping[str, type | str]:
        return {"sma_crossover": "treasure.strategy.builtin:SmaCrossover",
                "mean_reversion": "treasure.strategy.builtin:MeanReversion",
                "buy_and_hold": "treasure.strategy.builtin:BuyAndHold"}

    @hookimpl
    def treasure_strategy_modules(self) -> list[str]:
        return ["treasure.*"]


class _LegacyAdapters:
    """Adapters added with :func:`treasure.execution.register_adapter` (kept for existing code;
    new code implements ``treasure_execution_adapters``)."""

    @hookimpl
    def treasure_execution_adapters(self) -> Mapping[str, Callable[..., "ExecutionAdapter"]]:
        from treasure.execution import base

        return dict(getattr(base, "_REGISTRY", {}))


def manager() -> pluggy.PluginManager:
    """The process's plugin manager: built-ins registered, ``treasure`` entry points loaded."""
    global _manager, _entry_points_loaded
    if _manager is None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        pm.register(Builtin(), _BUILTIN_NAME)
        pm.register(_LegacyAdapters(), "treasure-register-adapter")
        _manager = pm
    if not _entry_points_loaded:
        _entry_points_loaded = True
        _manager.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
    return _manager


@contextlib.contextmanager
def registered(plugin: Any, name: str | None = None) -> Iterator[Any]:
    """Register ``plugin`` (a module or object with ``@hookimpl`` functions) for the block."""
    pm = manager()
    pm.register(plugin, name)
    try:
        yield plugin
    finally:
        pm.unregister(plugin)


def _identity(value: Any) -> Any:
    """What makes two declarations the same: a class or function by where it is defined (a module
    imported again, e.g. by pytester, makes a new object of the same declaration), else the value."""
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    return (module, qualname) if isinstance(module, str) and isinstance(qualname, str) else value


def _merged(kind: str, results: list[Mapping[str, Any] | None]) -> dict[str, Any]:
    from treasure.errors import RunError

    merged: dict[str, Any] = {}
    for result in results:
        for key, value in (result or {}).items():
            if key in merged and merged[key] is not value and _identity(merged[key]) != _identity(value):
                raise RunError("PLUGIN_CONFLICT", f"two plugins declare the {kind} {key!r} differently: "
                               f"{merged[key]!r} and {value!r}")
            merged[key] = value
    return dict(sorted(merged.items()))


# ------------------------------------------------------------------------------------------
# execution adapters


def adapters() -> dict[str, Callable[..., "ExecutionAdapter"]]:
    """Every declared adapter factory by name (sorted)."""
    return _merged("execution adapter", manager().hook.treasure_execution_adapters())


def adapter_names() -> list[str]:
    return list(adapters())


def create_adapter(name: str, **kwargs: Any) -> "ExecutionAdapter":
    """The adapter ``name`` built with ``kwargs``; ADAPTER_UNKNOWN names the known ones."""
    from treasure.errors import RunError

    known = adapters()
    if name not in known:
        raise RunError("ADAPTER_UNKNOWN", f"unknown execution adapter {name!r} (known: {', '.join(known)})",
                       field="execution.adapter",
                       hint=f"set execution.adapter (or --adapter) to one of: {', '.join(known)}; more come "
                            "from plugins (`treasure` entry points)")
    return known[name](**kwargs)


# ------------------------------------------------------------------------------------------
# strategies


def strategies() -> dict[str, type | str]:
    """Every strategy a plugin declares by name (sorted): class or ``module:Class`` string."""
    return _merged("strategy", manager().hook.treasure_strategies())


def strategy_modules() -> tuple[str, ...]:
    """Module patterns ``module:Class`` references may use: plugins' and ``TREASURE_STRATEGY_MODULES``."""
    patterns: list[str] = []
    for result in manager().hook.treasure_strategy_modules():
        patterns.extend(result or ())
    for value in strategies().values():
        if isinstance(value, str) and ":" in value:
            patterns.append(value.rpartition(":")[0])
    patterns.extend(p.strip() for p in os.environ.get(ALLOW_ENV, "").split(",") if p.strip())
    return tuple(sorted(set(patterns)))


def module_allowed(module: str, patterns: tuple[str, ...] | None = None) -> bool:
    for pattern in strategy_modules() if patterns is None else patterns:
        if pattern.endswith(".*"):
            package = pattern[:-2]
            if module == package or module.startswith(package + "."):
                return True
        elif module == pattern:
            return True
    return False


def parse_module_ref(ref: str) -> tuple[str, str]:
    """``(module, class)`` of a ``module:Class`` reference, checked (STRATEGY_UNKNOWN) and allowed
    (STRATEGY_UNKNOWN with how to allow it) without importing anything."""
    from treasure.errors import RunError

    match = _MODULE_REF.fullmatch(ref)
    if match is None:
        raise RunError("STRATEGY_UNKNOWN", f"strategy {ref!r} is not a name, module:Class or file.py:Class "
                       "reference", field="strategy.name")
    module, class_name = match.group(1), match.group(2)
    if not module_allowed(module):
        raise RunError("STRATEGY_UNKNOWN", f"strategy module {module!r} is not provided by any plugin and not "
                       f"allowed (nothing was imported)", field="strategy.name",
                       hint=f"name a built-in or plugin strategy ({', '.join(strategies())}), a workspace "
                            f"file (path/to/file.py:Class), or allow the module: expose it in a `treasure` "
                            f"entry point (treasure_strategies hook) or set {ALLOW_ENV}={module}")
    return module, class_name


def resolve_strategy(ref: str) -> type | str | None:
    """What ``ref`` names if it is a declared strategy name: its class, or its ``module:Class``."""
    return strategies().get(ref)


# ------------------------------------------------------------------------------------------
# event checks


def has_event_checks() -> bool:
    return bool(manager().hook.treasure_check_event.get_hookimpls())


def check_event(event: dict[str, Any], workspace: "Workspace") -> list[str]:
    """Every problem the plugins' ``treasure_check_event`` find in ``event`` (flattened)."""
    results = manager().hook.treasure_check_event(event=event, workspace=workspace)
    return [str(problem) for result in results for problem in (result or ())]
