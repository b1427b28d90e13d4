"""Treasure's own gates: the one list of their names and descriptions.

Everything that names the built-in gates asks this module: the pytest plugin declares them through
its ``treasure_gates`` hook (:mod:`pytest_treasure.builtin`), the operations checklist and status
use :data:`RUNBOOK_GATES`, and ``treasure verify --help`` / ``treasure gates`` list them. No pytest
import: the CLI needs the names without loading the plugin. Third-party gates are declared with
the ``treasure_gates`` hook and are not listed here.
"""

from __future__ import annotations

#: ``(name, one-line description)`` of each built-in gate: the runbook's six first, in its order
#: (Step 2), then gates added since.
BUILTIN_GATES: tuple[tuple[str, str], ...] = (
    ("e2", "spec/ and truth/ are valid schemas or documents; SSOT, latest reports and dataset pin check out"),
    ("phase2", "engine invariants over a full default run: equity, fees and PnL, risk limits, order states"),
    ("determinism", "same inputs give canonically identical evidence; no wall clock or global random in code"),
    ("persist", "the SQLite store holds exactly the events and reports of each run, idempotently"),
    ("dryrun-live", "recorded live fills reconcile with the dry run within the SSOT's tolerances"),
    ("events", "every event log validates line by line: schema, seq, time order, hash chain, run_id"),
    ("lookahead", "the strategy's decisions before sampled cuts of its data equal the full run's (no look-ahead)"),
    ("anchor", "every committed run agrees with its anchored manifest: log head, report hashes, signature, ledger"),
)

#: How many of :data:`BUILTIN_GATES` (the first ones) make up the runbook's gate suite (Step 2).
_RUNBOOK_COUNT = 6

#: Every built-in gate's name (``treasure verify`` runs them all by default).
NAMES: tuple[str, ...] = tuple(name for name, _ in BUILTIN_GATES)

#: The runbook's gate suite, in its order: what ``checklist pre`` expects to have passed. A gate
#: added to :data:`BUILTIN_GATES` joins it only when the runbook does (raise ``_RUNBOOK_COUNT``).
RUNBOOK_GATES: tuple[str, ...] = NAMES[:_RUNBOOK_COUNT]


def describe(name: str) -> str | None:
    """The description of a built-in gate, ``None`` for any other name."""
    return dict(BUILTIN_GATES).get(name)


def names_text() -> str:
    """``e2, phase2, ...``: the built-in names for help texts."""
    return ", ".join(NAMES)
