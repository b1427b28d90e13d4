"""Alerts: an append-only record of what went wrong, pending until an operator acknowledges it.

The store is ``data/alerts.jsonl``, one JSON record a line, only ever appended to (``O_APPEND``,
fsynced, under a lock):

- ``{"record": "alert", "id", "code", "level", "source", "run_id", "title", "detail", ...}``: an
  alert raised by a producer (:func:`raise_alert`: the recon command, a run, an emergency flag set
  by a producer) or latched from the evidence (below);
- ``{"record": "ack", "id", "who", "note", "time"}``: written only by ``treasure ack``
  (:func:`ack` / :func:`acknowledge`).

Pending = raised minus acked. Nothing but an ack removes a pending alert: re-running recon, a run
re-made with ``--overwrite``, archiving or deleting a log cannot, because the alert is a record of
its own, not a view of the evidence.

Alerts are also *derived* from the evidence, so runs made without the CLI (a library call, a
pytest session) are not missed:

- ``run``: a run that did not end ``complete`` (halted, error, degraded, or no run_end), or whose
  log holds ERROR or CRITICAL events. One alert per run, summarising its events by type.
- ``recon``: a run whose reconciliation found mismatches (RECON ``recon_mismatch`` events, else
  ``reports/recon_report.json``), or escalated to a halt.

Every reader (:func:`collect`: ``status``, ``checklist``, ``ack``) latches each derived alert it
sees into the store, so once seen it stays pending even if its evidence is later replaced. A run
without run_end is the exception (it may still be running): it is shown while it lasts but not
latched. A derived alert's id (``run-3fa9c1d2e0``) is a digest of what identifies the occurrence
(the run id, the hash of its first ERROR/CRITICAL event or last event, its status), so the id is
stable while the run is unchanged and a run made again with a new problem raises a new alert.

Failed gates are *not* alerts: acknowledging must never make a failing gate look fine, so the
checklists read the gate evidence directly. Acks written by older versions to data/alerts.json are
still honoured (read-only).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ContextManager

import orjson

from treasure.canonical import canonical_bytes
from treasure.errors import TreasureError
from treasure.file_locks import exclusive
from treasure.ops import OpsError
from treasure.ops.evidence import read_json_doc, read_recon
from treasure.ops.query import EventFilter, iter_events
from treasure.ops.run_catalog import RunInfo, latest_run_id, list_runs, status_label
from treasure.ops.segments import run_segments
from treasure.workspace import Workspace

STORE_VERSION = 2
STORE_NAME = "alerts.jsonl"
LEGACY_NAME = "alerts.json"          # acks of STORE_VERSION 1 (read-only now)
LEVELS = ("WARN", "ERROR", "CRITICAL")
_SOURCE = re.compile(r"[a-z][a-z_]{0,31}")
_SEVERE = EventFilter(levels=("ERROR", "CRITICAL"))


@dataclass(frozen=True)
class Alert:
    id: str
    kind: str                      # the source: run | recon | emergency | ... (any producer)
    run_id: str                    # "" when the alert is about no single run
    level: str                     # WARN | ERROR | CRITICAL
    title: str
    count: int
    first_seq: int | None = None
    by_type: dict[str, int] = field(default_factory=dict)
    action: str = ""
    acked: bool = False
    code: str = ""
    detail: str = ""
    raised: str | None = None      # when it was first recorded in the store (operator metadata)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alert_id(kind: str, key: dict[str, Any]) -> str:
    return f"{kind}-{hashlib.sha256(canonical_bytes(key)).hexdigest()[:10]}"


def _now() -> str:
    moment = _dt.datetime.now(_dt.timezone.utc)  # treasure: allow-nondeterminism operator metadata (alert/ack time)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------
# the store
# ------------------------------------------------------------------------------------------
def store_path(ws: Workspace) -> Path:
    return ws.data_dir / STORE_NAME


@dataclass
class Store:
    alerts: dict[str, dict[str, Any]]   # id -> its (first) alert record, in raise order
    acks: dict[str, dict[str, Any]]     # id -> its (first) ack record


def _load_legacy_acks(ws: Workspace) -> dict[str, Any]:
    path = ws.data_dir / LEGACY_NAME
    doc, problem = read_json_doc(path)
    if problem == "absent":
        return {}
    if problem is not None or not isinstance(doc, dict) or not isinstance(doc.get("acks"), dict):
        raise OpsError("ALERTS_STORE", f"data/{LEGACY_NAME} is {problem or 'not an ack store'}", path=str(path))
    return {k: v for k, v in doc["acks"].items() if isinstance(k, str)}


def load_store(ws: Workspace) -> Store:
    """Every record of data/alerts.jsonl (plus legacy acks). A torn last line (a writer killed
    mid-append) is ignored; any other bad line is ``error[ALERTS_STORE]`` naming it."""
    store = Store({}, {})
    for key, value in _load_legacy_acks(ws).items():
        store.acks[key] = {"record": "ack", "id": key, **(value if isinstance(value, dict) else {})}
    path = store_path(ws)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return store
    except OSError as exc:
        raise OpsError("ALERTS_STORE", f"data/{STORE_NAME} is unreadable: {exc.strerror or exc}",
                       path=str(path)) from exc
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            if number == len(lines):  # no newline after it: a torn append, never acknowledged
                continue
            raise OpsError("ALERTS_STORE", f"data/{STORE_NAME} line {number} is not valid JSON",
                           path=str(path), line=number) from None
        kind = record.get("record") if isinstance(record, dict) else None
        ident = record.get("id") if isinstance(record, dict) else None
        if kind not in ("alert", "ack") or not isinstance(ident, str):
            raise OpsError("ALERTS_STORE", f"data/{STORE_NAME} line {number} is not an alert or ack record",
                           path=str(path), line=number)
        target = store.alerts if kind == "alert" else store.acks
        target.setdefault(ident, record)
    return store


def _locked(ws: Workspace) -> ContextManager[None]:
    return exclusive(ws.data_dir / ".alerts.lock")


def _append(ws: Workspace, records: list[dict[str, Any]]) -> None:
    """Append whole lines (one write, O_APPEND, fsync); the caller holds the lock."""
    if not records:
        return
    path = store_path(ws)
    data = b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in records)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size:  # a torn last line (a writer killed mid-append) is cut before we append
                with open(path, "rb") as handle:
                    tail = handle.read()
                if not tail.endswith(b"\n"):
                    os.truncate(path, tail.rfind(b"\n") + 1)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OpsError("ALERTS_STORE", f"cannot append to data/{STORE_NAME}: {exc.strerror or exc}",
                       path=str(path)) from exc


def _alert_record(alert: Alert, *, latched: bool = False) -> dict[str, Any]:
    doc = {k: v for k, v in alert.to_dict().items() if k not in ("acked", "raised", "kind")}
    return {"record": "alert", "source": alert.kind, "time": _now(), **doc, **({"latched": True} if latched else {})}


def _from_record(record: dict[str, Any]) -> Alert:
    raw_types = record.get("by_type")
    by_type: dict[str, Any] = raw_types if isinstance(raw_types, dict) else {}
    level = str(record["level"]) if record.get("level") in LEVELS else "ERROR"
    count = record.get("count")
    first_seq = record.get("first_seq")
    return Alert(
        id=str(record["id"]), kind=str(record.get("source") or "ops"), run_id=str(record.get("run_id") or ""),
        level=level, title=str(record.get("title") or record.get("detail") or record.get("code") or ""),
        count=count if isinstance(count, int) and count >= 0 else 1,
        first_seq=first_seq if isinstance(first_seq, int) else None,
        by_type={str(k): v for k, v in by_type.items() if isinstance(v, int)},
        action=str(record.get("action") or "review, then `treasure ack ID`"),
        code=str(record.get("code") or ""), detail=str(record.get("detail") or ""),
        raised=record.get("time") if isinstance(record.get("time"), str) else None)


# ------------------------------------------------------------------------------------------
# the producers' API
# ------------------------------------------------------------------------------------------
def raise_alert(ws: Workspace, code: str, level: str, source: str, detail: str, run_id: str | None = None,
                *, key: Any = None, title: str | None = None, action: str = "", count: int = 1) -> str:
    """Record an alert; returns its id (``<source>-<10 hex>``). Pending until ``treasure ack``.

    ``key`` identifies the occurrence (default: code, source, run id and detail): raising the same
    key again returns the same id and writes nothing, acked or not. Pass a key unique to the
    occurrence (e.g. a recon's own id) to get a new alert each time it happens.
    """
    if level not in LEVELS:
        raise OpsError("ALERT_INVALID", f"level {level!r} is not one of {', '.join(LEVELS)}", field="level")
    if not _SOURCE.fullmatch(source):
        raise OpsError("ALERT_INVALID", f"source {source!r} must be lower-case letters (e.g. recon, run)",
                       field="source")
    ident = alert_id(source, key if key is not None else
                     {"code": code, "source": source, "run_id": run_id or "", "detail": detail})
    alert = Alert(ident, source, run_id or "", level, title or (f"run {run_id}: {detail}" if run_id else detail),
                  max(count, 0), action=action or "review, then `treasure ack " + ident + "`", code=code,
                  detail=detail)
    with _locked(ws):
        if ident not in load_store(ws).alerts:
            _append(ws, [_alert_record(alert)])
    return ident


def pending(ws: Workspace) -> list[Alert]:
    """Every alert raised and not acknowledged (derived ones included, and latched)."""
    return [a for a in collect(ws) if not a.acked]


def ack(ws: Workspace, ident: str, who: str | None = None, note: str = "") -> bool:
    """Acknowledge one alert by full id (or unique prefix); True if it was pending."""
    new, _ = acknowledge(ws, [ident], note=note, who=who)
    return bool(new)


# ------------------------------------------------------------------------------------------
# derived alerts
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
        state = info.verdict.label() if info.verdict is not None else status_label(info.status, info.reason)
        title = f"run {info.run_id}: {state}" + (f"; {_describe(counts)}" if counts else "")
    key = {"run_id": info.run_id, "first": first_hash or (court.get("events") or {}).get("last_hash"),
           "status": info.status}
    return Alert(alert_id("run", key), "run", info.run_id, "CRITICAL" if critical else "ERROR", title,
                 sum(counts.values()) or 1, first_seq, dict(sorted(counts.items())),
                 f"review with `treasure diagnose {info.run_id}`, then `treasure ack`",
                 code=f"RUN_{(info.verdict.status if info.verdict else info.status).upper()}"
                 if info.status != "complete" else "RUN_ERROR_EVENTS")


def _describe(counts: Counter[str]) -> str:
    total = sum(counts.values())
    parts = ", ".join(f"{name}×{n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{total} ERROR/CRITICAL event(s): {parts}"


def _recon_alert(ws: Workspace, run_id: str, latest: str | None) -> Alert | None:
    recon = read_recon(ws, run_id, latest_run=latest)
    if recon.source is None:
        return None
    if recon.problem is not None:
        key: dict[str, Any] = {"run_id": run_id, "problem": recon.problem}
        return Alert(alert_id("recon", key), "recon", run_id, "ERROR",
                     f"recon evidence of run {run_id} unreadable: {recon.problem}", 1,
                     action=f"re-run `treasure recon {run_id}`", code="RECON_UNREADABLE")
    if recon.mismatches == 0 and not recon.halted:
        return None
    codes = ", ".join(f"{code}×{n}" for code, n in sorted(recon.by_code.items()))
    escalated = " — halted: escalate to the trading desk" if recon.halted else ""
    key = {"run_id": run_id, "first": recon.first_hash or recon.digest}
    return Alert(alert_id("recon", key), "recon", run_id, "CRITICAL" if recon.halted else "ERROR",
                 f"run {run_id}: {recon.mismatches} recon mismatch(es) ({codes}){escalated}", recon.mismatches,
                 by_type=dict(sorted(recon.by_code.items())),
                 action="check adapter logs, verify network latency, review tolerance settings; then `treasure ack`",
                 code="RECON_ESCALATION" if recon.halted else "RECON_MISMATCH")


def derive(ws: Workspace, runs: list[RunInfo] | None = None) -> list[tuple[Alert, bool]]:
    """Alerts the evidence shows now, each with whether it may be latched (finished runs only)."""
    try:
        latest = latest_run_id(ws)
    except TreasureError:
        latest = None
    found: list[tuple[Alert, bool]] = []
    for info in runs if runs is not None else list_runs(ws):
        run_alert = _run_alert(ws, info)
        if run_alert is not None:
            found.append((run_alert, info.status != "open"))
        recon_alert = _recon_alert(ws, info.run_id, latest)
        if recon_alert is not None:
            found.append((recon_alert, True))
    return found


def collect(ws: Workspace, runs: list[RunInfo] | None = None) -> list[Alert]:
    """Every alert, acked or not: the store's records plus what the evidence shows now (latched
    into the store when possible). Sorted by run id, kind, id."""
    store = load_store(ws)
    # a producer that raised alerts about a run (the recon command, say) speaks for it: the same
    # occurrence is not derived a second time from its evidence
    produced = {(r.get("source"), r.get("run_id")) for r in store.alerts.values() if not r.get("latched")}
    derived = [(a, keep) for a, keep in derive(ws, runs)
               if a.id in store.alerts or (a.kind, a.run_id) not in produced]
    latch = [a for a, keep in derived if keep and a.id not in store.alerts]
    if latch:
        try:
            with _locked(ws):
                store = load_store(ws)
                _append(ws, [_alert_record(a, latched=True) for a in latch if a.id not in store.alerts])
                store = load_store(ws)
        except (OpsError, OSError):
            pass  # a read-only workspace: still shown, just not latched
    merged: dict[str, Alert] = {ident: _from_record(record) for ident, record in store.alerts.items()}
    for alert, _ in derived:  # the evidence's view is fresher (counts, by_type) while it exists
        merged[alert.id] = replace(alert, raised=merged[alert.id].raised if alert.id in merged else None)
    found = [replace(a, acked=a.id in store.acks) for a in merged.values()]
    return sorted(found, key=lambda a: (a.run_id, a.kind, a.id))


# ------------------------------------------------------------------------------------------
# acknowledging
# ------------------------------------------------------------------------------------------
def load_acks(ws: Workspace) -> dict[str, Any]:
    """Acks by alert id (both stores)."""
    return load_store(ws).acks


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


def _who(who: str | None) -> str:
    if who:
        return who
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def acknowledge(ws: Workspace, wanted: list[str], *, note: str = "", run_id: str | None = None,
                everything: bool = False, who: str | None = None) -> tuple[list[Alert], list[Alert]]:
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
    by = _who(who)
    with _locked(ws):
        acks = load_store(ws).acks
        new = [a for a in chosen.values() if a.id not in acks]
        old = [a for a in chosen.values() if a.id in acks]
        when = _now()
        _append(ws, [{"record": "ack", "id": a.id, "who": by, "note": note, "time": when, "run_id": a.run_id,
                      "title": a.title} for a in sorted(new, key=lambda a: a.id)])
    return sorted(new, key=lambda a: a.id), sorted(old, key=lambda a: a.id)


__all__ = ["Alert", "ack", "acknowledge", "collect", "load_store", "pending", "raise_alert", "resolve", "store_path"]
