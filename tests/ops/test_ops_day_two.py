"""Day two and after (issue 13): the joints between operator commands, each reproduced in a
workspace through the CLI. Alerts that only `ack` can clear, the `run --db` database seen by
operations, the approval lock's content and `ssot diff`, a dead venue feed in `diagnose`, the
end-of-day review, the hand-written emergency flag, the HTML drawdown and the timing stream."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers.ops_support import (  # noqa: F401
    clean_ws, end_payload, json_out, make_ws, run_cli, set_ssot, start_payload, templates, validate, write_log,
)
from treasure.ops import alerts, emergency
from treasure.workspace import Workspace


# ------------------------------------------------------------------ alerts (finding 3)
def test_a_critical_recon_alert_stays_pending_after_a_clean_recon(clean_ws, capsys):
    assert run_cli(clean_ws, "recon", "clean", "--live", str(clean_ws.fixtures_dir / "live" / "threshold_over.jsonl"), "-q") == 3
    capsys.readouterr()
    assert run_cli(clean_ws, "recon", "clean", "--live", str(clean_ws.fixtures_dir / "live" / "clean.jsonl"), "-q") == 0
    capsys.readouterr()
    assert run_cli(clean_ws, "ack", "--json") == 0
    critical = [a for a in json_out(capsys)["pending"] if a["level"] == "CRITICAL"]
    assert critical, "the CRITICAL alert of the first recon was forgotten"
    assert run_cli(clean_ws, "checklist", "pre", "--json") == 2
    checks = {c["id"]: c for c in json_out(capsys)["checks"]}
    assert checks["pre.alerts"]["status"] == "fail"
    assert run_cli(clean_ws, "ack", "--all", "--note", "reviewed with the desk") == 0
    capsys.readouterr()
    assert alerts.pending(clean_ws) == []


def test_raise_alert_is_append_only_and_only_ack_clears_it(clean_ws):
    ident = alerts.raise_alert(clean_ws, "RECON_ESCALATION", "CRITICAL", "recon", "11 mismatched orders", "clean",
                               key={"recon": "recon-clean-1"})
    assert ident.startswith("recon-") and [a.id for a in alerts.pending(clean_ws)] == [ident]
    before = alerts.store_path(clean_ws).read_bytes()
    # raising the same occurrence again writes nothing; a new occurrence is a new alert
    assert alerts.raise_alert(clean_ws, "RECON_ESCALATION", "CRITICAL", "recon", "11 mismatched orders", "clean",
                              key={"recon": "recon-clean-1"}) == ident
    assert alerts.store_path(clean_ws).read_bytes() == before
    other = alerts.raise_alert(clean_ws, "RECON_ESCALATION", "CRITICAL", "recon", "11 mismatched orders", "clean",
                               key={"recon": "recon-clean-2"})
    assert other != ident
    # evidence removed: the alerts stay
    for path in clean_ws.logs_dir.glob("run_*.jsonl"):
        path.unlink()
    assert {a.id for a in alerts.pending(clean_ws)} == {ident, other}
    assert alerts.ack(clean_ws, ident, who="ops1", note="desk informed") is True
    assert alerts.ack(clean_ws, ident, who="ops1") is False
    assert [a.id for a in alerts.pending(clean_ws)] == [other]
    after = alerts.store_path(clean_ws).read_bytes()
    assert after.startswith(before)  # only appended to
    records = [json.loads(line) for line in after.splitlines()]
    assert [r["record"] for r in records] == ["alert", "alert", "ack"] and records[2]["who"] == "ops1"


def test_raise_alert_refuses_bad_level_and_source(clean_ws, capsys):
    from treasure.ops import OpsError

    with pytest.raises(OpsError) as bad_level:
        alerts.raise_alert(clean_ws, "X", "FATAL", "recon", "d")
    with pytest.raises(OpsError) as bad_source:
        alerts.raise_alert(clean_ws, "X", "ERROR", "Recon Service", "d")
    assert bad_level.value.code == bad_source.value.code == "ALERT_INVALID"


def test_a_latched_run_alert_survives_an_overwritten_run(make_ws, capsys):
    ws = make_ws("halted")
    assert run_cli(ws, "status") == 0  # an operator looked: the halted run's alert is recorded
    capsys.readouterr()
    set_ssot(ws, lambda d: d["risk"].__setitem__("daily_loss_limit_usd", 5000))
    assert run_cli(ws, "run", "--run-id", "halted", "--overwrite", "-q") == 0
    capsys.readouterr()
    (alert,) = alerts.pending(ws)
    assert alert.level == "CRITICAL" and "halted (daily_loss_limit)" in alert.title


def test_a_producer_sets_the_flag_with_a_reason_and_a_critical_alert(clean_ws, capsys):
    state, created = emergency.set_flag(clean_ws, "recon: 11 mismatched orders > max_mismatches 10", "recon")
    assert created and state.halted and state.source == "recon" and state.reason.startswith("recon: 11")
    (alert,) = [a for a in alerts.pending(clean_ws) if a.kind == "emergency"]
    assert alert.level == "CRITICAL" and alert.code == "EMERGENCY_HALT"
    assert run_cli(clean_ws, "status") == 0
    assert "[set by recon]" in capsys.readouterr().out
    assert run_cli(clean_ws, "run", "--run-id", "after-flag", "-q") == 3  # trading stops
    capsys.readouterr()
    log = [json.loads(line) for line in (clean_ws.data_dir / "emergency.log").read_text().splitlines()]
    assert log[0]["source"] == "recon"


# ------------------------------------------------------------------ hand-written flag (finding 8)
def test_a_hand_written_runbook_flag_shows_what_is_known(clean_ws, capsys):
    clean_ws.data_dir.mkdir(exist_ok=True)
    clean_ws.emergency_flag.write_text('{"status":"EMERGENCY_HALT"}\n')
    assert run_cli(clean_ws, "status") == 0
    out = capsys.readouterr().out
    assert "EMERGENCY HALT" in out and "?: None" not in out and "None" not in out
    assert "(file time)" in out and "no reason recorded" in out
    with open(clean_ws.data_dir / "emergency.log", "a") as log:  # the runbook's step 4
        log.write("Reason: venue outage, desk informed\n")
    assert run_cli(clean_ws, "status", "--json") == 0
    doc = json_out(capsys)
    validate(clean_ws, "status", doc)
    assert doc["emergency"]["reason"] == "venue outage, desk informed (from data/emergency.log)"
    assert doc["emergency"]["source"] == "hand-written"
    assert run_cli(clean_ws, "checklist", "pre") == 2
    assert "venue outage" in capsys.readouterr().out


# ------------------------------------------------------------------ the run --db database (finding 4)
def test_the_run_db_is_seen_by_status_checklists_and_eod(make_ws, capsys):
    ws = make_ws("empty")
    assert run_cli(ws, "run", "--run-id", "day1", "--db", "-q") == 0
    capsys.readouterr()
    assert (ws.data_dir / "treasure.db").is_file()
    assert run_cli(ws, "status", "--json") == 0
    doc = json_out(capsys)
    validate(ws, "status", doc)
    assert doc["db"]["state"] == "ok" and doc["db"]["in_use"] and doc["db"]["path"] == "data/treasure.db"
    assert run_cli(ws, "status") == 0
    assert "database         ok (run --db)" in capsys.readouterr().out
    assert run_cli(ws, "checklist", "pre", "--json") in (0, 2)
    pre = {c["id"]: c for c in json_out(capsys)["checks"]}
    assert pre["pre.db"]["status"] == "pass" and "data/treasure.db" in pre["pre.db"]["reason"]
    assert "no database needed" not in pre["pre.db"]["reason"]
    assert run_cli(ws, "checklist", "eod", "--json") in (0, 2)
    eod = {c["id"]: c for c in json_out(capsys)["checks"]}
    assert eod["eod.db_backup"]["status"] == "pass" and "backed up to archive/db/" in eod["eod.db_backup"]["reason"]
    assert list((ws.archive_dir / "db").glob("treasure-*.db"))
    (ws.data_dir / "treasure.db").write_bytes(b"not a database at all" * 200)
    assert run_cli(ws, "checklist", "pre", "--json") == 2
    pre = {c["id"]: c for c in json_out(capsys)["checks"]}
    assert pre["pre.db"]["status"] == "fail"


# ------------------------------------------------------------------ the approval lock (finding 5)
def test_ssot_diff_shows_what_changed(make_ws, capsys):
    ws = make_ws("empty")
    assert run_cli(ws, "ssot", "diff") == 0 and "no change" in capsys.readouterr().out
    set_ssot(ws, lambda d: d["risk"].__setitem__("daily_loss_limit_usd", 40))
    assert run_cli(ws, "ssot", "diff") == 2
    out = capsys.readouterr().out
    assert "changed spec/ssot.json" in out and "~ risk.daily_loss_limit_usd: 1500 -> 40" in out
    assert "--- approved/spec/ssot.json" in out and '+    "daily_loss_limit_usd": 40' in out
    assert run_cli(ws, "ssot", "diff", "--json") == 2
    (change,) = json_out(capsys)["files"]
    assert change["path"] == "spec/ssot.json" and change["status"] == "changed"


def test_an_old_lock_without_content_says_so(make_ws, capsys):
    ws = make_ws("empty")
    lock = json.loads((ws.spec_dir / "ssot.lock").read_text())
    lock.pop("content")
    lock["lock_version"] = 1
    (ws.spec_dir / "ssot.lock").write_text(json.dumps(lock))
    assert run_cli(ws, "ssot", "check") == 0  # still readable
    capsys.readouterr()
    set_ssot(ws, lambda d: d["risk"].__setitem__("daily_loss_limit_usd", 40))
    assert run_cli(ws, "ssot", "diff") == 2
    out = capsys.readouterr().out
    assert "unknown spec/ssot.json" in out and "approved content is unknown" in out and "ssot approve" in out


@pytest.mark.parametrize("name, make", [
    ("symlink", lambda ws: os.symlink("/etc/passwd", ws.truth_dir / "passwd.json")),
    ("not json", lambda ws: (ws.spec_dir / "notes.json").write_text("just some notes\n")),
    ("outside", lambda ws: os.symlink(ws.root.parent, ws.truth_dir / "up")),
])
def test_approve_refuses_what_is_not_an_approvable_file(make_ws, capsys, tmp_path, name, make):
    ws = make_ws("empty")
    if name == "outside":
        (ws.root.parent / "evil.json").write_text("{}")
    make(ws)
    before = (ws.spec_dir / "ssot.lock").read_bytes()
    assert run_cli(ws, "ssot", "approve") == 2
    err = capsys.readouterr().err
    assert "error[LOCK_REFUSED]" in err and "Traceback" not in err
    assert (ws.spec_dir / "ssot.lock").read_bytes() == before


def test_run_warns_on_an_unapproved_ssot(make_ws, capsys):
    from treasure.approval import approval_state

    ws = make_ws("empty")
    assert approval_state(ws) == (True, [])
    assert run_cli(ws, "run", "--run-id", "approved", "-q") == 0
    assert "WARN unapproved SSOT" not in capsys.readouterr().err
    set_ssot(ws, lambda d: d["risk"].__setitem__("daily_loss_limit_usd", 2000))
    assert approval_state(ws) == (False, ["spec/ssot.json"])
    assert run_cli(ws, "run", "--run-id", "unapproved", "-q") == 0
    captured = capsys.readouterr()
    assert "WARN unapproved SSOT: spec/ssot.json changed" in captured.err and "ssot diff" in captured.err
    assert run_cli(ws, "run", "--run-id", "unapproved2", "--json") == 0
    doc = json_out(capsys)
    assert doc["ssot_approved"] is False and doc["ssot_unapproved"] == ["spec/ssot.json"]


# ------------------------------------------------------------------ a dead venue feed (finding 6)
def test_diagnose_names_orders_not_executing_on_a_dead_feed(make_ws, capsys, tmp_path):
    ws = make_ws("empty")
    session = (ws.fixtures_dir / "live" / "clean.jsonl").read_text().splitlines()[0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(session + "\n" + "".join(f"garbage {i}\n" for i in range(60)))
    code = run_cli(ws, "run", "--run-id", "dead", "--adapter", "replay-live", "--live", str(bad), "-q")
    assert code in (0, 4)  # 4 once the engine marks the run degraded
    capsys.readouterr()
    assert run_cli(ws, "diagnose", "dead", "--json") == 0
    doc = json_out(capsys)
    validate(ws, "diagnose", doc)
    findings = {f["code"]: f for f in doc["findings"]}
    stuck = findings["ORDERS_NOT_EXECUTING"]
    assert stuck["severity"] == "error" and "ERROR rate" in stuck["title"] and "0 fill(s)" in stuck["title"]
    assert "adapter offline/error" in stuck["action"] and "adapter_error" in stuck["action"]
    assert run_cli(ws, "diagnose", "dead") == 0
    assert "ORDERS_NOT_EXECUTING" in capsys.readouterr().out


def test_a_degraded_run_is_named(clean_ws, capsys):
    write_log(clean_ws, "deg", [("SYS", "run_start", "INFO", start_payload(clean_ws)),
                                ("EXEC", "order_placed", "INFO", {"order_id": "o1"}),
                                *[("EXEC", "adapter_error", "ERROR", {"code": "LIVE_JSON"})] * 3,
                                ("SYS", "run_end", "WARN", end_payload("degraded", "adapter_error_rate"))])
    assert run_cli(clean_ws, "diagnose", "deg", "--json") == 0
    doc = json_out(capsys)
    validate(clean_ws, "diagnose", doc)
    codes = {f["code"]: f for f in doc["findings"]}
    # crafted log, no court report: incomplete (issue 17), and its run_end's degraded still named
    assert doc["status"] == "incomplete" and "RUN_DEGRADED" in codes and "exit code 4" in codes["RUN_DEGRADED"]["title"]
    assert doc["verdict"] == "bad" and "ORDERS_NOT_EXECUTING" in codes
    assert run_cli(clean_ws, "checklist", "post", "deg", "--json") == 2
    post = {c["id"]: c for c in json_out(capsys)["checks"]}
    assert post["post.complete"]["status"] == "fail" and "degraded" in post["post.complete"]["reason"]


# ------------------------------------------------------------------ end of day (finding 8)
def test_eod_knows_halt_reasons_and_sees_a_critical_recon_halt(make_ws, capsys):
    ws = make_ws("halted")
    write_log(ws, "recon-halted", [
        ("RECON", "recon_started", "INFO", {}),
        ("RECON", "recon_mismatch", "WARN", {"code": "PRICE_MISMATCH", "order_id": "o1"}),
        ("RISK", "halt", "CRITICAL", {"reason": "recon_mismatch_threshold", "bar_idx": 0, "detail": "11 > 10"})])
    assert run_cli(ws, "checklist", "eod", "--dry-run", "--json") == 2
    doc = json_out(capsys)
    validate(ws, "checklist", doc)
    checks = {c["id"]: c for c in doc["checks"]}
    assert checks["eod.runbook"]["status"] == "pass", checks["eod.runbook"]  # daily_loss_limit, emergency_flag known
    assert checks["eod.critical"]["status"] == "fail" and "recon-halted" in checks["eod.critical"]["reason"]
    assert "docs/operations.md" not in json.dumps(doc)


def test_eod_names_an_unknown_code_with_a_command(clean_ws, capsys):
    write_log(clean_ws, "odd", [("SYS", "run_start", "INFO", start_payload(clean_ws)),
                                ("EXEC", "adapter_error", "ERROR", {"code": "VENUE_TEAPOT"}),
                                ("SYS", "run_end", "INFO", end_payload())])
    assert run_cli(clean_ws, "checklist", "eod", "--dry-run", "--json") in (0, 2)
    check = {c["id"]: c for c in json_out(capsys)["checks"]}["eod.runbook"]
    assert check["status"] == "warn" and check["details"]["codes"] == ["VENUE_TEAPOT"]
    assert "treasure events" in check["action"] and "docs/operations.md" not in check["action"]


def test_the_runbook_registry_is_one_home():
    from treasure.ops.runbook import entry, has_entry

    for code in ("daily_loss_limit", "emergency_flag", "recon_mismatch_threshold", "PRICE_MISMATCH", "LIVE_JSON",
                 "DATA_GAP", "-", "42"):
        assert has_entry(code), code
    assert not has_entry("VENUE_TEAPOT") and entry("VENUE_TEAPOT") is None


# ------------------------------------------------------------------ HTML drawdown (finding 8)
def test_html_report_shows_the_drawdown_as_a_loss(clean_ws):
    from treasure.ops.html_report import build_html

    text = build_html(clean_ws, "clean")
    court = json.loads((clean_ws.run_reports("clean") / "court_report.json").read_text())
    dd = court["metrics"]["max_drawdown"]
    assert dd > 0
    assert f"<td>max_drawdown</td><td>-{dd * 100:.2f}% (peak to trough)</td>" in text
    assert f"+{dd * 100:.2f}%" not in text.split("max_drawdown", 1)[1].split("</tr>", 1)[0]


# ------------------------------------------------------------------ slow operations (finding 10)
def test_slow_operations_are_answerable_without_touching_the_event_log(make_ws, capsys):
    ws = make_ws("empty")
    assert run_cli(ws, "run", "--run-id", "t1", "-q") == 0
    capsys.readouterr()
    path = ws.root / "logs" / "timings" / "run_t1.jsonl"
    phases = [json.loads(line) for line in path.read_text().splitlines()]
    assert [p["phase"] for p in phases] == ["run", "simulate", "prepare+reports+db"]
    assert all(p["duration_ms"] >= 0 for p in phases) and phases[0]["duration_ms"] >= phases[1]["duration_ms"]
    assert "duration_ms" not in ws.event_log("t1").read_text()  # the canonical log stays as it was
    assert run_cli(ws, "timings", "t1", "--slower-than", "0", "--json") == 0
    assert len(json_out(capsys)["timings"]) == 3
    assert run_cli(ws, "timings", "--slower-than", "1e9") == 0
    assert "no timing slower than" in capsys.readouterr().out
    ws.evidence_dir.mkdir(exist_ok=True)
    (ws.evidence_dir / "gates_history.jsonl").write_text(json.dumps(
        {"gate": "determinism", "outcome": "passed", "duration_s": 12.5, "finished_at": "2026-01-05T10:00:00.000Z"}) + "\n")
    assert run_cli(ws, "timings", "--slower-than", "1000", "--json") == 0
    slow = json_out(capsys)["timings"]
    assert [(t["source"], t["name"], t["duration_ms"]) for t in slow] == [("gate", "determinism", 12500.0)]
    assert run_cli(ws, "timings", "--slower-than", "-1") == 2
    assert "error[QUERY_INVALID]" in capsys.readouterr().err


def test_the_timing_stream_reads_the_clock_in_one_marked_place():
    from treasure.determinism_scan import scan_paths

    import treasure.ops.timings as timings

    result = scan_paths([Path(timings.__file__)])
    assert result.clean
    source = Path(timings.__file__).read_text()
    assert source.count("allow-nondeterminism") == 2 and source.count("def wall_clock") == 1
