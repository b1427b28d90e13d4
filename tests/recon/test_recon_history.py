"""Every recon keeps its own evidence, its alert stays pending until acked, a recon above
``recon.max_mismatches`` halts trading, and ``treasure recon history`` shows accuracy over time
(issue 13, finding 3). Also: the recon codes have one home."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from treasure.recon.model import CODES
from treasure.workspace import Workspace, bundle_dir

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def ran(workspace: Workspace, cli: Cli) -> tuple[Workspace, str]:
    code, out, err = cli("run", "-w", workspace.root, "--json")
    assert code == 0, err
    return workspace, json.loads(out)["run_id"]


def live(ws: Workspace, name: str) -> str:
    return str(ws.fixtures_dir / "live" / f"{name}.jsonl")


def _pending(ws: Workspace, cli: Cli) -> list[dict[str, Any]]:
    code, out, err = cli("ack", "-w", ws.root, "--json")
    assert code == 0, err
    doc = json.loads(out)
    return [a for a in doc["pending"]] if "pending" in doc else [a for a in doc["alerts"] if not a["acked"]]


def test_a_clean_recon_after_a_halting_one_keeps_its_evidence_alert_and_halt(ran, cli) -> None:
    ws, run_id = ran
    code, out, err = cli("recon", run_id, "--live", live(ws, "threshold_over"), "-w", ws.root, "--json")
    assert code == 3, err
    first = json.loads(out)
    code, out, err = cli("recon", run_id, "-w", ws.root, "--json")
    assert code == 0, err
    second = json.loads(out)
    assert first["recon_id"] != second["recon_id"] and first["recon_id"].startswith(f"recon-{run_id}-")

    # each recon keeps its own report and log
    for doc, status in ((first, "halted"), (second, "clean")):
        report = json.loads((ws.root / doc["report_path"]).read_text())
        assert report["status"] == status and report["recon_run_id"] == doc["recon_id"]
        assert doc["report_path"] == f"reports/recon/{doc['recon_id']}/recon_report.json"
        assert (ws.root / doc["event_log"]).is_file() and doc["event_log"].endswith(f"run_{doc['recon_id']}.jsonl")
    # the latest copies are the clean one, paired with its recon id
    latest = json.loads((ws.reports_dir / "recon_report.json").read_text())
    assert latest["recon_run_id"] == second["recon_id"] and latest["status"] == "clean"

    # the CRITICAL alert survives the clean recon
    pending = _pending(ws, cli)
    recon_alerts = [a for a in pending if a["id"] == first["escalation"]["alert_id"]]
    assert recon_alerts and recon_alerts[0]["level"] == "CRITICAL" and first["recon_id"] in recon_alerts[0]["title"]
    code, out, _ = cli("checklist", "pre", "-w", ws.root)
    assert code == 2 and "pending" in out.lower()

    # the emergency flag is set with the reason, and the next run halts
    flag = json.loads(ws.emergency_flag.read_text())
    assert first["recon_id"] in flag["reason"] and "max_mismatches 10" in flag["reason"]
    code, out, err = cli("run", "-w", ws.root, "--seed", "11", "--json")
    assert code == 3, (out, err)

    # acking is the only way out of pending
    code, _, err = cli("ack", first["escalation"]["alert_id"], "-w", ws.root)
    assert code == 0, err
    assert first["escalation"]["alert_id"] not in [a["id"] for a in _pending(ws, cli)]


def test_history_shows_accuracy_over_time(ran, cli) -> None:
    ws, run_id = ran
    for name in ("price_mismatch", "clean", "fee_mismatch", "clean"):
        cli("recon", run_id, "--live", live(ws, name), "-w", ws.root)
    code, out, err = cli("recon", "history", "-w", ws.root, "--json")
    assert code == 0, err
    doc = json.loads(out)
    entries = doc["entries"]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert [e["status"] for e in entries] == ["mismatches", "clean", "mismatches", "clean"]
    assert entries[0]["summary"]["PRICE_MISMATCH"] == 3 and entries[2]["summary"]["FEE_MISMATCH"] == 3
    assert entries[0]["match_rate"] == round(entries[0]["matched"] / entries[0]["orders_compared"], 6) < 1
    assert entries[1]["match_rate"] == 1.0 and entries[1]["recon_id"] == entries[3]["recon_id"]  # same inputs
    assert all(e["run_id"] == run_id and e["report_present"] for e in entries)
    assert doc["summary"]["recons"] == 4 and doc["summary"]["summary"]["PRICE_MISMATCH"] == 3
    code, out, _ = cli("recon", "history", "-w", ws.root, "--last", "2")
    assert code == 0 and "2 reconciliation(s)" in out and "mean match rate 99.44%, worst 98.89%" in out
    assert out.count(f"recon-{run_id}-") == 2


def test_the_same_inputs_give_byte_identical_evidence(ran, cli) -> None:
    ws, run_id = ran
    _, out, _ = cli("recon", run_id, "--live", live(ws, "missing_fill"), "-w", ws.root, "--json")
    doc = json.loads(out)
    report, log = ws.root / doc["report_path"], ws.root / doc["event_log"]
    before = report.read_bytes(), log.read_bytes()
    _, out, _ = cli("recon", run_id, "--live", live(ws, "missing_fill"), "-w", ws.root, "--json")
    again = json.loads(out)
    assert again["recon_id"] == doc["recon_id"] and again["seq"] == doc["seq"] + 1
    assert (report.read_bytes(), log.read_bytes()) == before
    assert b'"time"' not in before[0] and b"seq" not in before[0]


def test_history_survives_a_torn_line_and_reports_a_bad_one(ran, cli) -> None:
    ws, run_id = ran
    cli("recon", run_id, "-w", ws.root)
    path = ws.reports_dir / "recon" / "history.jsonl"
    with path.open("ab") as handle:
        handle.write(b'{"seq": 2, "recon_id": "rec')  # a writer killed mid-append
    cli("recon", run_id, "--live", live(ws, "fee_mismatch"), "-w", ws.root)
    code, out, _ = cli("recon", "history", "-w", ws.root, "--json")
    doc = json.loads(out)
    assert code == 0 and [e["seq"] for e in doc["entries"]] == [1, 2]
    assert doc["problems"] == ["reports/recon/history.jsonl:2: not valid JSON (line skipped)"]


def test_history_of_an_empty_workspace_and_bad_arguments(workspace: Workspace, cli) -> None:
    code, out, _ = cli("recon", "history", "-w", workspace.root)
    assert code == 0 and "no reconciliations yet" in out
    code, _, err = cli("recon", "history", "--last", "0", "-w", workspace.root)
    assert code == 2 and "error[CLI_VALUE]" in err
    code, _, err = cli("recon", "record", "-w", workspace.root)
    assert code == 2 and "error[CLI_USAGE]" in err


# one home for the codes ---------------------------------------------------------------------------
def _enums(node: Any) -> list[list[str]]:
    found: list[list[str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("enum", "required") and isinstance(value, list) and "PRICE_MISMATCH" in value:
                found.append(value)
            found += _enums(value)
    elif isinstance(node, list):
        for value in node:
            found += _enums(value)
    return found


def test_recon_codes_have_one_home() -> None:
    """treasure.recon.model.CODES is the only definition in the code; the contracts in truth/ list
    exactly those codes (a schema is a published copy, checked here)."""
    import treasure

    root = Path(treasure.__file__).parent
    definers = []
    for path in sorted(Path(root).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if {"PRICE_MISMATCH", "FEE_MISMATCH"} <= values:
                    definers.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert definers == ["treasure/recon/model.py:20"], definers
    truth = bundle_dir() / "truth"
    for name in ("recon_report.schema.json", "events/recon_mismatch.schema.json",
                 "events/recon_completed.schema.json"):
        enums = _enums(json.loads((truth / name).read_text()))
        assert enums and all(sorted(e) == sorted(CODES) for e in enums), name
