"""Operations: the operator runbook (docs/operations.md) as library code behind the CLI.

One module per concern, each usable without the CLI:

- :mod:`~treasure.ops.segments`  where a run's event log lives (local parts and archived members)
- :mod:`~treasure.ops.query`     streaming event filters (the runbook's grep/jq lines)
- :mod:`~treasure.ops.run_catalog`      the catalog of runs and their verdicts
- :mod:`~treasure.ops.evidence`  optional evidence written by other parts (gates, recon, lock, DB)
- :mod:`~treasure.ops.alerts`    pending alerts and their acknowledgements
- :mod:`~treasure.ops.status`, :mod:`~treasure.ops.diagnose`, :mod:`~treasure.ops.checklist`
- :mod:`~treasure.ops.emergency` the emergency flag (halt / resume)
- :mod:`~treasure.ops.rotate`, :mod:`~treasure.ops.archive`, :mod:`~treasure.ops.html_report`

Nothing here writes canonical evidence: operator metadata (ack and halt times) may read the wall
clock, marked where it does.
"""

from __future__ import annotations

from treasure.errors import TreasureError


#: The runbook's rotation size ("rotate if >100MB"); here so the CLI can show it without imports.
DEFAULT_MAX_MB = 100.0


class OpsError(TreasureError):
    """An operator command refused or could not do what was asked (exit code 2)."""


__all__ = ["DEFAULT_MAX_MB", "OpsError"]
