"""Which gates exist: a pluggy manager per pytest session, fed by built-ins, plugins and conftests.

Pytest's own plugin manager only knows ``pytest_*`` hooks, so Treasure's hooks live in a separate
:class:`pluggy.PluginManager` named "treasure", kept in ``config.stash``. Every module pytest
registers (plugins, ``conftest.py`` files) that defines a ``treasure_*`` hook is registered here
too, as are packages exposing a ``treasure`` entry point. All of it happens when gates are first
needed: until then the plugin only notes the candidates (:func:`note_plugin`), so a session that
uses no gate pays nothing for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

import pluggy
import pytest

import pytest_treasure.hookspecs as hookspecs

ENTRY_POINT_GROUP = "treasure"
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
_HOOK_NAMES = frozenset(name for name in dir(hookspecs) if name.startswith("treasure_"))


@dataclass(frozen=True)
class GateSpec:
    """A gate: its ``name`` (used in ``@pytest.mark.gate(name)`` and ``--gate``) and a one-line
    ``description`` (shown in the summary and in evidence/gates.json)."""

    name: str
    description: str


class TreasurePluginManager(pluggy.PluginManager):
    """Accepts unmarked ``treasure_*`` functions too, so a conftest needs no decorator."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name in _HOOK_NAMES and callable(getattr(plugin, name, None)):
            return {}
        return opts


@dataclass
class _Registry:
    manager: TreasurePluginManager
    entry_points_loaded: bool = False
    gates: dict[str, GateSpec] | None = None


_KEY = pytest.StashKey[_Registry]()
_PENDING_KEY = pytest.StashKey[list[Any]]()


def defines_treasure_hooks(plugin: Any) -> bool:
    return any(callable(getattr(plugin, name, None)) for name in _HOOK_NAMES)


def _registry(config: pytest.Config) -> _Registry:
    registry = config.stash.get(_KEY, None)
    if registry is None:
        manager = TreasurePluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        import pytest_treasure.builtin as builtin

        manager.register(builtin, "treasure-builtin")
        registry = config.stash[_KEY] = _Registry(manager)
        for plugin in config.stash.get(_PENDING_KEY, []):
            if defines_treasure_hooks(plugin) and not manager.is_registered(plugin):
                manager.register(plugin)
        config.stash[_PENDING_KEY] = []
    return registry


def note_plugin(config: pytest.Config, plugin: Any) -> None:
    """A pytest plugin or conftest that may implement ``treasure_*`` hooks: registered now if the
    Treasure plugin manager exists, else when it is first built."""
    if _KEY in config.stash:
        if defines_treasure_hooks(plugin):
            register_plugin(config, plugin)
        return
    pending = config.stash.setdefault(_PENDING_KEY, [])
    pending.append(plugin)


def register_plugin(config: pytest.Config, plugin: Any) -> None:
    """Register a pytest plugin or conftest module that implements ``treasure_*`` hooks."""
    registry = _registry(config)
    if not registry.manager.is_registered(plugin):
        registry.manager.register(plugin)
        registry.gates = None  # recompute: the new plugin may declare gates


def manager(config: pytest.Config) -> TreasurePluginManager:
    """The session's Treasure plugin manager, entry points loaded. ``manager(config).hook`` calls
    the hooks, e.g. ``manager(config).hook.treasure_check_event(event=e, workspace=ws)``."""
    registry = _registry(config)
    if not registry.entry_points_loaded:
        registry.entry_points_loaded = True
        registry.manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        registry.gates = None
    return registry.manager


def _coerce(item: Any) -> GateSpec:
    if isinstance(item, GateSpec):
        return item
    if isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str) for x in item):
        return GateSpec(*item)
    raise pytest.UsageError(f"treasure_gates() must return GateSpec or (name, description) items, got {item!r}")


def known_gates(config: pytest.Config) -> dict[str, GateSpec]:
    """Every declared gate by name (sorted), validated: names well formed, no conflicting twins."""
    registry = _registry(config)
    pm = manager(config)
    if registry.gates is None:
        found: dict[str, GateSpec] = {}
        for result in pm.hook.treasure_gates():
            for spec in map(_coerce, result or ()):
                if not _NAME.fullmatch(spec.name):
                    raise pytest.UsageError(f"gate name {spec.name!r} is not valid: use lowercase words "
                                            "joined by '-' or '_' (e.g. 'dryrun-live')")
                other = found.get(spec.name)
                if other is not None and other.description != spec.description:
                    raise pytest.UsageError(f"gate {spec.name!r} is declared twice with different "
                                            f"descriptions: {other.description!r} and {spec.description!r}")
                found[spec.name] = spec
        registry.gates = dict(sorted(found.items()))
    return registry.gates


def check_event(config: pytest.Config, event: dict[str, Any], workspace: Any) -> list[str]:
    """Every problem the ``treasure_check_event`` implementations find in ``event`` (flattened)."""
    results: Iterable[list[str] | None] = manager(config).hook.treasure_check_event(event=event,
                                                                                    workspace=workspace)
    return [problem for result in results for problem in (result or ())]


def describe_known(config: pytest.Config) -> str:
    gates = known_gates(config)
    return "\n".join(f"  {name:<14} {spec.description}" for name, spec in gates.items())
