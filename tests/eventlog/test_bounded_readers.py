"""Issue 17: every log reader is bounded in time and memory, and says when what it reads does not verify.

Before: ``read_last_line`` was quadratic (status took 9.7 s on a 16 MB last line, 218 s on 64 MB);
readers followed a log symlinked to /dev/zero or /dev/urandom until MemoryError or forever; no
line length was capped; ``events --tail 999999999999999999999`` raised OverflowError; ``events``
counted a CRLF or tampered log without a word, and a query with no match printed nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.ops_support import clean_ws, make_ws, templates  # noqa: F401
from treasure.errors import EventLogError, TreasureError
from treasure.workspace import Workspace

TIMEOUT = 60  # a reader that follows /dev/zero never comes back: fail instead of hanging


def treasure(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "treasure", *args, "--workspace", str(ws.root)],
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_the_last_line_is_read_in_linear_time(tmp_path: Path) -> None:
    from treasure.logread import MAX_LINE_BYTES, read_last_line

    path = tmp_path / "run_big.jsonl"
    line = b"x" * (MAX_LINE_BYTES - 1024)
    path.write_bytes(b"first\n" + line + b"\n")
    started = time.perf_counter()
    assert read_last_line(path) == line
    assert time.perf_counter() - started < 3.0  # was ~10 s for 16 MB (a pass per 64 kB block)
    path.write_bytes(b"first\n" + line + b"x" * 2048 + b"\n")
    with pytest.raises(EventLogError) as caught:
        read_last_line(path)
    assert caught.value.code == "EVENTS_LINE_TOO_LONG"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "fifo"])
@pytest.mark.parametrize("command", [
    ("status",), ("diagnose", "dev"), ("events", "dev", "--count"), ("db", "ingest", "--run", "dev"),
    ("replay", "dev"),
])
def test_readers_refuse_a_log_that_is_not_a_regular_file(clean_ws: Workspace, device: str,
                                                         command: tuple[str, ...]) -> None:
    log = clean_ws.logs_dir / "run_dev.jsonl"
    if device == "fifo":
        os.mkfifo(log)
    else:
        log.symlink_to(device)
    result = treasure(clean_ws, *command)
    said = result.stdout + result.stderr
    # /dev/* resolve outside the workspace (PATH_ESCAPE); a FIFO inside it is no regular file
    wanted = "EVENTS_NOT_REGULAR" if device == "fifo" else "PATH_ESCAPE"
    assert wanted in said and "Traceback" not in said, result
    if command[0] in ("status", "diagnose"):  # they report the unreadable log among their findings
        assert result.returncode in (0, 1, 3), result
    else:
        assert result.returncode == 2, result


def test_db_ingest_refuses_a_log_symlinked_out_of_the_workspace(clean_ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.jsonl"
    shutil.copy(clean_ws.event_log("clean"), outside)
    (clean_ws.logs_dir / "run_out.jsonl").symlink_to(outside)
    result = treasure(clean_ws, "db", "ingest", "--run", "out", "--no-reports")
    assert result.returncode == 2 and "PATH_ESCAPE" in result.stderr, result


def test_the_events_gate_refuses_a_device(clean_ws: Workspace) -> None:
    from treasure.eventlog import verify_run
    from treasure.logfiles import locate

    os.mkfifo(clean_ws.logs_dir / "run_dev.jsonl")
    with pytest.raises(EventLogError) as caught:
        verify_run(locate(clean_ws, "dev"), None, ws=clean_ws)
    assert caught.value.code == "EVENTS_NOT_REGULAR"
    (clean_ws.logs_dir / "run_zero.jsonl").symlink_to("/dev/zero")
    with pytest.raises(EventLogError) as caught:
        verify_run(locate(clean_ws, "zero"), None, ws=clean_ws)
    assert caught.value.code == "PATH_ESCAPE"


def test_readers_refuse_a_log_symlinked_out_of_the_workspace(clean_ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.jsonl"
    shutil.copy(clean_ws.event_log("clean"), outside)
    (clean_ws.logs_dir / "run_out.jsonl").symlink_to(outside)
    for command in (("events", "out", "--count"), ("diagnose", "out"), ("replay", "out")):
        result = treasure(clean_ws, *command)
        assert "PATH_ESCAPE" in result.stderr + result.stdout, result
        assert result.returncode == (0 if command[0] == "diagnose" else 2), result  # diagnose: a finding


def test_every_reader_caps_the_line_length(clean_ws: Workspace, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    import treasure.logread as logread
    from treasure.eventlog import read_events, verify_log
    from treasure.ops.query import iter_events
    from treasure.store import ingest_log

    log = clean_ws.event_log("clean")
    longest = max(len(line) for line in log.read_bytes().splitlines(keepends=True))
    monkeypatch.setattr(logread, "MAX_LINE_BYTES", longest - 1)
    readers = {
        "verify": lambda: verify_log([log]),
        "read_events": lambda: list(read_events([log])),
        "events": lambda: list(iter_events(clean_ws, "clean")),
        "db ingest": lambda: ingest_log(tmp_path / "x.db", [log], contracts=None),
    }
    for name, read in readers.items():
        with pytest.raises(TreasureError) as caught:
            read()
        assert caught.value.code == "EVENTS_LINE_TOO_LONG", name


def test_huge_head_and_tail_are_coded_errors(clean_ws: Workspace) -> None:
    from treasure.ops.query import iter_events, select

    for option in ({"tail": 999999999999999999999}, {"head": 10**30}, {"tail": -1}):
        with pytest.raises(TreasureError) as caught:
            list(select(iter_events(clean_ws, "clean"), **option))
        assert caught.value.code == "QUERY_INVALID"


@pytest.mark.parametrize("damage, expected", [
    (lambda lines: [line.replace(b"\n", b"\r\n") for line in lines], "line ending was converted"),
    (lambda lines: lines[:5] + [lines[5].replace(b'"level":"INFO"', b'"level":"WARN"')] + lines[6:],
     "the line was edited"),
    (lambda lines: lines[:5] + [b'{"not": "an event"}\n'] + lines[5:], "not an event"),
    (lambda lines: lines[:5] + lines[6:], "a line was deleted"),
])
def test_events_says_when_what_it_reads_does_not_verify(clean_ws: Workspace, cli, damage, expected) -> None:
    log = clean_ws.event_log("clean")
    log.write_bytes(b"".join(damage(log.read_bytes().splitlines(keepends=True))))
    code, out, err = cli("events", "clean", "--count", "--workspace", clean_ws.root)
    assert code == 0 and int(out) > 100
    assert "does not verify" in err and expected in err, err


def test_events_on_an_intact_log_says_nothing_more(clean_ws: Workspace, cli) -> None:
    code, out, err = cli("events", "clean", "--count", "--workspace", clean_ws.root)
    assert code == 0 and err == ""


def test_an_events_query_with_no_match_says_so(clean_ws: Workspace, cli) -> None:
    code, out, err = cli("events", "clean", "--type", "no_such_event", "--workspace", clean_ws.root)
    assert code == 0 and out == ""
    assert "no events of clean match the filters" in err


@pytest.mark.parametrize("device", ["/dev/zero", "fifo"])
def test_recon_live_refuses_a_recording_that_is_not_a_regular_file(clean_ws: Workspace, tmp_path: Path,
                                                                   device: str) -> None:
    if device == "fifo":
        source = clean_ws.fixtures_dir / "live.fifo"
        os.mkfifo(source)
    else:
        source = Path(device)
    result = treasure(clean_ws, "recon", "clean", "--live", str(source))
    assert result.returncode == 2 and "not a regular file" in result.stderr, result
