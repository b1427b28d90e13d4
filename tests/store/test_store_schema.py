"""Opening run DBs: creation, recognition, refusals with codes, and the migration machinery."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from treasure.store import open_db, schema
from treasure.store.errors import StoreError


def test_new_db_gets_the_schema_wal_and_our_application_id(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "sub" / "t.db", create=True)
    try:
        assert schema.user_version(conn) == schema.latest_version()
        assert schema.application_id(conn) == schema.APPLICATION_ID
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        applied = conn.execute("SELECT version, name, sql_sha256 FROM schema_migrations").fetchall()
        assert applied == [(m.version, m.name, m.sha256) for m in schema.MIGRATIONS]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {t for t, _ in schema.TABLES} <= tables
    finally:
        conn.close()


def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    open_db(path, create=True).close()
    conn = open_db(path, create=True)
    try:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(schema.MIGRATIONS)
    finally:
        conn.close()


@pytest.mark.parametrize("content, code", [
    (b"", "STORE_NOT_SQLITE"),
    (b"this is not a database, just some text\n" * 200, "STORE_NOT_SQLITE"),
])
def test_non_sqlite_files_are_refused_with_a_code(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(content)
    for create in (False, True):
        with pytest.raises(StoreError) as info:
            open_db(path, create=create)
        assert info.value.code == code
        assert str(path) in (info.value.path or "")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        open_db(tmp_path / "absent.db")
    assert info.value.code == "STORE_MISSING"
    assert not (tmp_path / "absent.db").exists()
    with pytest.raises(StoreError) as info:
        open_db(tmp_path)
    assert info.value.code == "STORE_IO"


def test_another_applications_sqlite_db_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        open_db(path, create=True)
    assert info.value.code == "STORE_NOT_TREASURE"
    assert path.read_bytes() == before


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    conn = open_db(path, create=True)
    conn.execute(f"PRAGMA user_version = {schema.latest_version() + 1}")
    conn.close()
    with pytest.raises(StoreError) as info:
        open_db(path)
    assert info.value.code == "STORE_SCHEMA_NEWER"


def test_pending_migrations_upgrade_an_older_db(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    open_db(path, create=True).close()
    v2 = schema.Migration(schema.latest_version() + 1, "test: an index", "CREATE INDEX events_type ON events "
                          "(run_id, event_type)")
    conn = open_db(path, migrations=(*schema.MIGRATIONS, v2))
    try:
        assert schema.user_version(conn) == v2.version
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "events_type" in names
        assert conn.execute("SELECT name FROM schema_migrations WHERE version = ?", (v2.version,)).fetchone() == (
            v2.name,)
    finally:
        conn.close()


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    open_db(path, create=True).close()
    bad = schema.Migration(schema.latest_version() + 1, "broken", "CREATE TABLE ok_table (x); CREATE TABLE runs (x)")
    with pytest.raises(StoreError):
        open_db(path, migrations=(*schema.MIGRATIONS, bad))
    conn = open_db(path)
    try:
        assert schema.user_version(conn) == schema.latest_version()
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'ok_table'").fetchone()[0] == 0
    finally:
        conn.close()
