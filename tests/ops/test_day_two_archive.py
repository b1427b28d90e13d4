"""Issue 13 finding 1: the end-of-day archive must not break the next day.

Reproduced as an operator would, in a fresh ``treasure init`` workspace: ``treasure run &&
treasure checklist eod && treasure verify`` failed e2 with "no event log for run ... in
logs/events", and ``treasure halt --reason drill; treasure resume`` then refused (rc 2). An
archived log is found by :func:`treasure.logfiles.locate` and verified from its archive; a
command that truly needs the file on disk says ``treasure archive --restore RUN``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from helpers.ops_support import approve
from treasure.workspace import Workspace

CLI = Callable[..., tuple[int, str, str]]


@pytest.fixture
def archived(tmp_path: Path, cli: CLI) -> tuple[Workspace, str]:
    """A fresh workspace after `treasure run` and `treasure checklist eod` (which archives)."""
    root = tmp_path / "ws"
    assert cli("init", root)[0] == 0
    ws = Workspace.at(root)
    approve(ws)
    code, out, err = cli("run", "--workspace", root, "--quiet")
    assert code == 0, out + err
    run_id = json.loads((ws.reports_dir / "court_report.json").read_text())["run_id"]
    code, out, err = cli("checklist", "eod", "--workspace", root)
    assert code == 0, out + err
    assert not ws.event_log(run_id).exists() and list(ws.archive_dir.glob("events-*.tar.gz")), \
        "checklist eod should have archived the finished run's log"
    return ws, run_id


def test_e2_passes_the_day_after_the_archive(archived: tuple[Workspace, str], cli: CLI) -> None:
    ws, _ = archived
    code, out, err = cli("verify", "e2", "--workspace", ws.root)
    gates = json.loads((ws.evidence_dir / "gates.json").read_text())
    assert "no event log for run" not in out + err
    assert code == 0 and _status(gates, "e2") == "passed", out + err


def test_halt_and_resume_after_the_archive(archived: tuple[Workspace, str], cli: CLI) -> None:
    ws, _ = archived
    assert cli("halt", "--reason", "drill", "--workspace", ws.root)[0] == 0
    code, out, err = cli("resume", "--workspace", ws.root)
    assert code == 0, out + err
    assert not ws.emergency_flag.exists()


def test_diagnose_events_and_replay_read_the_archived_log(archived: tuple[Workspace, str], cli: CLI) -> None:
    ws, run_id = archived
    code, out, err = cli("diagnose", run_id, "--workspace", ws.root, "--json")
    assert code == 0, out + err
    log = json.loads(out)["log"]
    assert log["archived"] is True and log["integrity"]["ok"] is True, log
    code, out, err = cli("events", run_id, "--count", "--workspace", ws.root)
    assert code == 0 and int(out) > 100 and "does not verify" not in err
    from treasure.replay import replay

    assert replay(ws, run_id).identical


def test_a_command_that_needs_the_file_on_disk_names_the_restore(archived: tuple[Workspace, str], cli: CLI) -> None:
    ws, run_id = archived
    for command in (("db", "ingest", "--run", run_id), ("recon", run_id)):
        code, out, err = cli(*command, "--workspace", ws.root)
        assert code == 2 and f"treasure archive --restore {run_id}" in err, (command, err)
    code, out, err = cli("archive", "--restore", run_id, "--workspace", ws.root)
    assert code == 0 and ws.event_log(run_id).exists(), out + err
    code, out, err = cli("recon", run_id, "--workspace", ws.root)
    assert "archive --restore" not in err


def _status(gates: Any, name: str) -> str | None:
    """A gate's status in evidence/gates.json, whatever its layout (a list or a mapping of gates)."""
    found = gates.get("gates") if isinstance(gates, dict) else None
    if isinstance(found, dict):
        entry = found.get(name)
        return entry.get("status") if isinstance(entry, dict) else entry
    for entry in found or []:
        if isinstance(entry, dict) and entry.get("name", entry.get("gate")) == name:
            return entry.get("status")
    return None
