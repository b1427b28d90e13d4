"""The recon report (truth/recon_report.schema.json) and the RECON events, built from a result.

Pure functions: nothing here reads a clock or a file, so the same inputs give the same bytes. The
report's ``mismatches`` are sorted by (order id, code) and every number is rounded to 10 decimals.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

from treasure.canonical import canonical_bytes
from treasure.recon.venue_sessions import LiveSession
from treasure.recon.model import CODES, Ledger, ReconResult
from treasure.recon.runlog import RECON_PREFIX, RunRecord

SCHEMA_VERSION = 1
HALT_REASON = "recon_mismatch_threshold"
HALT_RULE = "halt when mismatched_orders > max_mismatches"
_MAX_RUN_ID = 64


def recon_id(run_id: str, *, run_last_hash: str, live_sha256: str, tolerances: Mapping[str, Any]) -> str:
    """The id of one reconciliation: ``recon-<run_id>-<10 hex>``, the hex a digest of what it
    compared (the run's id and last event hash, the live session's SHA-256, the tolerances).

    Deterministic: the same inputs give the same id (so the same report and log bytes, and one
    alert), any different input a new one, so every distinct recon keeps its own evidence under
    ``reports/recon/<recon_id>/`` and ``logs/events/run_<recon_id>.jsonl``. Shortened to the
    64 characters a run id may have by cutting ``run_id`` (the digest still covers all of it).
    """
    digest = hashlib.sha256(canonical_bytes({
        "run_id": run_id, "run_last_hash": run_last_hash, "live_sha256": live_sha256,
        "tolerances": dict(tolerances)})).hexdigest()[:10]
    keep = _MAX_RUN_ID - len(RECON_PREFIX) - len(digest) - 1
    return f"{RECON_PREFIX}{run_id[:keep]}-{digest}"


def recon_run_id(run_id: str) -> str:
    """The name of a run's reconciliation log before every recon had its own id
    (``recon-<run_id>``, shortened with a digest if needed): read by ops tools in older workspaces."""
    candidate = RECON_PREFIX + run_id
    if len(candidate) <= _MAX_RUN_ID:
        return candidate
    digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:12]
    keep = _MAX_RUN_ID - len(RECON_PREFIX) - len(digest) - 1
    return f"{RECON_PREFIX}{run_id[:keep]}-{digest}"


def status_of(result: ReconResult) -> str:
    if result.halted:
        return "halted"
    return "mismatches" if result.mismatches else "clean"


def build_report(*, run: RunRecord, live: LiveSession, live_ledger: Ledger, result: ReconResult,
                 live_path: str, event_log: str, recon_run: str | None = None) -> dict[str, Any]:
    """The recon_report.json document (``recon_run``: the recon's id, default :func:`recon_id`)."""
    tol = result.tolerances
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run.run_id,
        "recon_run_id": recon_run or recon_id(run.run_id, run_last_hash=run.last_hash, live_sha256=live.sha256,
                                              tolerances=tol.as_dict()),
        "status": status_of(result),
        "run": {
            "adapter": run.adapter,
            "symbol": run.symbol,
            "event_log": list(run.log_files),
            "events": run.events,
            "last_hash": run.last_hash,
            "orders": run.ledger.orders,
            "fills": run.ledger.fills,
        },
        "live": {
            "path": live_path,
            "sha256": live.sha256,
            "venue": live.venue,
            "messages": len(live.messages),
            "orders": live_ledger.orders,
            "fills": live_ledger.fills,
        },
        "tolerances": tol.as_dict(),
        "orders_compared": result.orders_compared,
        "matched": result.matched,
        "mismatched_orders": result.mismatched_orders,
        "mismatch_count": len(result.mismatches),
        "summary": result.summary,
        "halt": {"triggered": result.halted, "threshold": tol.max_mismatches, "rule": HALT_RULE},
        "mismatches": [m.as_dict() for m in result.mismatches],
        "event_log": event_log,
    }


def recon_events(report: dict[str, Any], *, report_path: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(category, event_type, level, payload)`` of the recon log, in order: started, one
    ``recon_mismatch`` per mismatch, ``halt`` above the threshold, completed."""
    run_id = report["run_id"]
    events: list[tuple[str, str, str, dict[str, Any]]] = [("RECON", "recon_started", "INFO", {
        "run_id": run_id,
        "live_fixture": report["live"]["path"],
        "live_sha256": report["live"]["sha256"],
        "run_last_hash": report["run"]["last_hash"],
        "orders_expected": report["run"]["orders"],
        "orders_live": report["live"]["orders"],
        "tolerances": report["tolerances"],
    })]
    for mismatch in report["mismatches"]:
        events.append(("RECON", "recon_mismatch", "WARN", {"run_id": run_id, **mismatch}))
    if report["halt"]["triggered"]:
        events.append(("RECON", "halt", "CRITICAL", {
            "reason": HALT_REASON,
            "detail": (f"{report['mismatched_orders']} mismatched orders > recon.max_mismatches "
                       f"{report['halt']['threshold']} (run {run_id})")[:500],
            "bar_idx": None,
            "cancelled_orders": 0,
        }))
    level = {"clean": "INFO", "mismatches": "WARN", "halted": "ERROR"}[report["status"]]
    events.append(("RECON", "recon_completed", level, {
        "run_id": run_id,
        "status": report["status"],
        "orders_compared": report["orders_compared"],
        "matched": report["matched"],
        "mismatched_orders": report["mismatched_orders"],
        "mismatch_count": report["mismatch_count"],
        "summary": {code: report["summary"][code] for code in CODES},
        "halted": report["halt"]["triggered"],
        "report": report_path,
    }))
    return events
