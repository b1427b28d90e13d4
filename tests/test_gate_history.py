"""Gate history (treasure.gate_history): append-only, locked, fsynced; gates.json derived from it;
corrupt lines reported, never fatal; trends, staleness and consecutive failures."""

from __future__ import annotations

import json
import multiprocessing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from treasure import gate_history as gh
from treasure.contracts import Contracts
from treasure.workspace import Workspace, init_workspace

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def entry(name: str, status: str = "passed", duration: float = 1.0, reason: str | None = None) -> dict:
    counts = {"passed": int(status == "passed"), "failed": int(status == "failed"), "skipped": int(status == "skipped")}
    return {"name": name, "description": f"the {name} gate", "status": status, "reason": reason, "counts": counts,
            "tests": [], "notes": [], "duration_s": duration}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def session(ws: Workspace, *entries: dict, at: datetime = T0, run_by: str = "pytest",
            selected: list[str] | None = None) -> dict:
    gh.record_session(ws.root, list(entries), selected=selected, run_by=run_by, now=at)
    return json.loads(gh.latest_path(ws.root).read_text())


def test_every_session_appends_and_gates_json_is_the_latest_state_per_gate(ws: Workspace) -> None:
    contracts = Contracts(ws.truth_dir)
    session(ws, entry("e2"), entry("phase2", "failed", reason="equity differs"), at=T0)
    doc = session(ws, entry("e2", "failed", 2.5, reason="lock"), at=T0 + timedelta(hours=1), run_by="cli",
                  selected=["e2"])  # a partial run: phase2 keeps its last result
    assert contracts.errors("gates_report", doc) == []
    assert {g["name"]: (g["status"], g["run_by"]) for g in doc["gates"]} == {
        "e2": ("failed", "cli"), "phase2": ("failed", "pytest")}
    assert doc["gates"][0]["finished_at"] == "2025-03-01T13:00:00.000Z"
    assert doc["session"]["gates"] == ["e2"] and doc["session"]["selected"] == ["e2"]
    assert doc["session"]["run_by"] == "cli" and doc["status"] == "failed"
    history = gh.read(ws.root)
    assert [(r["gate"], r["outcome"]) for r in history.records] == [
        ("e2", "passed"), ("phase2", "failed"), ("e2", "failed")]
    assert all(contracts.errors("gate_history", r) == [] for r in history.records)
    assert history.warnings == []


def test_a_partial_run_does_not_make_status_say_all_passed(ws: Workspace) -> None:
    session(ws, entry("e2"), entry("phase2", "failed"), at=T0)
    doc = session(ws, entry("e2"), at=T0 + timedelta(minutes=5), selected=["e2"])
    assert doc["session"]["status"] == "passed"  # what `verify e2` reports
    assert doc["status"] == "failed"              # what the workspace's gates say
    view = gh.session_view(doc)
    assert view["status"] == "passed" and [g["name"] for g in view["gates"]] == ["e2"]


def test_corrupt_and_torn_lines_are_skipped_with_a_coded_warning(ws: Workspace) -> None:
    session(ws, entry("e2"), at=T0)
    path = gh.history_path(ws.root)
    with open(path, "ab") as handle:
        handle.write(b'not json\n{"gate": "e2", "outcome": "exploded"}\n[1, 2]\n{"gate": "e2", "outc')  # torn
    history = gh.read(ws.root)
    assert len(history.records) == 1
    assert [(w.code, w.line) for w in history.warnings] == [(gh.CORRUPT_CODE, n) for n in (2, 3, 4, 5)]
    assert "torn last line" in history.warnings[-1].message
    assert history.warnings[0].render().startswith("warning[GATE_HISTORY_CORRUPT]: evidence/gates_history.jsonl line 2")
    doc = session(ws, entry("e2", "failed"), at=T0 + timedelta(hours=1))  # the next record starts on its own line
    assert doc["gates"][0]["status"] == "failed" and doc["history"]["corrupt_lines"] == 4
    assert len(gh.read(ws.root).records) == 2


def test_an_over_long_line_is_skipped_unparsed(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gh, "MAX_LINE_BYTES", 64)
    session(ws, entry("e2"), at=T0)  # one record, longer than 64 bytes
    session(ws, entry("e2"), at=T0)
    history = gh.read(ws.root)
    assert history.records == [] and [w.line for w in history.warnings] == [1, 2]
    assert "longer than 64 bytes" in history.warnings[0].message


def test_an_absent_history_is_empty(tmp_path: Path) -> None:
    assert gh.read(tmp_path).records == [] and gh.latest(tmp_path) == {}
    assert gh.consecutive_failures(tmp_path, "e2") == 0 and gh.trends(tmp_path) == []


def test_consecutive_failures_stale_and_trends(ws: Workspace) -> None:
    outcomes = ["passed", "failed", "passed", "failed", "failed", "failed"]
    for i, outcome in enumerate(outcomes):
        session(ws, entry("e2", outcome, duration=float(i + 1)), at=T0 + timedelta(hours=i))
    session(ws, entry("phase2"), at=T0 + timedelta(hours=30))
    assert gh.consecutive_failures(ws.root, "e2") == 3
    assert gh.consecutive_failures(ws.root, "phase2") == 0
    now = T0 + timedelta(hours=31)
    assert gh.stale(ws.root, now=now) == {"e2": pytest.approx(26 * 3600)}
    (e2, phase2) = gh.trends(ws.root, now=now)
    assert (e2.runs, e2.passed, e2.failed, e2.consecutive_failures, e2.last_outcome) == (6, 2, 4, 3, "failed")
    assert (e2.mean_duration_s, e2.max_duration_s) == (3.5, 6.0) and e2.last_age_s == 26 * 3600
    assert phase2.last_age_s == 3600
    (last2,) = gh.trends(ws.root, gate="e2", last=2, now=now)
    assert (last2.runs, last2.failed, last2.mean_duration_s) == (2, 2, 5.5)
    assert gh.format_age(26 * 3600) == "26h" and gh.format_age(3 * 86400) == "3d" and gh.format_age(None) == "?"


def test_run_by_comes_from_the_environment() -> None:
    assert gh.run_by_from_env({}) == "pytest"
    assert gh.run_by_from_env({gh.RUN_BY_ENV: "cli"}) == "cli"
    assert gh.run_by_from_env({gh.RUN_BY_ENV: "checklist"}) == "checklist"
    assert gh.run_by_from_env({gh.RUN_BY_ENV: "somebody"}) == "pytest"


def _writer(root: str, index: int) -> None:
    for n in range(10):
        gh.record_session(root, [entry(f"g{index}"), entry("shared", "passed" if n % 2 else "failed")],
                          run_by="pytest")


def test_concurrent_writers_lose_no_record_and_leave_a_consistent_latest(ws: Workspace) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(ws.root), i)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    history = gh.read(ws.root)
    assert history.warnings == [] and len(history.records) == 4 * 10 * 2
    doc = json.loads(gh.latest_path(ws.root).read_text())
    assert sorted(g["name"] for g in doc["gates"]) == ["g0", "g1", "g2", "g3", "shared"]
    assert doc["history"]["records"] == 80
    assert gh.latest(history)["shared"]["session"] == doc["gates"][-1]["session"]


def test_the_clock_read_is_the_only_one_and_it_is_allowed_by_the_determinism_scanner() -> None:
    from treasure.nondeterminism import scan_paths

    source = Path(gh.__file__)
    result = scan_paths([source])
    assert result.findings == [] and result.allowed == 1


def test_is_workspace(tmp_path: Path, ws: Workspace) -> None:
    assert gh.is_workspace(ws.root) and not gh.is_workspace(tmp_path)
