"""Dry-run vs live reconciliation: ledgers, the recorded-live format, the matcher and the report.

Typical use (what ``treasure recon RUN_ID`` does)::

    from treasure.recon import run_recon
    outcome = run_recon(Workspace.at("."), "sma_crossover-9ea790eb5934")
    outcome.report["summary"]   # {"MISSING_FILL": 0, "ORDER_STATE_DRIFT": 0, ...}

or, in memory, ``reconcile(expected_ledger, live_ledger, Tolerances(...))``.
"""

from treasure.recon.venue_sessions import (
    LIVE_FORMAT,
    MESSAGE_SCHEMAS,
    LiveMessage,
    LiveProblem,
    LiveSession,
    dump_session,
    ledger_from_messages,
    messages_from_ledger,
    parse_live,
    read_live,
)
from treasure.recon.matcher import reconcile
from treasure.recon.model import CODES, STATES, Ledger, LedgerBuilder, Mismatch, ReconResult, Tolerances
from treasure.recon.report import build_report, recon_events, recon_id, recon_run_id
from treasure.recon.runlog import RunRecord, ledger_from_events, read_run
from treasure.recon.service import (DEFAULT_LIVE_FIXTURE, ReconOutcome, live_fixture_path, recorded_sessions_dir,
                                    run_recon)

__all__ = [
    "CODES", "DEFAULT_LIVE_FIXTURE", "LIVE_FORMAT", "MESSAGE_SCHEMAS", "STATES", "Ledger", "LedgerBuilder",
    "LiveMessage", "LiveProblem", "LiveSession", "Mismatch", "ReconOutcome", "ReconResult", "RunRecord",
    "Tolerances", "build_report", "dump_session", "ledger_from_events", "ledger_from_messages",
    "live_fixture_path", "messages_from_ledger", "parse_live", "read_live", "read_run", "recon_events",
    "recon_id", "recon_run_id", "reconcile", "recorded_sessions_dir", "run_recon",
]
