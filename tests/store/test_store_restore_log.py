"""``treasure db restore-log RUN_ID``: a run's event log put back into logs/events/ from the DB,
only when the workspace's copy is missing or broken, verified before the rename, the broken files
kept (issue 13: the operator's day 4)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest

from treasure.workspace import Workspace, pin_dataset

CLI = Callable[..., tuple[int, str, str]]
BARS = 400


@pytest.fixture
def stored(cli: CLI, tmp_path: Path) -> tuple[Path, str]:
    """A workspace with one complete run stored in its DB (a short pinned dataset, approved)."""
    ws = tmp_path / "ws"
    assert cli("init", ws)[0] == 0
    bars = (ws / "fixtures" / "data" / "default_bars.csv").read_bytes().splitlines(keepends=True)
    pin_dataset(Workspace.at(ws), b"".join(bars[: BARS + 1]), "fixtures/data/short_bars.csv")
    assert cli("-w", ws, "ssot", "approve")[0] == 0
    code, out, err = cli("-w", ws, "run", "--db", "--seed", 3, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["db"]["status"] == "complete"
    return ws, doc["run_id"]


def _restore(cli: CLI, ws: Path, run_id: str, code: int = 0) -> tuple[dict[str, Any] | None, str]:
    rc, out, err = cli("-w", ws, "db", "restore-log", run_id, "--json")
    assert rc == code, (rc, out, err)
    return (json.loads(out) if code == 0 else None), err


def _diagnose(cli: CLI, ws: Path, run_id: str) -> dict[str, Any]:
    rc, out, err = cli("-w", ws, "diagnose", run_id, "--json")
    assert rc == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_broken_rotated_log_is_moved_aside_and_restored(cli: CLI, stored: tuple[Path, str]) -> None:
    ws, run_id = stored
    events = ws / "logs" / "events"
    live = events / f"run_{run_id}.jsonl"
    original = live.read_bytes()
    assert cli("-w", ws, "rotate", "--max-mb", "0.02")[0] == 0
    chain = sorted(p.name for p in events.glob(f"run_{run_id}.jsonl*"))
    assert len(chain) >= 2, chain  # a rotated part and the live file
    part1 = events / f"run_{run_id}.jsonl.1"
    broken_bytes = {name: (events / name).read_bytes() for name in chain}
    part1.write_bytes(part1.read_bytes().replace(b'"seq":2,', b'"seq":7,', 1))
    broken_bytes[part1.name] = part1.read_bytes()
    assert _diagnose(cli, ws, run_id)["log"]["integrity"]["ok"] is False

    doc, _ = _restore(cli, ws, run_id)
    assert doc is not None and doc["restored"] is True and doc["workspace_log"] == "broken", doc
    assert "EVENTS" in str(doc["problem"]), doc["problem"]
    aside = f"logs/broken/run_{run_id}.1"
    assert doc["moved_aside"] == [f"{aside}/{name}" for name in _chain_order(chain, run_id)], doc["moved_aside"]
    for name, data in broken_bytes.items():  # kept byte for byte, never deleted
        assert (ws / aside / name).read_bytes() == data
    # one live file, the exact original bytes (the DB keeps lines, not the rotation)
    assert sorted(p.name for p in events.glob(f"run_{run_id}.jsonl*")) == [live.name]
    assert live.read_bytes() == original
    assert doc["events"] == original.count(b"\n") and doc["bytes"] == len(original)
    assert any("court_report" in c for c in doc["checked_against"]), doc["checked_against"]
    assert not [p for p in events.iterdir() if p.name.startswith(".")], "a temporary file was left behind"
    diag = _diagnose(cli, ws, run_id)
    assert diag["log"]["integrity"]["ok"] is True and diag["verdict"] == "ok", diag["findings"]

    # broken again: the next quarantine gets the next number, the first one is untouched
    live.write_bytes(original[:-10])
    doc, _ = _restore(cli, ws, run_id)
    assert doc is not None and doc["moved_aside"] == [f"logs/broken/run_{run_id}.2/{live.name}"]
    assert (ws / "logs/broken" / f"run_{run_id}.2" / live.name).read_bytes() == original[:-10]
    assert live.read_bytes() == original


def _chain_order(names: list[str], run_id: str) -> list[str]:
    live = f"run_{run_id}.jsonl"
    parts = sorted((n for n in names if n != live), key=lambda n: int(n.rsplit(".", 1)[1]))
    return parts + [live]


def test_a_log_that_verifies_is_left_alone(cli: CLI, stored: tuple[Path, str]) -> None:
    ws, run_id = stored
    live = ws / "logs" / "events" / f"run_{run_id}.jsonl"
    before = (live.read_bytes(), live.stat().st_ino)
    doc, _ = _restore(cli, ws, run_id)
    assert doc is not None and doc["restored"] is False and doc["workspace_log"] == "ok", doc
    assert (live.read_bytes(), live.stat().st_ino) == before
    assert not (ws / "logs" / "broken").exists()
    rc, out, _ = cli("-w", ws, "db", "restore-log", run_id)
    assert rc == 0 and "nothing to restore" in out, out


def test_an_archived_log_that_verifies_points_to_archive_restore(cli: CLI, stored: tuple[Path, str]) -> None:
    ws, run_id = stored
    assert cli("-w", ws, "archive")[0] == 0
    assert not (ws / "logs" / "events" / f"run_{run_id}.jsonl").exists()
    doc, _ = _restore(cli, ws, run_id)
    assert doc is not None and doc["restored"] is False and doc["workspace_log"] == "archived", doc
    assert f"treasure archive --restore {run_id}" in str(doc["note"])


def test_a_db_copy_that_is_not_the_runs_log_is_refused_and_nothing_moves(cli: CLI, stored: tuple[Path, str]) -> None:
    ws, run_id = stored
    live = ws / "logs" / "events" / f"run_{run_id}.jsonl"
    broken = live.read_bytes()[:-5]
    live.write_bytes(broken)
    court_path = ws / "reports" / "runs" / run_id / "court_report.json"
    court = json.loads(court_path.read_text())
    court_text = court_path.read_text()

    # the workspace's court report names another head hash than the DB's copy
    court["events"]["last_hash"] = "0" * 64
    court_path.write_text(json.dumps(court))
    _, err = _restore(cli, ws, run_id, code=2)
    assert "STORE_RESTORE_MISMATCH" in err and "last_hash" in err, err
    assert live.read_bytes() == broken and not (ws / "logs" / "broken").exists()
    court_path.write_text(court_text)

    # a stored line edited in the DB: its hash no longer chains
    db = ws / "data" / "treasure.db"
    with sqlite3.connect(db) as conn:
        (line,) = conn.execute("SELECT line FROM events WHERE run_id = ? AND seq = 5", (run_id,)).fetchone()
        conn.execute("UPDATE events SET line = ? WHERE run_id = ? AND seq = 5",
                     (line.replace('"seq":5', '"seq":5 ', 1), run_id))
    _, err = _restore(cli, ws, run_id, code=2)
    assert "STORE_RESTORE_MISMATCH" in err and "does not verify" in err, err
    assert live.read_bytes() == broken and not (ws / "logs" / "broken").exists()


def test_unknown_run_and_a_held_run_lock_are_coded_errors(cli: CLI, stored: tuple[Path, str]) -> None:
    ws, run_id = stored
    (ws / "logs" / "events" / f"run_{run_id}.jsonl").unlink()
    from treasure.file_locks import run_lock

    with run_lock(Workspace.at(ws), run_id):
        _, err = _restore(cli, ws, run_id, code=2)
    assert "RUN_IN_PROGRESS" in err, err
    assert not (ws / "logs" / "events" / f"run_{run_id}.jsonl").exists()
    _, err = _restore(cli, ws, "never_stored_run", code=2)
    assert "STORE_RUN_UNKNOWN" in err, err
    doc, _ = _restore(cli, ws, run_id)
    assert doc is not None and doc["restored"] is True and doc["workspace_log"] == "missing"
