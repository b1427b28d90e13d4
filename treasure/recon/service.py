"""``treasure recon`` as a library call: read the evidence, reconcile, write report and RECON log.

Order of work: every input is read and checked first (SSOT, the run's verified event log, the live
session), so bad input writes nothing. Every recon has its own id (:func:`recon_id`: a digest of
the run, the live session and the tolerances) and keeps its own evidence: the RECON log
``logs/events/run_<recon_id>.jsonl`` (temp file + rename) and ``reports/recon/<recon_id>/recon_report.json``.
Then the escalation (:mod:`treasure.recon.escalate`: an alert pending until acked, and the emergency
flag above ``recon.max_mismatches``), a line in ``reports/recon/history.jsonl``, and last the
derived "latest" copies ``reports/runs/<run_id>/recon_report.json`` and ``reports/recon_report.json``.
A later recon never replaces an earlier one's evidence (the same inputs give the same id and the
same bytes). Nothing canonical depends on the wall clock: every RECON event carries the sim time at
which the reconciled period ends.
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
from treasure.recon.venue_sessions import LIVE_HINTS, read_live, ledger_from_messages
from treasure.recon.matcher import reconcile
from treasure.recon.model import ReconResult, Tolerances
from treasure.recon.escalate import Escalation, escalate
from treasure.recon.history import append_entry, entry_from_report, recon_dir
from treasure.recon.report import build_report, recon_events, recon_id
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
    report_path: Path              # reports/recon/<recon_id>/recon_report.json (this recon's own)
    latest_report_path: Path       # reports/recon_report.json (a copy of the latest recon)
    event_log: Path                # logs/events/run_<recon_id>.jsonl
    recon_id: str = ""
    run_report_path: Path | None = None   # reports/runs/<run_id>/recon_report.json (latest of the run)
    seq: int | None = None                # its line in reports/recon/history.jsonl
    escalation: Escalation = Escalation()

    @property
    def halted(self) -> bool:
        return self.result.halted


def recorded_sessions_dir(ws: Workspace, run_id: str) -> Path:
    """``fixtures/live/runs/<run_id>/``: the sessions ``treasure recon record RUN_ID`` derived for a run."""
    return ws.fixtures_dir / "live" / "runs" / check_run_id(run_id)


def live_fixture_path(ws: Workspace, recon_section: Any, *, source: str | None = None,
                      run_id: str | None = None) -> Path:
    """The live session to reconcile ``run_id`` against when none is given: the run's own recorded
    clean session (``treasure recon record``) if there is one, else the SSOT's ``recon.live_fixture``
    (or the default), resolved inside the workspace."""
    if run_id is not None:
        own = recorded_sessions_dir(ws, run_id) / "clean.jsonl"
        if own.is_file():
            return own
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
              contracts: Contracts | None = None, escalation: bool = True) -> ReconOutcome:
    """Reconcile run ``run_id`` against a recorded live session and write the evidence.

    ``live_path`` defaults to the run's recorded clean session, else the SSOT's
    ``recon.live_fixture``; tolerances come from the SSOT's ``recon`` section. Exit code 3 (a
    CRITICAL ``halt`` event, a CRITICAL alert and the emergency flag set) when more than
    ``recon.max_mismatches`` orders mismatch, else 0 (an ERROR alert when any mismatch).
    ``escalation=False`` raises no alert and sets no flag (for throwaway workspaces).
    ``durable=False`` skips the fsyncs (for throwaway workspaces in tests; the writes stay
    atomic). ``contracts`` reuses loaded schemas of the workspace's truth/.
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
    path = (Path(live_path) if live_path is not None
            else live_fixture_path(ws, recon_section, source=config.path, run_id=run.run_id))
    shown = ws.relative(path)
    live = read_live(path, display_path=shown, time_window_ms=tolerances.time_window_ms, strict=True)
    if live.symbol and run.symbol and live.symbol != run.symbol:
        raise DataError("LIVE_SYMBOL", f"the live session is for {live.symbol}, run {run.run_id} traded "
                        f"{run.symbol}", path=shown, line=1, field="symbol", hint=LIVE_HINTS["LIVE_SYMBOL"])
    live_ledger = ledger_from_messages(live.messages)
    result = reconcile(run.ledger, live_ledger, tolerances)

    rid = recon_id(run.run_id, run_last_hash=run.last_hash, live_sha256=live.sha256,
                   tolerances=tolerances.as_dict())
    log_path = ws.event_log(rid)
    report_path = recon_dir(ws) / rid / REPORT_NAME
    report = build_report(run=run, live=live, live_ledger=live_ledger, result=result, live_path=shown,
                          event_log=ws.relative(log_path), recon_run=rid)
    contracts.validate("recon_report", report, source=REPORT_NAME)
    last_live = max((m.venue_ts_ms for m in live.messages), default=0)
    ts_ms = max(run.last_ts_ms, last_live)
    ws.ensure_dirs()
    shown_report = ws.relative(report_path)
    _write_log(ws, rid, ts_ms, recon_events(report, report_path=shown_report), contracts, durable=durable)
    atomic_write_json(report_path, report, durable=durable)
    raised = escalate(ws, report, report_path=shown_report) if escalation else Escalation()
    entry = append_entry(ws, {**entry_from_report(report, report_path=shown_report, sim_ts_ms=ts_ms),
                              **raised.to_dict()}, durable=durable)
    run_report = ws.run_reports(run.run_id) / REPORT_NAME
    atomic_write_json(run_report, report, durable=durable)
    latest = ws.reports_dir / REPORT_NAME
    atomic_write_json(latest, report, durable=durable)
    return ReconOutcome(report=report, result=result, exit_code=EXIT_HALTED if result.halted else EXIT_OK,
                        report_path=report_path, latest_report_path=latest, event_log=log_path, recon_id=rid,
                        run_report_path=run_report, seq=int(entry["seq"]), escalation=raised)
