"""The two places a run store can live, behind one small interface: an SQLite file or PostgreSQL.

Everything the store *means* has one home and is shared by both backends: the tables and their
migrations (:mod:`treasure.store.schema`), the natural keys, the idempotency and chain rules
(:mod:`treasure.store.writer`), the derived rows (:mod:`treasure.store.rows`) and the checks
(:mod:`treasure.store.check`). What differs is only how to talk to the database, and it lives in
a :class:`Db`: placeholders (SQL is written once with ``?``), how a write transaction starts and
what it locks, bulk inserts, the schema's catalog (for the "objects we did not create" check),
the version stamp, and how driver errors become coded :class:`StoreError`\\ s.

- :class:`SqliteDb` (here): the embedded default. ``BEGIN IMMEDIATE`` makes one writer at a time.
- :class:`treasure.store.pg.PgDb`: ``--db postgresql://...`` (psycopg 3, an optional extra).
  Writers of different runs proceed in parallel; writers of the same run are serialised by a
  per-run advisory lock held for their transaction, so the second one finds the first's rows and
  compares instead of inserting.

:func:`connect` picks the backend from the target: a ``postgresql://`` / ``postgres://`` URL, else a
file path.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from treasure.store import schema
from treasure.store.errors import StoreError, translate

_URL = re.compile(r"^postgres(ql)?://", re.IGNORECASE)

Target = "Path | str"


def is_pg_url(target: object) -> bool:
    """Is ``target`` a PostgreSQL connection URL (``postgresql://...`` or ``postgres://...``)?"""
    return isinstance(target, str) and bool(_URL.match(target))


def redact(target: Path | str) -> str:
    """A printable name of the store: a file path as is, a URL without its password."""
    if not is_pg_url(target):
        return str(target)
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", str(target))


def db_errors() -> tuple[type[BaseException], ...]:
    """Exception types a database driver raises (psycopg's only once it is loaded)."""
    pg = sys.modules.get("psycopg")
    return (sqlite3.Error,) if pg is None else (sqlite3.Error, pg.Error)


def integrity_errors() -> tuple[type[BaseException], ...]:
    pg = sys.modules.get("psycopg")
    return (sqlite3.IntegrityError,) if pg is None else (sqlite3.IntegrityError, pg.IntegrityError)


class Db:
    """One open connection to a run store and the dialect it speaks. SQL is written with ``?``."""

    kind = "abstract"

    def __init__(self, target: Path | str) -> None:
        self.target = target
        self.label = redact(target)

    # statements -------------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of a possibly large query without holding them all in memory."""
        raise NotImplementedError

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows into ``table`` inside the open transaction (fastest way per backend)."""
        if rows:
            marks = ", ".join("?" * len(columns))
            self.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    # transactions -----------------------------------------------------------------------------
    def begin_write(self) -> None:
        raise NotImplementedError

    def lock_run(self, run_id: str) -> None:
        """Serialise writers of ``run_id`` until the open transaction ends (no-op where a write
        transaction already excludes every other writer)."""

    def lock_all(self) -> None:
        """Exclude every other writer and reader of our tables until the transaction ends."""

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    def close(self) -> None:
        raise NotImplementedError

    # schema -----------------------------------------------------------------------------------
    def user_version(self) -> int:
        raise NotImplementedError

    def objects(self) -> list[tuple[str, str, str]]:
        """``(type, name, definition)`` of every object in the store's namespace, sorted."""
        raise NotImplementedError

    def expected_objects(self, version: int) -> list[tuple[str, str, str]]:
        raise NotImplementedError

    def foreign_objects(self) -> list[str]:
        """Names of objects this code did not create (or whose definition differs), sorted."""
        want = set(self.expected_objects(self.user_version()))
        return sorted({name for _, name, _ in set(self.objects()) - want})

    def integrity(self) -> list[str]:
        """Problems the engine itself finds in its files (``["ok"]`` when none)."""
        return ["ok"]

    def orphans(self) -> list[str]:
        """Rows whose foreign key has no parent (only possible where constraints can be bypassed)."""
        return []

    def translate(self, exc: BaseException, *, doing: str) -> StoreError:
        return translate(exc, self.label, doing=doing)  # type: ignore[arg-type]


class SqliteDb(Db):
    """The embedded default: a WAL-mode SQLite file (see :mod:`treasure.store.connection`)."""

    kind = "sqlite"

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        super().__init__(path)
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows)

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        return iter(self.raw.execute(sql, params))

    def begin_write(self) -> None:
        self.raw.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        self.raw.close()

    def user_version(self) -> int:
        return schema.user_version(self.raw)

    def objects(self) -> list[tuple[str, str, str]]:
        return self.raw.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()

    def expected_objects(self, version: int) -> list[tuple[str, str, str]]:
        return schema.expected_objects(version)

    def integrity(self) -> list[str]:
        return [r[0] for r in self.raw.execute("PRAGMA integrity_check(20)").fetchall()]

    def orphans(self) -> list[str]:
        return [f"{table} row {rowid} has no {parent} row"
                for table, rowid, parent, _ in self.raw.execute("PRAGMA foreign_key_check").fetchall()]


def connect(target: Path | str, *, write: bool, create: bool = False, migrate: bool = True) -> Db:
    """Open the store at ``target`` (a file path or a ``postgresql://`` URL).

    ``write``: a writer's connection (creating with ``create``, migrating, refusing foreign
    objects); else a reader's that never writes (migrating first only if the schema is older and
    ``migrate``; ``db check`` reads the store exactly as found).
    """
    if is_pg_url(target):
        from treasure.store.pg import PgDb

        return PgDb.open(str(target), write=write, create=create, migrate=migrate)
    from treasure.store.connection import open_db, open_readonly

    path = Path(target)
    if write:
        return SqliteDb(open_db(path, create=create), path)
    conn = open_readonly(path)
    if migrate and schema.pending(conn):
        conn.close()
        conn = open_db(path, create=False, migrate=True)
    return SqliteDb(conn, path)
