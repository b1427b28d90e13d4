"""Reconciliation history: one line per ``treasure recon``, appended to ``reports/recon/history.jsonl``.

Every recon keeps its own evidence under its recon id (``reports/recon/<recon_id>/recon_report.json``
and ``logs/events/run_<recon_id>.jsonl``); this file is the index over them, in the order the
recons were made, with what the runbook's weekly "review reconciliation accuracy
(recon_report.json trends)" needs: matched orders, mismatches by code, match rate, status.

It is an operator journal, not canonical evidence: ``seq`` counts the recons made in this workspace
and ``time`` is the wall-clock time of the recon (operator metadata, like data/emergency.log).
The reports it points to stay byte-identical for the same inputs. Writes are whole lines appended
with ``O_APPEND`` under a lock and fsynced; a torn last line (a writer killed mid-append) is
ignored by readers and fenced off by the next append, any other bad line is reported, never fatal.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager

import orjson

from treasure.errors import TreasureIOError
from treasure.file_locks import exclusive
from treasure.recon.model import CODES
from treasure.workspace import Workspace

HISTORY_NAME = "history.jsonl"
HISTORY_FORMAT = "treasure-recon-history/1"
#: the fields every history entry has (checked on read)
FIELDS = ("seq", "recon_id", "run_id", "status", "orders_compared", "matched", "mismatched_orders",
          "mismatch_count", "summary", "match_rate", "halted", "report")


def recon_dir(ws: Workspace) -> Path:
    """``reports/recon/``: one folder per recon id, and the history index."""
    return ws.reports_dir / "recon"


def history_path(ws: Workspace) -> Path:
    return recon_dir(ws) / HISTORY_NAME


def match_rate(matched: int, compared: int) -> float | None:
    """Matched / compared orders, rounded to 6 decimals; None when nothing was compared."""
    return round(matched / compared, 6) if compared > 0 else None


def _now() -> str:
    moment = _dt.datetime.now(_dt.timezone.utc)  # treasure: allow-nondeterminism operator metadata (recon time)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_from_report(report: dict[str, Any], *, report_path: str, sim_ts_ms: int) -> dict[str, Any]:
    """A history entry (without ``seq``/``time``) summarising one recon report."""
    compared, matched = int(report["orders_compared"]), int(report["matched"])
    return {
        "format": HISTORY_FORMAT,
        "recon_id": report["recon_run_id"],
        "run_id": report["run_id"],
        "live": report["live"]["path"],
        "live_sha256": report["live"]["sha256"],
        "status": report["status"],
        "orders_compared": compared,
        "matched": matched,
        "mismatched_orders": int(report["mismatched_orders"]),
        "mismatch_count": int(report["mismatch_count"]),
        "summary": {code: int(report["summary"].get(code, 0)) for code in CODES},
        "match_rate": match_rate(matched, compared),
        "halted": bool(report["halt"]["triggered"]),
        "threshold": int(report["halt"]["threshold"]),
        "report": report_path,
        "event_log": report["event_log"],
        "sim_ts_ms": int(sim_ts_ms),
    }


def _locked(folder: Path) -> ContextManager[None]:
    return exclusive(folder / ".history.lock")


@dataclass
class History:
    """The parsed history: entries in file order, and any line that could not be read."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def last_seq(self) -> int:
        return max((int(e["seq"]) for e in self.entries), default=0)


def read_history(ws: Workspace) -> History:
    """Every readable entry of reports/recon/history.jsonl (absent file: no entries)."""
    path = history_path(ws)
    history = History()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return history
    except OSError as exc:
        history.problems.append(f"{ws.relative(path)}: unreadable: {exc.strerror or exc}")
        return history
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            if number == len(lines):  # no newline after it: a torn append
                continue
            history.problems.append(f"{ws.relative(path)}:{number}: not valid JSON (line skipped)")
            continue
        missing = [name for name in FIELDS if not isinstance(entry, dict) or name not in entry]
        if missing or not isinstance(entry.get("seq"), int):
            history.problems.append(f"{ws.relative(path)}:{number}: not a recon history entry "
                                    f"(missing {', '.join(missing) or 'an integer seq'}; line skipped)")
            continue
        history.entries.append(entry)
    return history


def append_entry(ws: Workspace, entry: dict[str, Any], *, durable: bool = True) -> dict[str, Any]:
    """Append ``entry`` with the next ``seq`` and the wall-clock ``time``; returns what was written."""
    path = history_path(ws)
    with _locked(path.parent):
        record = {**entry, "seq": read_history(ws).last_seq + 1, "time": _now()}
        data = orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n"
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # fence off a torn last line
                os.write(fd, data)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise TreasureIOError("IO_ERROR", f"cannot append to {ws.relative(path)}: {exc.strerror or exc}",
                                  path=ws.relative(path)) from exc
    return record


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over ``entries``: recons, by status, mismatches by code, mean and worst match rate."""
    rates = [float(e["match_rate"]) for e in entries if isinstance(e.get("match_rate"), (int, float))]
    by_status: dict[str, int] = {}
    for entry in entries:
        by_status[str(entry["status"])] = by_status.get(str(entry["status"]), 0) + 1
    return {
        "recons": len(entries),
        "by_status": dict(sorted(by_status.items())),
        "halted": sum(1 for e in entries if e.get("halted")),
        "summary": {code: sum(int((e.get("summary") or {}).get(code, 0)) for e in entries) for code in CODES},
        "mean_match_rate": round(sum(rates) / len(rates), 6) if rates else None,
        "min_match_rate": min(rates) if rates else None,
    }
