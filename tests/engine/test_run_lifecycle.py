"""A file-evidence run's life (issue 17 items 2 and 6): it holds its run lock from before its log
is opened until its evidence is committed, and ``--overwrite`` writes the new run aside and swaps
it in at the commit point, so a run killed mid-overwrite leaves the previous complete run intact.

Before: two ``treasure run`` of one id at once both ended COMPLETE (the log of one, the reports of
the other), and ``--overwrite`` deleted the previous run first: in 5 of 5 kills during an
overwrite the old run was gone and ``reports/court_report.json`` named a run with no report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from treasure import anchor
from treasure.file_locks import run_lock
from treasure.workspace import Workspace, init_workspace

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")

RUN_ID = "ow"


@pytest.fixture(autouse=True)
def no_signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("TREASURE_SIGNING_KEY", raising=False)
    monkeypatch.delenv("TREASURE_VERIFY_KEY", raising=False)


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lifecycle") / "ws"
    init_workspace(root)
    done = _treasure(root, "run", "--workspace", str(root), "--run-id", RUN_ID, "--quiet",
                     env={"XDG_CONFIG_HOME": str(root.parent / "config")})
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def ws(one_run: Path, tmp_path: Path) -> Workspace:
    import shutil

    shutil.copytree(one_run, tmp_path / "ws", symlinks=True)
    return Workspace.at(tmp_path / "ws")


def _treasure(root: Path, *args: str, faults: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    environ.pop("TREASURE_FAULTS", None)
    environ.update(env or {})
    environ.setdefault("PYTHONHASHSEED", "0")
    command = [sys.executable, "-m", "treasure", *(("faultrun",) if faults else ()), *args]
    if faults:
        environ["TREASURE_FAULTS"] = faults
    return subprocess.run(command, cwd=root, env=environ, capture_output=True, text=True, timeout=300)


def _evidence(ws: Workspace) -> dict[str, bytes]:
    """The run's log and reports and the latest copies, by workspace-relative path."""
    paths = [*ws.log_parts(RUN_ID), *sorted(ws.run_reports(RUN_ID).iterdir()),
             ws.reports_dir / "court_report.json", ws.reports_dir / "eqs_report.json"]
    return {ws.relative(path): path.read_bytes() for path in paths}


@pytest.mark.parametrize("fault", ["kill@bar:300", "kill@event_write:2", "kill@report_write:1", "kill@replace:3"])
def test_a_kill_mid_overwrite_leaves_the_previous_run_intact(ws: Workspace, fault: str) -> None:
    before = _evidence(ws)
    assert anchor.verify_run(ws.root, RUN_ID, None) == []
    killed = _treasure(ws.root, "run", "--workspace", str(ws.root), "--run-id", RUN_ID, "--overwrite", "--quiet",
                       faults=fault)
    assert killed.returncode == -9, (fault, killed.returncode, killed.stderr)
    assert _evidence(ws) == before
    assert anchor.verify_run(ws.root, RUN_ID, None) == []
    assert (ws.root / "logs" / ".aside" / f"run_{RUN_ID}.jsonl").is_file()  # the new run's prefix, aside

    done = _treasure(ws.root, "run", "--workspace", str(ws.root), "--run-id", RUN_ID, "--overwrite", "--quiet")
    assert done.returncode == 0, done.stderr
    after = _evidence(ws)
    assert after[f"logs/events/run_{RUN_ID}.jsonl"] == before[f"logs/events/run_{RUN_ID}.jsonl"]
    assert after[f"reports/runs/{RUN_ID}/equity.npy"] == before[f"reports/runs/{RUN_ID}/equity.npy"]
    assert anchor.verify_run(ws.root, RUN_ID, None) == []
    assert not (ws.root / "logs" / ".aside").exists() and not (ws.root / "reports" / ".aside").exists()


def test_overwrite_replaces_rotated_parts_of_the_previous_run(ws: Workspace) -> None:
    from treasure.ops.rotate import rotate

    rotate(ws, 2_000, [RUN_ID])
    assert len(ws.log_parts(RUN_ID)) > 1
    done = _treasure(ws.root, "run", "--workspace", str(ws.root), "--run-id", RUN_ID, "--overwrite", "--quiet")
    assert done.returncode == 0, done.stderr
    assert ws.log_parts(RUN_ID) == [ws.event_log(RUN_ID)]
    assert anchor.verify_run(ws.root, RUN_ID, None) == []


def test_a_second_writer_of_the_same_id_gets_run_in_progress(ws: Workspace) -> None:
    before = _evidence(ws)
    with run_lock(ws, RUN_ID):
        done = _treasure(ws.root, "run", "--workspace", str(ws.root), "--run-id", RUN_ID, "--overwrite")
    assert done.returncode == 2, done.stderr
    assert "RUN_IN_PROGRESS" in done.stdout + done.stderr and f"pid {os.getpid()}" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert _evidence(ws) == before


def test_an_in_memory_run_takes_no_lock(ws: Workspace) -> None:
    from treasure.engine import RunRequest, run

    with run_lock(ws, RUN_ID):
        result = run(RunRequest(workspace=ws, run_id=RUN_ID, evidence="memory"))
    assert result.exit_code == 0 and result.log_lines


def test_the_lock_is_released_after_the_run(ws: Workspace) -> None:
    from treasure.engine import RunRequest, run
    from treasure.file_locks import run_lock_holder

    assert run(RunRequest(workspace=ws, run_id="second")).exit_code == 0
    assert run_lock_holder(ws, "second") is None
