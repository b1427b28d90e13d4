"""Schema v2: ``runs.status`` accepts ``degraded`` (the engine ends a run so when its ERROR events
exceed ``health.max_error_rate``, exit 4). A degraded run stores and checks; a v1 DB migrates on
its next write and keeps every row; the same on PostgreSQL (its own dialect of the migration)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from helpers.pg_server import create_database, server_or_fail
from helpers.store_support import sealed_run

from treasure.execution import base
from treasure.execution.messages import ExecReport
from treasure.execution.sim import SimAdapter
from treasure.store import StoreReader, StoreWriter, check_store, schema
from treasure.store.backend import Db, SqliteDb
from treasure.store.connection import open_db
from treasure.store.errors import StoreError

CLI = Callable[..., tuple[int, str, str]]
V1 = schema.MIGRATIONS[:1]


class _DeadFeed(SimAdapter):
    """A venue answering every order with garbage: one adapter_error per order, no fills."""

    name = "deadfeed"
    simulated = False

    def submit(self, order: Any) -> list[ExecReport]:
        return [ExecReport("error", order.order_id, reason="unparseable venue message", code="VENUE_GARBAGE")]

    def on_bar(self, bar: Any) -> list[ExecReport]:
        return []


def _store(conn: Db, path: Path | str, run_id: str, *, seed: int = 0, status: str = "complete") -> None:
    sealed = sealed_run(run_id, seed=seed, status=status)
    writer = StoreWriter(conn, path)
    writer.write(sealed.events, sealed.lines)
    writer.commit(durable=True)
    writer.record_reports(run_id, sealed.court, sealed.eqs)


def _tables(db: Path | str, run_ids: list[str]) -> bytes:
    """The runs' rows in every table (canonical dump without the schema version)."""
    with StoreReader(db) as reader:
        doc = json.loads(reader.dump(run_ids=run_ids))
    return json.dumps(doc["tables"], sort_keys=True).encode()


def _v1_sqlite(path: Path) -> None:
    """A DB as a v1 Treasure left it: v1 schema, two finished runs and one still running."""
    conn = SqliteDb(open_db(path, create=True, migrations=V1), path)
    try:
        _store(conn, path, "a", seed=1)
        _store(conn, path, "b", seed=2, status="halted")
        sealed = sealed_run("c", seed=3)
        writer = StoreWriter(conn, path)
        writer.write(sealed.events[:4], sealed.lines[:4])
        writer.commit(durable=True)
    finally:
        conn.close()


def test_the_v1_schema_refuses_degraded_and_v2_accepts_it(tmp_path: Path) -> None:
    old = tmp_path / "v1.db"
    conn = SqliteDb(open_db(old, create=True, migrations=V1), old)
    try:
        with pytest.raises(StoreError) as caught:
            _store(conn, old, "d", status="degraded")
        assert caught.value.code == "STORE_ERROR" and "CHECK constraint" in caught.value.message, caught.value
    finally:
        conn.close()
    new = tmp_path / "v2.db"
    writer = StoreWriter.open(new)
    try:
        _store(writer.conn, new, "d", status="degraded")
    finally:
        writer.close()
    with StoreReader(new) as reader:
        assert reader.run("d").status == "degraded"
    report = check_store(new)
    assert report.ok and report.schema_version == 2, report.render()


def test_a_v1_db_migrates_on_the_next_write_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v1_sqlite(path)
    before = check_store(path)  # as found: old, but intact
    assert before.ok and before.schema_version == 1, before.render()
    assert "STORE_SCHEMA_OLD" in [f.code for f in before.findings]
    raw = sqlite3.connect(path)
    rows_before = {t: raw.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in schema.TABLES}
    raw.close()

    writer = StoreWriter.open(path)  # the next write: migrates first
    try:
        _store(writer.conn, path, "e", seed=5, status="degraded")
    finally:
        writer.close()

    raw = sqlite3.connect(path)
    try:
        assert schema.user_version(raw) == 2
        assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 0  # a fresh connection's default
        applied = raw.execute("SELECT version, name, sql_sha256 FROM schema_migrations ORDER BY version").fetchall()
        assert applied == [(m.version, m.name, m.sha256) for m in schema.MIGRATIONS]
        for table, order in schema.TABLES:
            now = raw.execute(f"SELECT * FROM {table} WHERE run_id != 'e' ORDER BY {order}").fetchall()
            assert now == rows_before[table], table  # every v1 row kept, events and reports included
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        raw.close()
    after = check_store(path)
    assert after.ok and after.schema_version == 2, after.render()
    assert "STORE_SCHEMA_OLD" not in [f.code for f in after.findings]
    with StoreReader(path) as reader:
        assert {r.run_id: r.status for r in reader.runs()} == {
            "a": "complete", "b": "halted", "c": "running", "e": "degraded"}
    # the migration keeps the cascades: deleting a run still removes its events
    writer = StoreWriter.open(path)
    try:
        assert writer.delete_run("a") > 0
    finally:
        writer.close()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT count(*) FROM events WHERE run_id = 'a'").fetchone()[0] == 0
    finally:
        raw.close()


def test_a_migrated_db_has_the_schema_of_a_new_one(tmp_path: Path) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    _v1_sqlite(old)
    StoreWriter.open(old).close()
    StoreWriter.open(new).close()
    objects = "SELECT type, name, sql FROM sqlite_master ORDER BY name"
    with sqlite3.connect(old) as a, sqlite3.connect(new) as b:
        assert a.execute(objects).fetchall() == b.execute(objects).fetchall()


def test_a_failing_v2_migration_leaves_the_v1_db_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v1_sqlite(path)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA foreign_keys = OFF")
    raw.execute("DELETE FROM runs WHERE run_id = 'a'")  # an orphaned run: the migration's FK check refuses
    raw.commit()
    dump = raw.execute("SELECT count(*) FROM events").fetchone()
    raw.close()
    with pytest.raises(StoreError):
        StoreWriter.open(path)
    raw = sqlite3.connect(path)
    try:
        assert schema.user_version(raw) == 1
        assert raw.execute("SELECT count(*) FROM events").fetchone() == dump
        assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'runs_v2'").fetchall() == []
    finally:
        raw.close()


def test_a_degraded_run_stores_through_run_db_and_checks(cli: CLI, workspace: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_REGISTRY", {**base._REGISTRY, "deadfeed": _DeadFeed})
    ws = workspace.root
    code, out, err = cli("-w", ws, "run", "--db", "--adapter", "deadfeed", "--run-id", "dead", "--json")
    assert code == 4, (out, err)
    doc = json.loads(out)
    assert doc["status"] == "degraded" and doc["db"]["error"] is None and doc["db"]["status"] == "degraded", doc["db"]
    code, out, err = cli("-w", ws, "db", "check")
    assert code == 0 and out.startswith("db check: OK"), out + err
    code, out, _ = cli("-w", ws, "db", "runs", "--json")
    assert {r["run_id"]: r["status"] for r in json.loads(out)["runs"]} == {"dead": "degraded"}
    # and the stored copy is the run's log (restore-log / replay read it)
    log = ws / "logs" / "events" / "run_dead.jsonl"
    original = log.read_bytes()
    log.unlink()
    code, out, err = cli("-w", ws, "db", "restore-log", "dead")
    assert code == 0, err
    assert log.read_bytes() == original


# ---------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="module")
def pg_server_url() -> Iterator[str]:
    yield from server_or_fail()


def test_postgresql_v1_store_migrates_and_accepts_degraded(pg_server_url: str) -> None:
    from treasure.store.pg import PgDb

    url = create_database(pg_server_url)
    conn = PgDb.open(url, write=True, create=True, migrations=V1)
    try:
        assert conn.user_version() == 1
        _store(conn, url, "a", seed=1)
        _store(conn, url, "b", seed=2, status="halted")
        with pytest.raises(StoreError) as caught:  # its events stay, the run stays 'running'
            _store(conn, url, "d", status="degraded")
        assert caught.value.code == "STORE_CONFLICT" and "runs_status_check" in caught.value.message, caught.value
    finally:
        conn.close()
    before = check_store(url)
    assert before.ok and before.schema_version == 1, before.render()
    rows = _tables(url, ["a", "b"])

    writer = StoreWriter.open(url)  # migrates to v2 with the PostgreSQL text of the migration
    try:
        _store(writer.conn, url, "d", status="degraded")  # the same run again: now its reports store
    finally:
        writer.close()
    after = check_store(url)
    assert after.ok and after.schema_version == 2, after.render()
    with StoreReader(url) as reader:
        assert {r.run_id: r.status for r in reader.runs()} == {"a": "complete", "b": "halted", "d": "degraded"}
    assert _tables(url, ["a", "b"]) == rows  # v1 rows kept

    fresh = create_database(pg_server_url)  # a new store at v2 has the same catalog as the migrated one
    StoreWriter.open(fresh).close()
    a, b = PgDb.open(url, write=False), PgDb.open(fresh, write=False)
    try:
        assert a.objects() == b.objects()
    finally:
        a.close()
        b.close()
