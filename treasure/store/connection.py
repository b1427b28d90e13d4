"""Opening a run database: recognise it, refuse what is not ours, migrate, set the pragmas.

Every connection runs in autocommit mode (``isolation_level=None``) so that transactions are
explicit (``BEGIN`` ... ``COMMIT``) and no statement commits behind the writer's back. WAL mode
lets readers (``db check``, ``replay --from db``) work while a run writes; ``foreign_keys`` is a
per-connection setting, so it is switched on here, every time.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Sequence

from treasure.store import schema
from treasure.store.errors import StoreError, translate

BUSY_TIMEOUT_MS = 10_000


def _open(path: Path, *, mode: str) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise translate(exc, path, doing="opening") from exc
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _recognise(conn: sqlite3.Connection, path: Path) -> tuple[int, bool]:
    """Return ``(user_version, empty)``; refuse other SQLite files and unreadable ones."""
    try:
        app_id = schema.application_id(conn)
        empty = schema.is_empty(conn)
        version = schema.user_version(conn)
    except sqlite3.Error as exc:
        raise translate(exc, path, doing="reading the header") from exc
    if app_id == 0 and empty:
        return 0, True
    if app_id != schema.APPLICATION_ID:
        raise StoreError("STORE_NOT_TREASURE", f"{path} is an SQLite database, but not a Treasure run DB "
                         f"(application_id {app_id:#x})", path=str(path))
    if version > schema.latest_version():
        raise StoreError("STORE_SCHEMA_NEWER", f"the database has schema version {version}; this Treasure "
                         f"knows up to {schema.latest_version()}", path=str(path))
    return version, False


def _open_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write, even in a read-only folder.

    ``mode=ro`` still needs the WAL index (``-shm``) beside a WAL database, which a read-only
    folder cannot hold; then ``immutable=1`` reads the file as it is (nobody can be writing it:
    the folder is read-only to us, and a writer would need it writable too).
    """
    base = path.resolve().as_uri()
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(base + query, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            last: sqlite3.Error = exc
            try:
                conn.close()
            except NameError:
                pass
        except sqlite3.Error as exc:
            raise translate(exc, path, doing="opening read-only") from exc
    raise translate(last, path, doing="opening read-only")


def open_readonly(path: Path | str) -> sqlite3.Connection:
    """Open an existing Treasure DB for reading only (``db check``, ``db backup``, replay,
    ``status``): never writes, not even the journal mode, so it works on read-only disks."""
    path = Path(path)
    if path.is_dir():
        raise StoreError("STORE_IO", f"{path} is a directory, not a database file", path=str(path))
    if not path.exists():
        raise StoreError("STORE_MISSING", f"no database at {path}", path=str(path))
    if path.stat().st_size == 0:
        raise StoreError("STORE_NOT_SQLITE", f"{path} is an empty file, not a Treasure database", path=str(path),
                         hint="a 0-byte file may be a truncated DB: restore it from a backup, or delete it "
                         "to start a new database")
    conn = _open_readonly(path)
    try:
        _, empty = _recognise(conn, path)
        if empty:
            raise StoreError("STORE_NOT_TREASURE", f"{path} is an empty SQLite database", path=str(path))
        return conn
    except BaseException:
        conn.close()
        raise


def open_db(path: Path | str, *, create: bool = False, migrate: bool = True,
            migrations: Sequence[schema.Migration] = schema.MIGRATIONS) -> sqlite3.Connection:
    """Open (and with ``create``, make) a Treasure run DB at ``path``.

    Refuses with a coded :class:`StoreError`: a missing file (unless ``create``), a directory, an
    empty or non-SQLite file, another application's database, a newer schema. With ``migrate``
    the pending migrations are applied; without it the DB is opened as found (``db check``).
    """
    path = Path(path)
    if path.is_dir():
        raise StoreError("STORE_IO", f"{path} is a directory, not a database file", path=str(path))
    exists = path.exists()
    if not exists and not create:
        raise StoreError("STORE_MISSING", f"no database at {path}", path=str(path))
    if exists and path.stat().st_size == 0:
        raise StoreError("STORE_NOT_SQLITE", f"{path} is an empty file, not a Treasure database", path=str(path),
                         hint="a 0-byte file may be a truncated DB: restore it from a backup, or delete it "
                         "to start a new database")
    if not exists:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = _open(path, mode="rwc" if create else "rw")
    try:
        version, empty = _recognise(conn, path)
        if empty and not create:
            raise StoreError("STORE_NOT_TREASURE", f"{path} is an empty SQLite database", path=str(path))
        conn.execute("PRAGMA foreign_keys = ON")
        try:
            todo = schema.pending(conn, migrations) if (migrate or empty) else []
            if create or todo:  # readers of an up-to-date DB write nothing, not even the journal mode
                conn.execute("PRAGMA journal_mode = WAL")
            for migration in todo:
                schema.apply(conn, migration)
        except sqlite3.Error as exc:
            raise translate(exc, path, doing="migrating the schema") from exc
        if create or migrate:  # a writer: refuse objects we did not create (a planted trigger)
            foreign = schema.foreign_objects(conn, migrations)
            if foreign:
                raise StoreError("STORE_FOREIGN_OBJECT", f"the database holds objects Treasure did not create: "
                                 f"{', '.join(foreign[:5])}", path=str(path))
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn
    except BaseException:
        conn.close()
        raise


def fsync_file(path: Path) -> None:
    """fsync a file we wrote outside sqlite (backup copies) before renaming it into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
