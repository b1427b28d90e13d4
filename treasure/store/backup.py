"""``treasure db backup`` and ``treasure db restore``: copies that are consistent and checked.

A backup uses SQLite's online backup API (a consistent snapshot even while a run is writing),
into a temporary file next to the destination that is switched to a self-contained rollback
journal, fsynced, checked with :func:`check_store`, and only then renamed into place.

A restore refuses a source that does not pass :func:`check_store`, copies it the same way, keeps
the replaced DB as ``<db>.pre-restore`` (with its WAL, if any), and swaps the copy in with one
``os.replace``: a reader sees either the old DB or the restored one, never a mix. Stop writers
(runs with ``--db``) before restoring.

A PostgreSQL store (``--db postgresql://...``) is backed up into the same kind of file: a Treasure
SQLite DB, written from one ``REPEATABLE READ`` snapshot of our tables (rows copied in natural-key
order), then checked like any backup. It is not a ``pg_dump``: it needs no server binaries of a
matching version, it holds exactly the store (no roles, no other tables), ``db check`` reads it,
and it restores into either backend. Restoring into PostgreSQL checks the file, keeps the store's
current content as ``pre-restore-<database>.db`` next to the source (unchecked, as found), then
replaces every row in one transaction holding ``ACCESS EXCLUSIVE`` locks on our tables (``TRUNCATE``
then ``COPY``): readers see the old rows or the restored ones, never a mix.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from treasure.jsonio import fsync_dir
from treasure.store.check import CheckReport, check_store
from treasure.store import schema
from treasure.store.backend import Db, SqliteDb, connect, db_errors, is_pg_url, redact
from treasure.store.connection import fsync_file, open_db, open_readonly
from treasure.store.errors import StoreError, translate

COPY_BATCH = 4096

_SIDECARS = ("-wal", "-shm", "-journal")


def _copy(source: Path, target: Path) -> None:
    """Snapshot ``source`` into the new file ``target`` with the backup API; fsync it."""
    src = open_readonly(source)
    try:
        try:
            dst = sqlite3.connect(str(target), isolation_level=None)
        except sqlite3.Error as exc:
            raise translate(exc, target, doing="creating the copy") from exc
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.Error as exc:
            raise translate(exc, source, doing="copying") from exc
        finally:
            dst.close()
    finally:
        src.close()
    fsync_file(target)


def _copy_rows(src: Db, dst: Db) -> int:
    """Every row of our tables from ``src`` into ``dst``'s open transaction, table by table in
    foreign-key order, rows in natural-key order; returns the number of rows."""
    total = 0
    for table, order in schema.TABLES:
        if table == "schema_migrations":
            continue
        columns = [d[0] for d in src.execute(f"SELECT * FROM {table} LIMIT 0").description]
        batch: list[tuple[object, ...]] = []
        for row in src.stream(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"):
            batch.append(tuple(row))
            if len(batch) >= COPY_BATCH:
                dst.insert_rows(table, columns, batch)
                total += len(batch)
                batch = []
        dst.insert_rows(table, columns, batch)
        total += len(batch)
    return total


def _pg_to_file(url: str, target: Path, *, migrate: bool = True) -> None:
    """Write a PostgreSQL store into the new SQLite file ``target`` (one snapshot); fsync it."""
    src = connect(url, write=False, migrate=migrate)
    try:
        version = src.user_version()
        dst_conn = open_db(target, create=True, migrations=[m for m in schema.MIGRATIONS if m.version <= version])
        dst = SqliteDb(dst_conn, target)
        try:
            dst.begin_write()
            _copy_rows(src, dst)
            dst.commit()
            dst.execute("PRAGMA journal_mode = DELETE")
        except db_errors() as exc:
            raise src.translate(exc, doing="copying the store to a file") from exc
        finally:
            dst.close()
    finally:
        src.close()
    fsync_file(target)


def _snapshot(db: Path | str, target: Path) -> None:
    if is_pg_url(db):
        _pg_to_file(str(db), target)
    else:
        _copy(Path(db), target)


def _summary(report: CheckReport, shown: int = 3) -> str:
    errors = report.errors
    text = "; ".join(f.render().split(None, 1)[1] for f in errors[:shown])
    return text + (f"; ... {len(errors) - shown} more" if len(errors) > shown else "")


def _tmp_name(dest: Path) -> Path:
    return dest.parent / f".{dest.name}.tmp-{os.getpid()}"


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def backup_db(db_path: Path | str, dest: Path | str, *, overwrite: bool = False) -> CheckReport:
    """Copy the DB at ``db_path`` (a file or a ``postgresql://`` URL) to the file ``dest`` (online,
    consistent, checked); return the copy's check."""
    pg = is_pg_url(db_path)
    db_path, dest = (db_path if pg else Path(db_path)), Path(dest)
    if dest.is_dir():
        raise StoreError("STORE_IO", f"{dest} is a directory; give the backup file's name", path=str(dest))
    if dest.exists() and not overwrite:
        raise StoreError("STORE_BACKUP_EXISTS", f"{dest} already exists", path=str(dest))
    if not pg and dest.resolve() == Path(db_path).resolve():
        raise StoreError("STORE_IO", "the backup destination is the database itself", path=str(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(dest)
    _unlink_quietly(tmp)
    try:
        _snapshot(db_path, tmp)
        report = check_store(tmp)
        if not report.ok:
            raise StoreError("STORE_CHECK_FAILED", f"the copy of {redact(db_path)} fails db check with "
                             f"{len(report.errors)} error(s): {_summary(report)}", path=redact(db_path),
                             hint="run `treasure db check` on the database; restore it from an older backup")
        report.path = str(dest)
        os.replace(tmp, dest)
    finally:
        for suffix in ("", *_SIDECARS):
            _unlink_quietly(Path(str(tmp) + suffix))
    fsync_dir(dest.parent)
    return report


def _retire(db_path: Path) -> Path | None:
    """Keep the DB being replaced as ``<db>.pre-restore``, with its WAL, untouched.

    Nothing opens it: on a damaged DB (the usual reason to restore) SQLite may delete a WAL it
    cannot use, and that WAL may hold the last good commits. The main file is hard-linked (copied
    where links are not possible) and its sidecar files renamed along, so the pair stays
    consistent under the new name.
    """
    if not db_path.exists():
        return None
    keep = db_path.with_name(db_path.name + ".pre-restore")
    for suffix in ("", *_SIDECARS):
        _unlink_quietly(Path(str(keep) + suffix))
    try:
        os.link(db_path, keep)
    except OSError:
        shutil.copy2(db_path, keep)
    for suffix in _SIDECARS:
        side = Path(str(db_path) + suffix)
        if side.exists():
            os.replace(side, Path(str(keep) + suffix))
    return keep


def restore_db(source: Path | str, db_path: Path | str) -> tuple[CheckReport, Path | None]:
    """Replace the DB at ``db_path`` with a checked copy of ``source``.

    Returns the source's check report and where the replaced DB was kept (``None`` if there was
    none). Refuses a source that is not a readable Treasure DB or fails the check.
    """
    if is_pg_url(db_path):
        return _restore_pg(Path(source), str(db_path))
    source, db_path = Path(source), Path(db_path)
    if source.resolve() == db_path.resolve():
        raise StoreError("STORE_IO", "the restore source is the database itself", path=str(source))
    report = check_store(source)
    if not report.ok:
        raise StoreError("STORE_CHECK_FAILED", f"refusing to restore {source}: it fails db check with "
                         f"{len(report.errors)} error(s): {_summary(report)}", path=str(source),
                         hint="run `treasure db check --db SRC` to see every finding; pick another backup")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(db_path)
    _unlink_quietly(tmp)
    try:
        _copy(source, tmp)
        kept = _retire(db_path)
        os.replace(tmp, db_path)
    finally:
        for suffix in ("", *_SIDECARS):
            _unlink_quietly(Path(str(tmp) + suffix))
    fsync_dir(db_path.parent)
    return report, kept


def _restore_pg(source: Path, url: str) -> tuple[CheckReport, Path | None]:
    """Replace every row of the PostgreSQL store at ``url`` with a checked backup file's rows."""
    from urllib.parse import urlparse

    report = check_store(source)
    if not report.ok:
        raise StoreError("STORE_CHECK_FAILED", f"refusing to restore {source}: it fails db check with "
                         f"{len(report.errors)} error(s): {_summary(report)}", path=str(source),
                         hint="run `treasure db check --db SRC` to see every finding; pick another backup")
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in urlparse(url).path.strip("/")) or "postgres"
    keep: Path | None = source.parent / f"pre-restore-{name}.db"
    assert keep is not None
    tmp_keep, tmp_src = _tmp_name(keep), _tmp_name(source.parent / f"restore-{name}.db")
    for path in (tmp_keep, tmp_src):
        _unlink_quietly(path)
    try:
        try:  # the current content, as found (a damaged store is exactly what one restores over)
            _pg_to_file(url, tmp_keep, migrate=False)
            os.replace(tmp_keep, keep)
        except StoreError as exc:
            if exc.code not in ("STORE_MISSING",):
                raise
            keep = None
        _copy(source, tmp_src)
        open_db(tmp_src).close()  # an older backup is migrated (in the temporary copy) first
        src = SqliteDb(open_readonly(tmp_src), tmp_src)
        try:
            dst = connect(url, write=True, create=True)
            try:
                dst.begin_write()
                dst.lock_all()
                dst.execute("TRUNCATE " + ", ".join(t for t, _ in schema.TABLES))
                _copy_rows(src, dst)
                dst.commit()
            except db_errors() as exc:
                dst.rollback()
                raise dst.translate(exc, doing=f"restoring {source}") from exc
            finally:
                dst.close()
        finally:
            src.close()
    finally:
        for path in (tmp_keep, tmp_src):
            for suffix in ("", *_SIDECARS):
                _unlink_quietly(Path(str(path) + suffix))
    if keep is not None:
        fsync_dir(keep.parent)
    return report, keep
