"""Crash safety: SIGKILL ``treasure run`` at a few fixed points (the full 50 are in bench/).

Uses the harness of bench/crash_test.py, so the tests and the benchmark check the same things;
the second half shows each check failing on a deliberately broken workspace.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from treasure.faults import Fault
from treasure.workspace import Workspace

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "crash_test.py"


def _load_harness():
    spec = importlib.util.spec_from_file_location("treasure_crash_harness", _BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


crash = _load_harness()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Template workspace with an earlier complete run + a probed uninterrupted crash run."""
    return crash.build_reference(tmp_path_factory.mktemp("crashref"), n_bars=15_000, seed=3)


def _points(ref) -> list[Fault]:
    calls = ref.calls
    assert calls["event_write"] >= 2, "dataset too small: the run must flush a batch mid-run"
    return [
        Fault("kill", "dataset_load", 1),
        Fault("kill", "bar", calls["bar"] - 200),                  # after the first batch is on disk
        Fault("kill", "event_write", calls["event_write"]),        # before the final flush
        Fault("kill", "replace", 3),                               # run eqs renamed, run court not yet
        Fault("kill", "replace", 5),                               # only the latest court left to rename
    ]


def test_probe_counts_every_stage(reference):
    calls = reference.calls
    assert calls["dataset_load"] == 1 and calls["report_write"] == 1
    assert calls["bar"] > 14_000
    assert calls["replace"] == 6  # equity.npy, run eqs, run court, manifest.json (anchor), latest eqs, latest court
    assert calls["fsync"] == 12   # data + directory per atomic write


def test_kill_points_survive(reference, tmp_path):
    trials = crash.run_harness(_points(reference), reference, tmp_path, jobs=2)
    report = crash.table(trials)
    assert all(t.ok for t in trials), report
    states = {t.fault.spec: t.state for t in trials}
    assert states["kill@dataset_load:1"].startswith("log 0 ev, no court")
    assert "2050 ev" in states[f"kill@bar:{reference.calls['bar'] - 200}"]
    assert "no court" in states["kill@replace:3"]
    assert "run court written, latest old" in states["kill@replace:5"]


def test_seeded_points_are_reproducible(reference):
    first = crash.plan_points(reference, 50, seed=11)
    again = crash.plan_points(reference, 50, seed=11)
    other = crash.plan_points(reference, 50, seed=12)
    assert first == again and first != other
    assert len(first) == len(set(first)) == 50
    points = {f.point for f in first}
    assert {"dataset_load", "event_write", "report_write", "replace", "fsync", "bar"} <= points


# -- the checks fail on broken states ------------------------------------------------------------


def _broken_ws(reference, tmp_path) -> Workspace:
    """A workspace in the state an uninterrupted crash run leaves (so every check passes)."""
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(reference.template.root, ws.root)
    for rel, data in reference.after.items():
        target = ws.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return ws


def test_check_reports_catches_a_torn_report(reference, tmp_path):
    ws = _broken_ws(reference, tmp_path)
    trial = crash.Trial(Fault("kill", "bar", 1))
    crash.check_reports(reference, ws, trial)
    assert trial.results["reports"] == "ok"
    court = ws.reports_dir / "court_report.json"
    court.write_bytes(court.read_bytes()[:300])
    crash.check_reports(reference, ws, trial)
    assert "reports/court_report.json: torn or invalid" in trial.results["reports"]


def test_check_reports_catches_a_report_that_is_neither_old_nor_new(reference, tmp_path):
    ws = _broken_ws(reference, tmp_path)
    eqs = ws.run_reports(crash.RUN_ID) / "eqs_report.json"
    eqs.write_bytes(eqs.read_bytes().replace(b'"run_id": "crash"', b'"run_id": "other"'))
    trial = crash.Trial(Fault("kill", "bar", 1))
    crash.check_reports(reference, ws, trial)
    assert "eqs_report.json: neither the old nor the new complete report" in trial.results["reports"]


def test_check_log_catches_a_foreign_log(reference, tmp_path):
    ws = _broken_ws(reference, tmp_path)
    log = ws.event_log(crash.RUN_ID)
    data = bytearray(log.read_bytes())
    data[100] ^= 1
    log.write_bytes(bytes(data))
    trial = crash.Trial(Fault("kill", "bar", 1))
    crash.check_log(reference, ws, trial, tmp_path)
    assert "not a prefix" in trial.results["log_prefix"]


def test_check_complete_catches_a_court_without_its_log(reference, tmp_path):
    ws = _broken_ws(reference, tmp_path)
    log = ws.event_log(crash.RUN_ID)
    log.write_bytes(log.read_bytes()[:4096])
    trial = crash.Trial(Fault("kill", "bar", 1))
    crash.check_complete(reference, ws, trial)
    assert "court report exists but the event log is not complete" in trial.results["complete"]


def test_check_complete_catches_latest_naming_an_unwritten_run(reference, tmp_path):
    ws = _broken_ws(reference, tmp_path)
    shutil.rmtree(ws.run_reports(crash.RUN_ID))
    trial = crash.Trial(Fault("kill", "bar", 1))
    crash.check_complete(reference, ws, trial)
    assert "names the killed run" in trial.results["complete"]


def test_table_reports_failures_by_point(reference):
    trial = crash.Trial(Fault("kill", "bar", 5), "before bar call 5")
    trial.results.update({"killed": "ok", "reports": "x.json: torn or invalid (boom)"})
    text = crash.table([trial])
    assert "0/1 kill points survived" in text
    assert "kill@bar:5 reports: x.json: torn or invalid (boom)" in text


# -- with the run database (treasure run --db) ---------------------------------------------------


@pytest.fixture(scope="module")
def db_reference(tmp_path_factory):
    if not crash.db_available():
        pytest.skip("persistence (treasure/store, `treasure db`) not available")
    return crash.build_reference(tmp_path_factory.mktemp("crashdb"), n_bars=15_000, seed=3, db=True)


def test_kill_points_survive_with_db(db_reference, tmp_path):
    calls = db_reference.calls
    assert calls.get("db_commit", 0) >= 2, "the store must commit mid-run and at the end"
    points = [Fault("kill", "db_commit", calls["db_commit"]),   # before the final commit
              Fault("kill", "replace", 3)]                       # after the log and DB, mid-reports
    trials = crash.run_harness(points, db_reference, tmp_path, jobs=2)
    assert all(t.ok for t in trials), crash.table(trials)
    assert all(t.results["db"] == "ok" and t.results["rerun"] == "ok" for t in trials)
