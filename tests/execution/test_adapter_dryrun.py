"""The dry-run adapter fills exactly like sim and journals what it expects the venue to say."""

from __future__ import annotations

from pathlib import Path

import pytest

from treasure.config import load_config
from treasure.engine import RunRequest, run
from treasure.eventlog import read_events
from treasure.execution import Order, create_adapter
from treasure.execution.dryrun import JOURNAL_NAME, DryRunAdapter
from treasure.recon import parse_live, run_recon
from treasure.strategy.base import Bar
from treasure.workspace import init_workspace

T = 1_767_225_600_000


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    ws = init_workspace(tmp_path_factory.mktemp("dryrun") / "ws")
    return ws, run(RunRequest(workspace=ws)), run(RunRequest(workspace=ws, adapter="dryrun"))


def exec_events(path: Path) -> list[tuple[str, dict]]:
    out = []
    for event in read_events(path):
        if event["category"] == "EXEC":
            payload = {k: v for k, v in event["payload"].items() if k != "adapter"}
            out.append((event["event_type"], payload))
    return out


def test_fills_exactly_like_sim(runs) -> None:
    _, sim, dry = runs
    assert dry.status == "complete" and dry.run_id != sim.run_id
    assert exec_events(dry.event_log) == exec_events(sim.event_log)
    assert {e["payload"]["adapter"] for e in read_events(dry.event_log) if e["event_type"] == "order_placed"} == {"dryrun"}


def test_journal_is_a_strict_live_session_that_reconciles_clean(runs) -> None:
    ws, sim, dry = runs
    journal = dry.report_dir / JOURNAL_NAME
    session = parse_live(journal.read_bytes(), path=str(journal), time_window_ms=600_000, strict=True)
    assert session.header["venue"] == "dryrun" and session.header["run_id"] == dry.run_id
    assert session.symbol == "SYNTH-USD"
    orders = sum(1 for e in read_events(dry.event_log) if e["event_type"] == "order_placed")
    fills = sum(1 for e in read_events(dry.event_log) if e["event_type"] == "order_filled")
    assert sum(m.type == "ack" for m in session.messages) == orders
    assert sum(m.type == "fill" for m in session.messages) == fills
    for run_id in (dry.run_id, sim.run_id):
        assert run_recon(ws, run_id, live_path=journal, durable=False).report["status"] == "clean"
    assert not (sim.report_dir / JOURNAL_NAME).exists(), "sim journals nothing"


def test_journal_records_cancels_and_statuses(tmp_path) -> None:
    ws = init_workspace(tmp_path / "ws")
    config = load_config(ws.ssot_path, ws.config_schema_path)
    execution = dict(config.section("execution"), partial_fill_prob=0.0)
    adapter = create_adapter("dryrun", execution=execution, config=config, workspace=ws, run_id="j")
    assert isinstance(adapter, DryRunAdapter) and adapter.simulated is True
    adapter.start(rng=None, config=config, symbol="SYNTH-USD")
    adapter.submit(Order("o1", "buy", 2.0, 0, T, 100.0))
    adapter.submit(Order("o2", "sell", 1.0, 0, T, 100.0))
    adapter.cancel("o2")
    (report,) = adapter.on_bar(Bar(1, T + 300_000, 100.0, 101.0, 99.0, 100.0, 1.0))
    assert report.kind == "fill" and report.order_id == "o1"
    assert adapter.stop() == []
    types = [(m["type"], m["order_id"], m.get("status")) for m in adapter.journal]
    assert types == [("ack", "o1", None), ("ack", "o2", None), ("cancel", "o2", None), ("fill", "o1", "filled")]
    assert (ws.run_reports("j") / JOURNAL_NAME).read_bytes() == adapter.journal_bytes()


def test_a_journal_that_cannot_be_written_is_an_adapter_error(tmp_path) -> None:
    ws = init_workspace(tmp_path / "ws")
    config = load_config(ws.ssot_path, ws.config_schema_path)
    blocker = ws.run_reports("j")
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the run's report folder should be")
    adapter = create_adapter("dryrun", execution=config.section("execution"), config=config, workspace=ws,
                             run_id="j")
    adapter.start(rng=None, config=config, symbol="SYNTH-USD")
    (error,) = adapter.stop()
    assert (error.kind, error.code) == ("error", "DRYRUN_JOURNAL_WRITE")
