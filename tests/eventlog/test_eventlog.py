"""Event log reading and verification: the first broken line named, fast paths never wrong.

Most tests run on both tiers of verify_log (``tier``: the msgspec tier and the pure path), and
the differential tests below demand the very same summary or error from both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from pytest_treasure.strategies import BROKEN_EVENT_KINDS, broken_event_streams, event_streams
from treasure import eventlog, schemacheck
from treasure.canonical import canonical_bytes
from treasure.contracts import Contracts
from treasure.errors import EventLogError
from treasure.eventlog import discover_logs, event_check, read_events, verify_log, verify_run
from treasure.events import seal
from treasure.workspace import bundle_dir

TRUTH = bundle_dir() / "truth"
CONTRACTS = Contracts(TRUTH)
FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
needs_msgspec = pytest.mark.skipif(not schemacheck.HAVE_MSGSPEC, reason="msgspec is not installed")


@pytest.fixture(params=[pytest.param(True, id="msgspec", marks=needs_msgspec), pytest.param(False, id="pure")])
def tier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """verify_log on the msgspec tier (even for small files) or on the pure path."""
    monkeypatch.setattr(eventlog, "USE_MSGSPEC", request.param)
    monkeypatch.setattr(eventlog, "MSGSPEC_MIN_BYTES", 0)
    return request.param


def outcome(path: Path, contracts: Contracts | None = CONTRACTS, **options: Any) -> dict[str, Any]:
    """What verify_log says of a log, as plain data: the summary, or the error."""
    try:
        return {"summary": dataclasses.asdict(verify_log(path, contracts, **options))}
    except EventLogError as exc:
        return {"error": exc.to_dict()}


def both_tiers(path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> dict[str, Any]:
    """The outcome on the msgspec tier, asserted equal to the pure path's."""
    monkeypatch.setattr(eventlog, "MSGSPEC_MIN_BYTES", 0)
    monkeypatch.setattr(eventlog, "USE_MSGSPEC", True)
    fast = outcome(path, **options)
    monkeypatch.setattr(eventlog, "USE_MSGSPEC", False)
    pure = outcome(path, **options)
    assert fast == pure
    return fast


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def chain(events: list[dict[str, Any]]) -> list[bytes]:
    prev, lines = "0" * 64, []
    for event in events:
        body = {k: v for k, v in event.items() if k != "hash"}
        body["prev"] = prev
        prev, line = seal(body)
        lines.append(line)
    return lines


@pytest.fixture(scope="module")
def run_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    from treasure.engine import RunRequest, run
    from treasure.workspace import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("eventlog") / "ws")
    return run(RunRequest(workspace=ws, run_id="r")).event_log.read_bytes().splitlines()


# --- verify_log ----------------------------------------------------------------------------
def test_a_real_run_verifies_with_counts_and_parts(tmp_path, run_lines, tier):
    path = write(tmp_path / "run_r.jsonl", run_lines)
    collected: list[dict[str, Any]] = []
    seen: list[int] = []
    summary = verify_log(path, CONTRACTS, run_id="r", collect=collected, on_event=lambda e, s, n: seen.append(n))
    assert summary.events == len(run_lines) == len(collected) == len(seen)
    assert seen == list(range(1, len(run_lines) + 1))
    assert summary.bytes == path.stat().st_size
    assert summary.by_type["run_start"] == summary.by_type["run_end"] == 1
    assert sum(summary.by_level.values()) == sum(summary.by_category.values()) == summary.events
    assert summary.last_hash == collected[-1]["hash"]
    assert summary.first_ts_ms == collected[0]["ts_ms"] and summary.last_ts_ms == collected[-1]["ts_ms"]
    assert [(p.events, p.bytes) for p in summary.parts] == [(summary.events, summary.bytes)]
    # collect/on_event get orjson's dicts, so they run the pure path; without them, the same summary
    assert dataclasses.asdict(verify_log(path, CONTRACTS, run_id="r")) == dataclasses.asdict(summary)


def test_rotated_parts_verify_as_one_chain_and_a_missing_part_is_named(tmp_path, run_lines, tier):
    logs = tmp_path / "logs"
    logs.mkdir()
    write(logs / "run_r.jsonl.1", run_lines[:100])
    write(logs / "run_r.jsonl.2", run_lines[100:200])
    write(logs / "run_r.jsonl", run_lines[200:])
    (logs / "run_r.jsonl.bak").write_text("x")
    (logs / "README").write_text("x")
    found, ignored = discover_logs(logs)
    assert [(f.run_id, [p.name for p in f.paths]) for f in found] == \
        [("r", ["run_r.jsonl.1", "run_r.jsonl.2", "run_r.jsonl"])]
    assert [p.name for p in ignored] == ["README", "run_r.jsonl.bak"]
    summary = verify_run(found[0], CONTRACTS)
    assert [p.events for p in summary.parts] == [100, 100, len(run_lines) - 200]
    (logs / "run_r.jsonl.1").rename(logs / "run_r.jsonl.3")
    found, _ = discover_logs(logs)
    with pytest.raises(EventLogError) as info:
        verify_run(found[0], CONTRACTS)
    assert info.value.code == "EVENTS_PART_MISSING" and info.value.path.endswith("run_r.jsonl.1")


@pytest.mark.parametrize("contracts", [CONTRACTS, None], ids=["contracts", "structure-only"])
@FAST
@given(broken=broken_event_streams())
def test_every_corruption_is_named_with_its_code_and_line(tmp_path_factory, contracts, broken, tier):
    if contracts is None and broken.kind == "schema":
        return  # a bad level is a schema matter only
    path = broken.write(tmp_path_factory.mktemp("broken") / "run.jsonl")
    with pytest.raises(EventLogError) as info:
        verify_log(path, contracts)
    assert (info.value.code, info.value.line) == (broken.code, broken.line), broken.kind
    if broken.line is not None:
        assert info.value.path == str(path)


def test_the_corruption_kinds_cover_the_codes():
    assert set(BROKEN_EVENT_KINDS.values()) == {"EVENTS_CHAIN", "EVENTS_SEQ", "EVENTS_RUN_ID", "EVENTS_TIME",
                                                "EVENTS_SCHEMA", "EVENTS_JSON", "EVENTS_TRUNCATED", "EVENTS_EMPTY"}


@FAST
@given(stream=event_streams(max_events=30))
def test_generated_valid_streams_verify_and_read_back(tmp_path_factory, stream, tier):
    path = write(tmp_path_factory.mktemp("valid") / "run.jsonl", list(stream.lines))
    assert verify_log(path, CONTRACTS).events == len(stream.lines)
    assert list(read_events(path)) == [orjson.loads(line) for line in stream.lines]


@pytest.mark.parametrize("field, value, where", [
    ("payload", {"side": "hold"}, "payload.side"),
    ("level", "LOUD", "level"),
    ("category", "MISC", "category"),
    ("event_type", "no_such_type", "event_type"),
    ("ts_ms", -5, "ts_ms"),
    ("seq", "0", "seq"),
    ("run_id", "../etc", "run_id"),
])
def test_schema_errors_name_the_field(tmp_path, run_lines, field, value, where, tier):
    events = [orjson.loads(line) for line in run_lines[:20]]
    index = next(i for i, e in enumerate(events) if e["event_type"] == "order_placed")
    if field in ("seq", "run_id", "ts_ms"):
        index = 0  # the first event is held to the whole envelope
    if field == "payload":
        events[index]["payload"].update(value)
    else:
        events[index][field] = value
    path = write(tmp_path / "run.jsonl", chain(events))
    with pytest.raises(EventLogError) as info:
        verify_log(path, CONTRACTS)
    assert (info.value.code, info.value.line, info.value.field) == ("EVENTS_SCHEMA", index + 1, where)


def test_missing_and_unexpected_members_are_named(tmp_path, run_lines, tier):
    events = [orjson.loads(line) for line in run_lines[:5]]
    del events[2]["payload"][next(iter(events[2]["payload"]))]
    path = write(tmp_path / "a.jsonl", chain(events))
    with pytest.raises(EventLogError) as info:
        verify_log(path, CONTRACTS)
    assert info.value.field.startswith("payload.") and "required" in info.value.message
    events = [orjson.loads(line) for line in run_lines[:5]]
    events[3]["extra"] = 1
    path = write(tmp_path / "b.jsonl", chain(events))
    with pytest.raises(EventLogError) as info:
        verify_log(path, CONTRACTS)
    assert (info.value.line, info.value.field) == (4, "extra")


def test_crlf_line_endings_are_explained(tmp_path, run_lines, tier):
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"".join(line + b"\r\n" for line in run_lines[:3]))
    with pytest.raises(EventLogError) as info:
        verify_log(path, CONTRACTS)
    assert info.value.code == "EVENTS_CHAIN" and "\\r\\n" in info.value.message


def test_unreadable_inputs_are_coded(tmp_path, tier):
    with pytest.raises(EventLogError) as info:
        verify_log(tmp_path / "absent.jsonl", CONTRACTS)
    assert info.value.code == "RUN_UNKNOWN"
    with pytest.raises(EventLogError) as info:
        verify_log(tmp_path, CONTRACTS)
    assert info.value.code == "EVENTS_JSON" and "directory" in info.value.message
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(EventLogError) as info:
        verify_log(tmp_path / "empty.jsonl", CONTRACTS)
    assert info.value.code == "EVENTS_EMPTY"


def test_read_events_drops_only_a_torn_tail(tmp_path, run_lines):
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"\n".join(run_lines[:4]) + b"\n" + run_lines[4][:30])
    assert len(list(read_events(path))) == 4
    with pytest.raises(EventLogError) as info:
        list(read_events(path, tolerate_torn_tail=False))
    assert (info.value.code, info.value.line) == ("EVENTS_TRUNCATED", 5)
    path.write_bytes(b"\n".join(run_lines[:2]) + b"\n{oops\n" + run_lines[3] + b"\n")
    with pytest.raises(EventLogError) as info:
        list(read_events(path))
    assert (info.value.code, info.value.line) == ("EVENTS_JSON", 3)


def _seal_bytes(body: bytes) -> tuple[str, bytes]:
    """Seal the raw bytes of an event without its hash (they need not be canonical)."""
    digest = hashlib.sha256(body).hexdigest()
    cut = body.index(b',"level":')
    return digest, body[:cut] + b',"hash":"' + digest.encode() + b'"' + body[cut:]


def test_a_false_alarm_of_the_fast_path_is_not_an_error(tmp_path, run_lines, tier):
    """``3.0`` where the schema says integer is valid JSON Schema. The fast path trusts exact types
    only and says "not proven"; jsonschema then accepts it, and so does the verifier."""
    events = [orjson.loads(line) for line in run_lines[:6]]
    index = next(i for i, e in enumerate(events) if "bar_idx" in e["payload"])
    prev, lines = "0" * 64, []
    for i, event in enumerate(events):
        body = {k: v for k, v in event.items() if k != "hash"}
        body["prev"] = prev
        raw = canonical_bytes(body)
        if i == index:
            raw = raw.replace(b'"bar_idx":%d' % event["payload"]["bar_idx"],
                              b'"bar_idx":%d.0' % event["payload"]["bar_idx"])
        prev, line = _seal_bytes(raw)
        lines.append(line)
    path = write(tmp_path / "run.jsonl", lines)
    fast = event_check(CONTRACTS).event(events[index]["event_type"])
    assert fast is not None and not fast(orjson.loads(lines[index]))
    assert verify_log(path, CONTRACTS).events == 6


# --- the msgspec tier and the pure path agree --------------------------------------------------
@needs_msgspec
@FAST
@given(broken=broken_event_streams())
def test_both_tiers_name_every_corruption_alike(tmp_path_factory, monkeypatch, broken):
    path = broken.write(tmp_path_factory.mktemp("broken") / "run.jsonl")
    assert both_tiers(path, monkeypatch)["error"]["code"] == broken.code


@needs_msgspec
@FAST
@given(stream=event_streams(max_events=40))
def test_both_tiers_summarise_valid_streams_alike(tmp_path_factory, monkeypatch, stream):
    path = write(tmp_path_factory.mktemp("valid") / "run.jsonl", list(stream.lines))
    assert both_tiers(path, monkeypatch)["summary"]["events"] == len(stream.lines)


@needs_msgspec
def test_the_msgspec_tier_takes_every_line_it_can(tmp_path, run_lines, monkeypatch):
    """Only the first line and the types outside the struct subset go to the pure path, and only
    in a file big enough to pay for building the decoder."""
    decoder = event_check(CONTRACTS).decoder
    assert decoder is not None
    in_union = {struct.__struct_config__.tag for struct in decoder.type.__args__}
    assert {"order_placed", "order_filled", "position_updated", "intent_emitted", "day_end"} <= in_union
    path = write(tmp_path / "run_r.jsonl", run_lines)
    pure_lines, original = [], eventlog._Verifier.pure_lines

    def spy(self, lines, *args):
        lines = list(lines)
        pure_lines.extend(lines)
        return original(self, lines, *args)

    monkeypatch.setattr(eventlog._Verifier, "pure_lines", spy)
    monkeypatch.setattr(eventlog, "USE_MSGSPEC", True)
    monkeypatch.setattr(eventlog, "MSGSPEC_MIN_BYTES", path.stat().st_size + 1)
    assert verify_log(path, CONTRACTS).events == len(run_lines)
    assert len(pure_lines) == len(run_lines), "a small file takes the pure path"
    pure_lines.clear()
    monkeypatch.setattr(eventlog, "MSGSPEC_MIN_BYTES", path.stat().st_size)
    assert verify_log(path, CONTRACTS).events == len(run_lines)
    outside = [line for line in run_lines[1:] if orjson.loads(line)["event_type"] not in in_union]
    assert len(pure_lines) == 1 + len(outside) < len(run_lines) / 10


def _sub(pattern: bytes, replacement: bytes) -> Callable[[bytes], bytes]:
    def edit(raw: bytes) -> bytes:
        edited = re.sub(pattern, replacement, raw, count=1)
        assert edited != raw, pattern
        return edited

    return edit


# (event type to edit, edit of its canonical bytes before sealing, expected code or None if valid)
ODD_LINES = {
    "integral float for an integer": ("order_placed", _sub(rb'"bar_idx":(\d+)', rb'"bar_idx":\1.0'), None),
    "integer beyond 64 bits": ("position_updated", _sub(rb'"cash":[^,}]+', b'"cash":18446744073709551617'), None),
    "integer beyond int64": ("order_placed", _sub(rb'"bar_idx":\d+', b'"bar_idx":9223372036854775808'), None),
    "integral float ts_ms": ("order_filled", _sub(rb'"ts_ms":(\d+)', rb'"ts_ms":\1.0'), None),
    "exponent": ("position_updated", _sub(rb'"realized_pnl":[^,}]+', b'"realized_pnl":1E2'), None),
    "negative zero": ("position_updated", _sub(rb'"realized_pnl":[^,}]+', b'"realized_pnl":-0.0'), None),
    "duplicate member, last valid": ("order_placed", _sub(rb'"side":', b'"side":"hold","side":'), None),
    "duplicate member, last invalid": ("order_placed", _sub(rb'"side":"(\w+)"', rb'"side":"\1","side":"hold"'),
                                       "EVENTS_SCHEMA"),
    "duplicate event_type": ("order_filled", _sub(rb'"event_type":', b'"event_type":"order_placed","event_type":'),
                             None),
    "escaped event_type": ("order_filled", _sub(rb'"order_filled"', rb'"order\\u005ffilled"'), None),
    "escaped category": ("order_filled", _sub(rb'"EXEC"', rb'"\\u0045XEC"'), None),
    "lone surrogate": ("order_placed", _sub(rb'"adapter":"\w+"', rb'"adapter":"\\ud800"'), "EVENTS_JSON"),
    "invalid UTF-8": ("order_placed", _sub(rb'"adapter":"\w+"', b'"adapter":"\xff"'), "EVENTS_JSON"),
    "unknown event type": ("order_placed", _sub(rb'"order_placed"', b'"order_teleported"'), "EVENTS_SCHEMA"),
    "unexpected payload member": ("order_filled", _sub(rb'"payload":\{', b'"payload":{"zz":1,'), "EVENTS_SCHEMA"),
    "unexpected envelope member": ("order_filled", _sub(rb'"payload":', b'"zz":1,"payload":'), "EVENTS_SCHEMA"),
    "bool for a number": ("position_updated", _sub(rb'"cash":[^,}]+', b'"cash":true'), "EVENTS_SCHEMA"),
    "deeply nested payload": ("order_placed", _sub(rb'"adapter":"\w+"', b'"adapter":' + b"[" * 1100 + b"]" * 1100),
                              "EVENTS_JSON"),
    "whitespace inside": ("order_placed", _sub(rb'"qty":', b'"qty" :  '), None),
}


@needs_msgspec
@pytest.mark.parametrize("case", ODD_LINES)
def test_odd_lines_get_the_same_verdict_on_both_tiers(tmp_path, run_lines, monkeypatch, case):
    """Lines a canonical writer never produces, sealed so the chain holds: the tiers agree."""
    event_type, edit, expected = ODD_LINES[case]
    events = [orjson.loads(line) for line in run_lines[:40]]
    index = [i for i, e in enumerate(events) if e["event_type"] == event_type][1]
    prev, lines = "0" * 64, []
    for i, event in enumerate(events):
        body = {k: v for k, v in event.items() if k != "hash"}
        body["prev"] = prev
        raw = canonical_bytes(body)
        prev, line = _seal_bytes(edit(raw) if i == index else raw)
        lines.append(line)
    result = both_tiers(write(tmp_path / "run.jsonl", lines), monkeypatch)
    if expected is None:
        assert result["summary"]["events"] == len(lines), result
    else:
        assert (result["error"]["code"], result["error"]["line"]) == (expected, index + 1), result


@needs_msgspec
@pytest.mark.parametrize("tail", [b" ", b"\r", b""])
def test_a_torn_last_line_is_truncated_even_if_it_passes_every_check(tmp_path, run_lines, monkeypatch, tail):
    # The verifier hashes a line without its last byte (the newline): a last line ending in a
    # blank instead would pass the chain. Only the missing newline tells.
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in run_lines[:-1]) + run_lines[-1][: len(run_lines[-1])
                                                                                          - (not tail)] + tail)
    error = both_tiers(path, monkeypatch)["error"]
    assert (error["code"], error["line"]) == ("EVENTS_TRUNCATED", len(run_lines))


def test_without_msgspec_the_pure_path_verifies(tmp_path, run_lines, monkeypatch):
    monkeypatch.setattr(schemacheck, "msgspec", None)
    contracts = Contracts(TRUTH)  # its checks are compiled afresh, without msgspec
    assert event_check(contracts).decoder is None
    path = write(tmp_path / "run.jsonl", run_lines)
    assert outcome(path, contracts)["summary"]["events"] == len(run_lines)
    broken = write(tmp_path / "broken.jsonl", run_lines[:3] + run_lines[4:])
    assert outcome(broken, contracts)["error"]["code"] == "EVENTS_SEQ"
