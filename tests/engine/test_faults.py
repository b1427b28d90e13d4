"""Fault injection: disk full, I/O errors, failing adapters, a dataset changing under a run.

Each fault must end in a coded error (``error[CODE]``, exit 2, or exit 1 with ``INTERNAL`` for a
bug in Treasure) or a halt, with evidence on disk that says so, never a traceback and never a
report claiming "complete" for a run whose evidence is not. Engine misbehaviour found here was
pinned with ``xfail(strict=True)`` until fixed (see docs/robustness.md, "Known gaps").
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from treasure.contracts import Contracts
from treasure.data import bars_to_csv, generate_bars
from treasure.engine import RunRequest, run
from treasure.errors import ConfigError, EventLogError, TreasureError
from treasure.eventlog import read_events, verify_log
from treasure.execution import ExecReport, ExecutionAdapter, register_adapter
from treasure.faults import Fault, FaultPlan, chain, seeded_kill_points
from treasure.workspace import Workspace, init_workspace, pin_dataset

# -- helpers ---------------------------------------------------------------------------------------


def pinned_workspace(root: Path, *, n_bars: int, seed: int = 5) -> Workspace:
    """A workspace whose SSOT pins a synthetic dataset of ``n_bars`` (independent of fixtures/)."""
    ws = init_workspace(root)
    pin_dataset(ws, bars_to_csv(generate_bars(n_bars=n_bars, seed=seed)), "fixtures/data/faults.csv",
                interval_ms=300_000)
    return ws


@pytest.fixture
def small(tmp_path) -> Workspace:
    """600 bars: every event fits in one batch (one event-log write, at the end)."""
    return pinned_workspace(tmp_path / "small", n_bars=600)


@pytest.fixture
def big(tmp_path) -> Workspace:
    """15,000 bars: more than 2048 events, so the log is written mid-run too."""
    return pinned_workspace(tmp_path / "big", n_bars=15_000)


def faultrun(cli, ws: Workspace, spec: str, run_id: str = "f", *extra: str):
    code, out, err = cli("faultrun", "--faults", spec, "run", "--workspace", ws.root, "--run-id", run_id,
                         "--quiet", *extra)
    assert "Traceback" not in err and "Traceback" not in out
    return code, out + err  # a run's error is in its verdict (stdout); a refusal goes to stderr


def log_state(ws: Workspace, run_id: str) -> str:
    """'complete' | 'empty' | 'truncated' | 'absent', or the verifier's code for a broken log."""
    path = ws.event_log(run_id)
    if not path.exists():
        return "absent"
    try:
        summary = verify_log([path], Contracts(ws.truth_dir))
    except EventLogError as exc:
        return {"EVENTS_EMPTY": "empty", "EVENTS_TRUNCATED": "truncated"}.get(exc.code, f"{exc.code}@{exc.line}")
    events = list(read_events([path]))
    return "complete" if events[-1]["event_type"] == "run_end" and summary.events == len(events) else "prefix"


def court_of(ws: Workspace, run_id: str) -> dict | None:
    path = ws.run_reports(run_id) / "court_report.json"
    return orjson.loads(path.read_bytes()) if path.exists() else None


def latest_run_id(ws: Workspace) -> str | None:
    path = ws.reports_dir / "court_report.json"
    return orjson.loads(path.read_bytes())["run_id"] if path.exists() else None


def evidence_files(ws: Workspace) -> list[str]:
    return sorted(ws.relative(p) for d in (ws.logs_dir, ws.reports_dir) if d.is_dir() for p in d.rglob("*"))


# -- the fault plan itself -------------------------------------------------------------------------


def test_spec_round_trips_and_fires_on_the_exact_call():
    plan = FaultPlan.parse("eio@bar:3; enospc@event_write:2+ ;sleep=0@report_write")
    assert plan.spec == "eio@bar:3;enospc@event_write:2+;sleep=0@report_write:1"
    plan("bar")
    plan("bar")
    with pytest.raises(OSError) as exc:
        plan("bar")
    assert exc.value.errno == 5 and "bar #3" in str(exc.value)
    plan("bar")  # one-shot: the 4th call passes
    plan("event_write")
    for _ in range(3):  # repeating from the 2nd call on
        with pytest.raises(OSError, match="No space left"):
            plan("event_write")
    plan("report_write")
    assert plan.calls == {"bar": 4, "event_write": 4, "report_write": 1}
    assert len(plan.fired) == 5


@pytest.mark.parametrize("spec", ["boom@bar", "kill@nowhere", "kill@bar:0", "kill@bar:x", "sleep@bar",
                                  "kill=3@bar", "kill bar", "@bar"])
def test_bad_specs_are_coded_errors(spec):
    with pytest.raises(ConfigError) as exc:
        FaultPlan.parse(spec)
    assert exc.value.code == "FAULTS_SPEC"


def test_bad_spec_on_the_cli_is_refused_without_traceback(cli, small):
    code, _, err = cli("faultrun", "--faults", "explode@bar", "run", "--workspace", small.root)
    assert code == 2 and "error[FAULTS_SPEC]" in err and "Traceback" not in err
    assert evidence_files(small) == []


def test_faultrun_without_a_command_is_refused(cli):
    code, _, err = cli("faultrun", "--faults", "kill@bar")
    assert code == 2 and "error[FAULTS_SPEC]" in err and "needs a command" in err


def test_env_plan_and_chain(monkeypatch):
    assert FaultPlan.from_env({}) is None
    plan = FaultPlan.from_env({"TREASURE_FAULTS": "timeout@bar:2"})
    seen = []
    both = chain(seen.append, plan, None)
    both("bar")
    with pytest.raises(TimeoutError):
        both("bar")
    assert seen == ["bar", "bar"]
    assert chain(None, None) is None


def test_seeded_kill_points_stay_inside_the_probe():
    calls = {"bar": 100, "dataset_load": 1, "event_write": 2, "replace": 5, "fsync": 10, "report_write": 1}
    points = seeded_kill_points(1, calls, 30)
    assert points == seeded_kill_points(1, calls, 30)
    assert len(set(points)) == 30
    assert all(1 <= f.at <= calls[f.point] for f in points)
    assert sum(f.point != "bar" for f in points) == 15  # rare points get half the budget


def test_a_callable_fault_runs_at_its_point():
    hits = []
    plan = FaultPlan([Fault(lambda: hits.append("now"), "bar", 2)])
    plan("bar")
    plan("bar")
    assert hits == ["now"] and plan.fired == ["<lambda>()@bar:2 (call 2)"]


def test_fire_reaches_only_the_plans_active_in_this_context():
    import threading

    from treasure import engine, faults, jsonio

    plan = FaultPlan()
    prepare, jsonio_os = engine.prepare_run, jsonio.os
    faults.fire("bar")  # nothing active: a no-op
    with faults.injected(plan), faults.active(plan):  # one plan activated twice counts once
        assert engine.prepare_run is prepare and jsonio.os is jsonio_os  # nothing is monkeypatched
        faults.fire("bar")
        faults.fire("replace", "x")  # I/O points only reach plans inside io_hooks
        other = threading.Thread(target=faults.fire, args=("bar",))  # a fresh context: not reached
        other.start()
        other.join()
        with plan.io_hooks():
            faults.fire("replace", "x")
    faults.fire("bar")
    assert plan.calls == {"bar": 1, "replace": 1} and plan.targets == {("replace", 1): "x"}


def test_a_request_plan_and_an_injected_plan_both_see_every_bar(small):
    outer, inner = FaultPlan(), FaultPlan()
    from treasure import faults

    with faults.injected(outer):
        assert run(RunRequest(small, run_id="both", faults=inner)).status == "complete"
    assert outer.calls["bar"] == inner.calls["bar"] > 0
    assert outer.calls["dataset_load"] == inner.calls["dataset_load"] == 1


# -- the event log ---------------------------------------------------------------------------------


def test_disk_full_on_every_event_write_is_a_coded_error_with_a_court(cli, small):
    code, err = faultrun(cli, small, "enospc@event_write:1+")
    assert code == 2 and "error[IO_ERROR]" in err and "No space left" in err
    court = court_of(small, "f")
    assert court["status"] == "error" and court["reason"] == "IO_ERROR"
    assert log_state(small, "f") == "empty"  # nothing reached the disk: an empty prefix


def test_io_error_on_the_final_fsync_is_a_coded_error(cli, small):
    code, err = faultrun(cli, small, "eio@event_fsync:1")
    assert code == 2 and "error[IO_ERROR]" in err and "flushing the event log failed" in err
    assert court_of(small, "f")["status"] == "error"
    assert latest_run_id(small) == "f"
    assert log_state(small, "f") == "complete"  # written, but not known durable: the court says error


def test_disk_full_mid_run_stops_the_run_with_a_coded_error(cli, big):
    code, err = faultrun(cli, big, "enospc@event_write:1+")
    assert code == 2 and "error[IO_ERROR]" in err
    court = court_of(big, "f")
    assert court["status"] == "error" and court["metrics"]["bars"] < 15_000
    assert log_state(big, "f") == "empty"


@pytest.mark.parametrize("spec", ["enospc@event_write:2", "enospc@event_write:3", "enospc@event_write:1"])
def test_the_court_report_of_a_failed_write_counts_what_is_on_disk(cli, big, spec):
    """Issue 17: a transient ENOSPC used to give a court report of every event emitted (1,169) with
    2 on disk. The first failure stops the run and the court counts the log's events exactly."""
    code, err = faultrun(cli, big, spec)
    assert code == 2 and "error[IO_ERROR]" in err
    court = court_of(big, "f")
    lines = big.event_log("f").read_bytes().splitlines()
    assert court["status"] == "error" and court["reason"] == "IO_ERROR"
    assert court["events"]["total"] == len(lines)
    if lines:
        assert court["events"]["last_hash"] == orjson.loads(lines[-1])["hash"]
    assert sum(court["events"]["by_level"].values()) == len(lines)


def test_transient_disk_full_mid_run_leaves_a_valid_prefix(cli, big):
    """A write that fails once must not be followed by later writes: a log with a hole would read
    as tampering (EVENTS_SEQ at line 1) instead of an honest prefix."""
    code, err = faultrun(cli, big, "enospc@event_write:1")
    assert code == 2 and "error[IO_ERROR]" in err
    assert log_state(big, "f") in ("empty", "truncated", "prefix")
    assert court_of(big, "f")["status"] == "error"


# -- reports ----------------------------------------------------------------------------------------


def test_disk_full_on_every_report_write_leaves_no_report_and_no_litter(cli, small):
    run(RunRequest(small, run_id="old"))
    code, err = faultrun(cli, small, "enospc@fsync:1+")
    assert code == 2 and "error[IO_ERROR]" in err
    assert court_of(small, "f") is None and not (small.run_reports("f") / "eqs_report.json").exists()
    assert latest_run_id(small) == "old"  # the old complete reports are untouched
    assert not list(small.reports_dir.rglob("*.tmp"))


def test_io_error_on_the_last_rename_keeps_old_latest_and_new_run_report(cli, small):
    # replaces: the run's court, eqs and equity, its manifest, then the latest eqs and court copies
    run(RunRequest(small, run_id="old"))
    code, err = faultrun(cli, small, "eio@replace:6")
    assert code == 2 and "could not write court_report.json" in err
    assert court_of(small, "f")["status"] == "complete"  # the run's own report was fully written
    assert log_state(small, "f") == "complete"
    assert latest_run_id(small) == "old"
    for name in ("court_report.json", "eqs_report.json"):  # both latest reports parse
        orjson.loads((small.reports_dir / name).read_bytes())


def test_disk_full_before_the_reports_is_a_coded_error(cli, small):
    run(RunRequest(small, run_id="old"))
    code, err = faultrun(cli, small, "enospc@report_write")
    assert code == 2 and "error[IO_ERROR]" in err
    assert court_of(small, "f") is None and latest_run_id(small) == "old"
    assert log_state(small, "f") == "complete"  # the log was durable before the reports


def test_io_error_loading_the_dataset_is_data_io_and_writes_nothing(cli, small):
    code, err = faultrun(cli, small, "eio@dataset_load")
    assert code == 2 and "error[DATA_IO]" in err and "Input/output error" in err
    assert evidence_files(small) == []


def test_a_bug_mid_run_is_internal_with_evidence(cli, small):
    code, err = faultrun(cli, small, "crash@bar:100")
    assert code == 1 and "error[INTERNAL]" in err
    court = court_of(small, "f")
    assert court["status"] == "error" and court["reason"] == "INTERNAL"
    assert log_state(small, "f") == "complete"
    events = list(read_events([small.event_log("f")]))
    assert [e["payload"]["code"] for e in events if e["event_type"] == "run_error"] == ["INTERNAL"]
    assert events[-1]["event_type"] == "run_end" and events[-1]["payload"]["status"] == "error"


# -- adapters ---------------------------------------------------------------------------------------


class _FaultyAdapter(ExecutionAdapter):
    """Answers every order with ``mode``: an error report, an exception, or a timeout."""

    name = "faulty"
    simulated = False

    def __init__(self, *, mode: str = "error", **_: object) -> None:
        self.mode = mode

    def submit(self, order):
        if self.mode == "raise":
            raise ConnectionError("venue connection reset")
        if self.mode == "timeout":
            raise TimeoutError("venue did not answer within 5 s")
        code = "ADAPTER_TIMEOUT" if self.mode == "report_timeout" else "VENUE_DOWN"
        return [ExecReport("error", order.order_id, reason=f"{code.lower()}", code=code)]

    def cancel(self, order_id):
        return []

    def on_bar(self, bar):
        return []


register_adapter("faulty", _FaultyAdapter)


@pytest.mark.parametrize("mode", ["error", "report_timeout"])
def test_adapter_error_reports_are_recorded_not_silent(small, mode):
    result = run(RunRequest(small, run_id="a", adapter="faulty", adapter_options={"mode": mode}))
    court = court_of(small, "a")
    errors = [e for e in read_events([result.event_log]) if e["event_type"] == "adapter_error"]
    assert errors and all(e["level"] == "ERROR" for e in errors)
    assert court["metrics"]["fills"] == 0
    finding = {f["code"]: f for f in court["findings"]}["ERROR_EVENTS"]
    assert finding["count"] == len(errors)
    # every bar was processed, but with every order failing the run is "degraded" (exit 4), not
    # complete: its ERROR rate is above health.max_error_rate (10%)
    assert court["status"] == "degraded" and result.exit_code == 4 and finding["level"] == "ERROR"
    assert {f["code"]: f for f in court["findings"]}["ERROR_RATE"]["count"] == len(errors)


@pytest.mark.parametrize("mode", ["raise", "timeout"])
def test_adapter_exceptions_end_in_a_coded_error_with_evidence(small, mode):
    result = run(RunRequest(small, run_id="a", adapter="faulty", adapter_options={"mode": mode}))
    assert result.status == "error" and result.exit_code != 0
    assert isinstance(result.error, TreasureError) and result.error.code
    court = court_of(small, "a")
    assert court["status"] == "error" and court["reason"] == result.error.code
    events = list(read_events([result.event_log]))
    errors = [e for e in events if e["event_type"] == "run_error"]
    assert len(errors) == 1 and errors[0]["payload"]["code"] == result.error.code
    assert "venue" in errors[0]["payload"]["message"]
    assert events[-1]["event_type"] == "run_end" and events[-1]["payload"]["status"] == "error"
    assert log_state(small, "a") == "complete"


# -- the dataset changing during the run ----------------------------------------------------------


def _rewrite_at_bar(ws: Workspace, bar: int) -> Fault:
    dataset = ws.root / "fixtures" / "data" / "faults.csv"

    def rewrite() -> None:
        dataset.write_bytes(dataset.read_bytes().replace(b"\n", b"\r\n", 3))

    return Fault(rewrite, "bar", bar)


def test_dataset_rewritten_mid_run_is_a_coded_error_with_evidence(small, cli):
    """The bars come from the bytes read (and hashed) at load time; a file rewritten under the run
    makes the evidence name a dataset that no longer exists, so the run ends in DATA_CHANGED."""
    from treasure.approval import approve, check_tamper

    approve(small)
    pinned = json.loads(small.ssot_path.read_text())["dataset"]["sha256"]
    result = run(RunRequest(small, run_id="d", faults=FaultPlan([_rewrite_at_bar(small, 50)])))
    assert result.status == "error" and result.error.code == "DATA_CHANGED"
    court = court_of(small, "d")
    assert court["status"] == "error" and court["reason"] == "DATA_CHANGED"
    assert court["inputs"]["dataset_sha256"] == pinned  # what the bars were parsed from
    assert {f["code"]: f["level"] for f in court["findings"]}["DATA_CHANGED"] == "ERROR"
    events = list(read_events([result.event_log]))
    assert [e["payload"]["code"] for e in events if e["event_type"] == "run_error"] == ["DATA_CHANGED"]
    assert [f.code for f in check_tamper(small)] == ["TAMPER_DATASET"]
    code, _, err = cli("run", "--workspace", small.root, "--run-id", "replay", "--quiet")
    assert code == 2 and "error[DATA_SHA_MISMATCH]" in err  # a replay refuses the changed file


def test_dataset_rewritten_back_before_the_end_is_not_flagged(small):
    """Only the bytes matter: a file touched but restored byte for byte is the same dataset."""
    dataset = small.root / "fixtures" / "data" / "faults.csv"
    original = dataset.read_bytes()
    plan = FaultPlan([_rewrite_at_bar(small, 20), Fault(lambda: dataset.write_bytes(original), "bar", 40)])
    assert run(RunRequest(small, run_id="e", faults=plan)).status == "complete"
