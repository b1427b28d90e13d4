"""`treasure diagnose`: triage findings with the runbook's actions; schema-valid JSON."""

from __future__ import annotations

import json
import subprocess

from helpers.ops_support import (  # noqa: F401
    PYTHON, clean_ws, end_payload, json_out, make_ws, run_cli, start_payload, templates, validate, write_log,
)
from treasure.ops.archive import pack
from treasure.ops.diagnose import ACTIONS, diagnose


def codes(doc):
    return {f["code"]: f for f in doc["findings"]}


def test_clean_run(clean_ws, capsys):
    assert run_cli(clean_ws, "diagnose", "clean", "--json") == 0
    doc = json_out(capsys)
    validate(clean_ws, "diagnose", doc)
    found = codes(doc)
    assert doc["status"] == "complete" and doc["verdict"] == "warn"  # the default data has gaps
    assert set(found) == {"DATA_GAP", "DUPLICATE_TIMESTAMP"}
    gap = found["DATA_GAP"]
    assert gap["action"] == ACTIONS["DATA_GAP"] and "re-fetch or interpolate" in gap["action"]
    logged = [json.loads(line)["payload"]["bar_idx"] for line in clean_ws.event_log("clean").read_text().splitlines()
              if '"event_type":"data_gap_detected"' in line]
    assert [i["payload"]["bar_idx"] for i in gap["items"]] == logged and gap["count"] == len(logged) > 0
    assert doc["log"]["integrity"]["ok"] and doc["run"]["dataset_sha_matches"]
    assert run_cli(clean_ws, "diagnose") == 0  # latest, human form
    text = capsys.readouterr().out
    assert "Action: Data Gap Detected" in text and "run_start  seed 42" in text and "chain OK" in text


def test_halted_run(make_ws, capsys):
    ws = make_ws("halted")
    doc = diagnose(ws, "halted")
    validate(ws, "diagnose", doc)
    found = codes(doc)
    halt = found["HALT_DAILY_LOSS_LIMIT"]
    assert doc["verdict"] == "bad" and halt["severity"] == "critical"
    assert "reset (next day only) or override (with approval)" in halt["action"]
    assert [c["event_type"] for c in halt["items"][0]["context"]][-1] == "daily_loss_limit"
    assert doc["risk"]["worst_day"]["min_pnl_usd"] < -40


def test_failed_run(make_ws):
    ws = make_ws("failed")
    doc = diagnose(ws, "failed")
    validate(ws, "diagnose", doc)
    found = codes(doc)
    assert found["RUN_ERROR"]["items"][0]["payload"]["code"] == "STRATEGY_FAILED"
    assert "fix the strategy code" in found["RUN_ERROR"]["action"]
    assert found["ERROR_RATE"]["severity"] == "error"  # 1 of 9 events: above the runbook's 10%


def test_crafted_problems(clean_ws):
    start = start_payload(clean_ws)
    write_log(clean_ws, "messy", [
        ("SYS", "run_start", "INFO", start),
        ("DATA", "dataset_loaded", "INFO", {"dataset_sha": "1" * 64, "pinned_sha": "2" * 64, "sha_matches": False,
                                            "path": "d.csv", "bars": 10, "gaps": 0, "duplicates": 0}),
        ("EXEC", "order_rejected", "WARN", {"order_id": "o1", "reason": "risk:max_position_size_usd"}),
        ("EXEC", "adapter_error", "ERROR", {"adapter": "replay-live", "code": "FIXTURE_LINE", "message": "bad"}),
        ("EXEC", "position_updated", "INFO", {"position_usd": 25_000.0, "bar_idx": 3}),
        ("RISK", "limit_exceeded", "WARN", {"action": "cut", "bar_idx": 4}),
        ("SYS", "run_end", "INFO", end_payload()),
    ])
    doc = diagnose(clean_ws, "messy")
    validate(clean_ws, "diagnose", doc)
    found = codes(doc)
    assert found["DATASET_SHA_MISMATCH"]["severity"] == "critical"
    assert "escalate to data team" in found["DATASET_SHA_MISMATCH"]["action"]
    assert found["ORDERS_NOT_EXECUTING"]["severity"] == "error"  # rejected and nothing placed
    assert "adapter offline/error" in found["ORDERS_NOT_EXECUTING"]["action"]
    assert found["ADAPTER_ERROR"]["count"] == 1
    assert found["POSITION_OVER_LIMIT"]["severity"] == "error"
    assert "increase limit (with risk approval)" in found["POSITION_LIMIT"]["action"]
    assert found["ERROR_RATE"]["count"] == 1  # 1 of 7 events


def test_recon_findings(clean_ws):
    mismatches = [("RECON", "recon_mismatch", "WARN", {"code": "PRICE_MISMATCH", "order_id": f"o{i}"})
                  for i in range(12)]
    write_log(clean_ws, "recon-clean", [("RECON", "recon_started", "INFO", {}), *mismatches,
                                        ("RECON", "halt", "CRITICAL", {"reason": "recon_mismatch_threshold"})])
    found = codes(diagnose(clean_ws, "clean"))
    escalation = found["RECON_ESCALATION"]
    assert escalation["severity"] == "critical" and escalation["count"] == 12
    assert "escalate to trading desk" in escalation["action"] and "tolerance settings" in escalation["action"]


def test_recon_report_only(clean_ws):
    report = {"run_id": "clean", "matched": 3, "mismatched_orders": 1, "halt": {"triggered": False},
              "mismatches": [{"code": "FEE_MISMATCH", "order_id": "o1"}]}
    (clean_ws.run_reports("clean") / "recon_report.json").write_text(json.dumps(report))
    doc = diagnose(clean_ws, "clean")
    assert doc["recon"] == {"source": "report", "mismatches": 1, "mismatched_orders": 1, "matched": 3,
                            "by_code": {"FEE_MISMATCH": 1}, "halted": False, "problem": None}
    assert codes(doc)["RECON_MISMATCH"]["severity"] == "error"


def test_tampered_log_names_the_line(clean_ws, capsys):
    log = clean_ws.event_log("clean")
    lines = log.read_bytes().splitlines(keepends=True)
    lines[40] = lines[40].replace(b'"level":"INFO"', b'"level":"WARN"', 1)
    log.write_bytes(b"".join(lines))
    assert run_cli(clean_ws, "diagnose", "clean", "--json") == 0
    doc = json_out(capsys)
    validate(clean_ws, "diagnose", doc)
    broken = codes(doc)["LOG_BROKEN"]
    assert doc["verdict"] == "bad" and broken["title"].endswith("run_clean.jsonl:41)")
    assert doc["log"]["integrity"]["code"] == "EVENTS_CHAIN" and doc["log"]["integrity"]["line"] == 41


def test_truncated_log(clean_ws):
    log = clean_ws.event_log("clean")
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 40])  # cut inside run_end
    doc = diagnose(clean_ws, "clean")
    found = codes(doc)
    assert {"LOG_TRUNCATED", "RUN_INCOMPLETE"} <= set(found)
    assert doc["status"] == "incomplete" and "Run Crashed" in found["RUN_INCOMPLETE"]["action"]


def test_archived_run(clean_ws):
    pack(clean_ws)
    doc = diagnose(clean_ws, "clean")
    assert doc["log"]["archived"] and doc["log"]["integrity"]["checked"] == "archive" and doc["log"]["integrity"]["ok"]


def test_emergency_flag_is_reported(clean_ws):
    run_cli(clean_ws, "halt", "--reason", "desk")
    assert codes(diagnose(clean_ws, "clean"))["EMERGENCY_FLAG_SET"]["severity"] == "warn"


def test_bad_run_ids(clean_ws, capsys):
    done = subprocess.run([PYTHON, "-m", "treasure", "diagnose", "missing-run", "-w", str(clean_ws.root)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "error[RUN_UNKNOWN]" in done.stderr and "Traceback" not in done.stderr
    assert run_cli(clean_ws, "diagnose", "../etc") == 2
    assert "error[RUN_ID_INVALID]" in capsys.readouterr().err
