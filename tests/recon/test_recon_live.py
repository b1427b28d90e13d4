"""The recorded-live reader: every bad line is a coded problem naming its line (and field)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from treasure.errors import HINTS, DataError
from treasure.recon import LIVE_FORMAT, Tolerances, dump_session, ledger_from_messages, messages_from_ledger, parse_live
from treasure.recon import read_live, reconcile
from treasure.recon.venue_sessions import LIVE_HINTS
from treasure.recon.model import STATES, LedgerBuilder

T = 1_767_225_600_000
W = 600_000


def line(**doc) -> bytes:
    return orjson.dumps(doc) + b"\n"


ACK = line(type="ack", order_id="o000001", venue_ts_ms=T, side="buy", qty=2.0)
FILL = line(type="fill", order_id="o000001", venue_ts_ms=T + 100, fill_id="F1", qty=2.0, price=100.0, fee=0.1,
            status="filled")
HEADER = line(type="session", format=LIVE_FORMAT, venue="v", symbol="SYNTH-USD", anything="goes")


def parse(data: bytes, strict: bool = False):
    return parse_live(data, path="live.jsonl", time_window_ms=W, strict=strict)


def test_a_valid_session() -> None:
    session = parse(HEADER + ACK + FILL, strict=True)
    assert session.header["venue"] == "v" and session.symbol == "SYNTH-USD" and session.lines == 3
    assert [m.type for m in session.messages] == ["ack", "fill"] and [m.line for m in session.messages] == [2, 3]
    ledger = ledger_from_messages(session.messages)
    assert ledger.ids.tolist() == ["o000001"] and STATES[ledger.state[0]] == "filled"
    assert ledger.fill_price.tolist() == [100.0] and ledger.side.tolist() == [1] and ledger.qty.tolist() == [2.0]


@pytest.mark.parametrize("data, code, number, field", [
    (ACK + b'{"type":"fill",\n' + FILL, "LIVE_JSON", 2, None),
    (ACK + b"[1, 2]\n", "LIVE_SCHEMA", 2, "(root)"),
    (ACK + FILL[:40], "LIVE_TRUNCATED", 2, None),
    (ACK + line(type="fill", order_id="o000001", venue_ts_ms=T, fill_id="F2", price=1.0, fee=0.0,
                status="filled"), "LIVE_SCHEMA", 2, "qty"),
    (ACK + line(type="fill", order_id="o000001", venue_ts_ms=T, fill_id="F2", qty=1, price=-1.0, fee=0.0,
                status="filled"), "LIVE_SCHEMA", 2, "price"),
    (ACK + line(type="ack", order_id="o000002", venue_ts_ms="soon"), "LIVE_SCHEMA", 2, "venue_ts_ms"),
    (ACK + line(type="ack", order_id="o000002", venue_ts_ms=T, colour="red"), "LIVE_SCHEMA", 2, "(root)"),
    (ACK + line(type="heartbeat", order_id="o000002", venue_ts_ms=T), "LIVE_SCHEMA", 2, "type"),
    (ACK + line(type="fill", order_id="o000001", venue_ts_ms=T, fill_id="F2", qty=1, price=1.0, fee=0.0,
                status="done"), "LIVE_SCHEMA", 2, "status"),
    (ACK + HEADER, "LIVE_HEADER", 2, "type"),
    (ACK + FILL + FILL, "LIVE_DUPLICATE_FILL", 3, "fill_id"),
    (line(type="ack", order_id="o000002", venue_ts_ms=T + W + 1) + ACK, "LIVE_OUT_OF_ORDER", 2, "venue_ts_ms"),
])
def test_bad_lines(data: bytes, code: str, number: int, field: str | None) -> None:
    with pytest.raises(DataError) as info:
        parse(data, strict=True)
    error = info.value
    assert (error.code, error.line, error.field, error.path) == (code, number, field, "live.jsonl")
    assert error.hint == LIVE_HINTS[code] and error.exit_code == 2
    lenient = parse(data)
    assert [(p.code, p.line, p.field) for p in lenient.problems] == [(code, number, field)]
    assert lenient.messages, "the good lines are kept"


def test_reordering_within_the_window_is_accepted() -> None:
    late_first = line(type="ack", order_id="o000002", venue_ts_ms=T + W) + ACK
    assert [m.order_id for m in parse(late_first, strict=True).messages] == ["o000002", "o000001"]


def test_problems_keep_their_order_id() -> None:
    session = parse(ACK + FILL + FILL)
    assert session.problems[0].order_id == "o000001"


def test_empty_and_missing_sessions(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no venue messages") as info:
        parse(HEADER + b"\n\n", strict=True)
    assert info.value.code == "LIVE_EMPTY"
    with pytest.raises(DataError) as info:
        read_live(tmp_path / "nope.jsonl", time_window_ms=W, strict=True)
    assert info.value.code == "LIVE_MISSING" and "nope.jsonl" in str(info.value)
    with pytest.raises(DataError) as info:
        read_live(tmp_path, time_window_ms=W, strict=False)
    assert info.value.code == "LIVE_MISSING"


def test_a_session_without_final_newline_is_fine_when_its_last_line_is_complete() -> None:
    assert len(parse((ACK + FILL).rstrip(b"\n"), strict=True).messages) == 2


def test_every_reader_code_has_a_registered_hint() -> None:
    for code, hint in LIVE_HINTS.items():
        assert hint and HINTS[code] == hint, f"{code} missing from treasure.errors.HINTS"
    assert HINTS["RECON_OF_RECON"]


def test_messages_from_ledger_round_trip_reconciles_clean() -> None:
    builder = LedgerBuilder()
    filled = builder.order("o1", side="buy", qty=3.0, ts_ms=T)
    builder.fill(filled, ts_ms=T + 300_000, qty=1.0, price=10.0, fee=0.01)
    builder.fill(filled, ts_ms=T + 600_000, qty=2.0, price=10.5, fee=0.02)
    builder.reach(filled, "filled")
    cancelled = builder.order("o2", side="sell", qty=1.0, ts_ms=T)
    builder.fill(cancelled, ts_ms=T + 300_000, qty=0.5, price=9.0, fee=0.01)
    builder.reach(cancelled, "cancelled", T + 900_000)
    rejected = builder.order("o3", side="buy", qty=1.0, ts_ms=T)
    builder.reach(rejected, "rejected", T + 300_000)
    expected = builder.build()
    messages = messages_from_ledger(expected)
    assert [(m["order_id"], m["type"], m.get("status")) for m in messages if m["order_id"] != "o3"] == [
        ("o1", "ack", None), ("o2", "ack", None), ("o1", "fill", "partially_filled"),
        ("o2", "fill", "partially_filled"), ("o1", "fill", "filled"), ("o2", "cancel", None)]
    data = dump_session(messages, header={"venue": "test", "symbol": "X"})
    assert data.startswith(b'{"format":"treasure-live/1"') and data.endswith(b"\n")
    live = ledger_from_messages(parse(data, strict=True).messages)
    assert reconcile(expected, live, Tolerances()).pairs() == []
