"""Treasure's run invariants for tests: a re-export of :mod:`treasure.invariants`.

The checks live in :mod:`treasure.invariants` (pure functions over a run's evidence, no pytest);
``from pytest_treasure.invariants import check_outcome`` keeps working. The ``treasure_invariants``
fixture and the ``@pytest.mark.treasure_invariants(only=..., skip=...)`` marker are declared in
:mod:`pytest_treasure.plugin` and use :class:`InvariantChecker` and :func:`restrict` from here.
Importing this module imports no numpy, jsonschema or engine (only :mod:`treasure.errors` and
the standard library, through :mod:`treasure.invariants`).
"""

from __future__ import annotations

from treasure.invariants import (
    CHECKS,
    INVARIANTS,
    Invariant,
    InvariantChecker,
    InvariantViolation,
    check_accounting,
    check_clean_run,
    check_coded_errors,
    check_data_events,
    check_determinism,
    check_event_log,
    check_evidence,
    check_orders,
    check_outcome,
    check_report_agreement,
    check_risk,
    restrict,
    selected,
)

__all__ = [
    "CHECKS",
    "INVARIANTS",
    "Invariant",
    "InvariantChecker",
    "InvariantViolation",
    "check_accounting",
    "check_clean_run",
    "check_coded_errors",
    "check_data_events",
    "check_determinism",
    "check_event_log",
    "check_evidence",
    "check_orders",
    "check_outcome",
    "check_report_agreement",
    "check_risk",
    "restrict",
    "selected",
]
