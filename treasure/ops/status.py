"""``treasure status``: the runbook's 3-minute diagnostic, first step, in one read-only command.

Last runs with their status and event counts (``ls -lt reports``, ``grep status``, ``wc -l``), the
gate state from evidence/gates.json, the emergency flag, the DB, event-log sizes against the
rotation limit, the SSOT against its approval lock, and pending alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from treasure.errors import TreasureError
from treasure.ops import DEFAULT_MAX_MB
from treasure.ops import alerts as alerts_mod
from treasure.ops.emergency import FlagState, read_flag
from treasure import gate_history
from treasure.ops.evidence import read_db, read_gates, read_lock, read_ssot
from treasure.ops.run_catalog import list_runs, status_label
from treasure.workspace import Workspace

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LogSizes:
    files: int
    bytes: int
    largest: tuple[str, int] | None
    over_limit: list[str]


def log_sizes(ws: Workspace, limit_bytes: int) -> LogSizes:
    from treasure.logfiles import discover  # the one layout: segments and strays of logs/events/

    found = discover(ws.logs_dir)
    sizes = sorted((s.name, s.size) for log in found.logs for s in log.segments) + \
        [(p.name, p.lstat().st_size) for p in found.strays]
    largest = max(sizes, key=lambda kv: (kv[1], kv[0])) if sizes else None
    return LogSizes(len(sizes), sum(s for _, s in sizes), largest,
                    [name for name, size in sizes if size > limit_bytes])


def build(ws: Workspace, *, limit: int = 10, max_mb: float = DEFAULT_MAX_MB) -> dict[str, Any]:
    """The status document (truth/status.schema.json)."""
    runs = list_runs(ws)
    ssot, ssot_problem = read_ssot(ws)
    sizes = log_sizes(ws, int(max_mb * 1024 * 1024))
    try:
        found = alerts_mod.collect(ws, runs)
        alert_problem = None
    except TreasureError as exc:
        found, alert_problem = [], f"{exc.code}: {exc.message}"
    pending = [a for a in found if not a.acked]
    return {
        "schema_version": SCHEMA_VERSION,
        "workspace": str(ws.root),
        "runs_total": len(runs),
        "runs": [r.to_dict() for r in runs[:limit]],
        "gates": {**read_gates(ws).to_dict(), "latest": gate_history.summary(ws.root)},
        "emergency": read_flag(ws).to_dict(),
        "db": read_db(ws, ssot).to_dict(ws) if ssot_problem is None else
        {"enabled": False, "path": None, "state": "unknown", "detail": f"SSOT {ssot_problem}", "in_use": False},
        "ssot": {"problem": ssot_problem, **read_lock(ws).to_dict()},
        "logs": {"files": sizes.files, "bytes": sizes.bytes, "limit_mb": max_mb,
                 "largest": {"name": sizes.largest[0], "bytes": sizes.largest[1]} if sizes.largest else None,
                 "over_limit": sizes.over_limit},
        "alerts": {"pending": len(pending), "acked": len(found) - len(pending), "problem": alert_problem,
                   "items": [a.to_dict() for a in pending]},
    }


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} kB"


def render(doc: dict[str, Any]) -> str:
    """Human view of :func:`build`'s document."""
    lines = [f"treasure status: {doc['workspace']}"]
    emergency = doc["emergency"]
    if emergency["halted"]:
        lines.append(f"  EMERGENCY HALT   {FlagState(**emergency).describe()}  (resume: treasure resume)")
    else:
        lines.append("  emergency flag   clear")
    gates = doc["gates"]
    if not gates["ran"]:
        lines.append("  gates            not run yet (treasure verify)")
    elif gates["problem"]:
        lines.append(f"  gates            evidence/gates.json {gates['problem']}")
    else:
        latest = gates.get("latest") or {}
        cells = "  ".join(f"{name} {status}" + (f" ({gate_history.format_age(latest[name]['age_s'])} ago)"
                                                if name in latest else "")
                          for name, status in gates["gates"].items())
        lines.append(f"  gates            {gates['overall'] or '?'}: {cells}")
    db = doc["db"]
    in_use = db.get("in_use") and not db["enabled"]
    lines.append(f"  database         {db['state']}" + (" (run --db)" if in_use else "")
                 + (f" ({db['path']}: {db['detail']})" if db["enabled"] or db.get("in_use") else ""))
    ssot = doc["ssot"]
    if ssot["problem"]:
        lines.append(f"  ssot             spec/ssot.json {ssot['problem']}")
    elif not ssot["present"]:
        lines.append("  ssot             no approval lock (spec/ssot.lock)")
    elif ssot["problem"] is None and ssot["matches"] is not None:
        lines.append("  ssot             " + ("matches its approval lock" if ssot["matches"] else
                                              "CHANGED since its approval (spec/ssot.lock)"))
    logs = doc["logs"]
    largest = f", largest {logs['largest']['name']} {_mb(logs['largest']['bytes'])}" if logs["largest"] else ""
    over = f"; OVER {logs['limit_mb']:g} MB: {', '.join(logs['over_limit'])} (treasure rotate)" if logs["over_limit"] else ""
    lines.append(f"  event logs       {logs['files']} file(s), {_mb(logs['bytes'])}{largest}{over}")
    alerts = doc["alerts"]
    if alerts["problem"]:
        lines.append(f"  alerts           cannot be read: {alerts['problem']}")
    else:
        lines.append(f"  alerts           {alerts['pending']} pending, {alerts['acked']} acknowledged")
        for item in alerts["items"][:5]:
            lines.append(f"    {item['id']}  {item['level']:<8} {item['title']}")
        if alerts["pending"] > 5:
            lines.append(f"    ... {alerts['pending'] - 5} more (treasure ack)")
    lines.append(f"runs ({len(doc['runs'])} of {doc['runs_total']}, newest first)")
    if not doc["runs"]:
        lines.append("  none yet: treasure run")
    for run in doc["runs"]:
        ret = f"{run['total_return'] * 100:+.2f}%" if isinstance(run["total_return"], (int, float)) else ""
        events = run["events"] if run["events"] is not None else "?"
        severe = "" if not (run["errors"] or run["criticals"]) else \
            f"  ERROR {run['errors'] or 0} CRITICAL {run['criticals'] or 0}"
        status = status_label(run["status"], run["reason"])
        lines.append(f"  {run['run_id']:<40} {status:<28} {events:>7} events  {run['location']:<7} {ret}{severe}")
    return "\n".join(lines)
