"""`treasure rotate` and `treasure archive`: the hash chain survives, archives are deterministic."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile

import pytest

from helpers.ops_support import clean_ws, json_out, make_ws, run_cli, templates, write_log  # noqa: F401
from treasure.contracts import Contracts
from treasure.errors import EventLogError
from treasure.eventlog import discover_logs, verify_log
from treasure.ops.archive import MANIFEST_MEMBER, load_archives, pack, verify_archives
from treasure.ops.query import iter_events
from treasure.ops.rotate import rotate_run


def digest_of(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def test_rotate_keeps_the_chain_and_the_bytes(clean_ws, capsys):
    live = clean_ws.event_log("clean")
    before, size = digest_of([live]), live.stat().st_size
    limit_mb = 0.05
    assert run_cli(clean_ws, "rotate", "--max-mb", str(limit_mb), "--json") == 0
    result = json_out(capsys)["results"][0]
    parts = clean_ws.log_parts("clean")
    assert result["action"] == "rotated" and len(result["parts"]) == len(parts) - 1 >= 5
    assert [p.name for p in parts[:-1]] == [f"run_clean.jsonl.{n}" for n in range(1, len(parts))]
    assert all(p.stat().st_size <= limit_mb * 1024 * 1024 for p in parts)
    assert digest_of(parts) == before and sum(p.stat().st_size for p in parts) == size
    summary = verify_log(parts, Contracts(clean_ws.truth_dir))
    assert summary.events == len(live.read_bytes().splitlines()) + sum(
        len(p.read_bytes().splitlines()) for p in parts[:-1])
    logs, _ = discover_logs(clean_ws.logs_dir)  # the events gate's view: no missing part
    assert [(log.run_id, log.missing_parts) for log in logs] == [("clean", ())]
    # rotating again under the same limit does nothing; a smaller limit continues the numbering
    assert rotate_run(clean_ws, "clean", int(limit_mb * 1024 * 1024)).action == "under_limit"
    assert rotate_run(clean_ws, "clean", 5_000).parts[0].endswith(f".{len(parts)}")
    verify_log(clean_ws.log_parts("clean"), Contracts(clean_ws.truth_dir))


def test_rotate_skips_open_logs(clean_ws):
    write_log(clean_ws, "open", [("SYS", "run_start", "INFO", {"i": i}) if i == 0 else
                                 ("STRAT", "strategy_log", "INFO", {"i": i}) for i in range(400)])
    result = rotate_run(clean_ws, "open", 2_000)
    assert result.action == "skipped" and "open" in result.reason
    assert rotate_run(clean_ws, "open", 2_000, include_open=True).action == "rotated"


def test_interrupted_rotation_is_repaired(clean_ws):
    live = clean_ws.event_log("clean")
    data = live.read_bytes()
    cut = data.index(b"\n", 50_000) + 1
    (live.parent / (live.name + ".1")).write_bytes(data[:cut])  # the part was renamed, the live not yet
    result = rotate_run(clean_ws, "clean", 60_000)
    assert result.action == "repaired+rotated"
    assert digest_of(clean_ws.log_parts("clean")) == hashlib.sha256(data).hexdigest()


def test_archive_moves_logs_and_keeps_them_readable(clean_ws, capsys):
    rotate_run(clean_ws, "clean", 80_000)
    files = clean_ws.log_parts("clean")
    shas = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    events_before = [h.raw for h in iter_events(clean_ws, "clean")]
    assert run_cli(clean_ws, "archive", "--json") == 0
    result = json_out(capsys)
    assert result["runs"] == ["clean"] and result["created"] and len(result["removed"]) == len(files)
    assert clean_ws.log_parts("clean") == []
    (entry,) = load_archives(clean_ws)
    assert {m.name: m.sha256 for m in entry.members} == shas
    sidecar = json.loads((clean_ws.archive_dir / entry.path.name.replace(".tar.gz", ".manifest.json")).read_text())
    assert sidecar["tar_sha256"] == hashlib.sha256(entry.path.read_bytes()).hexdigest()
    with tarfile.open(entry.path) as tar:
        members = tar.getmembers()
    assert members[0].name == MANIFEST_MEMBER
    assert [m.name for m in members[1:]] == [p.name for p in files]  # chain order, not name order
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    assert [h.raw for h in iter_events(clean_ws, "clean")] == events_before
    assert verify_archives(clean_ws) == []
    assert run_cli(clean_ws, "archive") == 0 and "nothing to archive" in capsys.readouterr().out
    assert run_cli(clean_ws, "archive", "--restore", "clean") == 0
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in clean_ws.log_parts("clean")} == shas


def test_archive_is_deterministic(make_ws):
    a, b = make_ws("clean"), make_ws("clean")
    (b.root / "unrelated").write_text("x")
    os.utime(b.event_log("clean"), (1_000_000, 1_000_000))  # file times never reach the archive
    ra, rb = pack(a), pack(b)
    assert ra.archive == rb.archive
    name = ra.archive.split("/")[-1]
    assert (a.archive_dir / name).read_bytes() == (b.archive_dir / name).read_bytes()


def test_archive_leaves_open_runs(clean_ws, capsys):
    write_log(clean_ws, "open", [("SYS", "run_start", "INFO", {})])
    assert run_cli(clean_ws, "archive", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would archive 1 run(s)" in out and "left open" in out
    assert clean_ws.event_log("clean").exists()


def test_tampered_archive_is_detected(clean_ws, capsys):
    pack(clean_ws)
    (entry,) = load_archives(clean_ws)
    data = bytearray(entry.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.path.write_bytes(bytes(data))
    assert run_cli(clean_ws, "archive", "--verify") == 2
    assert "differs" in capsys.readouterr().out
    with pytest.raises(EventLogError) as info:
        list(iter_events(clean_ws, "clean"))
    assert info.value.code in ("ARCHIVE_INVALID", "EVENTS_JSON", "EVENTS_TRUNCATED")


def test_rerun_after_archive_reads_the_new_log(clean_ws):
    pack(clean_ws)
    assert run_cli(clean_ws, "run", "--run-id", "clean", "--seed", "7", "-q") == 0
    first = next(iter_events(clean_ws, "clean")).event
    assert first["payload"]["seed"] == 7  # the local log wins over the archived one


def test_restore_refuses_existing_log(clean_ws, capsys):
    assert run_cli(clean_ws, "archive", "--restore", "clean") == 2
    assert "error[RUN_EXISTS]" in capsys.readouterr().err
