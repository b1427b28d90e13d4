"""The invariants every Treasure run must keep: public API (the implementation is internal).

>>> from treasure.invariants import INVARIANTS, check_outcome, InvariantViolation

:data:`CHECKS` lists each invariant (name, promise, function) in the order they are checked;
:func:`check_outcome` checks a case's outcome (and a second run, for determinism),
:func:`check_evidence` any run's evidence. :func:`selected` and :func:`restrict` choose which.
Nothing here imports pytest or hypothesis; :mod:`pytest_treasure.invariants` re-exports this
module and adds the ``treasure_invariants`` fixture and marker.
"""

from treasure.invariants._checker import InvariantChecker
from treasure.invariants._checks import (
    CHECKS,
    INVARIANTS,
    Invariant,
    InvariantViolation,
    check_accounting,
    check_clean_run,
    check_coded_errors,
    check_data_events,
    check_determinism,
    check_event_log,
    check_evidence,
    check_no_lookahead,
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
    "check_no_lookahead",
    "check_orders",
    "check_outcome",
    "check_report_agreement",
    "check_risk",
    "restrict",
    "selected",
]
