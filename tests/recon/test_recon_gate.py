"""The dryrun-live gate passes on the default workspace and fails, saying why, on broken inputs."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from pytest_treasure.gates import GATES_DIR

from treasure.recon.model import ReconResult
from treasure.workspace import Workspace, bundle_dir, init_workspace

pytest_plugins = ["pytester"]

GATE = GATES_DIR / "test_dryrun_live.py"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def run_gate(pytester: pytest.Pytester, ws: Workspace, test: str = "") -> pytest.RunResult:
    """Run the gate module (or one of its tests) against ``ws`` in an inner pytest session."""
    pytester.makepyfile(gate_dryrun_live_under_test=GATE.read_text())
    target = "gate_dryrun_live_under_test.py" + (f"::{test}" if test else "")
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              "--treasure-workspace", str(ws.root), target)


def live(ws: Workspace, name: str) -> Path:
    return ws.fixtures_dir / "live" / name


def test_passes_on_the_default_workspace(pytester, ws) -> None:
    result = run_gate(pytester, ws)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*treasure gates*", "dryrun-live * passed *"])
    assert not list(ws.logs_dir.glob("*.jsonl")) and not (ws.reports_dir / "recon_report.json").exists(), \
        "the gate reconciles in a temporary copy, never in the workspace"


def test_fails_on_wrong_declared_codes_a_tampered_clean_session_and_a_broken_escalation(pytester, ws,
                                                                                       monkeypatch) -> None:
    manifest = json.loads(live(ws, "manifest.json").read_text())
    price = next(s for s in manifest["sessions"] if s["file"] == "price_mismatch.jsonl")
    price["mismatches"][0]["code"] = "FEE_MISMATCH"
    live(ws, "manifest.json").write_text(json.dumps(manifest, indent=2))
    lines = live(ws, "clean.jsonl").read_bytes().splitlines(keepends=True)
    index, fill = next((i, orjson.loads(line)) for i, line in enumerate(lines) if b'"type":"fill"' in line)
    fill["price"] = round(fill["price"] * 1.01, 8)  # the fee no longer matches the notional either
    lines[index] = orjson.dumps(fill) + b"\n"
    live(ws, "clean.jsonl").write_bytes(b"".join(lines))
    monkeypatch.setattr(ReconResult, "halted",  # a recon that halts at the threshold instead of above it
                        property(lambda self: self.mismatched_orders >= self.tolerances.max_mismatches))

    result = run_gate(pytester, ws)
    result.assert_outcomes(failed=4, passed=1)  # the self-test on the packaged sessions sees the broken halt
    assert "threshold_at.jsonl: 10 mismatched orders, max_mismatches 10: halt True, declared False" in \
        result.stdout.str()
    out = result.stdout.str()
    assert "clean session clean.jsonl: 2 mismatch(es) on 1 order(s), expected none" in out
    assert f"{fill['order_id']} PRICE_MISMATCH: live VWAP" in out and f"{fill['order_id']} FEE_MISMATCH" in out
    assert "documents differ" in out and "full diff: evidence/diffs/dryrun-live-sessions.txt" in out
    diff = (ws.evidence_dir / "diffs" / "dryrun-live-sessions.txt").read_text()
    assert "clean.jsonl" in diff and "price_mismatch.jsonl" in diff and "FEE_MISMATCH" in diff
    assert ("threshold_at.jsonl: 10 mismatched orders, max_mismatches 10: halt expected False, got halt events 1, "
            "exit 3") in out
    result.stdout.fnmatch_lines(["dryrun-live * FAILED *"])


def test_errors_naming_the_line_of_a_malformed_session(pytester, ws) -> None:
    lines = live(ws, "fee_mismatch.jsonl").read_bytes().splitlines(keepends=True)
    lines[6] = b'{"type": "fill", "order_id": \n'
    live(ws, "fee_mismatch.jsonl").write_bytes(b"".join(lines))
    result = run_gate(pytester, ws, "test_clean_session_reconciles_with_zero_mismatches")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "recon of fee_mismatch.jsonl refused its input" in out
    assert "error[LIVE_JSON]" in out and "fee_mismatch.jsonl:7" in out


# a workspace on its own data (issue 12, finding 7) -------------------------------------------------
def own_data_workspace(ws: Workspace) -> Workspace:
    """``ws`` with a different synthetic dataset pinned in its SSOT (what `data import` leaves)."""
    from treasure.data.synth import bars_to_csv, generate_bars
    from treasure.workspace import pin_dataset

    bars = generate_bars(n_bars=3000, seed=7, start_price=2500.0)
    pin_dataset(ws, bars_to_csv(bars), "fixtures/data/own_bars.csv")
    return ws


def test_fails_with_a_coded_hint_on_a_workspace_without_sessions_for_its_run(pytester, ws) -> None:
    own_data_workspace(ws)
    result = run_gate(pytester, ws)
    out = result.stdout.str()
    result.assert_outcomes(errors=4, passed=1)  # the self-test on the packaged sessions still passes
    assert "error[RECON_NO_SESSIONS]: no recorded live sessions for run" in out
    assert "hint: `treasure run` (if not made yet), then `treasure recon record " in out
    assert "LIVE_SYMBOL" not in out and "clean.jsonl: " not in out, "never the sessions of another dataset"


def test_passes_on_a_workspace_with_its_own_data_after_recon_record(pytester, ws, cli) -> None:
    own_data_workspace(ws)
    code, out, err = cli("run", "-w", ws.root, "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, out, err = cli("recon", "record", run_id, "-w", ws.root)
    assert code == 0, err
    folder = ws.fixtures_dir / "live" / "runs" / run_id
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["run"]["run_id"] == run_id and manifest["run"]["symbol"]
    assert {s["file"] for s in manifest["sessions"]} >= {"clean.jsonl", "price_mismatch.jsonl", "fee_mismatch.jsonl",
                                                        "missing_fill.jsonl", "order_state_drift.jsonl"}
    # the packaged default sessions are untouched and are not this run's
    assert (ws.fixtures_dir / "live" / "clean.jsonl").read_bytes() == (bundle_dir() / "fixtures" / "live" /
                                                                       "clean.jsonl").read_bytes()

    # without --live, `treasure recon RUN_ID` now reconciles against the run's own clean session
    code, out, err = cli("recon", run_id, "-w", ws.root, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["report"]["status"] == "clean" and doc["report"]["live"]["path"] == \
        f"fixtures/live/runs/{run_id}/clean.jsonl"

    result = run_gate(pytester, ws)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["dryrun-live * passed *"])
