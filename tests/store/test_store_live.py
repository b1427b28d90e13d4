"""``treasure run --db``: the store as an event sink, the SSOT default, refusals and faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.store_support import make_workspace

from treasure.engine import RunRequest
from treasure.faults import FaultPlan
from treasure.store import StoreReader, check_store
from treasure.store.errors import StoreError
from treasure.store.run_sink import run_stored


@pytest.fixture
def ws(tmp_path: Path):
    return make_workspace(tmp_path / "ws", n_bars=1200)


def test_run_with_db_stores_exactly_the_log_and_reports(ws, cli) -> None:
    db = ws.data_dir / "runs.db"
    code, out, _ = cli("run", "--workspace", ws.root, "--run-id", "a", "--db", db)
    assert code == 0 and "data/runs.db (complete)" in out
    with StoreReader(db) as reader:
        assert b"".join(line + b"\n" for _, line in reader.iter_lines("a")) == ws.event_log("a").read_bytes()
        reports = reader.reports("a")
    court = json.loads((ws.run_reports("a") / "court_report.json").read_text())
    assert reports["court_report"] == court
    assert check_store(db).ok


def test_the_ssot_default_and_no_db(ws, cli) -> None:
    ssot = json.loads(ws.ssot_path.read_text())
    ssot["persistence"] = {"enabled": True, "db_path": "data/from_ssot.db"}
    ws.ssot_path.write_text(json.dumps(ssot))
    assert cli("run", "--workspace", ws.root, "--run-id", "a", "-q")[0] == 0
    with StoreReader(ws.data_dir / "from_ssot.db") as reader:
        assert [r.run_id for r in reader.runs()] == ["a"]
    assert cli("run", "--workspace", ws.root, "--run-id", "b", "--no-db", "-q")[0] == 0
    code, out, _ = cli("run", "--workspace", ws.root, "--run-id", "c", "--db")  # --db alone: SSOT path
    assert code == 0 and "data/from_ssot.db (complete)" in out
    with StoreReader(ws.data_dir / "from_ssot.db") as reader:
        assert [r.run_id for r in reader.runs()] == ["a", "c"]


def test_no_db_unless_asked(ws, cli) -> None:
    code, out, _ = cli("run", "--workspace", ws.root, "--run-id", "a", "-q")
    assert code == 0 and "  db  " not in out
    assert not list(ws.data_dir.glob("*.db"))


def test_a_run_already_in_the_db_needs_overwrite_which_replaces_its_rows(ws, cli) -> None:
    db = ws.data_dir / "t.db"
    assert cli("run", "--workspace", ws.root, "--run-id", "a", "--db", db)[0] == 0
    ws.event_log("a").unlink()  # the log is gone, the DB still has the run
    code, _, err = cli("run", "--workspace", ws.root, "--run-id", "a", "--db", db)
    assert code == 2 and "error[STORE_RUN_EXISTS]" in err
    assert not ws.event_log("a").exists()  # refused before any evidence was written
    with StoreReader(db) as reader:
        before = reader.dump(volatile={"court_report": ["timing"]})
    code, out, _ = cli("run", "--workspace", ws.root, "--run-id", "a", "--db", db, "--overwrite", "-q")
    assert code == 0, out
    with StoreReader(db) as reader:
        assert reader.dump(volatile={"court_report": ["timing"]}) == before
    assert check_store(db).ok


def test_overwrite_with_a_different_run_replaces_every_row(ws, cli) -> None:
    db = ws.data_dir / "t.db"
    assert cli("run", "--workspace", ws.root, "--run-id", "a", "--db", db, "--seed", "1", "-q")[0] == 0
    assert cli("run", "--workspace", ws.root, "--run-id", "a", "--db", db, "--seed", "2", "--overwrite",
               "-q")[0] == 0
    with StoreReader(db) as reader:
        assert reader.first_event("a")["payload"]["seed"] == 2
    report = check_store(db)
    assert report.ok, report.render()


def test_a_disk_error_at_a_db_commit_fails_the_run_and_keeps_a_clean_prefix(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", n_bars=2600)  # two batches: the fault hits the final commit
    db = ws.data_dir / "t.db"
    plan = FaultPlan.parse("enospc@db_commit:3")  # 1: run_start + dataset_loaded, 2: first batch
    result, stored = run_stored(RunRequest(workspace=ws, run_id="a", faults=plan), db)
    assert result.status == "error" and result.court["reason"] == "STORE_IO"
    assert stored is not None and stored.status == "running" and stored.error.code == "STORE_IO"
    with StoreReader(db) as reader:
        row = reader.run("a")
    assert row.status == "running" and row.events == 2050  # the opening events and the first batch
    report = check_store(db)
    assert report.ok and [f.code for f in report.findings] == ["STORE_RUN_INCOMPLETE"]
    assert ws.event_log("a").read_bytes().count(b"\n") == result.court["events"]["total"]


def test_a_failed_reports_transaction_leaves_the_run_running(ws) -> None:
    db = ws.data_dir / "t.db"
    probe = FaultPlan()
    run_stored(RunRequest(workspace=ws, run_id="probe", faults=probe), ws.data_dir / "probe.db")
    last = probe.calls["db_commit"]
    result, stored = run_stored(RunRequest(workspace=ws, run_id="a", faults=FaultPlan.parse(f"eio@db_commit:{last}")),
                                db)
    assert result.status == "complete" and stored.error is not None and stored.status == "running"
    with StoreReader(db) as reader:
        assert reader.run("a").status == "running" and reader.reports("a") == {}
    assert check_store(db).ok


def test_a_non_treasure_db_is_refused_before_the_run(ws, cli) -> None:
    bad = ws.data_dir / "bad.db"
    bad.write_bytes(b"not sqlite at all" * 64)
    code, _, err = cli("run", "--workspace", ws.root, "--run-id", "a", "--db", bad, "-q")
    assert code == 2 and "error[STORE_NOT_SQLITE]" in err
    assert not ws.event_log("a").exists()


def test_store_error_is_a_treasure_error() -> None:
    from treasure.errors import HINTS, TreasureError

    error = StoreError("STORE_CONFLICT", "x")
    assert isinstance(error, TreasureError) and error.hint == HINTS["STORE_CONFLICT"]
