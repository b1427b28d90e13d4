"""Event sealing, the hash chain and the JSONL sink."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treasure.canonical import canonical_bytes
from treasure.events import GENESIS_HASH, EventBus, JsonlSink, MemorySink, hashed_body, seal


def _event(payload):
    return {"category": "SYS", "event_type": "strategy_log", "level": "INFO", "payload": payload,
            "prev": GENESIS_HASH, "run_id": "r1", "seq": 0, "ts_ms": 1}


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers(-(2**53) + 1, 2**53 - 1) | st.floats(allow_nan=False,
                                                                                             allow_infinity=False),
                       max_size=5))
@settings(max_examples=200, deadline=None)
def test_line_is_canonical_and_hash_covers_the_rest(payload):
    event = _event(payload)
    digest, line = seal(event)
    assert line == canonical_bytes({**event, "hash": digest})
    body, stated = hashed_body(line)
    assert stated == digest
    assert hashlib.sha256(body).hexdigest() == digest
    assert body == canonical_bytes(event)


def test_hash_member_inside_payload_does_not_confuse_the_cut():
    event = _event({"hash": "x", "a": ',"hash":"'})
    digest, line = seal(event)
    body, stated = hashed_body(line)
    assert stated == digest and hashlib.sha256(body).hexdigest() == digest



def test_bus_numbers_and_chains_events_and_batches_writes():
    sink = MemorySink()
    bus = EventBus("r1", [sink], batch_size=3)
    for i in range(7):
        bus.emit(i, "SYS", "strategy_log", "INFO", {"i": i})
    assert len(sink.lines) == 6  # two full batches went out, one event still buffered
    bus.flush(durable=True)
    events = [orjson.loads(line) for line in sink.lines]
    assert [e["seq"] for e in events] == list(range(7))
    assert events[0]["prev"] == GENESIS_HASH
    assert all(b["prev"] == a["hash"] for a, b in zip(events, events[1:]))
    assert sink.checkpoints[-1] is True
    assert bus.by_level == {"INFO": 7}


def test_jsonl_sink_refuses_an_existing_log(tmp_path):
    path = tmp_path / "run_x.jsonl"
    path.write_text("old\n")
    with pytest.raises(FileExistsError):
        JsonlSink(path)
    assert path.read_text() == "old\n"
