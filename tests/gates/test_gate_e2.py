"""The e2 gate passes on a fresh workspace and fails, naming file and field, on broken inputs."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis  # noqa: F401  preloaded: pytester's in-process runs then reuse it (its plugin imports it)
import jsonschema  # noqa: F401
import pytest
from pytest_treasure.gates import GATES_DIR

import treasure.engine  # noqa: F401  preloaded, as above
from treasure.workspace import Workspace, bundle_dir, init_workspace

pytest_plugins = ["pytester"]

GATE = GATES_DIR / "test_e2.py"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def run_gate(pytester: pytest.Pytester, ws: Workspace, *args: str) -> pytest.RunResult:
    pytester.makepyfile(gate_e2_under_test=GATE.read_text())
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              f"--treasure-workspace={ws.root}", "gate_e2_under_test.py", *args)


def gates_report(ws: Workspace) -> dict:
    return json.loads((ws.evidence_dir / "gates.json").read_text())


def edit_json(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))


def test_passes_on_a_fresh_workspace_checking_a_fresh_runs_reports(pytester, ws):
    result = run_gate(pytester, ws)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*treasure gates*", "e2 * passed *",
                                 "*note: no reports in reports/ yet (fresh workspace)*fresh run*"])
    report = gates_report(ws)
    assert report["status"] == "passed"
    assert not (ws.logs_dir / "run_x.jsonl").exists() and not list(ws.logs_dir.glob("*.jsonl")), \
        "the gate's run must happen in a temporary copy, not in the workspace"


def test_passes_on_a_workspace_with_reports(pytester, ws):
    from treasure.engine import RunRequest, run

    run(RunRequest(workspace=ws))
    result = run_gate(pytester, ws, "-k", "test_latest_reports_validate")
    result.assert_outcomes(passed=1, deselected=4)
    assert "fresh workspace" not in result.stdout.str()


def test_fails_on_a_schema_breaking_ssot(pytester, ws):
    edit_json(ws.ssot_path, lambda s: s["risk"].update(max_position_size_usd="lots"))
    result = run_gate(pytester, ws, "-k", "ssot_validates or spec_and_truth")
    result.assert_outcomes(failed=2, deselected=3)
    out = result.stdout.str()
    assert "spec/ssot.json field risk.max_position_size_usd: 'lots' is not of type 'number'" in out
    assert "error[SSOT_SCHEMA]" in out
    report = gates_report(ws)
    assert report["status"] == "failed"
    assert "risk.max_position_size_usd" in report["gates"][0]["reason"]


def test_fails_on_a_changed_report(pytester, ws):
    from treasure.engine import RunRequest, run

    result = run(RunRequest(workspace=ws))
    edit_json(ws.reports_dir / "court_report.json", lambda r: r["metrics"].update(fees_usd=0.5))
    edit_json(ws.reports_dir / "eqs_report.json", lambda r: r.update(score="high"))
    out = run_gate(pytester, ws, "-k", "test_latest_reports_validate")
    out.assert_outcomes(failed=1, deselected=4)
    text = out.stdout.str()
    assert "reports/eqs_report.json field score: 'high' is not of type 'number'" in text
    assert f"reports/court_report.json: differs from its run's copy reports/runs/{result.run_id}/court_report.json" \
           in text and "['fees_usd']: 1" in text


def test_fails_on_a_report_that_breaks_its_schema(pytester, ws):
    from treasure.engine import RunRequest, run

    run(RunRequest(workspace=ws))
    edit_json(ws.reports_dir / "court_report.json", lambda r: r.update(status="exploded"))
    out = run_gate(pytester, ws, "-k", "test_latest_reports_validate")
    out.assert_outcomes(failed=1, deselected=4)
    out.stdout.fnmatch_lines(["*reports/court_report.json field status: 'exploded' is not one of*"])


def test_fails_on_a_truth_file_that_is_not_a_schema(pytester, ws):
    (ws.truth_dir / "events" / "bogus.schema.json").write_text('{"$schema": '
                                                                 '"https://json-schema.org/draft/2020-12/schema", "type": 12}')
    (ws.truth_dir / "notes.json").write_text('{"hello": "world"}')
    (ws.truth_dir / "broken.schema.json").write_text('{"type": "object",')
    (ws.spec_dir / "README.txt").write_text("spec docs")
    (ws.spec_dir / "extra.json").write_text('{"limit": -1}')
    (ws.spec_dir / "extra.schema.json").write_text('{"$schema": "https://json-schema.org/draft/2020-12/schema", '
                                                   '"properties": {"limit": {"minimum": 0}}}')
    out = run_gate(pytester, ws, "-k", "spec_and_truth")
    out.assert_outcomes(failed=1, deselected=4)
    out.stdout.fnmatch_lines([
        "*e2: spec/ and truth/: spec/README.txt: not valid JSON: line 1 column 1*(and 4 more problem(s))",
        "*spec/README.txt: not valid JSON*",
        "*spec/extra.json field limit: -1 is less than the minimum of 0 (schema spec/extra.schema.json)*",
        "*truth/broken.schema.json: not valid JSON: line 1 column 19*",
        "*truth/events/bogus.schema.json field type: not a valid draft 2020-12 schema*",
        "*truth/notes.json: not a schema (truth/ holds only *.schema.json contracts)*",
    ])


def test_fails_on_a_dataset_with_one_changed_byte(pytester, ws):
    path = ws.fixtures_dir / "data" / "default_bars.csv"
    data = bytearray(path.read_bytes())
    index = data.rindex(b"5")
    data[index:index + 1] = b"6"
    path.write_bytes(bytes(data))
    out = run_gate(pytester, ws, "-k", "dataset_sha")
    out.assert_outcomes(failed=1, deselected=4)
    out.stdout.fnmatch_lines(["*fixtures/data/default_bars.csv: SHA-256 * does not match spec/ssot.json "
                              "field dataset.sha256*"])


def test_fails_when_the_latest_report_no_longer_matches_its_evidence(pytester, ws):
    from treasure.engine import RunRequest, run

    result = run(RunRequest(workspace=ws))
    curve = result.report_dir / "equity.npy"
    curve.write_bytes(curve.read_bytes()[:-8] + b"\0" * 8)
    log = result.event_log
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:-1]))
    out = run_gate(pytester, ws, "-k", "test_latest_reports_validate")
    out.assert_outcomes(failed=1, deselected=4)
    out.stdout.fnmatch_lines([
        "*reports/court_report.json field evidence.equity_curve_sha256: * but reports/runs/*/equity.npy hashes to *",
        "*reports/court_report.json field events.total: * but the event log holds * lines",
        "*reports/court_report.json field events.last_hash: * but the log's last event hashes to *",
    ])


@pytest.mark.parametrize("tamper, code", [
    (lambda ws: edit_json(ws.ssot_path, lambda s: s["risk"].update(daily_loss_limit_usd=1234)), "TAMPER_SSOT"),
    (lambda ws: edit_json(ws.truth_dir / "eqs_report.schema.json", lambda s: s.update(title="edited")),
     "TAMPER_SCHEMA"),
    (lambda ws: (ws.truth_dir / "extra.schema.json").write_text('{"type": "object"}'), "TAMPER_UNAPPROVED"),
])
def test_fails_on_changes_since_the_last_approval(pytester, ws, tamper, code):
    from treasure.approval import approve

    approve(ws)
    assert run_gate(pytester, ws, "-k", "approval_lock").ret == 0
    tamper(ws)
    result = run_gate(pytester, ws, "-k", "approval_lock")
    result.assert_outcomes(failed=1, deselected=4)
    result.stdout.fnmatch_lines([f"*e2: approval lock:*{code}*", "*treasure ssot approve*"])
