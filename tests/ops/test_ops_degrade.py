"""The operator commands keep working when an optional part (store, lock, recon) is not installed."""

from __future__ import annotations

import sqlite3
import sys

from helpers.ops_support import clean_ws, json_out, make_ws, run_cli, set_ssot, templates  # noqa: F401
from treasure.ops import evidence


def hide(monkeypatch, *modules: str) -> None:
    """Make ``import <module>`` fail as if the part were not installed."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_db_check_and_backup_without_treasure_store(clean_ws, capsys, monkeypatch):
    hide(monkeypatch, "treasure.store")
    set_ssot(clean_ws, lambda d: d.__setitem__("persistence", {"enabled": True, "db_path": "data/plain.db"}))
    conn = sqlite3.connect(clean_ws.data_dir / "plain.db")
    conn.execute("create table runs(run_id text primary key)")
    conn.execute("insert into runs values ('clean')")
    conn.commit()
    conn.close()
    assert evidence.read_db(clean_ws).state == "ok"  # plain SQLite check when the store is absent
    assert run_cli(clean_ws, "checklist", "eod", "--json") == 0
    check = {c["id"]: c for c in json_out(capsys)["checks"]}["eod.db_backup"]
    backup = clean_ws.root / check["details"]["backup"]
    assert check["status"] == "pass" and backup.is_file()
    assert sqlite3.connect(backup).execute("select run_id from runs").fetchall() == [("clean",)]


def test_ssot_lock_without_treasure_lock(clean_ws, monkeypatch):
    hide(monkeypatch, "treasure.approval")
    state = evidence.read_lock(clean_ws)
    assert state.present and state.matches and state.tamper == ()
    set_ssot(clean_ws, lambda d: d["run"].__setitem__("seed", 9))
    assert evidence.read_lock(clean_ws).matches is False


def test_recon_log_id_without_treasure_recon(monkeypatch):
    hide(monkeypatch, "treasure.recon", "treasure.recon.report")
    assert evidence.recon_log_id("abc") == "recon-abc"
    assert evidence.recon_log_id("x" * 64) is None
