"""``treasure replay``: identical from events and from the DB, refusals when inputs changed, and
a written diff when the recorded evidence differs from a re-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.store_support import DENSE, make_workspace

from treasure.errors import TreasureError
from treasure.eventlog import read_events
from treasure.events import EventBus, MemorySink
from treasure.replay import replay

STRATEGY_FILE = '''from treasure.strategy.builtin import SmaCrossover


class Mine(SmaCrossover):
    name = "mine"
'''


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A workspace with run "a" stored in data/t.db and a file strategy run "s"; read only."""
    from treasure.cli.main import main

    ws = make_workspace(tmp_path_factory.mktemp("replay") / "ws", n_bars=1500)
    assert main(["run", "--workspace", str(ws.root), "--run-id", "a", "--db", str(ws.data_dir / "t.db"), "-q"]) == 0
    return ws


@pytest.fixture
def ws(recorded, tmp_path: Path):
    """A private copy of the recorded workspace, for tests that change it."""
    import shutil

    shutil.copytree(recorded.root, tmp_path / "ws")
    from treasure.workspace import Workspace

    return Workspace(tmp_path / "ws")


@pytest.mark.parametrize("source", ["events", "db"])
def test_replay_is_identical_and_leaves_the_evidence_alone(recorded, source: str) -> None:
    log = recorded.event_log("a")
    before = (log.read_bytes(), log.stat().st_mtime_ns)
    result = replay(recorded, "a", source=source, db_path=recorded.data_dir / "t.db")
    assert result.identical, result
    assert result.events_equal and result.reports_equal == {"court_report": True, "eqs_report": True}
    assert result.dropped["events"] == [] and result.dropped["court_report"] == ["timing"]
    assert result.notes == [] and result.diff_path is None
    assert (log.read_bytes(), log.stat().st_mtime_ns) == before


def test_replay_under_a_new_run_id(recorded) -> None:
    result = replay(recorded, "a", new_run_id="a-again")
    assert result.identical and result.replay_run_id == "a-again"
    assert {"run_id", "prev", "hash"} <= set(result.dropped["events"])
    assert not recorded.event_log("a-again").exists()


def test_cli_replay_identical(recorded, cli) -> None:
    code, out, _ = cli("replay", "a", "--from", "db", "--workspace", recorded.root, "--db", recorded.data_dir / "t.db")
    assert code == 0 and "replay identical: run a from db" in out


def test_a_changed_dataset_is_refused(ws, cli) -> None:
    dataset = ws.root / json.loads(ws.ssot_path.read_text())["dataset"]["path"]
    dataset.write_bytes(dataset.read_bytes().replace(b"\n", b"\r\n", 1))
    with pytest.raises(TreasureError) as info:
        replay(ws, "a")
    assert info.value.code == "REPLAY_DATASET_CHANGED" and "changed since run a" in info.value.message
    code, _, err = cli("replay", "a", "--workspace", ws.root)
    assert code == 2 and "error[REPLAY_DATASET_CHANGED]" in err and "Traceback" not in err


def test_a_changed_ssot_file_replays_from_the_snapshot(ws) -> None:
    ssot = json.loads(ws.ssot_path.read_text())
    ssot["risk"]["max_position_size_usd"] = 1  # the SSOT moved on after the run
    ws.ssot_path.write_text(json.dumps(ssot))
    result = replay(ws, "a")
    assert result.identical, result
    assert "payload.ssot_sha256" in result.dropped["events"] and any("snapshot" in n for n in result.notes)


def test_a_changed_strategy_source_is_refused_unless_allowed(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", n_bars=600,
                        strategy={"name": "strategies/mine.py:Mine", "params": DENSE["params"]})
    source = ws.root / "strategies" / "mine.py"
    source.parent.mkdir()
    source.write_text(STRATEGY_FILE)
    from treasure.engine import RunRequest, run

    assert run(RunRequest(workspace=ws, run_id="s")).status == "complete"
    assert replay(ws, "s").identical
    source.write_text(STRATEGY_FILE + "\n# a comment changes the source hash\n")
    with pytest.raises(TreasureError) as info:
        replay(ws, "s")
    assert info.value.code == "REPLAY_STRATEGY_CHANGED"
    result = replay(ws, "s", allow_strategy_change=True)
    assert any("replayed anyway" in n for n in result.notes)
    assert not result.identical and "source_sha256" in result.diff_path.read_text()  # run_start records it


def test_tampered_reports_give_a_written_diff_and_exit_2(ws, cli) -> None:
    court_path = ws.run_reports("a") / "court_report.json"
    court = json.loads(court_path.read_text())
    court["metrics"]["trades"] += 1
    court_path.write_text(json.dumps(court))
    result = replay(ws, "a")
    assert not result.identical and result.events_equal and result.reports_equal["court_report"] is False
    diff = result.diff_path
    assert diff == ws.evidence_dir / "diffs" / "replay_a.txt"
    text = diff.read_text()
    assert "metrics" in text and "trades" in text and "court_report: DIFFER" in text
    code, out, _ = cli("replay", "a", "--workspace", ws.root)
    assert code == 2 and "replay DIFFERS" in out and "evidence/diffs/replay_a.txt" in out


def test_a_resealed_but_different_log_differs_at_the_right_event(ws) -> None:
    events = list(read_events(ws.event_log("a")))
    target = next(e for e in events if e["event_type"] == "order_filled")
    sink = MemorySink()
    bus = EventBus("a", [sink])
    for event in events:
        payload = dict(event["payload"])
        if event is target:
            payload["fee"] = payload["fee"] + 1.0
        bus.emit(event["ts_ms"], event["category"], event["event_type"], event["level"], payload)
    bus.flush(durable=True)
    ws.event_log("a").write_bytes(b"".join(line + b"\n" for line in sink.lines))
    result = replay(ws, "a")
    assert not result.identical and not result.events_equal
    text = result.diff_path.read_text()
    assert f"seq={target['seq']}" in text and "fee" in text


def test_broken_evidence_and_unknown_runs_are_refused(ws) -> None:
    log = ws.event_log("a")
    lines = log.read_bytes().splitlines(keepends=True)
    del lines[10]
    log.write_bytes(b"".join(lines))
    with pytest.raises(TreasureError) as info:
        replay(ws, "a")
    assert info.value.code == "REPLAY_EVIDENCE_BROKEN"
    with pytest.raises(TreasureError) as info:
        replay(ws, "nope")
    assert info.value.code == "RUN_UNKNOWN"
    with pytest.raises(TreasureError) as info:
        replay(ws, "nope", source="db", db_path=ws.data_dir / "t.db")
    assert info.value.code == "STORE_RUN_UNKNOWN"
    assert replay(ws, "a", source="db", db_path=ws.data_dir / "t.db").identical  # the DB copy still replays
