"""Treasure's extension contract: pluggy hookspecs under the project name "treasure".

A third party extends Treasure by implementing these hooks (with :data:`hookimpl`) in a module or
object and exposing it through a setuptools entry point in the ``treasure`` group::

    # pyproject.toml of the third party
    [project.entry-points.treasure]
    my_exchange = "my_pkg.treasure_plugin"

    # my_pkg/treasure_plugin.py
    from treasure.hookspecs import hookimpl

    @hookimpl
    def treasure_execution_adapters():
        from my_pkg.exchange import ExchangeAdapter
        return {"my-exchange": ExchangeAdapter}

    @hookimpl
    def treasure_strategies():
        return {"breakout": "my_pkg.strats:Breakout"}

Entry points are loaded on first use (the first adapter or strategy lookup), never at import.
Treasure's own adapters and strategies are registered the same way, as the plugin
:mod:`treasure.plugins` calls "treasure-builtin". Code may also register a plugin for a while
with :func:`treasure.plugins.registered` (tests do). The pytest-level hooks (gates, and the same
``treasure_check_event`` for the events gate) are in :mod:`pytest_treasure.hookspecs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:  # pragma: no cover
    from treasure.execution.base import ExecutionAdapter
    from treasure.workspace import Workspace

PROJECT = "treasure"
#: The entry point group third-party plugins are found in.
ENTRY_POINT_GROUP = "treasure"
hookspec = HookspecMarker(PROJECT)
hookimpl = HookimplMarker(PROJECT)


@hookspec
def treasure_execution_adapters() -> "Mapping[str, Callable[..., ExecutionAdapter]] | None":
    """Declare execution adapters: a mapping of name (what ``execution.adapter`` in the SSOT and
    ``treasure run --adapter`` say) to a factory called as ``factory(execution=..., config=...,
    workspace=..., run_id=..., **adapter_options)`` returning an
    :class:`~treasure.execution.base.ExecutionAdapter` (usually the adapter class itself).

    Every implementation is called and the mappings merged; two plugins declaring one name with
    different factories is an error (``PLUGIN_CONFLICT``). Import the adapter inside the hook,
    so listing adapters stays cheap.
    """


@hookspec
def treasure_strategies() -> "Mapping[str, type | str] | None":
    """Declare strategies by name: a mapping of the name an SSOT's ``strategy.name`` may use to the
    :class:`~treasure.strategy.Strategy` subclass, or to a ``"module:Class"`` string imported only
    when that strategy is loaded. Every implementation is called and the mappings merged (a name
    declared twice differently is ``PLUGIN_CONFLICT``).

    Declaring ``"module:Class"`` also vouches for ``module``: an SSOT may then name any class of it
    as ``module:Class``. Any other ``module:Class`` is refused before anything is imported unless
    :func:`treasure_strategy_modules` or ``TREASURE_STRATEGY_MODULES`` allows its module.
    """


@hookspec
def treasure_strategy_modules() -> "Sequence[str] | None":
    """Modules whose classes an SSOT may name as ``module:Class``: exact module names, or
    ``"package.*"`` for a package and everything under it. Every implementation is called and the
    lists joined. Treasure itself vouches for ``treasure.*``.
    """


@hookspec
def treasure_check_event(event: dict[str, Any], workspace: "Workspace") -> "list[str] | None":
    """Check one event (already schema-valid, in log order) of a run under ``workspace``.

    Return the problems found as short strings (empty list or ``None`` when the event is fine).
    ``treasure hunt`` and the ``treasure_invariants`` fixture report them as ``event_log``
    violations. Called for every event of every checked run, so keep it cheap: filter on
    ``event["event_type"]`` first.
    """
