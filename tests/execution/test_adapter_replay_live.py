"""The replay-live adapter: venue messages delivered at their bar; every bad input an adapter_error."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from treasure.config import load_config
from treasure.engine import RunRequest, run
from treasure.eventlog import read_events
from treasure.execution import Order, create_adapter
from treasure.execution.replay_live import ReplayLiveAdapter
from treasure.recon import LIVE_FORMAT, run_recon
from treasure.strategy.base import Bar
from treasure.workspace import Workspace, init_workspace

T = 1_767_225_600_000
BAR = 300_000  # the default SSOT's interval


def bar(i: int) -> Bar:
    return Bar(i, T + i * BAR, 100.0, 101.0, 99.0, 100.0, 10.0)


def order(oid: str = "o000001", i: int = 0, side: str = "buy", qty: float = 2.0) -> Order:
    return Order(oid, side, qty, i, T + i * BAR, 100.0)


def msg(**doc) -> dict:
    return doc


def ack(oid="o000001", i=1, dt=20, **extra) -> dict:
    return msg(type="ack", order_id=oid, venue_ts_ms=T + i * BAR + dt, **extra)


def fill(oid="o000001", i=1, dt=100, qty=2.0, price=100.5, fee=0.1, status="filled", fill_id=None) -> dict:
    return msg(type="fill", order_id=oid, venue_ts_ms=T + i * BAR + dt, fill_id=fill_id or f"F{oid}{i}{dt}",
               qty=qty, price=price, fee=fee, status=status)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return init_workspace(tmp_path_factory.mktemp("replay") / "ws")


def adapter(ws: Workspace, tmp_path: Path, lines: list, *, symbol: str = "SYNTH-USD", raw: bytes = b"") -> ReplayLiveAdapter:
    path = tmp_path / "session.jsonl"
    header = orjson.dumps({"type": "session", "format": LIVE_FORMAT, "symbol": "SYNTH-USD"}) + b"\n"
    path.write_bytes(header + b"".join(orjson.dumps(m) + b"\n" for m in lines) + raw)
    config = load_config(ws.ssot_path, ws.config_schema_path)
    a = create_adapter("replay-live", execution=config.section("execution"), config=config, workspace=ws,
                       run_id="t", live_fixture=str(path))
    a.start(rng=None, config=config, symbol=symbol)
    return a


def kinds(reports) -> list[tuple]:
    return [(r.kind, r.code, r.line, r.order_id) for r in reports]


def test_is_not_simulated_and_delivers_by_venue_timestamp(ws, tmp_path) -> None:
    a = adapter(ws, tmp_path, [ack(), fill(dt=100, qty=0.5, status="partially_filled"),
                               fill(i=2, dt=50, qty=1.5, price=101.0, fee=0.2)])
    assert a.simulated is False and a.name == "replay-live"
    assert a.submit(order()) == []
    assert a.on_bar(bar(0)) == [], "nothing is due before the fill's bar"
    (first,) = a.on_bar(bar(1))
    assert first.kind == "fill" and (first.fill.qty, first.fill.price, first.fill.fee) == (0.5, 100.5, 0.1)
    assert (first.fill.bar_idx, first.fill.ts_ms, first.fill.side) == (1, T + BAR + 100, "buy")
    assert a.has_open_orders()
    (second,) = a.on_bar(bar(2))
    assert (second.fill.qty, second.fill.price, second.fill.bar_idx) == (1.5, 101.0, 2)
    assert not a.has_open_orders() and a.stop() == []


def test_reject_cancel_and_short_fill_close_the_order(ws, tmp_path) -> None:
    a = adapter(ws, tmp_path, [ack("o000001"), msg(type="reject", order_id="o000001", venue_ts_ms=T + BAR + 30,
                                                   reason="margin"),
                               ack("o000002"), fill("o000002", qty=1.0, status="filled"),
                               ack("o000003"), msg(type="cancel", order_id="o000003", venue_ts_ms=T + BAR + 40)])
    for oid in ("o000001", "o000002", "o000003"):
        assert a.submit(order(oid)) == []
    reports = a.on_bar(bar(1))
    assert [(r.kind, r.order_id, r.reason) for r in reports if r.kind != "fill"] == [
        ("reject", "o000001", "venue:margin"), ("cancel", "o000003", "venue:cancelled"),
        ("cancel", "o000002", "venue:filled_short")]
    assert [r.fill.qty for r in reports if r.kind == "fill"] == [1.0]


def test_bad_lines_are_errors_with_their_line_at_the_first_call(ws, tmp_path) -> None:
    a = adapter(ws, tmp_path, [ack(), fill()], raw=b'{"type":"fill","order_id":"o000001"}\n{"type":')
    reports = a.submit(order())
    assert kinds(reports) == [("error", "LIVE_SCHEMA", 4, "o000001"), ("error", "LIVE_TRUNCATED", 5, None)]
    assert "missing required field 'venue_ts_ms'" in reports[0].reason
    assert [r.kind for r in a.on_bar(bar(1))] == ["fill"], "the good lines still play"


def test_unknown_order_is_reported_when_due(ws, tmp_path) -> None:
    a = adapter(ws, tmp_path, [ack(), fill(), ack("o000099", i=1), fill("o000099", i=1)])
    a.submit(order())
    assert [r.kind for r in a.on_bar(bar(1))] == ["fill"]
    assert kinds(a.on_bar(bar(2))) == [("error", "LIVE_UNKNOWN_ORDER", 4, "o000099")]
    assert a.stop() == []


def test_unknown_order_after_the_last_bar_is_reported_at_stop(ws, tmp_path) -> None:
    a = adapter(ws, tmp_path, [ack("o000042", i=50)])
    assert kinds(a.stop()) == [("error", "LIVE_UNKNOWN_ORDER", 2, "o000042")]


def test_order_problems(ws, tmp_path) -> None:
    a = adapter(ws, tmp_path, [
        msg(type="ack", order_id="o000001", venue_ts_ms=T - 5), fill("o000001"),       # ack before the order
        ack("o000002", side="sell", qty=2.0), fill("o000002"),                         # ack disagrees
        ack("o000003"), fill("o000003", qty=3.0, fee=0.3),                             # overfill
        ack("o000004"), fill("o000004", dt=100), fill("o000004", dt=200, fill_id="late"),  # after terminal
        ack("o000005"), fill("o000005", i=9),                                          # never due before stop
    ])
    assert kinds(a.submit(order("o000001"))) == [("error", "LIVE_BEFORE_ORDER", 2, "o000001")]
    assert kinds(a.submit(order("o000002"))) == [("error", "LIVE_ORDER_MISMATCH", 4, "o000002")]
    assert kinds(a.submit(order("o000006"))) == [("error", "LIVE_ORDER_UNRECORDED", None, "o000006")]
    for oid in ("o000003", "o000004", "o000005"):
        a.submit(order(oid))
    reports = a.on_bar(bar(1))
    errors = [(r.code, r.line, r.order_id) for r in reports if r.kind == "error"]
    assert errors == [("LIVE_OVERFILL", 7, "o000003"), ("LIVE_AFTER_TERMINAL", 10, "o000004")]
    capped = next(r.fill for r in reports if r.kind == "fill" and r.order_id == "o000003")
    assert capped.qty == 2.0 and capped.fee == pytest.approx(0.2)
    a.cancel("o000005")
    assert kinds(a.stop()) == [("error", "LIVE_UNDELIVERED", 12, "o000005")]


def test_symbol_mismatch_and_missing_file(ws, tmp_path) -> None:
    a = adapter(ws, tmp_path, [ack(), fill()], symbol="OTHER")
    assert kinds(a.submit(order())) == [("error", "LIVE_SYMBOL", 1, None), ("error", "LIVE_ORDER_UNRECORDED", None,
                                                                            "o000001")]
    config = load_config(ws.ssot_path, ws.config_schema_path)
    b = ReplayLiveAdapter(config=config, workspace=ws, live_fixture="fixtures/live/absent.jsonl")
    b.start(rng=None, config=config, symbol="SYNTH-USD")
    (missing,) = b.stop()
    assert missing.code == "LIVE_MISSING" and "absent.jsonl" in missing.reason
    c = ReplayLiveAdapter(config=config, workspace=ws, live_fixture="../escape.jsonl")
    c.start(rng=None, config=config, symbol="SYNTH-USD")
    assert c.stop()[0].code == "LIVE_MISSING"


# through the engine ---------------------------------------------------------------------------
def test_replaying_the_clean_session_reproduces_the_dry_run(ws) -> None:
    sim = run(RunRequest(workspace=ws, overwrite=True))
    replay = run(RunRequest(workspace=ws, adapter="replay-live", overwrite=True))
    assert replay.status == "complete"
    events = list(read_events(replay.event_log))
    assert [e for e in events if e["event_type"] == "adapter_error"] == []
    sim_orders = [(e["payload"]["order_id"], e["payload"]["side"], e["payload"]["qty"])
                  for e in read_events(sim.event_log) if e["event_type"] == "order_placed"]
    assert [(e["payload"]["order_id"], e["payload"]["side"], e["payload"]["qty"])
            for e in events if e["event_type"] == "order_placed"] == sim_orders
    clean = [orjson.loads(line) for line in (ws.fixtures_dir / "live" / "clean.jsonl").read_bytes().splitlines()]
    venue_fills = [(m["order_id"], m["qty"], m["price"]) for m in clean if m["type"] == "fill"]
    booked = [(e["payload"]["order_id"], e["payload"]["fill_qty"], e["payload"]["price"])
              for e in events if e["event_type"] == "order_filled"]
    assert booked == venue_fills
    assert run_recon(ws, replay.run_id, durable=False).report["status"] == "clean"


def test_a_broken_session_never_crashes_the_run(ws, tmp_path) -> None:
    lines = (ws.fixtures_dir / "live" / "clean.jsonl").read_bytes().splitlines(keepends=True)
    lines[5] = b'{"type":"fill","order_id":"o000003"\n'
    due = orjson.loads(lines[8])["venue_ts_ms"]
    lines.insert(9, orjson.dumps({"type": "fill", "order_id": "o999999", "venue_ts_ms": due, "fill_id": "Z", "qty": 1,
                                  "price": 100, "fee": 0.05, "status": "filled"}) + b"\n")
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join(lines) + b'{"type":"ack","order_id":"o0')
    result = run(RunRequest(workspace=ws, adapter="replay-live", run_id="replay-broken", overwrite=True,
                            adapter_options={"live_fixture": str(broken)}))
    assert result.status == "complete" and result.exit_code == 0
    errors = [e["payload"] for e in read_events(result.event_log) if e["event_type"] == "adapter_error"]
    found = {(p["code"], p["line"]) for p in errors}
    assert {("LIVE_JSON", 6), ("LIVE_TRUNCATED", len(lines) + 1), ("LIVE_UNKNOWN_ORDER", 10)} <= found
    assert all(p["adapter"] == "replay-live" and p["message"] for p in errors)


def test_an_unreadable_path_is_an_error_not_a_crash(ws) -> None:
    config = load_config(ws.ssot_path, ws.config_schema_path)
    a = ReplayLiveAdapter(config=config, workspace=ws, live_fixture="fixtures/live/a\x00b.jsonl")
    a.start(rng=None, config=config, symbol="SYNTH-USD")
    assert [r.code for r in a.stop()] == ["LIVE_MISSING"]
