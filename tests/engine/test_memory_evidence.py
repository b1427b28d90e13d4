"""In-memory evidence (``RunRequest(evidence="memory")``): the same bytes as the files, none written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from treasure.engine import RunRequest, run
from treasure.errors import RunError
from treasure.eventlog import verify_log, verify_log_bytes
from treasure.contracts import Contracts
from treasure.errors import EventLogError
from treasure.workspace import Workspace


def _files_evidence(ws: Workspace, run_id: str) -> tuple[bytes, dict[str, bytes], bytes]:
    report_dir = ws.run_reports(run_id)
    return (ws.event_log(run_id).read_bytes(),
            {name: (report_dir / name).read_bytes() for name in ("court_report.json", "eqs_report.json")},
            (report_dir / "equity.npy").read_bytes())


def _without_timing(raw: bytes) -> dict:
    doc = orjson.loads(raw)
    doc.pop("timing", None)
    return doc


def test_memory_run_returns_the_bytes_the_files_hold_and_writes_nothing(workspace: Workspace) -> None:
    on_disk = run(RunRequest(workspace=workspace, run_id="disk"))
    log, reports, equity = _files_evidence(workspace, "disk")
    before = sorted(p.relative_to(workspace.root) for p in workspace.root.rglob("*"))
    held = run(RunRequest(workspace=workspace, run_id="disk", evidence="memory"))  # no RUN_EXISTS: nothing written
    after = sorted(p.relative_to(workspace.root) for p in workspace.root.rglob("*"))
    assert after == before
    assert (held.status, held.exit_code) == (on_disk.status, on_disk.exit_code)
    assert held.log_bytes == log
    assert held.equity_bytes == equity
    assert held.report_bytes is not None
    assert held.report_bytes["eqs_report.json"] == reports["eqs_report.json"]
    assert _without_timing(held.report_bytes["court_report.json"]) == _without_timing(reports["court_report.json"])
    assert held.court["evidence"]["equity_curve_sha256"] == hashlib.sha256(equity).hexdigest()


def test_memory_log_verifies_like_the_file(workspace: Workspace) -> None:
    held = run(RunRequest(workspace=workspace, run_id="mem", evidence="memory"))
    contracts = Contracts(workspace.truth_dir)
    summary = verify_log_bytes(held.log_bytes, contracts)
    assert summary.events == held.court["events"]["total"]
    lines = held.log_bytes.split(b"\n")
    lines[3] = lines[3].replace(b'"level":"INFO"', b'"level":"WARN"', 1)
    with pytest.raises(EventLogError) as caught:
        verify_log_bytes(b"\n".join(lines), contracts)
    assert caught.value.code == "EVENTS_CHAIN" and caught.value.line == 4
    with pytest.raises(EventLogError) as torn:
        verify_log_bytes(held.log_bytes[:-5], contracts)
    assert torn.value.code == "EVENTS_TRUNCATED"


def test_unknown_evidence_mode_is_refused(workspace: Workspace) -> None:
    with pytest.raises(RunError) as caught:
        run(RunRequest(workspace=workspace, evidence="nowhere"))
    assert caught.value.code == "EVIDENCE_MODE_INVALID"
    assert not any(Path(workspace.root, "logs", "events").glob("*.jsonl"))


def test_the_approval_memo_sees_every_change_the_lock_check_sees(workspace: Workspace) -> None:
    from treasure.engine.request import _approval_state
    from treasure.approval import approval_state, approve

    calls: list[int] = []

    def counted(ws: Workspace) -> tuple[bool, list[str]]:
        calls.append(1)
        return approval_state(ws)

    approve(workspace)
    assert _approval_state(workspace, counted) == (True, [])
    assert _approval_state(workspace, counted) == (True, []) and len(calls) == 1  # memo
    (workspace.spec_dir / "extra.json").write_text("{}")  # an unlisted file
    assert _approval_state(workspace, counted) == (False, ["spec/extra.json"])
    (workspace.spec_dir / "extra.json").unlink()
    schema = workspace.truth_dir / "event.schema.json"
    schema.write_bytes(schema.read_bytes().replace(b"{", b"{ ", 1))  # an approved file edited
    assert _approval_state(workspace, counted) == (False, ["truth/event.schema.json"])
    assert _approval_state(workspace, counted) == approval_state(workspace)
