"""``treasure db check``: is the run database intact, and does every run hold together?

Checked, in order: SQLite's own ``PRAGMA integrity_check`` and ``foreign_key_check`` (PostgreSQL:
child rows without a parent, per foreign key, in one snapshot); the schema
(version, applied migrations and table definitions equal to what this code creates); then per run:
events 0..n-1 without gaps, each stored line hashing to its hash (recomputed from the canonical
line via :func:`treasure.events.hashed_body`), chained by ``prev``, its columns equal to the line;
orders, fills and positions re-derived from the events and compared row by row; the run row's
summary; and for finished runs the reports (present, unaltered, and counting exactly the stored
events). A run still ``running`` (interrupted, or ingested without reports) is a warning, not a
failure: its stored prefix must still be intact.

A file that is not SQLite, not a Treasure DB, or too damaged to read raises a coded
:class:`StoreError` instead of a report.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from treasure.canonical import canonical_bytes
from treasure.events import GENESIS_HASH, hashed_body
from treasure.store import rows, schema
from treasure.store.backend import Db, connect, db_errors
from treasure.store.errors import StoreError

MAX_FINDINGS_PER_RUN = 20
_KEYS = {"orders": (1,), "fills": (1, 2), "positions": (1,)}


@dataclass(frozen=True)
class Finding:
    level: str  # "error" | "warn"
    code: str
    message: str
    run_id: str | None = None

    def render(self) -> str:
        where = f"run {self.run_id}: " if self.run_id else ""
        return f"{self.level:<5} {self.code}: {where}{self.message}"


@dataclass
class CheckReport:
    path: str
    schema_version: int = 0
    latest_version: int = schema.latest_version()
    runs: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "schema_version": self.schema_version,
                "latest_version": self.latest_version, "runs": self.runs,
                "findings": [f.__dict__ for f in self.findings]}

    def render(self) -> str:
        total = sum(r["events"] for r in self.runs)
        lines = [f"db check: {'OK' if self.ok else 'FAILED'}  {self.path}  (schema v{self.schema_version}, "
                 f"{len(self.runs)} run(s), {total} event(s))"]
        for run in self.runs:
            lines.append(f"  {run['run_id']:<40} {run['status']:<9} {run['events']:>8} events  "
                         f"{'ok' if run['ok'] else 'BROKEN'}")
        lines.extend("  " + f.render() for f in self.findings)
        return "\n".join(lines)


class _RunChecker:
    def __init__(self, conn: Db, report: CheckReport, run: tuple[Any, ...]) -> None:
        self.conn = conn
        self.report = report
        (self.run_id, self.status, self.start_hash, self.inputs, self.ssot_sha, self.dataset_sha,
         self.strategy_sha, self.started_ts, self.count, self.last_hash, self.last_ts, self.end_seq,
         self.end_status) = run
        self.findings = 0

    def add(self, level: str, code: str, message: str) -> None:
        self.findings += 1
        if self.findings <= MAX_FINDINGS_PER_RUN:
            self.report.findings.append(Finding(level, code, message, self.run_id))
        elif self.findings == MAX_FINDINGS_PER_RUN + 1:
            self.report.findings.append(Finding(level, "STORE_MORE", "more findings for this run omitted",
                                                self.run_id))

    def check(self) -> dict[str, Any]:
        errors_before = len(self.report.errors)
        seen, by_category, by_level, derived, start, end, last = self._events()
        self._summary(seen, start, end, last)
        for table, expected in derived.items():
            self._derived(table, expected)
        self._reports(seen, last[0] if last else -1, by_category, by_level, derived)
        return {"run_id": self.run_id, "status": self.status, "events": seen,
                "ok": len(self.report.errors) == errors_before}

    def _events(self):
        expected_seq, prev = 0, GENESIS_HASH
        by_category: Counter[str] = Counter()
        by_level: Counter[str] = Counter()
        derived: dict[str, list[tuple[Any, ...]]] = {"orders": [], "fills": [], "positions": []}
        start = end = last = None
        seen = 0
        cursor = self.conn.stream("SELECT seq, ts_ms, category, event_type, level, prev, hash, line FROM events "
                                  "WHERE run_id = ? ORDER BY seq", (self.run_id,))
        for seq, ts_ms, category, event_type, level, row_prev, row_hash, text in cursor:
            seen += 1
            if seq != expected_seq:
                gap = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq}..{seq - 1}"
                self.add("error", "STORE_EVENTS_MISSING", f"{gap} missing (deleted rows)"
                         if seq > expected_seq else f"seq {seq} out of order")
                prev = row_prev
            expected_seq = seq + 1
            line = text.encode("utf-8")
            try:
                body, stated = hashed_body(line)
                event = orjson.loads(line)
            except (ValueError, orjson.JSONDecodeError):
                self.add("error", "STORE_EVENT_HASH", f"seq {seq}: the stored line is not a sealed event")
                continue
            if hashlib.sha256(body).hexdigest() != stated or stated != row_hash:
                self.add("error", "STORE_EVENT_HASH", f"seq {seq}: the stored line does not match its hash "
                         "(the event was edited)")
            if row_prev != prev:
                self.add("error", "STORE_CHAIN", f"seq {seq}: prev does not match the hash of seq {seq - 1} "
                         "(chain broken)")
            columns = (self.run_id, seq, ts_ms, category, event_type, level, row_prev, row_hash)
            fields = tuple(event.get(k) for k in ("run_id", "seq", "ts_ms", "category", "event_type", "level",
                                                  "prev", "hash"))
            if columns != fields:
                names = [k for k, a, b in zip(rows.EVENT_COLUMNS, columns, fields) if a != b]
                self.add("error", "STORE_EVENT_COLUMNS", f"seq {seq}: column(s) {', '.join(names)} differ from "
                         "the stored line")
            prev = row_hash
            by_category[category] += 1
            by_level[level] += 1
            table = rows.DERIVED.get(event_type)
            if table is not None:
                try:
                    derived[table].append(rows.ROW_BUILDERS[table](event))
                except (KeyError, TypeError, ValueError):
                    self.add("error", "STORE_EVENT_COLUMNS", f"seq {seq}: {event_type} lacks fields")
            if seq == 0:
                start = event
            if event_type == "run_end":
                end = event
            last = (seq, row_hash, ts_ms)
        return seen, by_category, by_level, derived, start, end, last

    def _summary(self, seen: int, start: Any, end: Any, last: Any) -> None:
        if seen == 0:
            self.add("error", "STORE_EVENTS_MISSING", "the run has no events")
            return
        if start is None:
            self.add("error", "STORE_EVENTS_MISSING", "seq 0 (run_start) is missing")
        elif start.get("hash") != self.start_hash or \
                canonical_bytes(start.get("payload", {})).decode("utf-8") != self.inputs:
            self.add("error", "STORE_RUN_ROW", "runs.start_hash/inputs differ from the stored run_start")
        else:
            payload = start["payload"]
            stated = (payload.get("ssot_sha256"), payload.get("dataset", {}).get("sha256"),
                      payload.get("strategy", {}).get("source_sha256"))
            if stated != (self.ssot_sha, self.dataset_sha, self.strategy_sha):
                self.add("error", "STORE_RUN_ROW", "runs input hashes differ from the stored run_start")
        if (self.count, self.last_hash, self.last_ts) != (last[0] + 1, last[1], last[2]):
            self.add("error", "STORE_RUN_ROW", f"runs says {self.count} events ending {self.last_hash[:12]}…, "
                     f"the events table holds up to seq {last[0]} ending {last[1][:12]}…")
        stored_end = (end["seq"], end["payload"].get("status")) if end else (None, None)
        if (self.end_seq, self.end_status) != stored_end:
            self.add("error", "STORE_RUN_ROW", f"runs end ({self.end_seq}, {self.end_status}) differs from the "
                     f"stored run_end {stored_end}")

    def _derived(self, table: str, expected: list[tuple[Any, ...]]) -> None:
        key = _KEYS[table]
        columns = rows.COLUMNS[table]
        order = ", ".join(columns[i] for i in key)
        actual = self.conn.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE run_id = ? ORDER BY {order}",
                                   (self.run_id,)).fetchall()
        expected = sorted(expected, key=lambda r: tuple(r[i] for i in key))
        if actual == expected:
            return
        stored = {tuple(r[i] for i in key): r for r in actual}
        derived = {tuple(r[i] for i in key): r for r in expected}
        for k in sorted(set(stored) | set(derived)):
            a, b = stored.get(k), derived.get(k)
            label = f"{table} row ({', '.join(f'{columns[i]} {v}' for i, v in zip(key, k))})"
            if a is None:
                self.add("error", "STORE_DERIVED", f"{label} is missing (its event is stored)")
            elif b is None:
                self.add("error", "STORE_DERIVED", f"{label} has no matching event")
            elif a != b:
                diffs = [f"{c} {x!r} in the table, {y!r} in its event" for c, x, y in zip(columns, a, b) if x != y]
                self.add("error", "STORE_DERIVED", f"{label} differs: {'; '.join(diffs)}")

    def _reports(self, seen: int, last_seq: int, by_category: Counter[str], by_level: Counter[str],
                 derived: dict[str, list]) -> None:
        docs: dict[str, Any] = {}
        for name, body, sha in self.conn.execute("SELECT name, body, sha256 FROM reports WHERE run_id = ? "
                                                 "ORDER BY name", (self.run_id,)):
            if hashlib.sha256(body.encode("utf-8")).hexdigest() != sha:
                self.add("error", "STORE_REPORT_HASH", f"{name} does not match its stored sha256 (edited)")
            try:
                docs[name] = orjson.loads(body)
            except orjson.JSONDecodeError:
                self.add("error", "STORE_REPORT_HASH", f"{name} is not valid JSON")
        if self.status == "running":
            if docs:
                self.add("error", "STORE_RUN_ROW", "the run is 'running' but has reports")
            else:
                self.add("warn", "STORE_RUN_INCOMPLETE", f"incomplete: {seen} event(s) stored, no reports "
                         "(interrupted, or ingested without reports)")
            return
        missing = [n for n in ("court_report", "eqs_report") if n not in docs]
        if missing:
            self.add("error", "STORE_REPORT_MISSING", f"marked {self.status} without {', '.join(missing)}")
            return
        court, eqs = docs["court_report"], docs["eqs_report"]
        counted = court.get("events", {})
        metrics = court.get("metrics", {})
        expected = {
            "court status": (court.get("status"), self.status),
            "court events.total": (counted.get("total"), seen),
            "court events.last_hash": (counted.get("last_hash"), self.last_hash),
            "court events.by_category": (counted.get("by_category"), dict(sorted(by_category.items()))),
            "court events.by_level": (counted.get("by_level"), dict(sorted(by_level.items()))),
            "court metrics.orders": (metrics.get("orders"), len(derived["orders"])),
            "court metrics.fills": (metrics.get("fills"), len(derived["fills"])),
            "eqs orders": (eqs.get("orders"), len(derived["orders"])),
            "eqs fills": (eqs.get("fills"), len(derived["fills"])),
        }
        for what, (reported, stored) in expected.items():
            if reported != stored:
                self.add("error", "STORE_REPORT_COUNTS", f"{what} is {reported!r} in the report, {stored!r} in "
                         "the stored events")
        if self.status in ("complete", "halted", "degraded") and (self.end_seq != last_seq or self.end_status != self.status):
            self.add("error", "STORE_RUN_ROW", f"marked {self.status} but the last stored event is not a run_end "
                     "saying so")


def _schema_findings(conn: Db, report: CheckReport) -> None:
    version = conn.user_version()
    report.schema_version = version
    applied = conn.execute("SELECT version, name, sql_sha256 FROM schema_migrations ORDER BY version").fetchall()
    expected = [(m.version, m.name, m.sha256) for m in schema.MIGRATIONS if m.version <= version]
    if applied != expected:
        report.findings.append(Finding("error", "STORE_SCHEMA", "schema_migrations differs from the migrations "
                                       f"this Treasure ships for version {version}"))
    if version < schema.latest_version():
        report.findings.append(Finding("warn", "STORE_SCHEMA_OLD", f"schema version {version}, latest "
                                       f"{schema.latest_version()}: migrated on the next write"))
    want = conn.expected_objects(version)
    have = conn.objects()
    if have != want:
        names = sorted({r[1] for r in set(have) ^ set(want)})
        report.findings.append(Finding("error", "STORE_SCHEMA", f"table definitions differ from schema v{version}: "
                                       f"{', '.join(names)}"))


def check_store(path: Path | str) -> CheckReport:
    """Check the DB at ``path`` (a file or a ``postgresql://`` URL) exactly as found; raise
    StoreError if it is not a readable Treasure DB."""
    conn = connect(path, write=False, migrate=False)
    report = CheckReport(conn.label)
    try:
        try:
            integrity = conn.integrity()
        except db_errors() as exc:
            raise conn.translate(exc, doing="checking integrity") from exc
        if integrity != ["ok"]:
            raise StoreError("STORE_CORRUPT", f"SQLite integrity check failed: {'; '.join(integrity[:3])}",
                             path=conn.label)
        try:
            _schema_findings(conn, report)
            for orphan in conn.orphans()[:MAX_FINDINGS_PER_RUN]:
                report.findings.append(Finding("error", "STORE_ORPHAN", orphan))
            runs = conn.execute("SELECT run_id, status, start_hash, inputs, ssot_sha256, dataset_sha256, "
                                "strategy_source_sha256, started_ts_ms, events, last_hash, last_ts_ms, end_seq, "
                                "end_status FROM runs ORDER BY run_id").fetchall()
            for run in runs:
                report.runs.append(_RunChecker(conn, report, run).check())
        except db_errors() as exc:
            raise conn.translate(exc, doing="checking runs") from exc
    finally:
        conn.close()
    return report
