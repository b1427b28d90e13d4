"""Issue 17 items 2-3: a run's log is locked for its whole life; rotate and archive respect it.

Before: ``rotate --include-open`` / ``archive --include-open`` during a run renamed or packed the
file under the writer (the run ended COMPLETE with 1,400 events in its court report and 2 on
disk); the only guard was a stat check before the renames (ROTATE_BUSY), a race.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from helpers.ops_support import clean_ws, make_ws, templates  # noqa: F401
from treasure.file_locks import LockBusy, run_lock, run_lock_holder, workspace_log_lock
from treasure.workspace import Workspace


@pytest.fixture
def holder(clean_ws: Workspace) -> Iterator[subprocess.Popen[str]]:
    """Another process holding run ``clean``'s lock (as a running run would) until it is killed."""
    script = textwrap.dedent(f"""
        import sys, time
        from treasure.file_locks import run_lock
        from treasure.workspace import Workspace
        with run_lock(Workspace.at({str(clean_ws.root)!r}), "clean"):
            print("locked", flush=True)
            time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_holder_gets_run_in_progress_naming_the_pid(clean_ws: Workspace, holder) -> None:
    with pytest.raises(LockBusy) as caught:
        with run_lock(clean_ws, "clean"):
            pass
    assert caught.value.code == "RUN_IN_PROGRESS" and caught.value.pid == holder.pid
    assert f"pid {holder.pid}" in caught.value.message
    assert run_lock_holder(clean_ws, "clean") == holder.pid
    holder.kill()
    holder.wait()
    assert run_lock_holder(clean_ws, "clean") is None  # the kernel drops a dead holder's lock
    with run_lock(clean_ws, "clean"):
        pass


def test_rotate_include_open_skips_a_log_being_written(clean_ws: Workspace, holder) -> None:
    from treasure.ops.rotate import rotate

    before = clean_ws.event_log("clean").read_bytes()
    [result] = rotate(clean_ws, 2_000, ["clean"], include_open=True)
    assert result.action == "skipped" and f"pid {holder.pid}" in result.reason
    assert clean_ws.log_parts("clean") == [clean_ws.event_log("clean")]
    assert clean_ws.event_log("clean").read_bytes() == before


def test_archive_include_open_leaves_a_log_being_written(clean_ws: Workspace, holder) -> None:
    from treasure.ops.archive import pack

    result = pack(clean_ws, ["clean"], include_open=True)
    assert result.runs == [] and f"pid {holder.pid}" in result.skipped["clean"]
    assert clean_ws.event_log("clean").exists()


def test_rotate_and_archive_exclude_each_other(clean_ws: Workspace) -> None:
    from treasure.ops.archive import pack
    from treasure.ops.rotate import rotate

    with workspace_log_lock(clean_ws):
        for attempt in (lambda: rotate(clean_ws, 2_000), lambda: pack(clean_ws)):
            with pytest.raises(LockBusy) as caught:
                attempt()
            assert caught.value.code == "LOGS_BUSY" and f"pid {os.getpid()}" in caught.value.message
    assert pack(clean_ws).runs == ["clean"]


def test_the_lock_files_are_outside_the_logs(clean_ws: Workspace) -> None:
    from treasure.logfiles import discover

    with run_lock(clean_ws, "clean"), workspace_log_lock(clean_ws):
        found = discover(clean_ws.logs_dir)
    assert found.ignored == [] and found.strays == []


def test_two_runs_of_the_same_id_at_once(tmp_path: Path) -> None:
    """Issue 17 item 2: the second `treasure run --run-id same` gets RUN_IN_PROGRESS naming the first's pid."""
    from treasure.engine import RunRequest, run
    from treasure.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    script = textwrap.dedent(f"""
        import sys, time
        from treasure.file_locks import run_lock
        from treasure.workspace import Workspace
        with run_lock(Workspace.at({str(ws.root)!r}), "same"):
            print("locked", flush=True)
            time.sleep(120)
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "locked"
        with pytest.raises(LockBusy) as caught:
            run(RunRequest(workspace=ws, run_id="same", overwrite=True))
        assert caught.value.code == "RUN_IN_PROGRESS" and f"pid {first.pid}" in caught.value.message
    finally:
        first.kill()
        first.wait()


def test_rotation_during_a_writer_that_holds_the_lock_loses_nothing(clean_ws: Workspace) -> None:
    """A writer appending under the run lock while `rotate --include-open` runs: every line survives."""
    from treasure.ops.rotate import rotate

    live = clean_ws.event_log("clean")
    lines = live.read_bytes().splitlines(keepends=True)
    live.write_bytes(b"".join(lines[:200]))
    stop = threading.Event()
    started = threading.Event()

    def writer() -> None:
        with run_lock(clean_ws, "clean"):
            started.set()
            with open(live, "ab") as out:
                for line in lines[200:]:
                    out.write(line)
                    out.flush()
                    if stop.is_set():
                        break
                time.sleep(0.2)

    thread = threading.Thread(target=writer)
    thread.start()
    started.wait()
    results = [r for _ in range(5) for r in rotate(clean_ws, 2_000, ["clean"], include_open=True)]
    thread.join()
    assert all(r.action == "skipped" for r in results)
    assert b"".join(p.read_bytes() for p in clean_ws.log_parts("clean")) == b"".join(lines)
