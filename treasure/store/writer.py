"""Writing runs into the DB: idempotent batches, explicit commits, reports last.

Every row has a natural key, so a batch is written by comparing first and inserting only what is
new: rows already stored must be byte-identical (the canonical event line) or the write is
refused with ``STORE_CONFLICT`` naming the run and seq; nothing is ever overwritten. New events
must continue the stored chain exactly (next seq, ``prev`` = stored last hash).

Transactions follow the event bus: :meth:`StoreWriter.write` inserts inside the open transaction
and :meth:`StoreWriter.commit` ends it (the bus checkpoints every 2048 events and durably at halt
and run end), so a crash loses at most the uncommitted tail and the stored events are always a
gap-free, chained prefix of the run.

A run is ``running`` until :meth:`StoreWriter.record_reports` stores its court and EQS reports.
That transaction checks the reports against the stored events (count, last hash, run_end status)
and only then sets complete / halted / error, so a crash at any point can never leave a run marked
finished that is not: the engine writes reports after its sinks close, hence this separate step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import orjson

from treasure.canonical import canonical_bytes, drop_paths
from treasure.store import rows
from treasure.store.backend import Db, connect, db_errors, integrity_errors
from treasure.store.errors import StoreError

if TYPE_CHECKING:  # pragma: no cover
    from treasure.contracts import Contracts

REPORT_NAMES = ("court_report", "eqs_report")
FINAL_STATUSES = ("complete", "halted", "error", "degraded")  # degraded: schema v2
#: Page cache of a writer connection, in KiB (SQLite's default is 2 MiB).
CACHE_KIB = 64 * 1024


@dataclass
class RunState:
    """How far a run's stored chain reaches."""

    run_id: str
    status: str
    events: int
    last_hash: str
    end_seq: int | None


@dataclass
class WriteStats:
    inserted: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class RecordResult:
    """Outcome of :meth:`StoreWriter.record_reports`: the run's status and reports newly stored."""

    status: str
    inserted: int


class StoreWriter:
    """Idempotent writes into one run DB. Not thread-safe; one writer per process and DB."""

    def __init__(self, conn: Db, path: Path | str, *,
                 fault: Callable[[str], None] | None = None) -> None:
        self.conn = conn
        self.path = path
        self.label = conn.label  # printable (a URL without its password)
        self._fault = fault
        self._in_txn = False
        self._states: dict[str, RunState | None] = {}

    @classmethod
    def open(cls, path: Path | str, *, fault: Callable[[str], None] | None = None) -> "StoreWriter":
        """Open or create the DB at ``path`` (a file, or a ``postgresql://`` URL; migrating it) for writing.

        ``fault`` is the engine's fault hook (:mod:`treasure.faults`): it is called with
        ``"db_commit"`` before every commit, so crash drills can kill or fail a run right there.
        """
        conn = connect(path, write=True, create=True)
        if conn.kind == "sqlite":
            conn.execute("PRAGMA synchronous = FULL")
            # a 64 MiB page cache keeps a large ingest transaction from spilling pages to the WAL twice
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        return cls(conn, path if isinstance(path, str) and conn.kind != "sqlite" else Path(path), fault=fault)

    # transactions -----------------------------------------------------------------------------
    def _begin(self) -> None:
        if not self._in_txn:
            try:
                self.conn.begin_write()
            except db_errors() as exc:
                raise self.conn.translate(exc, doing="starting a write") from exc
            self._in_txn = True
            self._states.clear()  # another process may have written since our last transaction

    def commit(self, *, durable: bool = False) -> None:
        """Commit the open transaction.

        The writer's connection runs with ``synchronous = FULL`` (SQLite cannot change it inside a
        transaction), so every commit syncs the WAL and ``durable`` needs nothing more; commits
        come every 2048 events, which keeps the cost small (see docs/persistence.md).
        """
        if not self._in_txn:
            return
        try:
            if self._fault is not None:
                self._fault("db_commit")
            self.conn.commit()
        except OSError as exc:
            self.rollback()
            raise StoreError("STORE_IO", f"committing to the database failed: {exc.strerror or exc}",
                             path=self.label) from exc
        except db_errors() as exc:
            self.rollback()
            raise self.conn.translate(exc, doing="committing") from exc
        self._in_txn = False

    def rollback(self) -> None:
        if self._in_txn:
            try:
                self.conn.rollback()
            except db_errors():
                pass
            self._in_txn = False
        self._states.clear()

    def close(self) -> None:
        self.rollback()
        self.conn.close()

    # reading back -----------------------------------------------------------------------------
    def state(self, run_id: str) -> RunState | None:
        """How far ``run_id``'s stored chain reaches. Inside a write transaction the run is locked
        first (PostgreSQL: until the transaction ends), so the answer stays true while we write."""
        if run_id not in self._states:
            if self._in_txn:
                self.conn.lock_run(run_id)
            row = self.conn.execute("SELECT status, events, last_hash, end_seq FROM runs WHERE run_id = ?",
                                    (run_id,)).fetchone()
            self._states[run_id] = None if row is None else RunState(run_id, row[0], row[1], row[2], row[3])
        return self._states[run_id]

    # events -----------------------------------------------------------------------------------
    def write(self, events: list[dict[str, Any]], lines: list[bytes]) -> WriteStats:
        """Write one batch of one run's consecutive events inside the current transaction.

        Events already stored are compared byte for byte (conflict -> ``STORE_CONFLICT``); the rest
        must continue the stored chain and are inserted with their derived rows.
        """
        stats = WriteStats()
        if not events:
            return stats
        run_id = events[0]["run_id"]
        first = events[0]["seq"]
        self._check_batch(events, run_id, first)
        self._begin()
        try:
            state = self.state(run_id)
            stored = 0 if state is None else state.events
            if first > stored:
                held = f"holds events 0..{stored - 1}" if stored else "holds no events of it"
                raise StoreError("STORE_GAP", f"run {run_id}: the DB {held}; this batch starts at seq {first}",
                                 field="seq")
            overlap = min(len(events), stored - first)
            if overlap > 0:
                self._compare(run_id, first, lines[:overlap])
                stats.unchanged = overlap
            new_events, new_lines = events[overlap:], lines[overlap:]
            if new_events:
                self._append(run_id, state, new_events, new_lines)
                stats.inserted = len(new_events)
        except StoreError:
            self.rollback()
            raise
        except integrity_errors() as exc:
            self.rollback()
            raise StoreError("STORE_CONFLICT", f"run {run_id}: rows of events {first}..{first + len(events) - 1} "
                             f"violate a constraint ({exc})", path=self.label) from exc
        except db_errors() as exc:
            self.rollback()
            raise self.conn.translate(exc, doing=f"writing events of run {run_id}") from exc
        return stats

    @staticmethod
    def _check_batch(events: list[dict[str, Any]], run_id: str, first: int) -> None:
        prev = None
        for offset, event in enumerate(events):
            if event["run_id"] != run_id:
                raise StoreError("STORE_EVENT_INVALID", f"one batch mixes runs {run_id} and {event['run_id']}",
                                 field="run_id")
            if event["seq"] != first + offset:
                raise StoreError("STORE_GAP", f"run {run_id}: seq {event['seq']} where {first + offset} was "
                                 "expected", field="seq")
            if prev is not None and event["prev"] != prev:
                raise StoreError("STORE_CHAIN", f"run {run_id}: seq {event['seq']} does not chain to seq "
                                 f"{event['seq'] - 1}", field="prev")
            prev = event["hash"]

    def _compare(self, run_id: str, first: int, lines: list[bytes]) -> None:
        cursor = self.conn.execute("SELECT seq, line FROM events WHERE run_id = ? AND seq >= ? AND seq < ? "
                                   "ORDER BY seq", (run_id, first, first + len(lines)))
        expected = first
        for seq, stored in cursor:
            if seq != expected:
                break
            if stored.encode("utf-8") != lines[seq - first]:
                raise StoreError("STORE_CONFLICT", f"run {run_id} seq {seq}: the DB holds a different event "
                                 "under this key; refusing to overwrite it", path=self.label, field="seq")
            expected += 1
        if expected != first + len(lines):
            raise StoreError("STORE_GAP", f"run {run_id}: stored event seq {expected} is missing "
                             "(the DB was edited)", path=self.label, field="seq",
                             hint="run `treasure db check`; restore the DB from a backup")

    def _append(self, run_id: str, state: RunState | None, events: list[dict[str, Any]],
                lines: list[bytes]) -> None:
        first = events[0]
        if state is None:
            if first["seq"] != 0 or first["event_type"] != "run_start":
                raise StoreError("STORE_EVENT_INVALID", f"run {run_id} is not in the DB and its first event is "
                                 f"{first['event_type']} seq {first['seq']}, not run_start seq 0", field="seq")
            self._insert_run(first)
            state = RunState(run_id, "running", 0, first["prev"], None)
        else:
            if state.status != "running":
                raise StoreError("STORE_CONFLICT", f"run {run_id} is stored as {state.status} with "
                                 f"{state.events} events; refusing to append seq {first['seq']}",
                                 path=self.label, field="seq")
            if first["prev"] != state.last_hash:
                raise StoreError("STORE_CONFLICT", f"run {run_id} seq {first['seq']} does not continue the "
                                 "stored chain (its prev differs from the stored last hash)",
                                 path=self.label, field="prev")
        try:
            event_rows = [rows.event_row(e, line) for e, line in zip(events, lines)]
            derived = rows.derive(events)
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise StoreError("STORE_EVENT_INVALID", f"run {run_id}: an event lacks a field the store needs "
                             f"({exc})", hint="validate the log with `treasure verify`-style checks; events "
                             "must match truth/") from exc
        conn = self.conn
        conn.insert_rows("events", rows.EVENT_COLUMNS, event_rows)
        for table in ("orders", "fills", "positions"):
            conn.insert_rows(table, rows.COLUMNS[table], derived[table])
        last = events[-1]
        end_seq, end_status = state.end_seq, None
        for event in reversed(events):
            if event["event_type"] == "run_end":
                end_seq, end_status = event["seq"], event["payload"].get("status")
                break
        count = last["seq"] + 1
        if end_status is None:
            conn.execute("UPDATE runs SET events = ?, last_hash = ?, last_ts_ms = ? WHERE run_id = ?",
                         (count, last["hash"], last["ts_ms"], run_id))
        else:
            conn.execute("UPDATE runs SET events = ?, last_hash = ?, last_ts_ms = ?, end_seq = ?, end_status = ? "
                         "WHERE run_id = ?", (count, last["hash"], last["ts_ms"], end_seq, end_status, run_id))
        self._states[run_id] = RunState(run_id, state.status, count, last["hash"], end_seq)

    def _insert_run(self, start: dict[str, Any]) -> None:
        p = start["payload"]
        try:
            values = (start["run_id"], start["hash"], canonical_bytes(p).decode("utf-8"),
                      p["ssot_sha256"], p["dataset"]["sha256"], p["strategy"]["source_sha256"], start["ts_ms"],
                      start["hash"], start["ts_ms"])
        except (KeyError, TypeError) as exc:
            raise StoreError("STORE_EVENT_INVALID", f"run {start['run_id']}: run_start lacks {exc}",
                             field="payload") from exc
        self.conn.execute(
            "INSERT INTO runs (run_id, status, start_hash, inputs, ssot_sha256, dataset_sha256, "
            "strategy_source_sha256, started_ts_ms, events, last_hash, last_ts_ms) "
            "VALUES (?, 'running', ?, ?, ?, ?, ?, ?, 1, ?, ?)", values)

    # runs -------------------------------------------------------------------------------------
    def delete_run(self, run_id: str) -> int:
        """Remove a run and all its rows (``--overwrite``); returns the number of events removed."""
        self.commit()
        self._begin()
        try:
            self.conn.lock_run(run_id)
            row = self.conn.execute("SELECT events FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            for table in ("reports", "positions", "fills", "orders", "events", "runs"):
                self.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            self.commit(durable=True)
        except db_errors() as exc:
            self.rollback()
            raise self.conn.translate(exc, doing=f"deleting run {run_id}") from exc
        self._states.pop(run_id, None)
        return 0 if row is None else int(row[0])

    def record_reports(self, run_id: str, court: Mapping[str, Any], eqs: Mapping[str, Any], *,
                       contracts: "Contracts | None" = None) -> RecordResult:
        """Store a run's reports and set its final status, in one transaction.

        Refused (status stays ``running``) unless the reports describe exactly the stored events:
        same run id, event count and last hash, and for complete/halted a stored run_end saying so.
        Re-recording identical reports (volatile fields aside) is a no-op.
        """
        self.commit()
        status = court.get("status")
        if status not in FINAL_STATUSES:
            raise StoreError("STORE_REPORT_INVALID", f"court report status {status!r} is not one of "
                             f"{', '.join(FINAL_STATUSES)}", field="status")
        for name, doc in zip(REPORT_NAMES, (court, eqs)):
            if doc.get("run_id") != run_id:
                raise StoreError("STORE_REPORT_INVALID", f"{name} is for run {doc.get('run_id')!r}, not {run_id}",
                                 field="run_id")
            if contracts is not None:
                contracts.validate(name, dict(doc), source=f"{name}.json")
        self._begin()
        try:
            state = self.state(run_id)
            if state is None:
                raise StoreError("STORE_RUN_UNKNOWN", f"run {run_id} has no events in the DB", field="run_id")
            counted = counted_raw if isinstance(counted_raw := court.get("events"), Mapping) else {}
            total = counted.get("total")
            if total != state.events or counted.get("last_hash") != state.last_hash:
                other = " with a different last hash" if total == state.events else ""
                raise StoreError("STORE_INCOMPLETE", f"run {run_id}: the court report counts {total} events, the DB "
                                 f"holds {state.events}{other}; the run stays 'running'", field="events",
                                 hint="ingest the run's complete event log: `treasure db ingest LOG`")
            if status != "error":
                end = self.conn.execute("SELECT end_seq, end_status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if end[0] != state.events - 1 or end[1] != status:
                    raise StoreError("STORE_INCOMPLETE", f"run {run_id} is {status} per its court report but its "
                                     "last stored event is not a run_end saying so", field="status")
            if state.status not in ("running", status):
                raise StoreError("STORE_CONFLICT", f"run {run_id} is stored as {state.status}, the report says "
                                 f"{status}", path=self.label, field="status")
            inserted = sum(self._put_report(run_id, name, doc, contracts)
                           for name, doc in zip(REPORT_NAMES, (court, eqs)))
            self.conn.execute("UPDATE runs SET status = ? WHERE run_id = ?", (status, run_id))
            self.commit(durable=True)
        except StoreError:
            self.rollback()
            raise
        except db_errors() as exc:
            self.rollback()
            raise self.conn.translate(exc, doing=f"storing the reports of run {run_id}") from exc
        return RecordResult(status, inserted)

    def _put_report(self, run_id: str, name: str, doc: Mapping[str, Any], contracts: "Contracts | None") -> bool:
        body = canonical_bytes(dict(doc))
        row = self.conn.execute("SELECT body FROM reports WHERE run_id = ? AND name = ?", (run_id, name)).fetchone()
        if row is None:
            self.conn.execute("INSERT INTO reports (run_id, name, body, sha256) VALUES (?, ?, ?, ?)",
                              (run_id, name, body.decode("utf-8"), hashlib.sha256(body).hexdigest()))
            return True
        volatile = contracts.volatile_paths(name) if contracts is not None else []
        stored = orjson.loads(row[0])
        if canonical_bytes(drop_paths(stored, volatile)) != canonical_bytes(drop_paths(dict(doc), volatile)):
            raise StoreError("STORE_CONFLICT", f"run {run_id}: the DB holds a different {name}; refusing to "
                             "overwrite it", path=self.label, field=name)
        return False


class StoreSink:
    """The :class:`~treasure.events.EventSink` that stores a live run as it goes.

    After a failed write it rolls back to the last commit and goes quiet (the engine has been told
    through the raised error and ends the run as ``error``), so the DB keeps a clean prefix.
    """

    def __init__(self, writer: StoreWriter, run_id: str, *, owns_writer: bool = True) -> None:
        self.writer = writer
        self.run_id = run_id
        self.owns_writer = owns_writer
        self.failed: StoreError | None = None

    def write(self, events: list[dict[str, Any]], lines: list[bytes]) -> None:
        if self.failed is not None:
            return
        try:
            self.writer.write(events, lines)
        except StoreError as exc:
            self.failed = exc
            raise

    def checkpoint(self, *, durable: bool) -> None:
        if self.failed is not None:
            return
        try:
            self.writer.commit(durable=durable)
        except StoreError as exc:
            self.failed = exc
            raise

    def close(self) -> None:
        if self.failed is None:
            try:
                self.writer.commit(durable=True)
            except StoreError:
                pass
        if self.owns_writer:
            self.writer.close()
        else:
            self.writer.rollback()
