"""A run on recorded venue fills records its adapter options, so replay can rebuild it exactly."""

from __future__ import annotations

from treasure.engine import RunRequest, run
from treasure.eventlog import read_events


def test_replay_live_run_records_its_session_and_replays_identically(workspace, cli):
    session = workspace.root / "fixtures" / "live" / "clean.jsonl"
    result = run(RunRequest(workspace=workspace, run_id="live", adapter="replay-live",
                            adapter_options={"live_fixture": str(session)}))
    assert result.status == "complete"
    start = next(iter(read_events(result.event_log)))
    recorded = start["payload"]["adapter_options"]["live_fixture"]
    assert recorded["path"] == "fixtures/live/clean.jsonl" and len(recorded["sha256"]) == 64
    code, out, err = cli("replay", "live", "--from", "events", "--workspace", workspace.root)
    assert code == 0 and "replay identical" in out, err
    session.write_bytes(session.read_bytes() + b"\n")
    code, _, err = cli("replay", "live", "--from", "events", "--workspace", workspace.root)
    assert code == 2 and "REPLAY_DATASET_CHANGED" in err and "adapter option live_fixture" in err
