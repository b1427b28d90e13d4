"""`treasure halt` / `treasure resume`: the flag, its log, the engine halting, the gate-guarded resume."""

from __future__ import annotations

import json
import subprocess

import orjson
import pytest

from helpers.ops_support import PYTHON, clean_ws, json_out, make_ws, run_cli, templates  # noqa: F401
from treasure.ops import emergency
from treasure.ops.emergency import GateRun, read_flag

FLAG_AT_BAR = '''
from treasure import Strategy
from treasure.ops.emergency import halt
from treasure.workspace import Workspace

class FlagAt(Strategy):
    name = "flag_at"

    def on_bar(self, ctx, bar):
        if bar.idx == {bar}:
            halt(Workspace.at({root!r}), reason="operator at bar {bar}")
        return None
'''


def halt_events(ws, run_id):
    return [orjson.loads(line) for line in ws.event_log(run_id).read_bytes().splitlines()
            if b'"event_type":"halt"' in line]


def test_halt_writes_flag_and_log(clean_ws, capsys):
    assert run_cli(clean_ws, "halt", "--reason", "venue outage", "--json") == 0
    out = json_out(capsys)
    assert out["created"] and out["flag"]["reason"] == "venue outage"
    flag = json.loads(clean_ws.emergency_flag.read_text())
    assert flag["status"] == "EMERGENCY_HALT" and flag["reason"] == "venue outage" and flag["time"].endswith("Z")
    assert run_cli(clean_ws, "halt", "--reason", "second opinion") == 0
    assert "already halted" in capsys.readouterr().out
    assert json.loads(clean_ws.emergency_flag.read_text())["reason"] == "venue outage"  # the first stays
    log = [json.loads(line) for line in (clean_ws.data_dir / "emergency.log").read_text().splitlines()]
    assert [e["reason"] for e in log] == ["venue outage", "second opinion"]


def test_halt_needs_a_reason(clean_ws, capsys):
    assert run_cli(clean_ws, "halt", "--reason", "  ") == 2
    assert "error[HALT_REASON]" in capsys.readouterr().err
    assert not clean_ws.emergency_flag.exists()


def test_run_started_with_flag_halts(clean_ws, capsys):
    run_cli(clean_ws, "halt", "--reason", "before start")
    assert run_cli(clean_ws, "run", "--run-id", "flagged", "-q") == 3
    (event,) = halt_events(clean_ws, "flagged")
    assert event["payload"]["reason"] == "emergency_flag" and event["payload"]["detail"] == "before start"
    assert event["level"] == "CRITICAL"


def test_flag_set_mid_run_halts_at_the_next_bar(clean_ws):
    (clean_ws.root / "flagger.py").write_text(FLAG_AT_BAR.format(bar=100, root=str(clean_ws.root)))
    strategy = f"{clean_ws.root / 'flagger.py'}:FlagAt"
    assert run_cli(clean_ws, "run", "--run-id", "midrun", "--strategy", strategy, "-q") == 3
    (event,) = halt_events(clean_ws, "midrun")
    # a simulated run sees the flag before its next order or within risk.emergency_check_bars (1024)
    assert 101 <= event["payload"]["bar_idx"] <= 1024 and event["payload"]["detail"] == "operator at bar 100"
    court = json.loads((clean_ws.run_reports("midrun") / "court_report.json").read_text())
    assert court["status"] == "halted" and court["reason"] == "emergency_flag"


def test_resume_without_flag_is_a_no_op(clean_ws, capsys, monkeypatch):
    monkeypatch.setattr(emergency, "run_gates", lambda ws, gates=(): pytest.fail("gates must not run"))
    assert run_cli(clean_ws, "resume") == 0
    assert "nothing to resume" in capsys.readouterr().out


def test_resume_refuses_without_verify(clean_ws, capsys, monkeypatch):
    run_cli(clean_ws, "halt", "--reason", "x")
    monkeypatch.setattr(emergency, "verify_available", lambda: False)
    assert run_cli(clean_ws, "resume") == 2
    err = capsys.readouterr().err
    assert "error[RESUME_GATES_UNAVAILABLE]" in err and "Traceback" not in err
    assert read_flag(clean_ws).halted


def test_resume_refuses_when_gates_fail(clean_ws, capsys, monkeypatch):
    run_cli(clean_ws, "halt", "--reason", "x")
    monkeypatch.setattr(emergency, "run_gates", lambda ws, gates=emergency.RESUME_GATES: GateRun(
        1, {"e2": "passed", "determinism": "failed"}, "determinism: outputs differ"))
    assert run_cli(clean_ws, "resume") == 2
    err = capsys.readouterr().err
    assert "error[RESUME_GATES_FAILED]" in err and "determinism failed" in err and "outputs differ" in err
    assert read_flag(clean_ws).halted
    last = json.loads((clean_ws.data_dir / "emergency.log").read_text().splitlines()[-1])
    assert last["action"] == "resume_refused"


def test_resume_clears_when_gates_pass(clean_ws, capsys, monkeypatch):
    run_cli(clean_ws, "halt", "--reason", "drill")
    calls = []

    def gates(ws, names=emergency.RESUME_GATES):
        calls.append(names)
        return GateRun(0, {"e2": "passed", "determinism": "passed"}, "")

    monkeypatch.setattr(emergency, "run_gates", gates)
    capsys.readouterr()
    assert run_cli(clean_ws, "resume", "--json") == 0
    assert json_out(capsys)["resumed"] and calls == [("e2", "determinism")]
    assert not clean_ws.emergency_flag.exists()
    assert run_cli(clean_ws, "run", "--run-id", "after", "-q") == 0


def test_unreadable_flag_still_halts(clean_ws):
    clean_ws.emergency_flag.write_text("{torn")
    state = read_flag(clean_ws)
    assert state.halted and "still halts" in state.problem
    assert run_cli(clean_ws, "run", "--run-id", "torn", "-q") == 3


def test_gate_run_reads_the_fresh_report():
    assert GateRun(0, {"e2": "passed", "determinism": "unreported"}, "").passed
    assert not GateRun(0, {"e2": "passed", "determinism": "skipped"}, "").passed
    assert not GateRun(1, {"e2": "passed", "determinism": "passed"}, "").passed


def test_halt_then_run_through_the_console(clean_ws):
    root = str(clean_ws.root)
    halt = subprocess.run([PYTHON, "-m", "treasure", "halt", "--reason", "console", "-w", root],
                          capture_output=True, text=True, check=False)
    assert halt.returncode == 0, halt.stderr
    run = subprocess.run([PYTHON, "-m", "treasure", "run", "--run-id", "console", "-q", "-w", root],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 3 and "HALTED" in run.stdout


@pytest.mark.skipif(not emergency.verify_available(), reason="`treasure verify` (the gates plugin) is not installed")
def test_resume_runs_the_real_gates(clean_ws, capsys):
    """The real `treasure verify e2 determinism` in a child process: a broken latest report fails e2,
    so resume refuses and keeps the flag."""
    run_cli(clean_ws, "halt", "--reason", "drill")
    (clean_ws.reports_dir / "court_report.json").write_text('{"torn": ')
    assert run_cli(clean_ws, "resume") == 2
    err = capsys.readouterr().err
    assert "error[RESUME_GATES_FAILED]" in err and "e2 failed" in err and "court_report.json" in err
    assert read_flag(clean_ws).halted
    gates = json.loads((clean_ws.evidence_dir / "gates.json").read_text())
    assert {g["name"]: g["status"] for g in gates["gates"]}["e2"] == "failed"
    assert {g["name"]: g["status"] for g in gates["gates"]}["determinism"] == "passed"
    diff = clean_ws.evidence_dir / "diffs" / "determinism_diff.txt"
    assert diff.is_file() and diff.read_bytes() == b""  # the runbook's proof: an empty diff after a pass
