"""One home for the event-log layout (treasure.logfiles): every reader agrees on a run's chain.

Issue 11: part naming, discovery, missing parts and archive lookup lived in five places that
disagreed; a stray ``run_a.jsonl.0`` was part of the chain for replay and ``db ingest`` but not
for the events gate and the operations commands.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.ops_support import clean_ws, make_ws, templates  # noqa: F401
from treasure.logfiles import LIVE_ORDER, LogName, chain_of, discover, locate, parse_name
from treasure.workspace import Workspace


@pytest.mark.parametrize("name, expected", [
    ("run_a.jsonl", LogName("a", LIVE_ORDER)),
    ("run_a.jsonl.1", LogName("a", 1)),
    ("run_a.jsonl.12", LogName("a", 12)),
    ("run_a.b.jsonl.3", LogName("a.b", 3)),
    ("run_x.jsonl.jsonl", LogName("x.jsonl", LIVE_ORDER)),
    ("run_a.jsonl.0", LogName("a", None)),        # strays: named like a part of a's log, in no chain
    ("run_a.jsonl.01", LogName("a", None)),
    ("run_a.jsonl.bak", LogName("a", None)),
    ("run_a.jsonl.1.orig", LogName("a", None)),
    ("run_a.jsonl.-1", LogName("a", None)),
    ("notes.txt", None),
    (".run_a.jsonl.x.tmp", None),
    ("run_.jsonl", None),
    ("run_a..b.jsonl", None),
])
def test_names(name: str, expected: LogName | None) -> None:
    assert parse_name(name) == expected


def _stray_zero(ws: Workspace) -> tuple[Path, Path]:
    live = ws.event_log("clean")
    stray = live.with_name(live.name + ".0")
    stray.write_bytes(live.read_bytes().splitlines(keepends=True)[0])  # looks like a first part
    return live, stray


def test_a_stray_part_zero_is_in_no_chain_for_any_reader(clean_ws: Workspace) -> None:
    """Before: replay (ws.log_parts) and `db ingest` (store.log_parts) read run_clean.jsonl.0 as
    the chain's first part; the events gate and ops ignored it."""
    from treasure.ops.segments import local_segments
    from treasure.store import log_parts as ingest_parts

    live, stray = _stray_zero(clean_ws)
    assert clean_ws.log_parts("clean") == [live]                        # replay, recon, engine
    assert ingest_parts(live) == chain_of(live) == [live]               # db ingest LOG
    assert [s.path for s in local_segments(clean_ws, "clean")] == [live]  # ops: status, rotate, archive
    found = discover(clean_ws.logs_dir)                                  # the events gate
    assert [log.paths for log in found.logs] == [(live,)]
    assert found.strays == [stray]
    assert locate(clean_ws, "clean").strays == (stray,)


def test_replay_and_db_ingest_read_the_same_chain_with_a_stray(clean_ws: Workspace, tmp_path: Path) -> None:
    from treasure.replay import replay
    from treasure.store import ingest_log, log_parts

    _stray_zero(clean_ws)
    assert replay(clean_ws, "clean").identical  # before: EVENTS_SEQ (the stray's seq 0, then seq 0 again)
    result = ingest_log(tmp_path / "t.db", log_parts(clean_ws.event_log("clean")), contracts=None)
    assert result.events == len(clean_ws.event_log("clean").read_bytes().splitlines())


def test_missing_parts_and_run_ids(clean_ws: Workspace) -> None:
    live = clean_ws.event_log("clean")
    lines = live.read_bytes().splitlines(keepends=True)
    (clean_ws.logs_dir / "run_clean.jsonl.1").write_bytes(b"".join(lines[:10]))
    (clean_ws.logs_dir / "run_clean.jsonl.3").write_bytes(b"".join(lines[10:20]))
    (clean_ws.logs_dir / "run_parts-only.jsonl.1").write_bytes(b"".join(lines[:10]))
    log = locate(clean_ws, "clean")
    assert log.location == "logs" and log.missing_parts == (2,)
    assert [p.name for p in log.paths] == ["run_clean.jsonl.1", "run_clean.jsonl.3", "run_clean.jsonl"]
    assert clean_ws.run_ids() == ["clean", "parts-only"]


def test_an_archived_run_is_located_in_its_archive(clean_ws: Workspace) -> None:
    from treasure.ops.archive import pack

    pack(clean_ws, ["clean"])
    log = locate(clean_ws, "clean")
    assert log.location == "archive" and log.paths == () and log.archive is not None
    assert [s.name for s in log.segments] == ["run_clean.jsonl"]


def test_ops_segments_and_ops_archive_no_longer_import_each_other() -> None:
    code = ("import sys; import treasure.ops.segments; "
            "assert 'treasure.ops.archive' not in sys.modules, 'segments imports archive'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_containment_rule(tmp_path: Path) -> None:
    from treasure.workspace import is_inside

    root = (tmp_path / "ws").resolve()
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "out").symlink_to(tmp_path)
    assert is_inside(root, root / "logs")
    assert not is_inside(root, root / "logs" / "out")
    assert not is_inside(root, root / ".." / "x")
    assert not is_inside(root, str(root / "a\x00b"))
