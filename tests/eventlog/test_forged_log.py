"""Issue 17 item 4a: a re-hashed forged log of a non-latest run must not pass.

Forgery: halve one fill's price in run ``a`` (not the latest) and recompute the hash chain from
there on. Before, ``treasure verify`` passed all gates and ``diagnose`` said "chain OK": each log
was verified on its own, the court reports were only checked for the latest run, and the phase2
accounting only for a fresh run. Now the events gate and ``diagnose`` tie every log to its own
court report (head hash, totals, counts), and phase2 replays every recorded run's fills.
"""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis  # noqa: F401  preloaded: pytester's in-process runs then reuse it
import orjson
import pytest
from pytest_treasure.gates import GATES_DIR

import treasure.engine  # noqa: F401  preloaded, as above
from treasure.events import seal
from treasure.workspace import Workspace, bundle_dir, init_workspace

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from treasure.engine import RunRequest, run

    ws = init_workspace(tmp_path_factory.mktemp("forged") / "ws")
    run(RunRequest(workspace=ws, run_id="a"))
    run(RunRequest(workspace=ws, run_id="b"))
    return ws.root


@pytest.fixture
def ws(two_runs: Path, tmp_path: Path) -> Workspace:
    import shutil

    shutil.copytree(two_runs, tmp_path / "ws", symlinks=True)
    return Workspace.at(tmp_path / "ws")


def forge(ws: Workspace, run_id: str) -> str:
    """Halve the price of the run's first fill and re-chain the log from there; the new head hash."""
    log = ws.event_log(run_id)
    events = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    index = next(i for i, e in enumerate(events) if e["event_type"] == "order_filled")
    events[index]["payload"]["price"] = events[index]["payload"]["price"] / 2
    prev = events[index - 1]["hash"]
    lines = [line + b"\n" for line in log.read_bytes().splitlines()[:index]]
    for event in events[index:]:
        event.pop("hash")
        event["prev"] = prev
        prev, line = seal(event)
        lines.append(line + b"\n")
    log.write_bytes(b"".join(lines))
    return prev


def edit_court_head(ws: Workspace, run_id: str, head: str) -> None:
    path = ws.run_reports(run_id) / "court_report.json"
    court = json.loads(path.read_text())
    court["events"]["last_hash"] = head
    path.write_text(json.dumps(court, indent=2))


def run_gate(pytester: pytest.Pytester, ws: Workspace, gate: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(**{f"gate_{gate}_under_test": (GATES_DIR / f"test_{gate}.py").read_text()})
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              f"--treasure-workspace={ws.root}", f"gate_{gate}_under_test.py", *args)


def test_the_forged_log_still_verifies_on_its_own(ws: Workspace) -> None:
    """The premise: the chain alone cannot tell."""
    from treasure.eventlog import verify_log

    forge(ws, "a")
    assert verify_log(ws.log_parts("a")).events > 100


def test_the_events_gate_ties_every_log_to_its_court_report(pytester: pytest.Pytester, ws: Workspace) -> None:
    forge(ws, "a")
    result = run_gate(pytester, ws, "events")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*run a:*", "*reports/runs/a/court_report.json field events.last_hash:*"])


def test_diagnose_sees_the_forgery(ws: Workspace) -> None:
    from treasure.ops.diagnose import diagnose

    forge(ws, "a")
    integrity = diagnose(ws, "a")["log"]["integrity"]
    assert integrity["ok"] is False and integrity["code"] == "EVENTS_COURT_MISMATCH", integrity
    assert "events.last_hash" in integrity["message"]
    assert diagnose(ws, "b")["log"]["integrity"]["ok"] is True


def test_phase2_replays_every_recorded_run(pytester: pytest.Pytester, ws: Workspace) -> None:
    """With the court report's head hash edited too, the chain checks pass; the accounting does not."""
    edit_court_head(ws, "a", forge(ws, "a"))
    result = run_gate(pytester, ws, "phase2", "-k", "every_recorded_run")
    result.assert_outcomes(failed=1, deselected=result.parseoutcomes().get("deselected", 0))
    result.stdout.fnmatch_lines(["*phase2: recorded runs' fees and PnL: run a: *"])
    assert "run b:" not in result.stdout.str()


def test_phase2_passes_every_intact_recorded_run(pytester: pytest.Pytester, ws: Workspace) -> None:
    result = run_gate(pytester, ws, "phase2", "-k", "every_recorded_run")
    result.assert_outcomes(passed=1, deselected=result.parseoutcomes().get("deselected", 0))
