"""`treasure checklist pre|post|eod`: passes on a good workspace, fails for each cause it checks."""

from __future__ import annotations

import json
import subprocess
import tarfile

import pytest

from helpers.ops_support import (  # noqa: F401
    PYTHON, clean_ws, end_payload, json_out, make_ws, run_cli, set_ssot, start_payload, templates, validate, write_log,
)
from treasure.ops import alerts
from treasure.ops.archive import load_archives


def checklist(ws, capsys, *args):
    capsys.readouterr()
    code = run_cli(ws, "checklist", *args, "--json")
    doc = json_out(capsys)
    validate(ws, "checklist", doc)
    assert code == (0 if doc["ok"] else 2)
    return doc


def status(doc, check_id):
    (check,) = [c for c in doc["checks"] if c["id"] == check_id]
    return check["status"], check


def gates_json(ws, **statuses):
    ws.evidence_dir.mkdir(exist_ok=True)
    (ws.evidence_dir / "gates.json").write_text(json.dumps({"schema_version": 1, "status": "x", "gates": [
        {"name": n.replace("_", "-"), "status": s, "reason": "schema e2 failed" if s == "failed" else None}
        for n, s in statuses.items()]}))


ALL_PASSED = {g: "passed" for g in ("e2", "phase2", "determinism", "persist", "dryrun_live", "events")}


# ------------------------------------------------------------------------------ pre
def test_pre_passes_after_one_run(clean_ws, capsys):
    doc = checklist(clean_ws, capsys, "pre")
    assert doc["ok"] and doc["counts"]["fail"] == 0
    assert status(doc, "pre.gates")[0] == "warn"  # gates not run yet: a warning, not a failure
    assert [c["title"] for c in doc["checks"]][1:6] == [
        "Database available (if persistence enabled)", "Dataset validated (SHA256 matches expected)",
        "SSOT unchanged (spec/ssot.json)", "Risk limits appropriate for market conditions",
        "No pending alerts from previous runs"]
    run_cli(clean_ws, "checklist", "pre")
    assert "treasure checklist pre: OK" in capsys.readouterr().out


def test_pre_gates(clean_ws, capsys):
    gates_json(clean_ws, **ALL_PASSED)
    assert status(checklist(clean_ws, capsys, "pre"), "pre.gates")[0] == "pass"
    gates_json(clean_ws, **{**ALL_PASSED, "e2": "failed"})
    state, check = status(checklist(clean_ws, capsys, "pre"), "pre.gates")
    assert state == "fail" and "e2: schema e2 failed" in check["reason"]
    (clean_ws.evidence_dir / "gates.json").write_text('{"gates": ')
    state, check = status(checklist(clean_ws, capsys, "pre"), "pre.gates")
    assert state == "fail" and "invalid JSON" in check["reason"]
    gates_json(clean_ws, **{**ALL_PASSED, "persist": "skipped"})
    assert status(checklist(clean_ws, capsys, "pre"), "pre.gates")[0] == "warn"


def test_pre_gates_stale_after_ssot_change(clean_ws, capsys):
    import os

    gates_json(clean_ws, **ALL_PASSED)
    report = clean_ws.evidence_dir / "gates.json"
    os.utime(report, (report.stat().st_mtime - 100,) * 2)
    clean_ws.ssot_path.touch()
    state, check = status(checklist(clean_ws, capsys, "pre"), "pre.gates")
    assert state == "warn" and "spec/ssot.json changed" in check["reason"]


def test_pre_db(clean_ws, capsys):
    set_ssot(clean_ws, lambda d: d.__setitem__("persistence", {"enabled": True, "db_path": "data/run.db"}))
    assert status(checklist(clean_ws, capsys, "pre"), "pre.db")[0] == "pass"  # created by the first run
    (clean_ws.data_dir / "run.db").write_bytes(b"\0garbage" * 600)
    state, check = status(checklist(clean_ws, capsys, "pre"), "pre.db")
    assert state == "fail" and check["action"]


def test_pre_dataset_changed(clean_ws, capsys):
    dataset = clean_ws.root / "fixtures" / "data" / "default_bars.csv"
    dataset.write_bytes(dataset.read_bytes().replace(b"\n", b"\r\n", 1))
    state, check = status(checklist(clean_ws, capsys, "pre"), "pre.dataset")
    assert state == "fail" and "pinned" in check["reason"] and "dataset" in check["action"]


def test_pre_ssot_with_and_without_lock(clean_ws, capsys):
    (clean_ws.spec_dir / "ssot.lock").unlink()
    assert status(checklist(clean_ws, capsys, "pre"), "pre.ssot")[0] == "pass"  # same SSOT as the last run
    set_ssot(clean_ws, lambda d: d["strategy"]["params"].__setitem__("fast", 12))
    state, check = status(checklist(clean_ws, capsys, "pre"), "pre.ssot")
    assert state == "warn" and "changed since the latest run clean" in check["reason"]
    assert run_cli(clean_ws, "ssot", "approve") == 0
    assert status(checklist(clean_ws, capsys, "pre"), "pre.ssot")[0] == "pass"
    set_ssot(clean_ws, lambda d: d["risk"].__setitem__("max_position_size_usd", 20000))
    state, check = status(checklist(clean_ws, capsys, "pre"), "pre.ssot")
    assert state == "fail" and "TAMPER_SSOT spec/ssot.json" in check["reason"]
    (clean_ws.spec_dir / "ssot.lock").write_text("{")
    assert status(checklist(clean_ws, capsys, "pre"), "pre.ssot")[0] == "fail"


@pytest.mark.parametrize("risk, expected, words", [
    ({"daily_loss_limit_usd": 100000}, "fail", "can never stop a loss"),
    ({"max_position_size_usd": 2_000_000}, "fail", "over 10x the starting cash"),
    ({"max_position_size_usd": 150_000}, "warn", "leverage"),
    ({"daily_loss_limit_usd": 40}, "warn", "typical daily move"),
])
def test_pre_risk(clean_ws, capsys, risk, expected, words):
    set_ssot(clean_ws, lambda d: d["risk"].update(risk))
    state, check = status(checklist(clean_ws, capsys, "pre"), "pre.risk")
    assert state == expected and words in check["reason"]


def test_pre_risk_empty_pnl_band(clean_ws, capsys):
    set_ssot(clean_ws, lambda d: d.__setitem__("expected", {"pnl_band_usd": [100, -100]}))
    assert status(checklist(clean_ws, capsys, "pre"), "pre.risk")[0] == "fail"


def test_pre_pending_alerts_until_acked(make_ws, capsys):
    ws = make_ws("halted")
    state, check = status(checklist(ws, capsys, "pre"), "pre.alerts")
    assert state == "fail" and "treasure ack" in check["action"]
    alerts.acknowledge(ws, [], everything=True, note="reviewed")
    assert status(checklist(ws, capsys, "pre"), "pre.alerts")[0] == "pass"


def test_pre_emergency_flag(clean_ws, capsys):
    run_cli(clean_ws, "halt", "--reason", "desk")
    state, check = status(checklist(clean_ws, capsys, "pre"), "pre.emergency")
    assert state == "fail" and "desk" in check["reason"]


def test_pre_broken_ssot(clean_ws, capsys):
    clean_ws.ssot_path.write_text('{"version": 1,')
    doc = checklist(clean_ws, capsys, "pre")
    for check_id in ("pre.dataset", "pre.ssot", "pre.risk"):
        assert status(doc, check_id)[0] == "fail"
    assert "SSOT_JSON" in status(doc, "pre.ssot")[1]["reason"]


# ------------------------------------------------------------------------------ post
def test_post_passes_for_a_clean_run(clean_ws, capsys):
    doc = checklist(clean_ws, capsys, "post")
    assert doc["ok"] and doc["run_id"] == "clean"
    assert status(doc, "post.recon")[0] == "warn"  # no recon evidence yet


@pytest.mark.parametrize("template, failing", [("halted", {"post.complete", "post.critical"}),
                                              ("failed", {"post.complete", "post.critical", "post.error_rate"})])
def test_post_fails_for_bad_runs(make_ws, capsys, template, failing):
    doc = checklist(make_ws(template), capsys, "post", template)
    assert {c["id"] for c in doc["checks"] if c["status"] == "fail"} == failing


def test_post_pnl_outside_band(clean_ws, capsys):
    set_ssot(clean_ws, lambda d: d.__setitem__("expected", {"pnl_band_usd": [0, 10]}))
    state, check = status(checklist(clean_ws, capsys, "post"), "post.pnl")
    assert state == "fail" and "outside the expected band" in check["reason"]
    set_ssot(clean_ws, lambda d: d.pop("expected"))
    assert status(checklist(clean_ws, capsys, "post"), "post.pnl")[0] == "warn"


def test_post_crafted_run_without_reports(clean_ws, capsys):
    write_log(clean_ws, "crafted", [("SYS", "run_start", "INFO", start_payload(clean_ws)),
                                    ("EXEC", "position_updated", "INFO", {"position_usd": -12_000.0}),
                                    ("SYS", "run_end", "INFO", end_payload())])
    doc = checklist(clean_ws, capsys, "post", "crafted")
    assert status(doc, "post.positions")[0] == "fail"
    assert status(doc, "post.reports")[0] == "fail" and status(doc, "post.pnl")[0] == "fail"
    # no court report: not committed, so not complete (issue 17: one rule, treasure.ops.run_catalog.run_verdict)
    assert status(doc, "post.complete")[0] == "fail" and status(doc, "post.log")[0] == "fail"  # payloads off-schema


def test_post_invalid_report(clean_ws, capsys):
    (clean_ws.run_reports("clean") / "eqs_report.json").write_text('{"schema_version": 1}')
    state, check = status(checklist(clean_ws, capsys, "post"), "post.reports")
    assert state == "fail" and "eqs_report.json invalid" in check["reason"]


def test_post_recon(clean_ws, capsys):
    report = {"run_id": "clean", "matched": 4, "mismatched_orders": 0, "halt": {"triggered": False}, "mismatches": []}
    path = clean_ws.run_reports("clean") / "recon_report.json"
    path.write_text(json.dumps(report))
    assert status(checklist(clean_ws, capsys, "post"), "post.recon")[0] == "pass"
    report.update(mismatched_orders=1, mismatches=[{"code": "MISSING_FILL", "order_id": "o3"}])
    path.write_text(json.dumps(report))
    state, check = status(checklist(clean_ws, capsys, "post"), "post.recon")
    assert state == "fail" and "MISSING_FILL" in check["reason"]
    path.write_text("{oops")
    assert status(checklist(clean_ws, capsys, "post"), "post.recon")[0] == "fail"


def test_post_broken_log(clean_ws, capsys):
    log = clean_ws.event_log("clean")
    lines = log.read_bytes().splitlines(keepends=True)
    del lines[5]
    log.write_bytes(b"".join(lines))
    state, check = status(checklist(clean_ws, capsys, "post"), "post.log")
    assert state == "fail" and "EVENTS_SEQ" in check["reason"] and ":6" in check["reason"]


def test_post_unknown_run(clean_ws, capsys):
    assert run_cli(clean_ws, "checklist", "post", "nope") == 2
    assert "error[RUN_UNKNOWN]" in capsys.readouterr().err


# ------------------------------------------------------------------------------ eod
def test_eod_archives_and_reviews(clean_ws, capsys):
    dry = checklist(clean_ws, capsys, "eod", "--dry-run")
    assert dry["ok"] and clean_ws.event_log("clean").exists() and not load_archives(clean_ws)
    doc = checklist(clean_ws, capsys, "eod")
    assert doc["ok"] and doc["runs"] == ["clean"]
    state, check = status(doc, "eod.archive")
    assert state == "pass" and check["details"]["runs"] == ["clean"] and not clean_ws.event_log("clean").exists()
    (entry,) = load_archives(clean_ws)
    with tarfile.open(entry.path) as tar:
        assert sorted(tar.getnames()) == ["MANIFEST.json", "run_clean.jsonl"]
    assert "worst day" in status(doc, "eod.daily_pnl")[1]["reason"]
    again = checklist(clean_ws, capsys, "eod")
    assert status(again, "eod.archive")[1]["reason"] == "nothing to archive"


def test_eod_daily_loss_breach(make_ws, capsys):
    doc = checklist(make_ws("halted"), capsys, "eod", "--dry-run")
    state, check = status(doc, "eod.daily_pnl")
    assert state == "fail" and "breached" in check["reason"] and "override (with approval)" in check["action"]


def test_eod_repeated_errors(clean_ws, capsys):
    for n in range(3):
        write_log(clean_ws, f"flaky{n}", [("SYS", "run_start", "INFO", start_payload(clean_ws)),
                                          ("EXEC", "adapter_error", "ERROR", {"code": "VENUE_TIMEOUT"}),
                                          ("SYS", "run_end", "INFO", end_payload())])
    doc = checklist(clean_ws, capsys, "eod", "--dry-run")
    state, check = status(doc, "eod.errors")
    assert state == "fail" and "adapter_error/VENUE_TIMEOUT×3 in 3 run(s)" in check["reason"]
    state, check = status(doc, "eod.runbook")
    assert state == "warn" and "VENUE_TIMEOUT" in check["reason"]


def test_eod_db_backup(clean_ws, capsys):
    from treasure.store import open_db

    set_ssot(clean_ws, lambda d: d.__setitem__("persistence", {"enabled": True, "db_path": "data/run.db"}))
    open_db(clean_ws.data_dir / "run.db", create=True).close()
    doc = checklist(clean_ws, capsys, "eod")
    state, check = status(doc, "eod.db_backup")
    assert state == "pass" and check["details"]["backup"].startswith("archive/db/run-")
    assert (clean_ws.root / check["details"]["backup"]).is_file()
    (clean_ws.data_dir / "run.db").write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
    state, check = status(checklist(clean_ws, capsys, "eod"), "eod.db_backup")
    assert state == "fail"


def test_eod_leaves_open_runs_with_a_warning(clean_ws, capsys):
    write_log(clean_ws, "running", [("SYS", "run_start", "INFO", start_payload(clean_ws))])
    state, check = status(checklist(clean_ws, capsys, "eod"), "eod.archive")
    assert state == "warn" and "running: open" in check["reason"]
    assert clean_ws.event_log("running").exists() and not clean_ws.event_log("clean").exists()


def test_checklist_through_the_console(clean_ws):
    done = subprocess.run([PYTHON, "-m", "treasure", "checklist", "pre", "-w", str(clean_ws.root)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    run_cli(clean_ws, "halt", "--reason", "x")
    done = subprocess.run([PYTHON, "-m", "treasure", "checklist", "pre", "-w", str(clean_ws.root)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "[FAIL] No emergency halt in force" in done.stdout


def test_pre_detects_a_changed_contract(clean_ws, capsys):
    schema = clean_ws.truth_dir / "events" / "halt.schema.json"
    schema.write_text(schema.read_text().replace('"minimum": 0', '"minimum": -1', 1))
    state, check = status(checklist(clean_ws, capsys, "pre"), "pre.ssot")
    assert state == "fail" and "TAMPER_SCHEMA truth/events/halt.schema.json" in check["reason"]
