"""Treasure's own gates, registered through the same hook a third party uses."""

from __future__ import annotations

from pytest_treasure.hookspecs import hookimpl
from pytest_treasure.registry import GateSpec

BUILTIN_GATES = (
    GateSpec("e2", "spec/ and truth/ are valid schemas or documents; SSOT, latest reports and dataset pin check out"),
    GateSpec("phase2", "engine invariants over a full default run: equity, fees and PnL, risk limits, order states"),
    GateSpec("determinism", "same inputs give canonically identical evidence; no wall clock or global random in code"),
    GateSpec("events", "every event log validates line by line: schema, seq, time order, hash chain, run_id"),
    GateSpec("persist", "the SQLite store holds exactly the events and reports of each run, idempotently"),
    GateSpec("dryrun-live", "recorded live fills reconcile with the dry run within the SSOT's tolerances"),
)


@hookimpl
def treasure_gates() -> list[GateSpec]:
    return list(BUILTIN_GATES)
