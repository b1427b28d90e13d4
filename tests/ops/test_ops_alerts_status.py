"""Alerts (what is pending, acks) and `treasure status`."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from helpers.ops_support import (  # noqa: F401
    PYTHON, clean_ws, end_payload, json_out, make_ws, run_cli, set_ssot, start_payload, templates, validate, write_log,
)
from treasure.ops import alerts
from treasure.ops.alerts import collect, pending


def gates_json(ws, **statuses):
    ws.evidence_dir.mkdir(exist_ok=True)
    (ws.evidence_dir / "gates.json").write_text(json.dumps({
        "schema_version": 1, "status": "failed" if "failed" in statuses.values() else "passed",
        "gates": [{"name": n, "status": s, "reason": "boom" if s == "failed" else None} for n, s in statuses.items()]}))


def test_clean_run_raises_no_alert(clean_ws):
    assert collect(clean_ws) == []


def test_halted_run_is_one_critical_alert(make_ws):
    ws = make_ws("halted")
    (alert,) = pending(ws)
    assert alert.kind == "run" and alert.level == "CRITICAL" and alert.run_id == "halted"
    assert "halted (daily_loss_limit)" in alert.title and alert.by_type == {"daily_loss_limit": 1, "halt": 1,
                                                                          "run_end": 1}
    assert [a.id for a in collect(ws)] == [alert.id]  # ids are stable between calls


def test_failed_run_and_crashed_log_are_alerts(make_ws):
    ws = make_ws("failed")
    write_log(ws, "crashed", [("SYS", "run_start", "INFO", start_payload(ws))])
    found = {a.run_id: a for a in pending(ws)}
    assert set(found) == {"failed", "crashed"}
    assert "error (STRATEGY_FAILED)" in found["failed"].title
    assert "no run_end" in found["crashed"].title


def test_error_events_in_a_complete_run(clean_ws):
    write_log(clean_ws, "noisy", [("SYS", "run_start", "INFO", start_payload(clean_ws)),
                                  ("EXEC", "adapter_error", "ERROR", {"code": "TIMEOUT"}),
                                  ("EXEC", "adapter_error", "ERROR", {"code": "TIMEOUT"}),
                                  ("SYS", "run_end", "INFO", end_payload())])
    (alert,) = pending(clean_ws)
    assert alert.level == "ERROR" and alert.count == 2 and alert.first_seq == 1


def test_recon_mismatches_are_an_alert(clean_ws):
    write_log(clean_ws, "recon-clean", [
        ("RECON", "recon_started", "INFO", {}),
        ("RECON", "recon_mismatch", "WARN", {"code": "PRICE_MISMATCH", "order_id": "o1"}),
        ("RECON", "recon_mismatch", "WARN", {"code": "FEE_MISMATCH", "order_id": "o2"}),
        ("RECON", "recon_completed", "WARN", {"matched": 5})])
    (alert,) = pending(clean_ws)
    assert alert.kind == "recon" and alert.run_id == "clean" and alert.count == 2
    assert alert.by_type == {"FEE_MISMATCH": 1, "PRICE_MISMATCH": 1}


def test_ack_by_prefix_run_and_all(make_ws, capsys):
    ws = make_ws("halted")
    write_log(ws, "crashed", [("SYS", "run_start", "INFO", start_payload(ws))])
    ids = {a.run_id: a.id for a in pending(ws)}
    assert run_cli(ws, "ack") == 0 and "2 pending alert(s)" in capsys.readouterr().out
    assert run_cli(ws, "ack", ids["halted"][:8], "--note", "limit drill") == 0
    assert f"acknowledged {ids['halted']}" in capsys.readouterr().out
    assert [a.id for a in pending(ws)] == [ids["crashed"]]
    assert run_cli(ws, "ack", ids["halted"]) == 0 and "already" in capsys.readouterr().out
    assert run_cli(ws, "ack", "--run", "crashed") == 0 and pending(ws) == []
    store = alerts.load_store(ws)
    assert store.acks[ids["halted"]]["note"] == "limit drill" and store.acks[ids["halted"]]["who"]


@pytest.mark.parametrize("wanted, code", [("run-ffffffffff", "ALERT_UNKNOWN"), ("ru", "ALERT_UNKNOWN"),
                                          ("run-", "ALERT_AMBIGUOUS")])
def test_ack_unknown_or_ambiguous(make_ws, capsys, wanted, code):
    ws = make_ws("halted")
    write_log(ws, "crashed", [("SYS", "run_start", "INFO", start_payload(ws))])
    assert run_cli(ws, "ack", wanted) == 2
    assert f"error[{code}]" in capsys.readouterr().err
    assert alerts.load_store(ws).acks == {}  # refused before anything was acknowledged


def test_broken_ack_store_is_a_coded_error(make_ws, capsys):
    ws = make_ws("halted")
    (ws.data_dir / "alerts.json").write_text("[1, 2")
    assert run_cli(ws, "ack", "--all") == 2
    assert "error[ALERTS_STORE]" in capsys.readouterr().err
    assert run_cli(ws, "status", "--json") == 0  # status still works and says why
    assert json_out(capsys)["alerts"]["problem"].startswith("ALERTS_STORE")


def test_bad_line_in_the_alert_store_is_named_and_a_torn_tail_ignored(make_ws, capsys):
    ws = make_ws("halted")
    (alert,) = pending(ws)  # latched into data/alerts.jsonl
    path = alerts.store_path(ws)
    path.write_bytes(path.read_bytes() + b'{"record": "ack", "id": "' + alert.id.encode())  # torn append
    assert [a.id for a in pending(ws)] == [alert.id]
    assert run_cli(ws, "ack", alert.id) == 0 and pending(ws) == []  # appended after the torn line
    path.write_bytes(b"garbage\n" + path.read_bytes())
    assert run_cli(ws, "ack", "--all") == 2
    err = capsys.readouterr().err
    assert "error[ALERTS_STORE]" in err and "line 1" in err


def test_rerun_with_a_new_problem_raises_a_new_alert(make_ws):
    ws = make_ws("halted")
    alerts.acknowledge(ws, [], everything=True)
    assert pending(ws) == []
    set_ssot(ws, lambda d: d["risk"].__setitem__("daily_loss_limit_usd", 30))
    assert run_cli(ws, "run", "--run-id", "halted", "--overwrite", "-q") == 3
    assert len(pending(ws)) == 1


# ---------------------------------------------------------------------------- status
def test_status_of_an_empty_workspace(make_ws, capsys):
    ws = make_ws("empty")
    assert run_cli(ws, "status", "--json") == 0
    doc = json_out(capsys)
    validate(ws, "status", doc)
    assert doc["runs"] == [] and not doc["gates"]["ran"] and doc["db"]["state"] == "disabled"
    assert run_cli(ws, "status") == 0 and "none yet" in capsys.readouterr().out


def test_status_shows_everything(make_ws, capsys):
    ws = make_ws("halted")
    gates_json(ws, e2="passed", determinism="failed")
    run_cli(ws, "halt", "--reason", "desk call")
    capsys.readouterr()
    assert run_cli(ws, "status", "--json", "--max-mb", "0.001") == 0
    doc = json_out(capsys)
    validate(ws, "status", doc)
    assert [r["run_id"] for r in doc["runs"]] == ["halted"] and doc["runs"][0]["status"] == "halted"
    assert doc["gates"]["failed"] == ["determinism"] and doc["emergency"]["reason"] == "desk call"
    assert doc["logs"]["over_limit"] == ["run_halted.jsonl"] and doc["alerts"]["pending"] == 1
    assert run_cli(ws, "status", "--max-mb", "0.001") == 0
    text = capsys.readouterr().out
    assert "EMERGENCY HALT" in text and "determinism failed" in text and "treasure rotate" in text


@pytest.mark.parametrize("content, state", [(None, "absent"), (b"this is not sqlite at all" * 100, "broken"),
                                            ("sqlite", "ok")])
def test_status_db_states(clean_ws, capsys, content, state):
    set_ssot(clean_ws, lambda d: d.__setitem__("persistence", {"enabled": True, "db_path": "data/t.db"}))
    db = clean_ws.data_dir / "t.db"
    if content == "sqlite":
        from treasure.store import open_db

        open_db(db, create=True).close()
    elif content is not None:
        db.write_bytes(content)
    assert run_cli(clean_ws, "status", "--json") == 0
    doc = json_out(capsys)
    assert doc["db"]["state"] == state, doc["db"]


def test_status_with_broken_evidence(clean_ws, capsys):
    (clean_ws.evidence_dir / "gates.json").write_text("{")
    (clean_ws.run_reports("clean") / "court_report.json").write_text("[]")
    assert run_cli(clean_ws, "status", "--json") == 0
    doc = json_out(capsys)
    validate(clean_ws, "status", doc)
    assert doc["gates"]["problem"].startswith("invalid JSON") and doc["runs"][0]["court_problem"]


def test_status_in_a_subprocess(clean_ws):
    done = subprocess.run([PYTHON, "-m", "treasure", "status", "--json", "-w", str(clean_ws.root)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runs"][0]["run_id"] == "clean"
    missing = subprocess.run([PYTHON, "-m", "treasure", "status", "-w", str(clean_ws.root / "nope")],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "error[WORKSPACE_MISSING]" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_sqlite_is_really_checked(clean_ws):
    from treasure.ops.evidence import check_db

    db = clean_ws.data_dir / "plain.db"
    sqlite3.connect(db).execute("create table t(x)").connection.commit()
    ok, detail = check_db(db)
    assert not ok and "STORE_NOT_TREASURE" in detail  # an SQLite file, but not a Treasure run DB
