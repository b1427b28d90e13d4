"""Reading runs back out of the DB: run rows, events (the exact log lines), reports, a dump.

The ``events.line`` column holds each canonical log line byte for byte, so
:meth:`StoreReader.export` rebuilds a run's JSONL log identical to the original (the round trip the
persist gate checks), and replay can start from the DB alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import orjson

from treasure.canonical import canonical_bytes, drop_paths
from treasure.jsonio import atomic_write_bytes
from treasure.store import schema
from treasure.store.backend import Db, connect, db_errors
from treasure.store.errors import StoreError


@dataclass(frozen=True)
class RunRow:
    """One row of ``runs``: what the DB knows about a run without reading its events."""

    run_id: str
    status: str
    events: int
    last_hash: str
    end_seq: int | None
    end_status: str | None
    start_hash: str
    ssot_sha256: str
    dataset_sha256: str
    strategy_source_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_RUN_COLUMNS = ("run_id, status, events, last_hash, end_seq, end_status, start_hash, ssot_sha256, "
                "dataset_sha256, strategy_source_sha256")


class StoreReader:
    """Read-only access to a run DB (the file must exist and be a Treasure DB, or the
    ``postgresql://`` URL name a Treasure store; there one snapshot serves every read)."""

    def __init__(self, path: Path | str, *, conn: Db | None = None) -> None:
        self.path: Path | str = path if isinstance(path, str) and "://" in path else Path(path)
        # readers never write: read-only unless the schema must be migrated first
        self.conn = conn if conn is not None else connect(self.path, write=False)
        self.label = self.conn.label

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "StoreReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: Sequence[Any] = (), *, doing: str) -> Any:
        try:
            return self.conn.execute(sql, params)
        except db_errors() as exc:
            raise self.conn.translate(exc, doing=doing) from exc

    def _stream(self, sql: str, params: Sequence[Any] = (), *, doing: str) -> Iterator[tuple[Any, ...]]:
        try:
            yield from self.conn.stream(sql, params)
        except db_errors() as exc:
            raise self.conn.translate(exc, doing=doing) from exc

    # runs -------------------------------------------------------------------------------------
    def runs(self) -> list[RunRow]:
        rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY run_id", doing="listing runs").fetchall()
        return [RunRow(*row) for row in rows]

    def find(self, run_id: str) -> RunRow | None:
        row = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,),
                          doing=f"reading run {run_id}").fetchone()
        return None if row is None else RunRow(*row)

    def run(self, run_id: str) -> RunRow:
        found = self.find(run_id)
        if found is None:
            raise StoreError("STORE_RUN_UNKNOWN", f"run {run_id} is not in {self.label}", path=self.label,
                             field="run_id")
        return found

    # events -----------------------------------------------------------------------------------
    def iter_lines(self, run_id: str) -> Iterator[tuple[int, bytes]]:
        """``(seq, canonical line without newline)`` in seq order."""
        for seq, line in self._stream("SELECT seq, line FROM events WHERE run_id = ? ORDER BY seq", (run_id,),
                                      doing=f"reading events of run {run_id}"):
            yield seq, line.encode("utf-8")

    def iter_hashes(self, run_id: str) -> Iterator[tuple[int, str]]:
        """``(seq, events.hash)`` in seq order: the stored hash columns, not parsed from the lines."""
        for seq, digest in self._stream("SELECT seq, hash FROM events WHERE run_id = ? ORDER BY seq", (run_id,),
                                        doing=f"reading the event hashes of run {run_id}"):
            yield int(seq), str(digest)

    def iter_events(self, run_id: str) -> Iterator[dict[str, Any]]:
        for _, line in self.iter_lines(run_id):
            yield orjson.loads(line)

    def first_event(self, run_id: str) -> dict[str, Any]:
        """The run_start event (seq 0), parsed."""
        row = self._query("SELECT line FROM events WHERE run_id = ? AND seq = 0", (run_id,),
                          doing=f"reading run_start of {run_id}").fetchone()
        if row is None:
            raise StoreError("STORE_RUN_UNKNOWN", f"run {run_id} has no run_start in {self.label}",
                             path=self.label, field="run_id")
        return orjson.loads(row[0])

    def export(self, run_id: str, dest: Path | str) -> int:
        """Write the run's events as a JSONL log at ``dest`` (atomically); return the event count."""
        self.run(run_id)
        lines = [line for _, line in self.iter_lines(run_id)]
        atomic_write_bytes(Path(dest), b"".join(line + b"\n" for line in lines))
        return len(lines)

    # reports ----------------------------------------------------------------------------------
    def reports(self, run_id: str) -> dict[str, dict[str, Any]]:
        """``{"court_report": {...}, "eqs_report": {...}}`` as stored (possibly empty)."""
        rows = self._query("SELECT name, body FROM reports WHERE run_id = ? ORDER BY name", (run_id,),
                           doing=f"reading reports of run {run_id}").fetchall()
        return {name: orjson.loads(body) for name, body in rows}

    # whole-DB views ---------------------------------------------------------------------------
    def dump(self, *, volatile: Mapping[str, Sequence[str]] | None = None,
             run_ids: Sequence[str] | None = None) -> bytes:
        """Canonical bytes of every table's rows in natural-key order (reports parsed, with the
        ``volatile`` paths per report name dropped). Equal dumps mean equal DB content."""
        tables: dict[str, list[list[Any]]] = {}
        wanted = None if run_ids is None else set(run_ids)
        for table, order in schema.TABLES:
            out: list[list[Any]] = []
            for raw in self._stream(f"SELECT * FROM {table} ORDER BY {order}", doing=f"dumping {table}"):
                if wanted is not None and raw[0] not in wanted:
                    continue
                row = list(raw)
                if table == "reports":
                    doc = orjson.loads(row[2])
                    if volatile:
                        doc = drop_paths(doc, volatile.get(row[1], ()))
                    row = [row[0], row[1], doc]
                out.append(row)
            tables[table] = out
        return canonical_bytes({"schema_version": self.conn.user_version(), "tables": tables})

    def dump_sha256(self, **kwargs: Any) -> str:
        return hashlib.sha256(self.dump(**kwargs)).hexdigest()
