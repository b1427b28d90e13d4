"""The dry-run side of a reconciliation: what a run intended and filled, read from its event log.

The log is verified first (schema, seq, time order, hash chain), so a tampered or truncated log is
refused with the line at fault instead of being reconciled. Only orders that reached the venue
(``order_placed``) are expected there; an order refused by the engine's own pre-trade risk check
never left the engine and is not part of the reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from treasure.contracts import Contracts
from treasure.errors import EventLogError
from treasure.eventlog import read_events, verify_log
from treasure.recon.model import Ledger, LedgerBuilder
from treasure.workspace import Workspace

RECON_PREFIX = "recon-"


@dataclass(frozen=True)
class RunRecord:
    """A verified run as recon needs it: identity, provenance and the expected ledger."""

    run_id: str
    adapter: str
    symbol: str
    dataset_sha256: str | None
    log_files: tuple[str, ...]
    events: int
    last_hash: str
    last_ts_ms: int
    ledger: Ledger


def ledger_from_events(events: Iterable[dict[str, Any]]) -> tuple[Ledger, dict[str, Any]]:
    """Build the expected ledger from EXEC events; also return the run_start payload (or {})."""
    builder = LedgerBuilder()
    start: dict[str, Any] = {}
    for event in events:
        kind = event.get("event_type")
        payload = event.get("payload") or {}
        ts = int(event.get("ts_ms", 0))
        if kind == "order_placed":
            builder.order(payload["order_id"], side=payload.get("side"), qty=payload.get("qty"), ts_ms=ts)
        elif kind == "order_filled":
            index = builder.order(payload["order_id"], side=payload.get("side"))
            builder.fill(index, ts_ms=ts, qty=payload["fill_qty"], price=payload["price"], fee=payload["fee"])
            builder.reach(index, payload.get("status", "partially_filled"), ts)
        elif kind == "order_cancelled":
            if payload.get("order_id") in builder:
                builder.reach(builder.order(payload["order_id"]), "cancelled", ts)
        elif kind == "order_rejected":
            if payload.get("order_id") in builder:  # rejected after placement: by the venue
                builder.reach(builder.order(payload["order_id"]), "rejected", ts)
        elif kind == "run_start" and not start:
            start = dict(payload)
    return builder.build(), start


def read_run(ws: Workspace, run_id: str, *, contracts: Contracts | None = None) -> RunRecord:
    """Verify a run's event log and read its expected ledger; RUN_UNKNOWN if there is no log."""
    from treasure.logfiles import locate, restore_hint

    found = locate(ws, run_id)
    parts = list(found.paths)
    if not parts:
        archived = found.location == "archive"
        raise EventLogError("RUN_UNKNOWN", f"no event log for run {run_id} in {ws.relative(ws.logs_dir)}"
                            + (" (it is archived)" if archived else ""), path=ws.relative(ws.event_log(run_id)),
                            field="run_id", hint=restore_hint(run_id) if archived else None)
    contracts = contracts or Contracts(ws.truth_dir)
    summary = verify_log(parts, contracts, root=ws.root)
    ledger, start = ledger_from_events(read_events(parts, tolerate_torn_tail=False))
    dataset = start.get("dataset") or {}
    return RunRecord(
        run_id=summary.run_id or run_id,
        adapter=str(start.get("adapter", "unknown")),
        symbol=str(start.get("symbol", "")),
        dataset_sha256=dataset.get("sha256"),
        log_files=tuple(ws.relative(Path(p)) for p in parts),
        events=summary.events,
        last_hash=summary.last_hash,
        last_ts_ms=int(summary.last_ts_ms or 0),
        ledger=ledger,
    )
