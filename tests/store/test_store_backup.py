"""``treasure db backup`` / ``restore``: consistent checked copies, refusals, atomic replacement."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from helpers.store_support import sealed_run

from treasure.store import StoreReader, StoreWriter, backup_db, check_store, restore_db
from treasure.store.errors import StoreError


def make_db(path: Path, *run_ids: str) -> Path:
    writer = StoreWriter.open(path)
    try:
        for i, run_id in enumerate(run_ids):
            sealed = sealed_run(run_id, orders=2 + i, seed=i)
            writer.write(sealed.events, sealed.lines)
            writer.commit(durable=True)
            writer.record_reports(run_id, sealed.court, sealed.eqs)
    finally:
        writer.close()
    return path


def dump(path: Path) -> bytes:
    with StoreReader(path) as reader:
        return reader.dump()


def test_backup_is_an_identical_checked_single_file(tmp_path: Path) -> None:
    db = make_db(tmp_path / "t.db", "a", "b")
    report = backup_db(db, tmp_path / "backups" / "b1.db")
    copy = tmp_path / "backups" / "b1.db"
    assert report.ok and {r["run_id"] for r in report.runs} == {"a", "b"}
    assert dump(copy) == dump(db)
    assert sorted(p.name for p in copy.parent.iterdir()) == ["b1.db"]  # no -wal, no temp files
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_backup_while_a_writer_holds_an_open_transaction(tmp_path: Path) -> None:
    db = make_db(tmp_path / "t.db", "a")
    writer = StoreWriter.open(db)
    sealed = sealed_run("c", orders=3, seed=7)
    writer.write(sealed.events, sealed.lines)  # uncommitted
    try:
        backup_db(db, tmp_path / "b.db")
    finally:
        writer.close()
    with StoreReader(tmp_path / "b.db") as reader:
        assert [r.run_id for r in reader.runs()] == ["a"]


def test_backup_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    db = make_db(tmp_path / "t.db", "a")
    (tmp_path / "b.db").write_bytes(b"keep me")
    with pytest.raises(StoreError) as info:
        backup_db(db, tmp_path / "b.db")
    assert info.value.code == "STORE_BACKUP_EXISTS"
    assert (tmp_path / "b.db").read_bytes() == b"keep me"
    backup_db(db, tmp_path / "b.db", overwrite=True)
    assert dump(tmp_path / "b.db") == dump(db)


def test_restore_replaces_the_db_and_keeps_the_old_one(tmp_path: Path) -> None:
    backup = make_db(tmp_path / "backup.db", "a")
    db = make_db(tmp_path / "t.db", "a", "b")
    before = dump(db)
    report, kept = restore_db(backup, db)
    assert report.ok and kept == tmp_path / "t.db.pre-restore"
    assert dump(db) == dump(backup)
    assert dump(kept) == before
    assert not Path(str(db) + "-wal").exists() or Path(str(db) + "-wal").stat().st_size == 0
    assert check_store(db).ok
    writer = StoreWriter.open(db)  # the restored DB is writable again
    writer.close()


def test_restore_refuses_a_broken_source_and_leaves_the_db_alone(tmp_path: Path) -> None:
    backup = make_db(tmp_path / "backup.db", "a")
    conn = sqlite3.connect(backup)
    conn.execute("DELETE FROM events WHERE seq = 2")
    conn.commit()
    conn.close()
    db = make_db(tmp_path / "t.db", "z")
    before = dump(db)
    with pytest.raises(StoreError) as info:
        restore_db(backup, db)
    assert info.value.code == "STORE_CHECK_FAILED" and "STORE_EVENTS_MISSING" in info.value.message
    assert dump(db) == before
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError) as info:
        restore_db(junk, db)
    assert info.value.code == "STORE_NOT_SQLITE"


def test_restore_over_a_corrupt_db(tmp_path: Path) -> None:
    backup = make_db(tmp_path / "backup.db", "a")
    db = tmp_path / "t.db"
    db.write_bytes(b"garbage" * 1000)
    Path(str(db) + "-wal").write_bytes(b"stale wal")
    restore_db(backup, db)
    assert dump(db) == dump(backup)
    assert not Path(str(db) + "-wal").exists()
    assert Path(str(db) + ".pre-restore-wal").read_bytes() == b"stale wal"


def test_cli_backup_and_restore(tmp_path: Path, cli) -> None:
    db = make_db(tmp_path / "t.db", "a", "b")
    code, out, _ = cli("db", "backup", tmp_path / "b.db", "--db", db)
    assert code == 0 and "2 run(s)" in out and "copy checked" in out
    shutil.copy2(tmp_path / "b.db", tmp_path / "b2.db")
    make_db(tmp_path / "other.db", "x")
    code, out, _ = cli("db", "restore", tmp_path / "other.db", "--db", db)
    assert code == 0 and "previous DB kept" in out
    code, out, _ = cli("db", "runs", "--db", db)
    assert code == 0 and "x " in out and "a " not in out
    code, _, err = cli("db", "backup", tmp_path / "b.db", "--db", db)
    assert code == 2 and "error[STORE_BACKUP_EXISTS]" in err
