"""The run database's schema: an explicit version and an append-only list of migrations.

A Treasure DB is recognised by ``PRAGMA application_id`` (so ``db check`` can tell "some other
SQLite file" from "a Treasure DB"), and its version is ``PRAGMA user_version``, mirrored row by
row in ``schema_migrations`` (version, name, SHA-256 of the migration's SQL) so a check can see
that the migrations applied are the ones this code ships. Migrations are never edited once
released; a change is a new entry at the end. Each is applied in its own transaction.

Tables (natural keys only, so re-writing a run can be checked row by row):

- ``runs``       one row per run: status, the run_start payload (its inputs), the hashes a
                 replay needs, and how far the stored event chain reaches.
- ``events``     (run_id, seq): the canonical log line, byte for byte, plus its indexed fields.
- ``orders``     (run_id, order_id) from order_placed; ``fills`` (run_id, order_id, seq) from
                 order_filled; ``positions`` (run_id, seq) from position_updated. Derived from
                 the events in the same transaction; ``db check`` re-derives and compares them.
- ``reports``    (run_id, name): court and EQS reports as canonical JSON.

``runs.status`` is ``running`` until the run's reports are stored; it becomes complete / halted /
error / degraded (schema v2) only in the transaction that stores them, after checking they agree
with the stored events (see :mod:`treasure.store.writer`).
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from typing import Sequence

#: ``PRAGMA application_id`` of a Treasure run database ("TRS1" as a big-endian int).
APPLICATION_ID = 0x54525331


@dataclass(frozen=True)
class Migration:
    """One schema step. ``sql`` is SQLite's text (and every backend's unless it has its own);
    ``pg_sql`` is PostgreSQL's variant where the two dialects cannot share one text (a CHECK change
    is a table rebuild in SQLite, an ``ALTER TABLE ... CONSTRAINT`` in PostgreSQL). ``rebuilds``:
    SQLite must run it with foreign keys off (dropping a parent table would otherwise cascade
    into its children); the foreign keys are checked before the commit instead."""

    version: int
    name: str
    sql: str
    pg_sql: str | None = None
    rebuilds: bool = False

    @property
    def sha256(self) -> str:
        """Of the SQL as written here (every dialect's text): the same in ``schema_migrations`` of
        every backend."""
        text = self.sql if self.pg_sql is None else f"{self.sql}\n-- postgresql --\n{self.pg_sql}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def statements(self, dialect: str = "sqlite") -> list[str]:
        """The migration's statements in ``dialect`` (``sqlite`` or ``postgresql``), one by one
        (each backend runs them in one transaction)."""
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unknown SQL dialect {dialect!r}")
        text = self.pg_sql if dialect == "postgresql" and self.pg_sql is not None else self.sql
        return [s.strip() for s in text.split(";") if s.strip()]


_V1 = """
CREATE TABLE schema_migrations (
    version   INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    sql_sha256 TEXT NOT NULL
);
CREATE TABLE runs (
    run_id        TEXT PRIMARY KEY,
    status        TEXT NOT NULL CHECK (status IN ('running', 'complete', 'halted', 'error')),
    start_hash    TEXT NOT NULL,
    inputs        TEXT NOT NULL,
    ssot_sha256   TEXT NOT NULL,
    dataset_sha256 TEXT NOT NULL,
    strategy_source_sha256 TEXT NOT NULL,
    started_ts_ms INTEGER NOT NULL,
    events        INTEGER NOT NULL CHECK (events >= 1),
    last_hash     TEXT NOT NULL,
    last_ts_ms    INTEGER NOT NULL,
    end_seq       INTEGER,
    end_status    TEXT
);
CREATE TABLE events (
    run_id     TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    ts_ms      INTEGER NOT NULL,
    category   TEXT NOT NULL,
    event_type TEXT NOT NULL,
    level      TEXT NOT NULL,
    prev       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    line       TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE orders (
    run_id        TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    bar_idx       INTEGER NOT NULL,
    side          TEXT NOT NULL,
    qty           REAL NOT NULL,
    requested_qty REAL NOT NULL,
    ref_price     REAL NOT NULL,
    type          TEXT NOT NULL,
    adapter       TEXT NOT NULL,
    PRIMARY KEY (run_id, order_id),
    FOREIGN KEY (run_id, seq) REFERENCES events(run_id, seq) ON DELETE CASCADE
);
CREATE TABLE fills (
    run_id        TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    bar_idx       INTEGER NOT NULL,
    side          TEXT NOT NULL,
    qty           REAL NOT NULL,
    price         REAL NOT NULL,
    fee           REAL NOT NULL,
    remaining_qty REAL NOT NULL,
    status        TEXT NOT NULL,
    slippage_bps  REAL NOT NULL,
    latency_bars  INTEGER NOT NULL,
    PRIMARY KEY (run_id, order_id, seq),
    FOREIGN KEY (run_id, seq) REFERENCES events(run_id, seq) ON DELETE CASCADE,
    FOREIGN KEY (run_id, order_id) REFERENCES orders(run_id, order_id) ON DELETE CASCADE
);
CREATE TABLE positions (
    run_id       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    bar_idx      INTEGER NOT NULL,
    qty          REAL NOT NULL,
    avg_price    REAL NOT NULL,
    position_usd REAL NOT NULL,
    cash         REAL NOT NULL,
    realized_pnl REAL NOT NULL,
    fees_paid    REAL NOT NULL,
    equity       REAL NOT NULL,
    PRIMARY KEY (run_id, seq),
    FOREIGN KEY (run_id, seq) REFERENCES events(run_id, seq) ON DELETE CASCADE
);
CREATE TABLE reports (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    body   TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""

#: V2: the engine ends a run ``degraded`` when its ERROR events exceed ``health.max_error_rate``
#: (exit code 4); ``runs.status`` must accept it. SQLite cannot alter a CHECK constraint: the
#: table is rebuilt (its documented 12-step procedure: new table, copy, drop, rename, inside one
#: transaction with foreign keys off and checked before the commit). Column order and every other
#: definition are V1's, so ``SELECT *`` and the canonical dump are unchanged.
_V2 = """
CREATE TABLE runs_v2 (
    run_id        TEXT PRIMARY KEY,
    status        TEXT NOT NULL CHECK (status IN ('running', 'complete', 'halted', 'error', 'degraded')),
    start_hash    TEXT NOT NULL,
    inputs        TEXT NOT NULL,
    ssot_sha256   TEXT NOT NULL,
    dataset_sha256 TEXT NOT NULL,
    strategy_source_sha256 TEXT NOT NULL,
    started_ts_ms INTEGER NOT NULL,
    events        INTEGER NOT NULL CHECK (events >= 1),
    last_hash     TEXT NOT NULL,
    last_ts_ms    INTEGER NOT NULL,
    end_seq       INTEGER,
    end_status    TEXT
);
INSERT INTO runs_v2 (run_id, status, start_hash, inputs, ssot_sha256, dataset_sha256, strategy_source_sha256,
                     started_ts_ms, events, last_hash, last_ts_ms, end_seq, end_status)
    SELECT run_id, status, start_hash, inputs, ssot_sha256, dataset_sha256, strategy_source_sha256,
           started_ts_ms, events, last_hash, last_ts_ms, end_seq, end_status FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v2 RENAME TO runs
"""

#: V2 in PostgreSQL: the column's CHECK is a named constraint (``<table>_<column>_check``),
#: replaced in place; the foreign keys of events and reports are untouched.
_V2_PG = """
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'complete', 'halted', 'error', 'degraded'))
"""

#: Every migration this code knows, in order. Append only.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, events, orders, fills, positions, reports", _V1),
    Migration(2, "runs.status accepts degraded", _V2, pg_sql=_V2_PG, rebuilds=True),
)

#: Tables in dump order, each with the columns that order its rows (its natural key).
TABLES: tuple[tuple[str, str], ...] = (
    ("runs", "run_id"),
    ("events", "run_id, seq"),
    ("orders", "run_id, order_id"),
    ("fills", "run_id, order_id, seq"),
    ("positions", "run_id, seq"),
    ("reports", "run_id, name"),
)


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return migrations[-1].version if migrations else 0


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def application_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA application_id").fetchone()[0])


def is_empty(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


def pending(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[Migration]:
    """Migrations newer than the DB's ``user_version``, in order."""
    current = user_version(conn)
    return [m for m in migrations if m.version > current]


def apply(conn: sqlite3.Connection, migration: Migration) -> None:
    """Apply one migration atomically; the connection must be in autocommit mode.

    ``executescript`` would commit on its own, so statements run one by one inside an explicit
    transaction, and ``user_version`` moves in the same transaction as the tables it describes.
    """
    foreign_keys = bool(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    if migration.rebuilds and foreign_keys:
        conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: switched before BEGIN
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if user_version(conn) >= migration.version:  # another process applied it while we waited
                conn.execute("COMMIT")
                return
            for statement in migration.statements("sqlite"):
                conn.execute(statement)
            if migration.version == 1:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            if migration.rebuilds:
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise sqlite3.IntegrityError(f"migration {migration.version} would leave {len(broken)} row(s) "
                                                 f"without a parent (first: {broken[0]})")
            conn.execute("INSERT INTO schema_migrations (version, name, sql_sha256) VALUES (?, ?, ?)",
                         (migration.version, migration.name, migration.sha256))
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        if migration.rebuilds and foreign_keys:
            conn.execute("PRAGMA foreign_keys = ON")


def expected_objects(version: int, migrations: Sequence[Migration] = MIGRATIONS) -> list[tuple[str, str, str]]:
    """``(type, name, sql)`` of every object this code creates up to ``version``, by name: what
    ``sqlite_master`` must hold, built by applying the migrations to an in-memory database."""
    reference = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for migration in migrations:
            if migration.version <= version:
                apply(reference, migration)
        return reference.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        reference.close()


def foreign_objects(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Names of objects in the DB that this code did not create, or whose SQL differs (a planted
    trigger could rewrite evidence as it is written): sorted, empty when the schema is ours."""
    want = set(expected_objects(user_version(conn), migrations))
    have = set(conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall())
    return sorted({name for _, name, _ in have - want})
