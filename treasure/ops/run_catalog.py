"""The catalog of runs in a workspace: ids, verdicts, where their evidence lives.

Replaces the runbook's ``ls -lt reports/*.json`` and ``wc -l logs/events/run_*.jsonl``: a run is
known by its event log (in logs/events/ or an archive) or its reports (reports/runs/<id>/). Its
status comes from its court report, else from the log's last event (``run_end``), else it is
``open`` (still running, or crashed before run_end). Logs named ``run_recon-<id>`` are a run's
reconciliation record, not runs of their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treasure.errors import EventLogError, RunError
from treasure.logfiles import archived_run_ids, local_segments
from treasure.logread import read_last_line
from treasure.ops import OpsError
from treasure.ops.archive import log_state
from treasure.ops.evidence import read_json_doc
from treasure.ops.segments import line_object
from treasure.workspace import Workspace, check_run_id

RECON_PREFIX = "recon-"


@dataclass(frozen=True)
class RunInfo:
    """One run as ``treasure status`` lists it."""

    run_id: str
    status: str              # complete | halted | error | open | unknown
    reason: str | None
    location: str            # logs | archive | none
    log_bytes: int
    segments: int
    events: int | None       # from the court report or the archive manifest (None: not counted)
    court: dict[str, Any] | None
    court_problem: str | None
    sort_key: float          # newest first: court report (else log) modification time
    verdict: Verdict | None = None  # the one rule's answer (None only when the log could not be read)

    def to_dict(self) -> dict[str, Any]:
        metrics = (self.court or {}).get("metrics") or {}
        by_level = ((self.court or {}).get("events") or {}).get("by_level") or {}
        return {"run_id": self.run_id, "status": self.status, "reason": self.reason,
                "location": self.location, "log_bytes": self.log_bytes, "segments": self.segments,
                "events": self.events, "errors": by_level.get("ERROR"), "criticals": by_level.get("CRITICAL"),
                "final_equity_usd": metrics.get("final_equity_usd"), "total_return": metrics.get("total_return"),
                "court_problem": self.court_problem}


#: Why a run that is not committed is not complete (shown as ``incomplete (no court report)``).
NO_COURT = "no court report"


@dataclass(frozen=True)
class Verdict:
    """What a run is, decided in one place (:func:`run_verdict`) for status, diagnose and the
    checklists. ``committed``: the run reached its commit point, i.e. its court report exists
    (whatever it says); only a committed run whose court says ``complete`` is complete."""

    status: str              # complete | degraded | halted | error | incomplete | open
    reason: str | None
    committed: bool

    @property
    def complete(self) -> bool:
        return self.committed and self.status == "complete"

    def label(self) -> str:
        return self.status + (f" ({self.reason})" if self.reason else "")


def run_verdict(court: dict[str, Any] | None, court_problem: str | None,
                log_end: dict[str, Any] | None, *, log_open: bool = False, log_read: bool = False) -> Verdict:
    """The one rule: a run is committed by its court report (written after the log is flushed,
    fsynced and closed with ``run_end``), so its status is the court's. Without a court report
    (killed before or while writing it, or a report write that failed) it is ``incomplete (no court
    report)`` whatever the log's ``run_end`` claims, or ``open`` when the log has no ``run_end`` and
    is still open (running, or crashed mid-run). ``log_end`` is the ``run_end`` payload or None;
    ``log_read``: the caller read the log (``log_end`` None then means the log has no run_end,
    e.g. a torn last line), and a committed run whose log lost its end is not called complete."""
    if court is not None and log_read and log_end is None:
        said = str(court.get("status", "unknown"))
        return Verdict("incomplete", f"the event log has no run_end although its court report says {said}", True)
    if court is not None:
        return Verdict(str(court.get("status", "unknown")), _reason(court.get("reason")), True)
    if court_problem not in (None, "absent"):
        return Verdict("incomplete", f"court report {court_problem}", False)
    if log_end is None and log_open:
        return Verdict("open", f"{NO_COURT}, no run_end: still running or crashed", False)
    if log_end is not None:
        said = str(log_end.get("status", "unknown"))
        return Verdict("incomplete", f"{NO_COURT}; the log's run_end says {said}", False)
    return Verdict("incomplete", NO_COURT, False)


def _reason(value: Any) -> str | None:
    return None if value is None else str(value)


def status_doc_status(verdict: Verdict) -> tuple[str, str | None]:
    """``treasure status``'s schema (truth/status.schema.json) has no ``incomplete``: it is shown as
    ``unknown`` with the reason starting ``incomplete: ...`` (rendered ``incomplete (...)``)."""
    if verdict.status == "incomplete":
        return "unknown", f"incomplete: {verdict.reason}" if verdict.reason else "incomplete"
    return verdict.status, verdict.reason


def status_label(status: str, reason: str | None) -> str:
    """How a status document's (status, reason) reads: ``incomplete (no court report ...)`` for
    what :func:`status_doc_status` had to store as ``unknown``."""
    if status == "unknown" and reason is not None and reason.startswith("incomplete"):
        rest = reason[len("incomplete"):].lstrip(": ")
        return f"incomplete ({rest})" if rest else "incomplete"
    return status + (f" ({reason})" if reason else "")


def verdict_of(ws: Workspace, run_id: str) -> Verdict:
    """:func:`run_verdict` for a run of ``ws`` (reads its court report and its log's last line)."""
    info = run_info(ws, run_id)
    return info.verdict if info.verdict is not None else Verdict("incomplete", info.reason, False)


def court_path(ws: Workspace, run_id: str) -> Path:
    return ws.run_reports(run_id) / "court_report.json"


def read_court(ws: Workspace, run_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The run's court report, or ``(None, problem)`` ("absent", or why it is unreadable)."""
    doc, problem = read_json_doc(court_path(ws, run_id))
    if problem is None and not isinstance(doc, dict):
        return None, "not a JSON object"
    return doc, problem


def is_recon_log(run_id: str) -> bool:
    return run_id.startswith(RECON_PREFIX)


def all_run_ids(ws: Workspace) -> list[str]:
    """Every engine run id with a log (local or archived) or a reports folder, sorted."""
    ids = set(ws.run_ids()) | set(archived_run_ids(ws))
    runs_dir = ws.reports_dir / "runs"
    if runs_dir.is_dir():
        ids |= {p.name for p in runs_dir.iterdir() if p.is_dir()}
    valid = set()
    for run_id in ids:
        try:
            check_run_id(run_id)
        except RunError:
            continue
        if not is_recon_log(run_id) or (ws.run_reports(run_id) / "court_report.json").exists():
            valid.add(run_id)
    return sorted(valid)


def run_info(ws: Workspace, run_id: str, *, archived: dict[str, Any] | None = None) -> RunInfo:
    court, problem = read_court(ws, run_id)
    segments = local_segments(ws, run_id)
    member = (archived if archived is not None else archived_run_ids(ws)).get(run_id)
    location = "logs" if segments else "archive" if member is not None else "none"
    log_bytes = sum(s.size for s in segments)
    events = None
    log_end: dict[str, Any] | None = None
    log_open = False
    if court is not None:
        events = (court.get("events") or {}).get("total")
    elif segments:
        try:
            last = line_object(read_last_line(segments[-1].path, root=ws.root)) if segments[-1].path else {}
        except EventLogError as exc:  # a device, a symlink out, an over-long line: named, not read
            return RunInfo(run_id, "unknown", f"[{exc.code}] {exc.message}", "logs", sum(s.size for s in segments),
                           len(segments), None, None, None, _mtime(segments[-1].path) or 0.0)
        if last.get("event_type") == "run_end":
            log_end = last.get("payload") if isinstance(last.get("payload"), dict) else {}
            events = last.get("seq", -1) + 1 if isinstance(last.get("seq"), int) else None
        else:
            log_open = log_state(segments, ws) == "open"
    elif member is not None:
        log_end = {"status": member.end_status} if member.end_status else None
        log_open = member.end_status is None
    verdict = run_verdict(court, problem, log_end, log_open=log_open)
    status, reason = status_doc_status(verdict)
    sort_key = _mtime(court_path(ws, run_id)) or (_mtime(segments[-1].path) if segments else None) or 0.0
    return RunInfo(run_id, status, reason, location, log_bytes, len(segments), events, court,
                   None if problem in (None, "absent") else problem, sort_key, verdict)


def list_runs(ws: Workspace) -> list[RunInfo]:
    """Every run, newest first (ties by id, so the order is stable)."""
    archived = archived_run_ids(ws)
    infos = [run_info(ws, run_id, archived=archived) for run_id in all_run_ids(ws)]
    return sorted(infos, key=lambda r: (-r.sort_key, r.run_id))


def latest_run_id(ws: Workspace) -> str:
    """The run of reports/court_report.json (the engine's latest copy), else the newest run."""
    doc, problem = read_json_doc(ws.reports_dir / "court_report.json")
    if problem is None and isinstance(doc, dict) and isinstance(doc.get("run_id"), str):
        return doc["run_id"]
    runs = list_runs(ws)
    if not runs:
        raise RunError("RUN_UNKNOWN", "no runs in this workspace yet", field="run_id",
                       hint="start one with `treasure run`")
    return runs[0].run_id


def latest_pair_problem(ws: Workspace) -> tuple[str | None, str | None]:
    """The latest copies ``reports/court_report.json`` and ``reports/eqs_report.json`` are replaced
    one after the other, so a run killed (or failing) between the two leaves them naming different
    runs. Returns ``(problem, run_ids)``: a message when both exist and their ``run_id`` differ
    (or one has none), else None; and the run ids they name (``"court,eqs"``) for callers that
    only care about one run."""
    ids: list[str | None] = []
    for name in ("court_report", "eqs_report"):
        doc, problem = read_json_doc(ws.reports_dir / f"{name}.json")
        if problem == "absent":
            return None, None
        ids.append(doc.get("run_id") if problem is None and isinstance(doc, dict)
                   and isinstance(doc.get("run_id"), str) else None)
    court_id, eqs_id = ids
    named = f"{court_id},{eqs_id}"
    if court_id is not None and court_id == eqs_id:
        return None, named
    return (f"reports/court_report.json names run {court_id!r} but reports/eqs_report.json names run "
            f"{eqs_id!r}: the latest copies are from different runs (a run stopped between writing the two); "
            f"read each run's own reports in reports/runs/<id>/, and re-run the latest run with "
            f"`treasure run --run-id {eqs_id or court_id} --overwrite` to rewrite both"), named


def resolve_run_id(ws: Workspace, run_id: str | None) -> str:
    """``None`` or ``latest`` -> the latest run; otherwise a valid id of a known run."""
    if run_id in (None, "latest"):
        return latest_run_id(ws)
    check_run_id(run_id)
    if not (local_segments(ws, run_id) or ws.run_reports(run_id).is_dir()
            or run_id in archived_run_ids(ws)):
        raise RunError("RUN_UNKNOWN", f"unknown run {run_id!r}", field="run_id")
    return run_id


def require_court(ws: Workspace, run_id: str) -> dict[str, Any]:
    court, problem = read_court(ws, run_id)
    if court is None:
        path = ws.relative(court_path(ws, run_id))
        if problem == "absent":
            raise OpsError("REPORT_MISSING", f"run {run_id} has no court report ({path})", path=path)
        raise OpsError("EVIDENCE_INVALID", f"court report of run {run_id} is {problem}", path=path)
    return court


def _mtime(path: Path | None) -> float | None:
    try:
        return os.stat(path).st_mtime if path is not None else None
    except OSError:
        return None
