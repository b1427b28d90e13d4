"""Readers of the run DB never write (issue 17): `db check`, `db backup` and replay work on a DB
in a read-only folder, and a planted trigger is refused before anything is written through it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from treasure.errors import TreasureError
from treasure.store import open_db, open_readonly
from treasure.store.check import check_store
from treasure.store.writer import StoreWriter


def _make_db(path: Path) -> None:
    open_db(path, create=True).close()


def _run_read_only(folder: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run python ``code`` with ``folder`` read-only. Root ignores file modes, so as root the
    folder is bind-mounted read-only in a private mount namespace (unshare); otherwise chmod."""
    if os.geteuid() == 0:
        script = (f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} {folder} && "
                  f'exec {sys.executable} -c "$0"')
        return subprocess.run(["unshare", "-m", "sh", "-c", script, code], capture_output=True, text=True,
                              timeout=60)
    folder.chmod(0o555)
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    finally:
        folder.chmod(0o755)


def test_readers_work_on_a_read_only_wal_db(tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="treasure-ro-"))
    ro = folder / "treasure.db"
    _make_db(ro)
    try:
        before = sorted(os.listdir(folder))
        probe = _run_read_only(folder, f"open({str(folder / 'x')!r}, 'w')")
        assert probe.returncode != 0, "the folder must really be read-only for this test to mean anything"
        code = (f"from treasure.store.check import check_store\n"
                f"from treasure.store.reader import StoreReader\n"
                f"r = check_store({str(ro)!r}); print('ok' if r.ok else r.render())\n"
                f"with StoreReader({str(ro)!r}) as reader: print(len(reader.runs()))\n")
        done = _run_read_only(folder, code)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["ok", "0"]
        assert sorted(os.listdir(folder)) == before  # no -wal/-shm/-journal left behind
    finally:
        shutil.rmtree(folder)


def test_open_readonly_cannot_write(tmp_path: Path) -> None:
    db = tmp_path / "treasure.db"
    _make_db(db)
    conn = open_readonly(db)
    try:
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("CREATE TABLE x (a)")
    finally:
        conn.close()


def test_planted_trigger_is_refused_by_writers_and_named_by_check(tmp_path: Path) -> None:
    db = tmp_path / "treasure.db"
    _make_db(db)
    conn = sqlite3.connect(db)
    table = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite%' "
                         "ORDER BY name").fetchone()[0]
    conn.execute(f"CREATE TRIGGER evil AFTER INSERT ON {table} BEGIN SELECT 1; END")
    conn.commit()
    conn.close()
    with pytest.raises(TreasureError) as info:
        open_db(db, create=True)
    assert info.value.code == "STORE_FOREIGN_OBJECT" and "evil" in info.value.message
    report = check_store(db)
    assert not report.ok and any(f.code == "STORE_SCHEMA" and "evil" in f.message for f in report.findings)


def test_writer_refuses_planted_trigger(tmp_path: Path) -> None:
    db = tmp_path / "treasure.db"
    _make_db(db)
    conn = sqlite3.connect(db)
    conn.execute("CREATE VIEW spy AS SELECT 1")
    conn.commit()
    conn.close()
    with pytest.raises(TreasureError) as info:
        StoreWriter.open(db)
    assert info.value.code == "STORE_FOREIGN_OBJECT"
