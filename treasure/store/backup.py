"""``treasure db backup`` and ``treasure db restore``: copies that are consistent and checked.

A backup uses SQLite's online backup API (a consistent snapshot even while a run is writing),
into a temporary file next to the destination that is switched to a self-contained rollback
journal, fsynced, checked with :func:`check_store`, and only then renamed into place.

A restore refuses a source that does not pass :func:`check_store`, copies it the same way, keeps
the replaced DB as ``<db>.pre-restore`` (with its WAL, if any), and swaps the copy in with one
``os.replace``: a reader sees either the old DB or the restored one, never a mix. Stop writers
(runs with ``--db``) before restoring.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from treasure.jsonio import fsync_dir
from treasure.store.check import CheckReport, check_store
from treasure.store.connection import fsync_file, open_db, open_readonly
from treasure.store.errors import StoreError, translate

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
    """Copy the DB at ``db_path`` to ``dest`` (online, consistent, checked); return the copy's check."""
    db_path, dest = Path(db_path), Path(dest)
    if dest.is_dir():
        raise StoreError("STORE_IO", f"{dest} is a directory; give the backup file's name", path=str(dest))
    if dest.exists() and not overwrite:
        raise StoreError("STORE_BACKUP_EXISTS", f"{dest} already exists", path=str(dest))
    if dest.resolve() == db_path.resolve():
        raise StoreError("STORE_IO", "the backup destination is the database itself", path=str(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(dest)
    _unlink_quietly(tmp)
    try:
        _copy(db_path, tmp)
        report = check_store(tmp)
        if not report.ok:
            raise StoreError("STORE_CHECK_FAILED", f"the copy of {db_path} fails db check with "
                             f"{len(report.errors)} error(s): {_summary(report)}", path=str(db_path),
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
