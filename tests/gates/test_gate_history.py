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

pytest_plugins = ["pytester"]

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
    from treasure.determinism_scan import scan_paths

    source = Path(gh.__file__)
    result = scan_paths([source])
    assert result.findings == [] and result.allowed == 1


def test_is_workspace(tmp_path: Path, ws: Workspace) -> None:
    assert gh.is_workspace(ws.root) and not gh.is_workspace(tmp_path)


# ------------------------------------------------------------------------------------------
# status, checklist pre and `treasure gates history` read it
# ------------------------------------------------------------------------------------------
def _check(doc: dict, check_id: str) -> dict | None:
    return next((c for c in doc["checks"] if c["id"] == check_id), None)


def _all_runbook(ws: Workspace, status: str = "passed", *, at: datetime) -> None:
    from treasure.gate_catalog import RUNBOOK_GATES

    session(ws, *(entry(name, status) for name in RUNBOOK_GATES), at=at)


def test_checklist_pre_fails_on_a_stale_gate(ws: Workspace, cli) -> None:
    now = gh.now_utc()
    _all_runbook(ws, at=now - timedelta(minutes=5))
    code, out, _ = cli("checklist", "pre", "--workspace", ws.root, "--json")
    assert _check(json.loads(out), "pre.gates")["status"] == "pass"
    _all_runbook(ws, at=now - timedelta(hours=25))  # a day-old verdict
    code, out, _ = cli("checklist", "pre", "--workspace", ws.root, "--json")
    check = _check(json.loads(out), "pre.gates")
    assert check["status"] == "fail" and check["reason"].startswith("stale: determinism (25h old)")
    assert code != 0


def test_checklist_pre_escalates_after_more_than_five_consecutive_failures(ws: Workspace, cli) -> None:
    now = gh.now_utc()
    for i in range(5):
        session(ws, entry("e2", "failed", reason="lock"), at=now - timedelta(minutes=10 - i))
    code, out, _ = cli("checklist", "pre", "--workspace", ws.root, "--json")
    doc = json.loads(out)
    assert "5 in a row" in _check(doc, "pre.gates")["reason"] and _check(doc, "pre.gates_escalate") is None
    session(ws, entry("e2", "failed", reason="lock"), at=now)  # the sixth in a row
    code, out, _ = cli("checklist", "pre", "--workspace", ws.root)
    assert code != 0
    assert "GATE_ESCALATE: e2 failed 6 times in a row" in out
    assert ">5 consecutive gate failures" in out
    session(ws, entry("e2"), at=now + timedelta(seconds=1))  # a pass ends the streak
    code, out, _ = cli("checklist", "pre", "--workspace", ws.root, "--json")
    assert _check(json.loads(out), "pre.gates_escalate") is None


def test_status_shows_each_gates_last_result_and_age(ws: Workspace, cli) -> None:
    now = gh.now_utc()
    session(ws, entry("e2"), entry("phase2", "failed"), at=now - timedelta(hours=3))
    session(ws, entry("e2", "failed"), at=now - timedelta(minutes=2), selected=["e2"])
    code, out, _ = cli("status", "--workspace", ws.root)
    assert code == 0
    assert "gates            failed: e2 failed (2m ago)  phase2 failed (3h ago)" in out
    code, out, _ = cli("status", "--workspace", ws.root, "--json")
    latest = json.loads(out)["gates"]["latest"]
    assert latest["e2"]["outcome"] == "failed" and latest["e2"]["consecutive_failures"] == 1
    assert latest["phase2"]["run_by"] == "pytest"


def test_gates_history_command_shows_trends(ws: Workspace, cli) -> None:
    code, out, _ = cli("gates", "history", "--workspace", ws.root)
    assert code == 0 and "no gate results recorded yet" in out
    now = gh.now_utc()
    for i in range(6):
        session(ws, entry("e2", "failed", duration=2.0 + i), at=now - timedelta(minutes=10 - i), run_by="cli")
    session(ws, entry("phase2", duration=1.0), at=now)
    code, out, _ = cli("gates", "history", "--workspace", ws.root)
    assert code == 0
    (e2_line,) = [line for line in out.splitlines() if line.startswith("e2 ")]
    assert e2_line.split()[:6] == ["e2", "6", "0", "6", "0", "failed"]
    assert "ESCALATE" in e2_line and "4.50" in e2_line and "7.00" in e2_line
    code, out, _ = cli("gates", "history", "--workspace", ws.root, "--gate", "e2", "--last", "2", "--json")
    doc = json.loads(out)
    assert [g["gate"] for g in doc["gates"]] == ["e2"] and doc["gates"][0]["runs"] == 2
    assert doc["gates"][0]["consecutive_failures"] == 6 and len(doc["results"]) == 2
    assert doc["results"][-1]["run_by"] == "cli"


def test_a_corrupt_history_line_is_a_warning_for_the_command(ws: Workspace, cli) -> None:
    session(ws, entry("e2"), at=T0)
    with open(gh.history_path(ws.root), "ab") as handle:
        handle.write(b"garbage\n")
    code, out, err = cli("gates", "history", "--workspace", ws.root)
    assert code == 0 and "e2 " in out
    assert "warning[GATE_HISTORY_CORRUPT]: evidence/gates_history.jsonl line 2" in err


def test_a_pytest_session_records_who_ran_it(pytester: pytest.Pytester, ws: Workspace,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile('''
        import pytest

        @pytest.mark.gate("e2")
        def test_mine():
            pass
    ''')
    monkeypatch.setenv(gh.RUN_BY_ENV, "checklist")
    pytester.runpytest("-p", "no:cacheprovider", f"--treasure-workspace={ws.root}").assert_outcomes(passed=1)
    monkeypatch.delenv(gh.RUN_BY_ENV)
    pytester.runpytest("-p", "no:cacheprovider", f"--treasure-workspace={ws.root}").assert_outcomes(passed=1)
    assert [r["run_by"] for r in gh.read(ws.root).records] == ["checklist", "pytest"]


def test_running_as_sets_and_restores_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv(gh.RUN_BY_ENV, raising=False)
    with gh.running_as("checklist"):
        assert os.environ[gh.RUN_BY_ENV] == "checklist"
    assert gh.RUN_BY_ENV not in os.environ
    with pytest.raises(ValueError, match="run_by must be one of"):
        with gh.running_as("root"):
            pass
