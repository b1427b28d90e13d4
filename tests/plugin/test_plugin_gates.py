"""The plugin's gate machinery: marker, selection, hooks, summary and evidence/gates.json."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis  # noqa: F401  preloaded: pytester's in-process runs then reuse it
import pytest

from treasure.contracts import Contracts
from treasure.workspace import Workspace, init_workspace

pytest_plugins = ["pytester"]

GATES = '''
import pytest

@pytest.mark.gate("e2")
def test_e2_ok():
    pass

@pytest.mark.gate("e2")
def test_e2_also_ok():
    pass

@pytest.mark.gate("phase2")
def test_phase2_broken():
    pytest.fail("phase2: equity differs at bar 7\\nsecond line")

@pytest.mark.gate("persist")
def test_persist_later():
    pytest.skip("persist gate: implemented by the persistence issue")

def test_not_a_gate():
    pass
'''


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def run(pytester: pytest.Pytester, ws: Workspace, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              f"--treasure-workspace={ws.root}", *args)


def report(ws: Workspace) -> dict:
    return json.loads((ws.evidence_dir / "gates.json").read_text())


def test_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.gate(name): an operator gate*"])


def test_summary_and_report_name_each_gate_with_status_and_reason(pytester, ws):
    pytester.makepyfile(test_gates=GATES)
    result = run(pytester, ws)
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*= treasure gates =*",
        "e2 * passed * 2 tests *s",
        "persist * skipped * 1 test *s  persist gate: implemented by the persistence issue",
        "phase2 * FAILED * 1/1 failed *s  phase2: equity differs at bar 7",
        "gate report: *evidence/gates.json (history: *evidence/gates_history.jsonl)",
    ])
    doc = report(ws)
    assert Contracts(ws.truth_dir).errors("gates_report", doc) == []
    assert doc["status"] == "failed" and doc["session"]["selected"] is None
    assert doc["session"]["status"] == "failed" and doc["session"]["run_by"] == "pytest"
    assert doc["totals"] == {"passed": 1, "failed": 1, "skipped": 1, "missing": 0}
    assert [g["name"] for g in doc["gates"]] == ["e2", "persist", "phase2"]
    phase2 = doc["gates"][2]
    assert phase2["reason"] == "phase2: equity differs at bar 7"
    assert phase2["tests"] == [{"nodeid": "test_gates.py::test_phase2_broken", "outcome": "failed",
                                "message": "phase2: equity differs at bar 7\nsecond line"}]
    assert [t["nodeid"] for t in doc["gates"][0]["tests"]] == ["test_gates.py::test_e2_also_ok",
                                                               "test_gates.py::test_e2_ok"]


def test_minus_m_gate_selects_only_gates(pytester, ws):
    pytester.makepyfile(test_gates=GATES)
    result = run(pytester, ws, "-m", "gate")
    result.assert_outcomes(passed=2, failed=1, skipped=1, deselected=1)


def test_gate_option_selects_gates_and_deselects_everything_else(pytester, ws):
    pytester.makepyfile(test_gates=GATES)
    result = run(pytester, ws, "--gate", "e2", "--gate", "persist")
    result.assert_outcomes(passed=2, skipped=1, deselected=2)
    doc = report(ws)
    assert doc["session"]["selected"] == ["e2", "persist"]
    assert doc["session"]["status"] == "incomplete"  # persist skipped: not a pass
    assert result.ret == 0


def test_a_selected_gate_without_tests_is_missing_and_fails_the_session(pytester, ws):
    pytester.makepyfile(test_gates=GATES)
    result = run(pytester, ws, "--gate", "e2", "--gate", "events")
    result.stdout.fnmatch_lines(["events * MISSING * 0 tests *no test carries @pytest.mark.gate('events')*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert report(ws)["totals"]["missing"] == 1


def test_unknown_gate_name_is_a_usage_error_listing_known_gates(pytester, ws):
    pytester.makepyfile(test_gates=GATES)
    result = run(pytester, ws, "--gate", "e3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown gate(s): e3. Known gates:*", "*determinism*", "*dryrun-live*",
                                 "*e2 *spec/ and truth/*", "*events*", "*persist*", "*phase2*"])
    assert not (ws.evidence_dir / "gates.json").exists()


def test_unknown_gate_in_a_marker_fails_that_test(pytester, ws):
    pytester.makepyfile('''
        import pytest

        @pytest.mark.gate("e22")
        def test_typo():
            pass

        @pytest.mark.gate
        def test_unnamed():
            pass
    ''')
    result = run(pytester, ws)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*unknown gate 'e22' in @pytest.mark.gate*",
                                 "*@pytest.mark.gate needs the gate's name*"], consecutive=False)


def test_a_conftest_adds_a_gate_and_an_event_check_through_the_hooks(pytester, ws):
    pytester.makeconftest('''
        from pytest_treasure import GateSpec, hookimpl

        @hookimpl
        def treasure_gates():
            return [GateSpec("latency", "fills arrive within two bars")]

        def treasure_check_event(event, workspace):  # unmarked: picked up by name
            late = event["payload"].get("latency_bars", 0)
            return [f"seq {event['seq']}: fill after {late} bars"] if late > 2 else []
    ''')
    pytester.makepyfile('''
        import pytest
        from pytest_treasure import check_event

        @pytest.mark.gate("latency")
        def test_latency(request, treasure_workspace):
            event = {"seq": 3, "event_type": "order_filled", "payload": {"latency_bars": 5}}
            assert check_event(request.config, event, treasure_workspace) == ["seq 3: fill after 5 bars"]
    ''')
    result = run(pytester, ws, "--gate", "latency")
    result.assert_outcomes(passed=1)
    assert report(ws)["gates"][0]["description"] == "fills arrive within two bars"


def test_conflicting_gate_declarations_are_refused(pytester, ws):
    pytester.makeconftest('''
        def treasure_gates():
            return [("e2", "something else entirely")]
    ''')
    result = run(pytester, ws, "--gate", "e2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*gate 'e2' is declared twice with different descriptions*"])


def test_a_session_without_gates_writes_nothing_and_prints_no_summary(pytester, ws):
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = run(pytester, ws)
    result.assert_outcomes(passed=1)
    assert "treasure gates" not in result.stdout.str()
    assert not (ws.evidence_dir / "gates.json").exists()


def test_gate_notes_reach_the_summary_and_the_report(pytester, ws):
    pytester.makepyfile('''
        import pytest

        @pytest.mark.gate("e2")
        def test_noted(gate_note):
            gate_note("checked a fresh run instead")
    ''')
    result = run(pytester, ws)
    result.stdout.fnmatch_lines(["e2 * passed*", "* note: checked a fresh run instead"])
    assert report(ws)["gates"][0]["notes"] == ["checked a fresh run instead"]


def test_xdist_workers_report_to_the_controller_which_writes_once(pytester, ws):
    pytester.makepyfile(test_gates=GATES)
    pytester.makepyfile(test_more='''
        import pytest

        @pytest.mark.gate("e2")
        @pytest.mark.parametrize("n", range(6))
        def test_many(n):
            pass
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", f"--treasure-workspace={ws.root}")
    result.assert_outcomes(passed=9, failed=1, skipped=1)
    assert result.stdout.str().count("= treasure gates =") == 1
    doc = report(ws)
    e2 = doc["gates"][0]
    assert e2["counts"] == {"passed": 8, "failed": 0, "skipped": 0}
    assert [t["nodeid"] for t in e2["tests"]] == sorted(t["nodeid"] for t in e2["tests"])
    assert doc["totals"] == {"passed": 1, "failed": 1, "skipped": 1, "missing": 0}
    assert sorted(p.name for p in ws.evidence_dir.iterdir()) == [  # no temp files left
        ".gates_history.lock", "gates.json", "gates_history.jsonl"]
    assert len((ws.evidence_dir / "gates_history.jsonl").read_text().splitlines()) == 3  # once per gate


def test_history_records_are_identical_across_sessions_but_for_volatile_fields(pytester, ws):
    from treasure.canonical import canonical_bytes, drop_paths

    pytester.makepyfile(test_gates=GATES)
    contracts = Contracts(ws.truth_dir)
    volatile = contracts.volatile_paths("gate_history")
    run(pytester, ws)
    run(pytester, ws)
    lines = [json.loads(line) for line in (ws.evidence_dir / "gates_history.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and all(contracts.errors("gate_history", r) == [] for r in lines)
    first, second = lines[:3], lines[3:]
    assert [canonical_bytes(drop_paths(r, volatile)) for r in first] == \
        [canonical_bytes(drop_paths(r, volatile)) for r in second]
    assert report(ws)["gates"][2]["consecutive_failures"] == 2  # phase2 failed twice in a row


# The plugin's import cost is proven by real pytest sessions in tests/plugin/test_plugin_citizen.py.
