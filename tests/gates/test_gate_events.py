"""The events gate passes on intact logs and fails, naming file, line and field, on broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis  # noqa: F401  preloaded: pytester's in-process runs then reuse it
import jsonschema
import orjson
import pytest
from pytest_treasure.gates import GATES_DIR

import treasure.engine  # noqa: F401  preloaded, as above
from treasure.events import seal
from treasure.workspace import Workspace, bundle_dir, init_workspace

pytest_plugins = ["pytester"]

GATE = GATES_DIR / "test_events.py"
LOG = "logs/events/run_good.jsonl"


@pytest.fixture(scope="module")
def good_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The lines of one real engine run's log (made once per module)."""
    from treasure.engine import RunRequest, run

    ws = init_workspace(tmp_path_factory.mktemp("events_source") / "ws")
    result = run(RunRequest(workspace=ws, run_id="good"))
    return result.event_log.read_bytes().splitlines(keepends=True)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def write_log(ws: Workspace, lines: list[bytes], name: str = LOG) -> Path:
    path = ws.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines))
    return path


def resealed(lines: list[bytes], index: int, change, *, onwards: bool = False) -> list[bytes]:
    """The log with event ``index`` (and every later one if ``onwards``) changed by
    ``change(event)`` and the chain re-sealed after it (what a buggy writer would produce: the
    chain holds, the content is wrong)."""
    events = [orjson.loads(line) for line in lines]
    out = [line for line in lines[:index]]
    prev = events[index - 1]["hash"] if index else "0" * 64
    for i, event in enumerate(events[index:], start=index):
        event.pop("hash")
        event["prev"] = prev
        if i == index or onwards:
            change(event)
        prev, line = seal(event)
        out.append(line + b"\n")
    return out


def run_gate(pytester: pytest.Pytester, ws: Workspace, *args: str) -> pytest.RunResult:
    pytester.makepyfile(gate_events_under_test=GATE.read_text())
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              f"--treasure-workspace={ws.root}", "gate_events_under_test.py", *args)


def events_report(ws: Workspace) -> dict:
    report = json.loads((ws.evidence_dir / "events_report.json").read_text())
    schema = json.loads((ws.truth_dir / "events_report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(report)
    return report


def test_passes_on_a_fresh_workspace_by_verifying_a_fresh_runs_log(pytester, ws):
    result = run_gate(pytester, ws)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*treasure gates*", "events * passed *",
                                 "*note: no event logs in logs/events/ yet (fresh workspace)*fresh run*"])
    report = events_report(ws)
    assert report["status"] == "passed" and report["source"] == "fresh_run"
    assert report["totals"]["logs"] == 1 and report["totals"]["events"] > 100
    assert not list(ws.logs_dir.glob("*.jsonl")), "the fresh run must happen in a temporary copy"


def test_passes_on_intact_logs_and_reports_each(pytester, ws, good_lines):
    write_log(ws, good_lines)
    # The same events as run "rotated", split into two parts: the chain continues across them.
    rotated = resealed(good_lines, 0, lambda e: e.update(run_id="rotated"), onwards=True)
    write_log(ws, rotated[:400], "logs/events/run_rotated.jsonl.1")
    write_log(ws, rotated[400:], "logs/events/run_rotated.jsonl")
    (ws.logs_dir / "notes.txt").write_text("not a log")
    result = run_gate(pytester, ws)
    result.assert_outcomes(passed=1)
    report = events_report(ws)
    assert report["source"] == "workspace" and report["status"] == "passed"
    by_run = {log["run_id"]: log for log in report["logs"]}
    assert by_run["good"]["events"] == by_run["rotated"]["events"] == len(good_lines)
    assert [f["path"] for f in by_run["rotated"]["files"]] == ["logs/events/run_rotated.jsonl.1",
                                                               "logs/events/run_rotated.jsonl"]
    assert [f["events"] for f in by_run["rotated"]["files"]] == [400, len(good_lines) - 400]
    assert by_run["good"]["bytes"] == sum(map(len, good_lines))
    assert report["ignored"] == ["logs/events/notes.txt"]


def fails_with(pytester, ws, *expected: str) -> dict:
    result = run_gate(pytester, ws)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["events * FAILED *"])
    out = result.stdout.str()
    for text in expected:
        assert text in out, f"{text!r} not in the gate's output:\n{out}"
    report = events_report(ws)
    assert report["status"] == "failed"
    return report


def test_fails_on_a_tampered_payload(pytester, ws, good_lines):
    lines = list(good_lines)
    index = next(i for i, line in enumerate(lines) if b'"event_type":"order_filled"' in line)
    lines[index] = lines[index].replace(b'"fee":', b'"fee":1', 1)  # still schema-valid, hash now wrong
    write_log(ws, lines)
    report = fails_with(pytester, ws, f"{LOG}:{index + 1} field hash: [EVENTS_CHAIN]", "the line was edited",
                        "hint: the hash chain is broken")
    error = report["logs"][0]["error"]
    assert (error["code"], error["line"], error["field"], error["path"]) == ("EVENTS_CHAIN", index + 1, "hash", LOG)
    assert report["logs"][0]["events"] == index


def test_fails_on_a_deleted_line(pytester, ws, good_lines):
    lines = list(good_lines)
    del lines[50]
    write_log(ws, lines)
    fails_with(pytester, ws, f"{LOG}:51 field seq: [EVENTS_SEQ] seq 51 where 50 was expected",
               "a line was deleted")


def test_fails_on_a_reordered_pair(pytester, ws, good_lines):
    lines = list(good_lines)
    lines[60], lines[61] = lines[61], lines[60]
    write_log(ws, lines)
    fails_with(pytester, ws, f"{LOG}:61 field seq: [EVENTS_SEQ] seq 61 where 60 was expected")


def test_fails_on_a_torn_last_line(pytester, ws, good_lines):
    lines = list(good_lines)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    write_log(ws, lines)
    fails_with(pytester, ws, f"[EVENTS_TRUNCATED] log truncated at line {len(lines)}")


def test_fails_on_a_schema_breaking_payload(pytester, ws, good_lines):
    index = next(i for i, line in enumerate(good_lines) if b'"event_type":"order_placed"' in line)
    write_log(ws, resealed(list(good_lines), index, lambda e: e["payload"].update(side="hold")))
    fails_with(pytester, ws, f"{LOG}:{index + 1} field payload.side: [EVENTS_SCHEMA] order_placed event: "
               "'hold' is not one of ['buy', 'sell']", "truth/events/order_placed.schema.json")


def test_fails_on_a_missing_rotated_part(pytester, ws, good_lines):
    for number, (start, stop) in enumerate([(0, 200), (200, 400), (400, 600)], start=1):
        write_log(ws, good_lines[start:stop], f"logs/events/run_good.jsonl.{number}")
    write_log(ws, good_lines[600:], LOG)
    (ws.root / "logs/events/run_good.jsonl.2").unlink()
    fails_with(pytester, ws, "[EVENTS_PART_MISSING] rotated part(s) 2 of run good are missing")


def test_fails_on_a_log_copied_under_another_run_id(pytester, ws, good_lines):
    write_log(ws, good_lines, "logs/events/run_other.jsonl")
    fails_with(pytester, ws, "logs/events/run_other.jsonl:1 field run_id: [EVENTS_RUN_ID] run_id 'good' differs "
               "from 'other'")


def test_a_treasure_check_event_hook_can_fail_the_gate(pytester, ws, good_lines):
    write_log(ws, good_lines)
    pytester.makeconftest('''
def treasure_check_event(event, workspace):
    if event["event_type"] == "order_filled" and event["payload"]["latency_bars"] >= 1:
        return [f"fill of {event['payload']['order_id']} after {event['payload']['latency_bars']} bar(s)"]
''')
    report = fails_with(pytester, ws, "problem(s) from treasure_check_event", f"{LOG}:")
    assert report["logs"][0]["problems"] and report["logs"][0]["error"] is None


def test_fails_on_a_stray_named_like_a_part_but_in_no_chain(pytester, ws, good_lines):
    """Issue 11: `run_good.jsonl.0` was read as the first part by replay and `db ingest` but ignored
    by this gate. It is in no chain (treasure.logfiles) and fails the gate, named."""
    write_log(ws, good_lines)
    write_log(ws, good_lines[:1], "logs/events/run_good.jsonl.0")
    result = run_gate(pytester, ws)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*events: 1 stray file(s) named like a log but in no log's chain: "
                                 "logs/events/run_good.jsonl.0*"])
    report = events_report(ws)
    assert report["status"] == "failed" and report["totals"]["passed"] == 1
    assert report["ignored"] == ["logs/events/run_good.jsonl.0"]
