"""``treasure recon`` as a library call: read the evidence, reconcile, write report and RECON log.

Order of work: every input is read and checked first (SSOT, the run's verified event log, the live
session), so bad input writes nothing. Then the RECON log is written to a temp file and renamed
over ``logs/events/run_recon-<run_id>.jsonl`` (re-running recon replaces it whole; the run's own log
is never touched), then the reports, each atomically. Nothing depends on the wall clock: every
RECON event carries the sim time at which the reconciled period ends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treasure.config import load_config
from treasure.contracts import Contracts
from treasure.errors import EXIT_HALTED, EXIT_OK, DataError, RunError
from treasure.events import EventBus, JsonlSink
from treasure.jsonio import atomic_write_json, fsync_dir
from treasure.recon.live import LIVE_HINTS, read_live, ledger_from_messages
from treasure.recon.matcher import reconcile
from treasure.recon.model import ReconResult, Tolerances
from treasure.recon.report import build_report, recon_events, recon_run_id
from treasure.recon.runlog import RECON_PREFIX, read_run
from treasure.workspace import Workspace, check_run_id

#: Used when the SSOT has no ``recon.live_fixture``: the clean recorded session of the default workspace.
DEFAULT_LIVE_FIXTURE = "fixtures/live/clean.jsonl"
REPORT_NAME = "recon_report.json"


@dataclass(frozen=True)
class ReconOutcome:
    """What a reconciliation produced and where it wrote it."""

    report: dict[str, Any]
    result: ReconResult
    exit_code: int
    report_path: Path
    latest_report_path: Path
    event_log: Path

    @property
    def halted(self) -> bool:
        return self.result.halted


def live_fixture_path(ws: Workspace, recon_section: Any, *, source: str | None = None) -> Path:
    """The SSOT's ``recon.live_fixture`` (or the default), resolved inside the workspace."""
    relative = (recon_section or {}).get("live_fixture", DEFAULT_LIVE_FIXTURE)
    return ws.resolve_inside(relative, field="recon.live_fixture", source=source)


def _write_log(ws: Workspace, recon_id: str, ts_ms: int, events: list[tuple[str, str, str, dict[str, Any]]],
               contracts: Contracts, *, durable: bool) -> Path:
    final = ws.event_log(recon_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    bus = EventBus(recon_id, [JsonlSink(tmp)], check=contracts.check_event)
    try:
        for category, event_type, level, payload in events:
            bus.emit(ts_ms, category, event_type, level, payload)
        bus.flush(durable=durable)
    except BaseException:
        bus.close()
        tmp.unlink(missing_ok=True)
        raise
    bus.close()
    os.replace(tmp, final)
    for stale in ws.log_parts(recon_id):  # rotated parts of an earlier recon belong to that one
        if stale != final:
            stale.unlink()
    if durable:
        fsync_dir(final.parent)
    return final


def run_recon(ws: Workspace, run_id: str, *, live_path: Path | None = None,
              ssot_path: Path | None = None, durable: bool = True,
              contracts: Contracts | None = None) -> ReconOutcome:
    """Reconcile run ``run_id`` against a recorded live session and write the evidence.

    ``live_path`` defaults to the SSOT's ``recon.live_fixture``; tolerances come from the SSOT's
    ``recon`` section. Exit code 3 (and a CRITICAL ``halt`` event) when more than
    ``recon.max_mismatches`` orders mismatch, else 0. ``durable=False`` skips the fsyncs (for
    throwaway workspaces in tests; the writes stay atomic). ``contracts`` reuses loaded schemas of
    the workspace's truth/.
    """
    check_run_id(run_id)
    if run_id.startswith(RECON_PREFIX):
        raise RunError("RECON_OF_RECON", f"{run_id} is a reconciliation log, not a trading run", field="run_id")
    ssot = Path(ssot_path) if ssot_path else ws.ssot_path
    config = load_config(ssot, ws.config_schema_path, display_path=ws.relative(ssot))
    recon_section = config.section("recon")
    tolerances = Tolerances.from_config(recon_section)
    contracts = contracts or Contracts(ws.truth_dir)
    run = read_run(ws, run_id, contracts=contracts)
    path = Path(live_path) if live_path is not None else live_fixture_path(ws, recon_section, source=config.path)
    shown = ws.relative(path)
    live = read_live(path, display_path=shown, time_window_ms=tolerances.time_window_ms, strict=True)
    if live.symbol and run.symbol and live.symbol != run.symbol:
        raise DataError("LIVE_SYMBOL", f"the live session is for {live.symbol}, run {run.run_id} traded "
                        f"{run.symbol}", path=shown, line=1, field="symbol", hint=LIVE_HINTS["LIVE_SYMBOL"])
    live_ledger = ledger_from_messages(live.messages)
    result = reconcile(run.ledger, live_ledger, tolerances)

    recon_id = recon_run_id(run.run_id)
    log_path = ws.event_log(recon_id)
    report_path = ws.run_reports(run.run_id) / REPORT_NAME
    report = build_report(run=run, live=live, live_ledger=live_ledger, result=result, live_path=shown,
                          event_log=ws.relative(log_path))
    contracts.validate("recon_report", report, source=REPORT_NAME)
    last_live = max((m.venue_ts_ms for m in live.messages), default=0)
    ts_ms = max(run.last_ts_ms, last_live)
    ws.ensure_dirs()
    _write_log(ws, recon_id, ts_ms, recon_events(report, report_path=ws.relative(report_path)), contracts,
               durable=durable)
    atomic_write_json(report_path, report, durable=durable)
    latest = ws.reports_dir / REPORT_NAME
    atomic_write_json(latest, report, durable=durable)
    return ReconOutcome(report=report, result=result, exit_code=EXIT_HALTED if result.halted else EXIT_OK,
                        report_path=report_path, latest_report_path=latest, event_log=log_path)
