"""``treasure recon`` end to end on the default workspace: reports, RECON log, exit codes, errors."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from treasure.contracts import Contracts
from treasure.errors import TreasureError
from treasure.engine import RunRequest, run
from treasure.eventlog import read_events, verify_log
from treasure.recon import recon_id, recon_run_id, run_recon
from treasure.workspace import Workspace, init_workspace


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str]:
    """A fresh default workspace with one default run (shared: recon never changes the run)."""
    ws = init_workspace(tmp_path_factory.mktemp("recon") / "ws")
    result = run(RunRequest(workspace=ws))
    assert result.status == "complete"
    return ws, result.run_id


@pytest.fixture(scope="module")
def manifest(ran: tuple[Workspace, str]) -> dict[str, Any]:
    ws, _ = ran
    return json.loads((ws.fixtures_dir / "live" / "manifest.json").read_text())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def live(ws: Workspace, name: str) -> str:
    return str(ws.fixtures_dir / "live" / name)


def test_clean_default_session(ran, cli) -> None:
    ws, run_id = ran
    code, out, err = cli("recon", run_id, "--workspace", ws.root)
    assert code == 0, err
    assert "treasure recon: CLEAN" in out and "fixtures/live/clean.jsonl" in out
    per_run = ws.run_reports(run_id) / "recon_report.json"
    latest = ws.reports_dir / "recon_report.json"
    assert per_run.read_bytes() == latest.read_bytes()
    report = json.loads(latest.read_text())
    own = ws.reports_dir / "recon" / report["recon_run_id"] / "recon_report.json"
    assert own.read_bytes() == latest.read_bytes(), "the latest copies are copies of the recon's own report"
    Contracts(ws.truth_dir).validate("recon_report", report)
    assert report["status"] == "clean" and report["mismatches"] == [] and report["matched"] == report["run"]["orders"]
    recon = {k: v for k, v in json.loads(ws.ssot_path.read_text())["recon"].items() if k != "live_fixture"}
    assert report["tolerances"] == recon | {"max_mismatches": 10}
    events = list(read_events(ws.event_log(report["recon_run_id"])))
    assert [e["event_type"] for e in events] == ["recon_started", "recon_completed"]
    assert report["event_log"] == f"logs/events/run_{report['recon_run_id']}.jsonl"
    assert events[0]["payload"]["live_sha256"] == report["live"]["sha256"]


def test_halt_above_threshold_exit_3_and_critical_event(ran, cli, manifest) -> None:
    ws, run_id = ran
    code, out, _ = cli("recon", run_id, "--workspace", ws.root, "--live", live(ws, "threshold_over.jsonl"))
    assert code == 3 and "HALTED (11 mismatched orders > 10)" in out
    log = ws.event_log(json.loads((ws.reports_dir / "recon_report.json").read_text())["recon_run_id"])
    summary = verify_log(log, Contracts(ws.truth_dir))
    assert summary.by_type["recon_mismatch"] == 11 and summary.by_type["halt"] == 1
    halt = next(e for e in read_events(log) if e["event_type"] == "halt")
    assert (halt["category"], halt["level"], halt["payload"]["reason"]) == ("RECON", "CRITICAL", "recon_mismatch_threshold")
    code, out, _ = cli("recon", run_id, "--workspace", ws.root, "--live", live(ws, "threshold_at.jsonl"))
    assert code == 0 and "10 MISMATCHED ORDER(S)" in out
    at = ws.event_log(json.loads((ws.reports_dir / "recon_report.json").read_text())["recon_run_id"])
    assert at != log and "halt" not in {e["event_type"] for e in read_events(at)}
    assert verify_log(log, Contracts(ws.truth_dir)).by_type["halt"] == 1, "a later recon keeps the earlier one's log"


def test_strict_and_json(ran, cli) -> None:
    ws, run_id = ran
    code, out, _ = cli("recon", run_id, "-w", ws.root, "--live", live(ws, "price_mismatch.jsonl"), "--strict", "--json")
    doc = json.loads(out)
    assert code == 2 and doc["exit_code"] == 2
    assert doc["report"]["summary"] == {"MISSING_FILL": 0, "ORDER_STATE_DRIFT": 0, "PRICE_MISMATCH": 3, "FEE_MISMATCH": 0}
    assert doc["event_log"] == f"logs/events/run_{doc['recon_id']}.jsonl" and doc["recon_id"].startswith("recon-")
    code, _, _ = cli("recon", run_id, "-w", ws.root, "--live", live(ws, "clean.jsonl"), "--strict")
    assert code == 0


def test_deterministic_and_leaves_the_run_untouched(ran) -> None:
    ws, run_id = ran
    before = [sha(p) for p in ws.log_parts(run_id)]
    outputs = []
    for _ in range(2):
        outcome = run_recon(ws, run_id, live_path=Path(live(ws, "missing_fill.jsonl")), durable=False)
        outputs.append((outcome.report_path.read_bytes(), outcome.event_log.read_bytes()))
    assert outputs[0] == outputs[1]
    assert [sha(p) for p in ws.log_parts(run_id)] == before
    assert not list(ws.logs_dir.glob(".*.tmp"))


def test_ssot_live_fixture_and_tolerances(ran, manifest) -> None:
    ws, run_id = ran
    ssot = json.loads(ws.ssot_path.read_text())
    ssot["recon"]["live_fixture"] = "fixtures/live/fee_mismatch.jsonl"
    path = ws.spec_dir / "ssot_fee.json"
    path.write_text(json.dumps(ssot))
    outcome = run_recon(ws, run_id, ssot_path=path, durable=False)
    assert outcome.report["live"]["path"] == "fixtures/live/fee_mismatch.jsonl"
    assert outcome.report["summary"]["FEE_MISMATCH"] == 3
    ssot["recon"]["fee_tolerance_abs_usd"] = 100.0
    path.write_text(json.dumps(ssot))
    assert run_recon(ws, run_id, ssot_path=path, durable=False).report["mismatches"] == []
    ssot["recon"]["live_fixture"] = "../outside.jsonl"
    path.write_text(json.dumps(ssot))
    with pytest.raises(TreasureError) as info:
        run_recon(ws, run_id, ssot_path=path)
    assert info.value.code == "PATH_ESCAPE" and info.value.field == "recon.live_fixture"


def test_bad_inputs_are_coded_and_write_nothing(ran, cli, tmp_path) -> None:
    ws, run_id = ran
    report = ws.run_reports(run_id) / "recon_report.json"
    run_recon(ws, run_id, durable=False)
    stamp = report.read_bytes()
    broken = tmp_path / "broken.jsonl"
    lines = Path(live(ws, "clean.jsonl")).read_bytes().splitlines(keepends=True)
    broken.write_bytes(b"".join(lines[:2]) + b'{"type": "fill", \n' + b"".join(lines[3:]))
    code, _, err = cli("recon", run_id, "-w", ws.root, "--live", broken)
    assert code == 2 and "error[LIVE_JSON]" in err and "broken.jsonl:3" in err and "hint:" in err
    other = tmp_path / "other.jsonl"
    other.write_bytes(lines[0].replace(b"SYNTH-USD", b"OTHER-USD") + b"".join(lines[1:]))
    code, _, err = cli("recon", run_id, "-w", ws.root, "--live", other)
    assert code == 2 and "error[LIVE_SYMBOL]" in err
    code, _, err = cli("recon", "no-such-run", "-w", ws.root)
    assert code == 2 and "error[RUN_UNKNOWN]" in err
    code, _, err = cli("recon", recon_run_id(run_id), "-w", ws.root)
    assert code == 2 and "error[RECON_OF_RECON]" in err
    code, _, err = cli("recon", run_id, "-w", ws.root, "--live", tmp_path / "absent.jsonl")
    assert code == 2 and "error[LIVE_MISSING]" in err
    assert report.read_bytes() == stamp, "bad input must not touch the evidence"


def test_a_tampered_run_log_is_refused(ran, cli) -> None:
    ws, run_id = ran
    copy = ws.event_log("tampered")
    text = ws.event_log(run_id).read_text().replace('"fee":', '"fee":1', 1)
    copy.write_text(text.replace(f'"run_id":"{run_id}"', '"run_id":"tampered"'))
    code, _, err = cli("recon", "tampered", "-w", ws.root)
    assert code == 2 and ("error[EVENTS_CHAIN]" in err or "error[EVENTS_SCHEMA]" in err)
    assert not (ws.run_reports("tampered") / "recon_report.json").exists()
    copy.unlink()


def test_recon_run_id_stays_a_valid_run_id() -> None:
    from treasure.workspace import check_run_id

    assert recon_run_id("abc") == "recon-abc"
    long = "x" * 64
    shortened = recon_run_id(long)
    assert len(shortened) == 64 and check_run_id(shortened) and shortened != recon_run_id("x" * 63 + "y")


def test_recon_id_is_a_valid_run_id_and_a_digest_of_the_inputs() -> None:
    from treasure.workspace import check_run_id

    base = {"run_last_hash": "a" * 64, "live_sha256": "b" * 64, "tolerances": {"max_mismatches": 10}}
    one = recon_id("run-1", **base)
    assert one.startswith("recon-run-1-") and check_run_id(one) and one == recon_id("run-1", **base)
    assert len({one, recon_id("run-2", **base), recon_id("run-1", **{**base, "live_sha256": "c" * 64}),
                recon_id("run-1", **{**base, "tolerances": {"max_mismatches": 9}})}) == 4
    longest = recon_id("x" * 64, **base)
    assert len(longest) == 64 and check_run_id(longest) and longest != recon_id("x" * 63 + "y", **base)


def test_a_rotated_run_log_is_read_as_one(ran, tmp_path) -> None:
    ws, run_id = ran
    other = Workspace(tmp_path / "ws2")
    shutil.copytree(ws.root / "spec", other.root / "spec")
    shutil.copytree(ws.root / "truth", other.root / "truth")
    shutil.copytree(ws.root / "fixtures", other.root / "fixtures")
    other.logs_dir.mkdir(parents=True)
    lines = ws.event_log(run_id).read_bytes().splitlines(keepends=True)
    (other.logs_dir / f"run_{run_id}.jsonl.1").write_bytes(b"".join(lines[:500]))
    other.event_log(run_id).write_bytes(b"".join(lines[500:]))
    outcome = run_recon(other, run_id, durable=False)
    assert outcome.report["status"] == "clean" and len(outcome.report["run"]["event_log"]) == 2
