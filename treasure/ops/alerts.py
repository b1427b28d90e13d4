"""Pending alerts and their acknowledgements (the pre-run checklist's "no pending alerts").

What an alert is, so that it can be counted, acknowledged and never silently forgotten:

- ``run``: a run that did not end ``complete`` (halted, error, or no run_end), or whose log holds
  ERROR or CRITICAL events. One alert per run, summarising its events by type.
- ``recon``: a run whose reconciliation found mismatches (RECON ``recon_mismatch`` events, else
  ``reports/recon_report.json``), or escalated to a halt.

Failed gates are *not* alerts: acknowledging must never make a failing gate look fine, so the
checklists read evidence/gates.json directly. An alert's id (``run-3fa9c1d2e0``) is a digest of
what identifies the occurrence: the run id and the hash of its first ERROR/CRITICAL event (or its
last event), so the id is stable while the run is unchanged, and a run made again under the same id
with a new problem raises a new alert. Acks are kept in data/alerts.json, written atomically under
a lock; an acked alert stays acked.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from treasure.canonical import canonical_bytes
from treasure.errors import TreasureError
from treasure.jsonio import atomic_write_json
from treasure.ops import OpsError
from treasure.ops.evidence import read_json_doc, read_recon
from treasure.ops.query import EventFilter, iter_events
from treasure.ops.runs import RunInfo, latest_run_id, list_runs
from treasure.ops.segments import run_segments
from treasure.workspace import Workspace

STORE_VERSION = 1
_SEVERE = EventFilter(levels=("ERROR", "CRITICAL"))


@dataclass(frozen=True)
class Alert:
    id: str
    kind: str                      # run | recon
    run_id: str
    level: str                     # ERROR | CRITICAL
    title: str
    count: int
    first_seq: int | None = None
    by_type: dict[str, int] = field(default_factory=dict)
    action: str = ""
    acked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alert_id(kind: str, key: dict[str, Any]) -> str:
    return f"{kind}-{hashlib.sha256(canonical_bytes(key)).hexdigest()[:10]}"


# ------------------------------------------------------------------------------------------
# collecting
# ------------------------------------------------------------------------------------------
def _run_alert(ws: Workspace, info: RunInfo) -> Alert | None:
    court = info.court or {}
    by_level = (court.get("events") or {}).get("by_level")
    if info.status == "complete" and by_level is not None and not (by_level.get("ERROR") or by_level.get("CRITICAL")):
        return None  # the court report counted every event: nothing to scan
    counts: Counter[str] = Counter()
    first_hash = first_seq = None
    critical = info.status in ("halted", "error")
    segments = run_segments(ws, info.run_id)
    if segments:
        try:
            for hit in iter_events(ws, info.run_id, _SEVERE, segments=segments):
                event = hit.event
                counts[event["event_type"]] += 1
                if first_hash is None:
                    first_hash, first_seq = event.get("hash"), event.get("seq")
                critical = critical or event.get("level") == "CRITICAL"
        except TreasureError as exc:
            counts[f"unreadable log ({exc.code})"] += 1
            critical = True
    if info.status == "complete" and not counts:
        return None
    if info.status == "complete":
        title = f"run {info.run_id}: " + _describe(counts)
    else:
        state = "no run_end (crashed, or still running)" if info.status == "open" else info.status
        reason = f" ({info.reason})" if info.reason else ""
        title = f"run {info.run_id}: {state}{reason}" + (f"; {_describe(counts)}" if counts else "")
    key = {"run_id": info.run_id, "first": first_hash or (court.get("events") or {}).get("last_hash"),
           "status": info.status}
    return Alert(alert_id("run", key), "run", info.run_id, "CRITICAL" if critical else "ERROR", title,
                 sum(counts.values()) or 1, first_seq, dict(sorted(counts.items())),
                 f"review with `treasure diagnose {info.run_id}`, then `treasure ack`")


def _describe(counts: Counter[str]) -> str:
    total = sum(counts.values())
    parts = ", ".join(f"{name}×{n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{total} ERROR/CRITICAL event(s): {parts}"


def _recon_alert(ws: Workspace, run_id: str, latest: str | None) -> Alert | None:
    recon = read_recon(ws, run_id, latest_run=latest)
    if recon.source is None:
        return None
    if recon.problem is not None:
        key = {"run_id": run_id, "problem": recon.problem}
        return Alert(alert_id("recon", key), "recon", run_id, "ERROR",
                     f"recon evidence of run {run_id} unreadable: {recon.problem}", 1,
                     action=f"re-run `treasure recon {run_id}`")
    if recon.mismatches == 0 and not recon.halted:
        return None
    codes = ", ".join(f"{code}×{n}" for code, n in sorted(recon.by_code.items()))
    escalated = " — halted: escalate to the trading desk" if recon.halted else ""
    key = {"run_id": run_id, "first": recon.first_hash or recon.digest}
    return Alert(alert_id("recon", key), "recon", run_id, "CRITICAL" if recon.halted else "ERROR",
                 f"run {run_id}: {recon.mismatches} recon mismatch(es) ({codes}){escalated}", recon.mismatches,
                 by_type=dict(sorted(recon.by_code.items())),
                 action="check adapter logs, verify network latency, review tolerance settings; then `treasure ack`")


def collect(ws: Workspace, runs: list[RunInfo] | None = None) -> list[Alert]:
    """Every alert in the workspace (or of ``runs``), acked or not, sorted by run id then kind."""
    acks = load_acks(ws)
    try:
        latest = latest_run_id(ws)
    except TreasureError:
        latest = None
    found: list[Alert] = []
    for info in runs if runs is not None else list_runs(ws):
        for alert in (_run_alert(ws, info), _recon_alert(ws, info.run_id, latest)):
            if alert is not None:
                found.append(Alert(**{**asdict(alert), "acked": alert.id in acks}))
    return sorted(found, key=lambda a: (a.run_id, a.kind, a.id))


def pending(ws: Workspace) -> list[Alert]:
    return [a for a in collect(ws) if not a.acked]


# ------------------------------------------------------------------------------------------
# acknowledging
# ------------------------------------------------------------------------------------------
def store_path(ws: Workspace) -> Path:
    return ws.data_dir / "alerts.json"


def load_acks(ws: Workspace) -> dict[str, Any]:
    doc, problem = read_json_doc(store_path(ws))
    if problem == "absent":
        return {}
    if problem is not None or not isinstance(doc, dict) or not isinstance(doc.get("acks"), dict):
        raise OpsError("ALERTS_STORE", f"data/alerts.json is {problem or 'not an ack store'}",
                       path=str(store_path(ws)))
    return doc["acks"]


@contextmanager
def _locked(ws: Workspace) -> Iterator[None]:
    ws.data_dir.mkdir(parents=True, exist_ok=True)
    with open(ws.data_dir / ".alerts.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def resolve(alerts: list[Alert], wanted: str) -> Alert:
    """An alert by full id or unique prefix (at least 4 characters)."""
    exact = [a for a in alerts if a.id == wanted]
    if exact:
        return exact[0]
    matches = [a for a in alerts if len(wanted) >= 4 and a.id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise OpsError("ALERT_AMBIGUOUS", f"{wanted!r} matches {len(matches)} alerts: "
                       + ", ".join(a.id for a in matches[:5]), field="ALERT")
    raise OpsError("ALERT_UNKNOWN", f"no alert {wanted!r}", field="ALERT")


def acknowledge(ws: Workspace, wanted: list[str], *, note: str = "", run_id: str | None = None,
                everything: bool = False) -> tuple[list[Alert], list[Alert]]:
    """Ack alerts by id/prefix, every alert of a run, or all pending. Returns (newly acked,
    already acked); unknown ids are refused before anything is written."""
    alerts = collect(ws)
    chosen: dict[str, Alert] = {}
    for item in wanted:
        alert = resolve(alerts, item)
        chosen[alert.id] = alert
    if run_id is not None:
        for alert in alerts:
            if alert.run_id == run_id:
                chosen[alert.id] = alert
        if not any(a.run_id == run_id for a in alerts):
            raise OpsError("ALERT_UNKNOWN", f"run {run_id!r} has no alerts", field="--run")
    if everything:
        chosen.update({a.id: a for a in alerts if not a.acked})
    now = _dt.datetime.now(_dt.timezone.utc)  # treasure: allow-nondeterminism operator metadata (ack time)
    with _locked(ws):
        acks = load_acks(ws)
        new = [a for a in chosen.values() if a.id not in acks]
        old = [a for a in chosen.values() if a.id in acks]
        for alert in new:
            acks[alert.id] = {"time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "note": note, "run_id": alert.run_id,
                              "kind": alert.kind, "title": alert.title}
        if new:
            atomic_write_json(store_path(ws), {"schema_version": STORE_VERSION, "acks": acks})
    return sorted(new, key=lambda a: a.id), sorted(old, key=lambda a: a.id)
