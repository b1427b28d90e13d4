"""The PostgreSQL backend of the run store: ``--db postgresql://USER@HOST:PORT/DBNAME`` (psycopg 3).

The same migrations as SQLite (:data:`treasure.store.schema.MIGRATIONS`, one text each, the same
SHA-256 in ``schema_migrations``) are run through :func:`ddl`, which only maps SQLite's storage
classes to PostgreSQL types that hold the same values: ``INTEGER`` -> ``BIGINT`` (epoch ms do not
fit 32 bits), ``REAL`` -> ``DOUBLE PRECISION`` (``REAL`` would be 4-byte), ``TEXT`` -> ``TEXT
COLLATE "C"`` (byte order, so ``ORDER BY run_id`` and the canonical dump agree with SQLite's).

Where SQLite has pragmas, PostgreSQL has:

- the mark of a Treasure store: a comment on ``schema_migrations`` (:data:`MARK`); the schema
  version: the highest version in ``schema_migrations``;
- the tables live in the connection's current schema (``public``, or ``?options=-csearch_path=X``);
- migrations take a transaction-scoped advisory lock, so two processes opening an empty database at
  once create the tables once;
- writers take a per-run advisory lock (:meth:`PgDb.lock_run`) for the rest of their transaction
  before reading how far a run's chain reaches: two writers of the same run are serialised, and the
  second compares the first's committed rows instead of inserting them again (no duplicates, no
  spurious conflicts); writers of different runs do not wait for each other;
- readers (``db check``, ``db export``, ``replay --from db``, backups) run in one ``REPEATABLE READ
  READ ONLY`` transaction: a consistent snapshot while writers go on;
- "objects Treasure did not create" compares the catalog of the schema (tables with their columns,
  types, collations and constraints, indexes, views, triggers, rules, functions, policies, types,
  and the database's event triggers) with the catalog of the migrations applied in a scratch
  schema inside a transaction that is rolled back.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from treasure.store import schema
from treasure.store.backend import Db, redact
from treasure.store.errors import StoreError

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

#: The comment on ``schema_migrations`` that marks a Treasure run store (like SQLite's application_id).
MARK = f"treasure run store (application_id {schema.APPLICATION_ID:#x})"
#: Advisory lock namespaces (first key of the two-int form): migrations, and one lock per run.
LOCK_MIGRATE = 0x54525331
LOCK_RUN = 0x54525332

_TYPES = ((re.compile(r"\bINTEGER\b"), "BIGINT"), (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
          (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'))
_TABLES = ", ".join(name for name, _ in schema.TABLES)
_counter = itertools.count()
_expected_cache: dict[tuple[int, int, str], list[tuple[str, str, str]]] = {}


def ddl(statement: str) -> str:
    """One migration statement in PostgreSQL's types (see the module docstring)."""
    for pattern, replacement in _TYPES:
        statement = pattern.sub(replacement, statement)
    return statement


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError("STORE_DRIVER_MISSING", "a postgresql:// store needs the psycopg package, which is not "
                         "installed", hint="pip install 'treasure[postgres]' (psycopg[binary] >= 3.1)") from exc
    return psycopg


def _placeholders(sql: str, _cache: dict[str, str] = {}) -> str:
    out = _cache.get(sql)
    if out is None:
        out = _cache[sql] = sql.replace("%", "%%").replace("?", "%s")
    return out


def _describe(conn: "psycopg.Connection[Any]") -> list[tuple[str, str, str]]:
    """``(type, name, definition)`` of every object in the connection's current schema (and the
    database's event triggers), definitions without the schema's own name, sorted."""
    nsp, = conn.execute("SELECT quote_ident(current_schema())").fetchone() or ("",)
    prefix = f"{nsp}."
    ns = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
    out: list[tuple[str, str, str]] = []
    kinds = {"r": "table", "p": "table", "i": "index", "v": "view", "m": "view", "S": "sequence",
             "f": "foreign table", "c": "type"}
    for oid, kind, name, rls in conn.execute(
            f"SELECT oid, relkind::text, relname::text, relrowsecurity FROM pg_class WHERE relnamespace = {ns} "
            "ORDER BY relname").fetchall():
        if kind in ("r", "p"):
            cols = conn.execute(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                "coalesce((SELECT collname::text FROM pg_collation WHERE oid = a.attcollation), ''), "
                "coalesce(pg_get_expr(d.adbin, d.adrelid), '') FROM pg_attribute a LEFT JOIN pg_attrdef d "
                "ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = %s AND a.attnum > 0 "
                "AND NOT a.attisdropped ORDER BY a.attnum", (oid,)).fetchall()
            cons = conn.execute("SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint "
                                "WHERE conrelid = %s ORDER BY conname", (oid,)).fetchall()
            comment, = conn.execute("SELECT coalesce(obj_description(%s, 'pg_class'), '')", (oid,)).fetchone() \
                or ("",)
            text = "; ".join(f"{c} {t}{' NOT NULL' if nn else ''}{f' COLLATE {co}' if co else ''}"
                             f"{f' DEFAULT {d}' if d else ''}" for c, t, nn, co, d in cols)
            text += " | " + "; ".join(f"{n}: {d}" for n, d in cons)
            text += f" | rls={bool(rls)} | comment={comment}"
        elif kind == "i":
            text, = conn.execute("SELECT pg_get_indexdef(%s)", (oid,)).fetchone() or ("",)
        elif kind in ("v", "m"):
            text, = conn.execute("SELECT pg_get_viewdef(%s)", (oid,)).fetchone() or ("",)
        else:
            text = ""
        out.append((kinds.get(kind, f"relation {kind}"), name, text.replace(prefix, "")))
    for name, table, text in conn.execute(
            f"SELECT t.tgname::text, c.relname::text, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c "
            f"ON c.oid = t.tgrelid WHERE NOT t.tgisinternal AND c.relnamespace = {ns}").fetchall():
        out.append(("trigger", f"{name} on {table}", text.replace(prefix, "")))
    for name, table, text in conn.execute(
            "SELECT rulename::text, tablename::text, definition FROM pg_rules "
            "WHERE schemaname = current_schema()").fetchall():
        out.append(("rule", f"{name} on {table}", text.replace(prefix, "")))
    for name, in conn.execute(f"SELECT proname::text || '(' || pg_get_function_identity_arguments(oid) || ')' "
                              f"FROM pg_proc WHERE pronamespace = {ns}").fetchall():
        out.append(("function", name, ""))
    for name, table in conn.execute(f"SELECT p.polname::text, c.relname::text FROM pg_policy p JOIN pg_class c "
                                    f"ON c.oid = p.polrelid WHERE c.relnamespace = {ns}").fetchall():
        out.append(("policy", f"{name} on {table}", ""))
    for name, in conn.execute(f"SELECT typname::text FROM pg_type WHERE typnamespace = {ns} "
                              "AND typtype IN ('e', 'd', 'r', 'm')").fetchall():
        out.append(("type", name, ""))
    for name, event, func in conn.execute("SELECT evtname::text, evtevent::text, evtfoid::regproc::text "
                                          "FROM pg_event_trigger").fetchall():
        out.append(("event trigger", name, f"{event} {func}"))
    return sorted(out)


class PgDb(Db):
    """A connection to a PostgreSQL run store (see the module docstring)."""

    kind = "postgresql"

    def __init__(self, conn: "psycopg.Connection[Any]", url: str, *, write: bool) -> None:
        super().__init__(url)
        self.raw = conn
        self.url = url
        self.write = write

    # opening ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, *, write: bool, create: bool = False, migrate: bool = True,
             migrations: Sequence[schema.Migration] = schema.MIGRATIONS) -> "PgDb":
        psycopg = _psycopg()
        label = redact(url)
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError("STORE_UNAVAILABLE", f"cannot connect to the PostgreSQL store {label}: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
                             path=label) from exc
        db = cls(conn, url, write=write)
        try:
            db._recognise(create=create)
            todo = [m for m in migrations if m.version > db.user_version()] if (migrate or write) else []
            if todo:
                db._migrate(migrations)
            if write or todo:
                foreign = db._foreign(migrations)
                if foreign:
                    raise StoreError("STORE_FOREIGN_OBJECT", "the database holds objects Treasure did not create: "
                                     f"{', '.join(foreign[:5])}", path=label)
            if not write:  # one consistent snapshot for everything this reader reads
                conn.autocommit = False
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
            return db
        except psycopg.Error as exc:
            conn.close()
            raise db.translate(exc, doing="opening the store") from exc
        except BaseException:
            conn.close()
            raise

    def _marked(self) -> tuple[bool, bool]:
        """``(empty, ours)`` of the current schema."""
        empty = self.raw.execute("SELECT count(*) FROM pg_class WHERE relnamespace = (SELECT oid FROM "
                                 "pg_namespace WHERE nspname = current_schema()) AND relkind IN "
                                 "('r', 'p', 'v', 'm', 'S', 'f')").fetchone()[0] == 0  # type: ignore[index]
        reg, = self.raw.execute("SELECT to_regclass(quote_ident(current_schema()) || '.schema_migrations')::oid"
                                ).fetchone() or (None,)
        if reg is None:
            return empty, False
        comment, = self.raw.execute("SELECT obj_description(%s, 'pg_class')", (reg,)).fetchone() or (None,)
        return empty, comment == MARK

    def _recognise(self, *, create: bool) -> None:
        if self.raw.execute("SELECT current_schema()").fetchone()[0] is None:  # type: ignore[index]
            raise StoreError("STORE_IO", f"{self.label}: no schema to work in (search_path names no existing "
                             "schema)", path=self.label, hint="create the schema, or drop options=-csearch_path")
        empty, ours = self._marked()
        if empty and not create:
            raise StoreError("STORE_MISSING", f"no Treasure run store in {self.label} yet", path=self.label)
        if not empty and not ours:
            raise StoreError("STORE_NOT_TREASURE", f"{self.label} holds tables, but not a Treasure run store "
                             "(no marked schema_migrations)", path=self.label,
                             hint="point --db at an empty database (or schema) or a Treasure store")
        if ours and self.user_version() > schema.latest_version():
            raise StoreError("STORE_SCHEMA_NEWER", f"the store has schema version {self.user_version()}; this "
                             f"Treasure knows up to {schema.latest_version()}", path=self.label)

    def _migrate(self, migrations: Sequence[schema.Migration]) -> None:
        """Apply pending migrations, each in its own transaction, under the migration lock (so two
        processes opening an empty database at once create the tables once)."""
        for migration in migrations:
            self.raw.execute("BEGIN")
            try:
                self.raw.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_MIGRATE,))
                _, ours = self._marked()
                if ours and self.user_version() >= migration.version:
                    self.raw.execute("COMMIT")
                    continue
                for statement in migration.statements("postgresql"):
                    self.raw.execute(ddl(statement).encode("utf-8"))
                if migration.version == 1:
                    self.raw.execute(f"COMMENT ON TABLE schema_migrations IS '{MARK}'".encode("utf-8"))
                self.raw.execute("INSERT INTO schema_migrations (version, name, sql_sha256) VALUES (%s, %s, %s)",
                                 (migration.version, migration.name, migration.sha256))
                self.raw.execute("COMMIT")
            except BaseException:
                self.raw.execute("ROLLBACK")
                raise

    def _foreign(self, migrations: Sequence[schema.Migration]) -> list[str]:
        want = set(self._expected(self.user_version(), migrations))
        return sorted({name for _, name, _ in set(self.objects()) - want})

    # statements -------------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(_placeholders(sql), tuple(params))  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(_placeholders(sql), rows)  # type: ignore[arg-type]

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        if self.raw.autocommit:  # a server-side cursor needs a transaction
            yield from self.execute(sql, params)
            return
        with self.raw.cursor(name=f"treasure_stream_{next(_counter)}") as cur:
            cur.itersize = 4096
            cur.execute(_placeholders(sql), tuple(params))  # type: ignore[arg-type]
            yield from cur

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """COPY: several times faster than INSERTs for a run's thousands of rows."""
        if not rows:
            return
        with self.raw.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN".encode("utf-8")) as copy:
                for row in rows:
                    copy.write_row(row)

    # transactions -----------------------------------------------------------------------------
    def begin_write(self) -> None:
        self.raw.execute("BEGIN")

    def lock_run(self, run_id: str) -> None:
        self.raw.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_RUN, run_id))

    def lock_all(self) -> None:
        self.raw.execute(f"LOCK TABLE {_TABLES} IN ACCESS EXCLUSIVE MODE".encode("utf-8"))

    def commit(self) -> None:
        if self.raw.autocommit:
            self.raw.execute("COMMIT")
        else:
            self.raw.commit()

    def rollback(self) -> None:
        if self.raw.autocommit:
            self.raw.execute("ROLLBACK")
        else:
            self.raw.rollback()

    def close(self) -> None:
        self.raw.close()

    # schema -----------------------------------------------------------------------------------
    def user_version(self) -> int:
        reg, = self.raw.execute("SELECT to_regclass(quote_ident(current_schema()) || '.schema_migrations')::oid"
                                ).fetchone() or (None,)
        if reg is None:
            return 0
        row = self.raw.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    def objects(self) -> list[tuple[str, str, str]]:
        return _describe(self.raw)

    def expected_objects(self, version: int) -> list[tuple[str, str, str]]:
        return self._expected(version, schema.MIGRATIONS)

    def _expected(self, version: int, migrations: Sequence[schema.Migration]) -> list[tuple[str, str, str]]:
        """The catalog the migrations up to ``version`` create: built in a scratch schema inside a
        transaction that is rolled back (on a second connection, so a reader's snapshot stays
        read-only)."""
        key = (self.raw.info.server_version, version, "".join(m.sha256 for m in migrations))
        if key not in _expected_cache:
            psycopg = _psycopg()
            scratch = f"treasure_reference_{os.getpid()}_{next(_counter)}"
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as ref:
                ref.execute("BEGIN")
                try:
                    ref.execute(f"CREATE SCHEMA {scratch}".encode("utf-8"))
                    ref.execute(f"SET LOCAL search_path TO {scratch}".encode("utf-8"))
                    for migration in migrations:
                        if migration.version <= version:
                            for statement in migration.statements("postgresql"):
                                ref.execute(ddl(statement).encode("utf-8"))
                            if migration.version == 1:
                                ref.execute(f"COMMENT ON TABLE schema_migrations IS '{MARK}'".encode("utf-8"))
                    _expected_cache[key] = _describe(ref)
                finally:
                    ref.execute("ROLLBACK")
        return list(_expected_cache[key])

    def orphans(self) -> list[str]:
        """PostgreSQL enforces the foreign keys, but a superuser can bypass them
        (``session_replication_role = replica``): count child rows without a parent, per key."""
        out = []
        for child, parent, ccols, pcols in self.raw.execute(
                "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, "
                "(SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY k(num, n) "
                " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num), "
                "(SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY k(num, n) "
                " JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num) "
                "FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = "
                "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()) ORDER BY c.conname").fetchall():
            match = " AND ".join(f"p.{p} = c.{c}" for c, p in zip(ccols, pcols))
            count, = self.raw.execute(f"SELECT count(*) FROM {child} c WHERE NOT EXISTS (SELECT 1 FROM {parent} p "
                                      f"WHERE {match})".encode("utf-8")).fetchone() or (0,)
            if count:
                out.append(f"{child} has {count} row(s) without a {parent} row")
        return out
