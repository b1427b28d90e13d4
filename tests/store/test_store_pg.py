"""The PostgreSQL run store against a real server (tests/helpers/pg_server.py: initdb in a temp folder).

Same rules as SQLite: idempotent writes, STORE_CONFLICT, check findings, backup/restore, replay,
and several writers at once (two processes, different runs and the same run) losing and
duplicating nothing. These never skip in CI: without the server binaries they fail naming the
apt package (TREASURE_ALLOW_NO_PG=1 skips, for developers without root).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from helpers.pg_server import create_database, server_or_fail
from helpers.store_support import RunSet, reference_runs, sealed_run

from treasure.contracts import Contracts
from treasure.store import StoreReader, StoreWriter, backup_db, check_store, ingest_log, restore_db
from treasure.store.errors import StoreError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    yield from server_or_fail()


@pytest.fixture
def pg_url(pg_server_url: str) -> str:
    """A fresh empty database on the throwaway server."""
    return create_database(pg_server_url)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> RunSet:
    return reference_runs(tmp_path_factory)


def _raw(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url, autocommit=True)


def store(db: Path | str, run_id: str = "a", **kw: object) -> None:
    sealed = sealed_run(run_id, **kw)  # type: ignore[arg-type]
    writer = StoreWriter.open(db)
    try:
        writer.write(sealed.events, sealed.lines)
        writer.commit(durable=True)
        writer.record_reports(run_id, sealed.court, sealed.eqs)
    finally:
        writer.close()


def test_same_content_same_dump_as_sqlite_and_rewrites_are_no_ops(pg_url: str, tmp_path: Path) -> None:
    store(pg_url, "a", orders=4)
    store(pg_url, "b", orders=2, seed=3)
    store(pg_url, "a", orders=4)  # again: nothing changes
    sqlite = tmp_path / "t.db"
    store(sqlite, "a", orders=4)
    store(sqlite, "b", orders=2, seed=3)
    with StoreReader(pg_url) as pg, StoreReader(sqlite) as lite:
        assert pg.dump() == lite.dump()  # same rows, same types, same (byte) order
        assert [r.run_id for r in pg.runs()] == ["a", "b"]
        fills = pg.conn.execute("SELECT order_id, qty, price FROM fills WHERE run_id = ? ORDER BY order_id",
                                ("a",)).fetchall()
        assert fills == lite.conn.execute("SELECT order_id, qty, price FROM fills WHERE run_id = ? ORDER BY order_id",
                                          ("a",)).fetchall()
    report = check_store(pg_url)
    assert report.ok, report.render()
    assert [(r["run_id"], r["events"]) for r in report.runs] == [("a", 14), ("b", 8)]
    with _raw(pg_url) as conn:  # the same migration rows as SQLite (one migration list)
        from treasure.store import schema

        assert conn.execute("SELECT version, name, sql_sha256 FROM schema_migrations").fetchall() == \
            [(m.version, m.name, m.sha256) for m in schema.MIGRATIONS]


def test_different_content_under_a_key_is_a_conflict(pg_url: str) -> None:
    store(pg_url, "a", orders=3)
    other = sealed_run("a", orders=3, seed=5)
    writer = StoreWriter.open(pg_url)
    try:
        with pytest.raises(StoreError) as info:
            writer.write(other.events, other.lines)
        assert info.value.code == "STORE_CONFLICT" and "seq 0" in info.value.message
    finally:
        writer.close()
    assert check_store(pg_url).ok


def test_check_names_deleted_events_edited_fills_and_planted_objects(pg_url: str) -> None:
    store(pg_url, "a", orders=3)
    store(pg_url, "b", orders=3, seed=1)
    with _raw(pg_url) as conn:
        conn.execute("DELETE FROM events WHERE run_id = 'a' AND seq = 9")  # a position_updated
        conn.execute("UPDATE fills SET fee = 9.5 WHERE run_id = 'b' AND order_id = 'o000002'")
    report = check_store(pg_url)
    codes = {(f.code, f.run_id) for f in report.errors}
    assert ("STORE_EVENTS_MISSING", "a") in codes and ("STORE_DERIVED", "b") in codes, report.render()
    assert any("fee 9.5 in the table" in f.message for f in report.errors)
    with _raw(pg_url) as conn:
        conn.execute("CREATE FUNCTION sneaky() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER rewrite BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION sneaky()")
    with pytest.raises(StoreError) as info:
        StoreWriter.open(pg_url)
    assert info.value.code == "STORE_FOREIGN_OBJECT" and "rewrite on events" in info.value.message
    report = check_store(pg_url)
    assert any(f.code == "STORE_SCHEMA" and "rewrite on events" in f.message for f in report.errors)


def test_not_a_treasure_store_missing_and_unreachable(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        check_store(pg_url)
    assert info.value.code == "STORE_MISSING"
    with _raw(pg_url) as conn:
        conn.execute("CREATE TABLE customers (id int)")
    for opener in (lambda: StoreWriter.open(pg_url), lambda: check_store(pg_url)):
        with pytest.raises(StoreError) as info:
            opener()
        assert info.value.code == "STORE_NOT_TREASURE"
    with pytest.raises(StoreError) as info:
        StoreReader(f"postgresql://nobody:secret@/nothing?host={tmp_path}")
    assert info.value.code == "STORE_UNAVAILABLE" and "secret" not in info.value.message


def test_backup_is_a_checked_sqlite_file_and_restores_into_either_backend(pg_server_url: str, pg_url: str,
                                                                          tmp_path: Path) -> None:
    store(pg_url, "a", orders=3)
    store(pg_url, "b", orders=2, seed=2)
    with StoreReader(pg_url) as reader:
        before = reader.dump()
    report = backup_db(pg_url, tmp_path / "b.db")
    assert report.ok and [r["run_id"] for r in report.runs] == ["a", "b"]
    with StoreReader(tmp_path / "b.db") as reader:
        assert reader.dump() == before
    other = create_database(pg_server_url)
    store(other, "z", orders=1)  # replaced by the restore, kept beside the source
    report, kept = restore_db(tmp_path / "b.db", other)
    assert report.ok and kept is not None
    with StoreReader(other) as reader:
        assert reader.dump() == before
    with StoreReader(kept) as reader:
        assert [r.run_id for r in reader.runs()] == ["z"]
    assert check_store(other).ok
    # a broken backup is refused and the store left as it was
    import sqlite3

    conn = sqlite3.connect(tmp_path / "b.db")
    conn.execute("UPDATE fills SET price = 1 WHERE run_id = 'a'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as info:
        restore_db(tmp_path / "b.db", other)
    assert info.value.code == "STORE_CHECK_FAILED"
    with StoreReader(other) as reader:
        assert reader.dump() == before


_INGEST = """
import sys
from pathlib import Path
from treasure.contracts import Contracts
from treasure.store import ingest_log
url, truth, *jobs = sys.argv[1:]
contracts = Contracts(Path(truth))
for _ in range(3):
    for job in jobs:
        log, reports = job.split("|")
        ingest_log(url, [Path(log)], contracts=contracts, reports_dir=Path(reports))
"""


def test_two_processes_writing_different_and_the_same_runs_lose_and_duplicate_nothing(
        runs: RunSet, pg_url: str, tmp_path: Path) -> None:
    def job(run_id: str) -> str:
        return f"{runs.log(run_id)}|{runs.reports(run_id)}"

    procs = [subprocess.Popen([sys.executable, "-c", _INGEST, pg_url, str(runs.ws.truth_dir), *jobs], cwd=REPO,
                              stderr=subprocess.PIPE)
             for jobs in ([job("r1"), job("r3")], [job("r2"), job("r3")])]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    report = check_store(pg_url)
    assert report.ok, report.render()
    sqlite = tmp_path / "serial.db"
    contracts = Contracts(runs.ws.truth_dir)
    for rid in ("r1", "r2", "r3"):
        ingest_log(sqlite, [runs.log(rid)], contracts=contracts, reports_dir=runs.reports(rid))
    with StoreReader(pg_url) as pg, StoreReader(sqlite) as lite:
        assert pg.dump() == lite.dump()
        counts = pg.conn.execute("SELECT run_id, count(*), count(DISTINCT seq) FROM events GROUP BY run_id "
                                 "ORDER BY run_id").fetchall()
    assert [(r, n) for r, n, _ in counts] == [(r.run_id, r.events) for r in StoreReader(sqlite).runs()]
    assert all(n == d for _, n, d in counts)


def test_cli_run_check_runs_export_replay_with_a_url(runs: RunSet, pg_url: str, cli, tmp_path: Path) -> None:
    from helpers.store_support import make_workspace

    ws = make_workspace(tmp_path / "ws", n_bars=400)
    code, out, err = cli("run", "--workspace", ws.root, "--run-id", "p1", "--db", pg_url)
    assert code == 0 and "(complete)" in out and "treasure_test_" in out, out + err
    code, out, _ = cli("db", "ingest", "--workspace", ws.root, "--db", pg_url, "--run", "p1")
    assert code == 0 and "already ingested" in out
    code, out, _ = cli("db", "check", "--workspace", ws.root, "--db", pg_url)
    assert code == 0 and "db check: OK" in out and "p1" in out
    code, out, _ = cli("db", "runs", "--workspace", ws.root, "--db", pg_url)
    assert code == 0 and "p1" in out and "complete" in out
    code, out, err = cli("db", "export", "--workspace", ws.root, "--db", pg_url, "p1", "-o", ws.root / "out" / "p1.jsonl")
    assert code == 0, out + err
    assert (ws.root / "out" / "p1.jsonl").read_bytes() == ws.event_log("p1").read_bytes()
    code, out, err = cli("replay", "p1", "--from", "db", "--workspace", ws.root, "--db", pg_url)
    assert code == 0 and "replay identical" in out, out + err
    code, out, _ = cli("db", "backup", "--workspace", ws.root, "--db", pg_url, "-o", ws.root / "backups" / "pg.db")
    assert code == 0 and (ws.root / "backups" / "pg.db").is_file()
    code, out, _ = cli("db", "restore", "--workspace", ws.root, "--db", pg_url, ws.root / "backups" / "pg.db")
    assert code == 0 and "source checked" in out
