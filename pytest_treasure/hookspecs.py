"""The extension contract of Treasure's gates: pluggy hookspecs under the project name "treasure".

A third party adds a gate or an event check by implementing these hooks in a pytest plugin, in a
``conftest.py`` (plain functions named ``treasure_*`` are picked up; the marker is optional there),
or in a package exposing a ``treasure`` entry point. Treasure's own gates are registered the same
way, by :mod:`pytest_treasure.builtin`.

Example (a ``conftest.py`` at the repository root)::

    from pytest_treasure import GateSpec, hookimpl

    @hookimpl
    def treasure_gates():
        return [GateSpec("latency", "fills arrive within two bars")]

    @hookimpl
    def treasure_check_event(event, workspace):
        if event["event_type"] == "order_filled" and event["payload"]["latency_bars"] > 2:
            return [f"seq {event['seq']}: fill after {event['payload']['latency_bars']} bars"]
        return []
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:  # pragma: no cover
    from treasure.workspace import Workspace

    from pytest_treasure.registry import GateSpec

PROJECT = "treasure"
hookspec = HookspecMarker(PROJECT)
hookimpl = HookimplMarker(PROJECT)


@hookspec
def treasure_gates() -> "Sequence[GateSpec | tuple[str, str]]":
    """Declare gates: each a :class:`~pytest_treasure.GateSpec` (or a ``(name, description)``
    pair) whose name a test may then use in ``@pytest.mark.gate(name)`` and an operator in
    ``--gate NAME``. Names are lowercase words joined by ``-`` or ``_``; the description is one
    line, shown in the gate summary and in ``evidence/gates.json``. Every implementation is called
    and the results merged; declaring a name twice with different descriptions is an error.
    """
    raise NotImplementedError  # a specification: pluggy calls the implementations, never this body


@hookspec
def treasure_check_event(event: dict[str, Any], workspace: "Workspace") -> "list[str] | None":
    """Check one event (already schema-valid, in log order) of a log under ``workspace``.

    Return the problems found as short strings (empty list or ``None`` when the event is fine);
    the events gate reports each with the file and line of the event. Called for every event of
    every log, so keep it cheap: filter on ``event["event_type"]`` first.
    """
