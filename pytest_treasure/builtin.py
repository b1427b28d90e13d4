"""Treasure's own gates, registered through the same hook a third party uses. Their names and
descriptions live in :mod:`treasure.gate_catalog` (the CLI and the checklists read them there)."""

from __future__ import annotations

from treasure.gate_catalog import BUILTIN_GATES as _CATALOG

from pytest_treasure.hookspecs import hookimpl
from pytest_treasure.registry import GateSpec

BUILTIN_GATES = tuple(GateSpec(name, description) for name, description in _CATALOG)


@hookimpl
def treasure_gates() -> list[GateSpec]:
    return list(BUILTIN_GATES)
