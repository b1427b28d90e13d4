"""``treasure verify`` end to end, in a workspace made by ``treasure init`` outside the repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from treasure.workspace import Workspace, init_workspace


def verify(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "treasure", "verify", "--workspace", str(ws.root), *args],
                          capture_output=True, text=True, cwd=ws.root.parent, timeout=300)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def test_verify_passes_and_prints_the_gate_report_as_json(ws):
    done = verify(ws, "e2", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "passed" and report["selected"] == ["e2"]
    assert [g["name"] for g in report["gates"]] == ["e2"]
    # --json prints this session's view; gates.json is every gate's latest state (from the history)
    latest = json.loads((ws.evidence_dir / "gates.json").read_text())
    assert {g["name"]: g["status"] for g in latest["gates"]}["e2"] == "passed"
    assert "treasure gates" in done.stderr  # pytest's own output goes to stderr with --json
    assert not list(ws.logs_dir.glob("*.jsonl")), "gates run the engine in a temporary copy"


def test_verify_fails_with_exit_2_when_a_gate_fails(ws):
    csv = ws.fixtures_dir / "data" / "default_bars.csv"
    csv.write_bytes(csv.read_bytes() + b"\n")
    done = verify(ws, "e2")
    assert done.returncode == 2
    assert "treasure verify: FAILED: e2 (failed)" in done.stdout
    assert "does not match spec/ssot.json field dataset.sha256" in done.stdout


def test_verify_refuses_an_unknown_gate(ws):
    done = verify(ws, "e3", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["code"] == "GATES_USAGE"
    assert "unknown gate(s): e3" in done.stderr
