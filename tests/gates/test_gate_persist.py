"""The persist gate passes on a good workspace DB and fails, saying where, on a DB with a deleted
event row, a changed fill, or content that no longer matches the workspace's log.

The gate runs in a subprocess (``pytest gates/test_persist.py --treasure-workspace WS``), as an
operator would run it; only its workspace-DB check is selected here: the drills run with the
gate itself.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_treasure.gates import GATES_DIR
from helpers.store_support import make_workspace

from treasure.workspace import Workspace

GATE = GATES_DIR / "test_persist.py"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Workspace:
    from treasure.cli.main import main

    ws = make_workspace(tmp_path_factory.mktemp("gate_persist") / "ws", n_bars=900)
    for run_id in ("a", "b"):
        assert main(["run", "--workspace", str(ws.root), "--run-id", run_id, "--db", "-q"]) == 0
    conn = sqlite3.connect(ws.data_dir / "treasure.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return ws


def broken_copy(good: Workspace, dest: Path, *statements: str) -> Workspace:
    shutil.copytree(good.root, dest)
    conn = sqlite3.connect(dest / "data" / "treasure.db")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return Workspace(dest)


def run_gate(ws: Workspace) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(GATE), "--treasure-workspace", str(ws.root), "-k", "workspace_db",
         "-p", "no:cacheprovider", "-q", "--no-header", "-p", "no:randomly"],
        cwd=GATE.parents[1], capture_output=True, text=True, timeout=300)


def test_the_gate_passes_on_a_good_db(good: Workspace) -> None:
    done = run_gate(good)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "persist        passed" in done.stdout


def test_the_gate_fails_on_a_deleted_event_row(good: Workspace, tmp_path: Path) -> None:
    ws = broken_copy(good, tmp_path / "ws", "DELETE FROM events WHERE run_id = 'a' AND seq = 42")
    done = run_gate(ws)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "persist: `treasure db check` fails on data/treasure.db" in done.stdout
    assert "STORE_EVENTS_MISSING: run a: seq 42 missing (deleted rows)" in done.stdout


def test_the_gate_fails_on_a_changed_fill(good: Workspace, tmp_path: Path) -> None:
    ws = broken_copy(good, tmp_path / "ws", "UPDATE fills SET qty = qty * 2 WHERE run_id = 'b' AND order_id = "
                     "(SELECT min(order_id) FROM fills WHERE run_id = 'b')")
    done = run_gate(ws)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "STORE_DERIVED: run b: fills row (order_id o000001" in done.stdout
    assert "qty" in done.stdout and "in the table" in done.stdout


def test_the_gate_fails_when_the_db_and_the_log_disagree(good: Workspace, tmp_path: Path) -> None:
    from treasure.cli.main import main

    ws = broken_copy(good, tmp_path / "ws")
    assert main(["run", "--workspace", str(ws.root), "--run-id", "a", "--seed", "9", "--overwrite", "--no-db",
                 "-q"]) == 0  # the log moved on, the DB did not
    done = run_gate(ws)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "disagrees with the workspace's evidence" in done.stdout and "run a seq 0" in done.stdout
