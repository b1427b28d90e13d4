"""Event log reading and verification: the first broken line named, fast paths never wrong."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator

from pytest_treasure.strategies import BROKEN_EVENT_KINDS, broken_event_streams, event_streams
from treasure.contracts import Contracts
from treasure.errors import EventLogError
from treasure.eventlog import (
    compile_predicate,
    discover_logs,
    event_check,
    read_events,
    verify_log,
    verify_run,
)
from treasure.events import seal
from treasure.workspace import bundle_dir

TRUTH = bundle_dir() / "truth"
CONTRACTS = Contracts(TRUTH)
FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


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
def test_a_real_run_verifies_with_counts_and_parts(tmp_path, run_lines):
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


def test_rotated_parts_verify_as_one_chain_and_a_missing_part_is_named(tmp_path, run_lines):
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
def test_every_corruption_is_named_with_its_code_and_line(tmp_path_factory, contracts, broken):
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
def test_generated_valid_streams_verify_and_read_back(tmp_path_factory, stream):
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
def test_schema_errors_name_the_field(tmp_path, run_lines, field, value, where):
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


def test_missing_and_unexpected_members_are_named(tmp_path, run_lines):
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


def test_crlf_line_endings_are_explained(tmp_path, run_lines):
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"".join(line + b"\r\n" for line in run_lines[:3]))
    with pytest.raises(EventLogError) as info:
        verify_log(path, CONTRACTS)
    assert info.value.code == "EVENTS_CHAIN" and "\\r\\n" in info.value.message


def test_unreadable_inputs_are_coded(tmp_path):
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


# --- compiled predicates: never accept what jsonschema rejects --------------------------------
IN_A_DEFAULT_RUN = ["event"] + [f"events/{name}" for name in (
    "run_start", "dataset_loaded", "data_gap_detected", "duplicate_timestamp", "intent_emitted", "order_placed",
    "order_filled", "position_updated", "day_end", "run_end")]


_ODD_VALUES: list[Any] = [None, True, False, 0, -1, 3, 0.0, -0.5, 1.5, 1.0, 1e300, "", "buy", "INFO", "EXEC",
                          "a" * 64, "0" * 64, "x-y", "run_start", "filled", [], [1], ["buy"], {}, {"qty": 1}]


def mutate(rng: random.Random, valid: Any) -> Any:
    """A valid document with one to three members replaced, removed or added, at any depth."""
    doc = copy.deepcopy(valid)
    for _ in range(rng.randint(1, 3)):
        node = doc
        while isinstance(node, dict) and node and rng.random() < 0.5:
            child = node[rng.choice(sorted(node))]
            if not isinstance(child, dict) or not child:
                break
            node = child
        if not isinstance(node, dict) or not node:
            continue
        key = rng.choice(sorted(node))
        action = rng.choice(["replace", "remove", "add"])
        if action == "replace":
            node[key] = copy.deepcopy(rng.choice(_ODD_VALUES))
        elif action == "remove":
            del node[key]
        else:
            node[rng.choice(["extra", "qty", "zz"])] = copy.deepcopy(rng.choice(_ODD_VALUES))
    return doc


@pytest.fixture(scope="module")
def samples(run_lines) -> dict[str, list[Any]]:
    events = [orjson.loads(line) for line in run_lines]
    by_name: dict[str, list[Any]] = {"event": events[:50]}
    for event in events:
        by_name.setdefault(f"events/{event['event_type']}", []).append(event["payload"])
    return by_name


@pytest.mark.parametrize("name", IN_A_DEFAULT_RUN)
def test_predicates_accept_every_valid_document_seen(samples, name):
    predicate = compile_predicate(CONTRACTS.schema(name), name=name)
    assert samples[name]
    for document in samples[name]:
        assert predicate(document), document


def test_the_envelope_and_busy_event_types_compile_natively():
    # The speed of verify_log rests on these: they must stay within the compiled subset.
    for name in ("event", "events/order_placed", "events/order_filled", "events/position_updated",
                 "events/intent_emitted", "events/day_end", "events/limit_exceeded"):
        assert compile_predicate(CONTRACTS.schema(name), name=name).source is not None, name


@pytest.mark.parametrize("name", IN_A_DEFAULT_RUN)
def test_predicates_never_accept_what_jsonschema_rejects(samples, name):
    """A seeded fuzz: 400 mutations of valid documents per schema; whatever the fast predicate
    accepts, jsonschema must accept too (rejecting more is allowed: it only costs time)."""
    valid = samples[name]
    schema = CONTRACTS.schema(name)
    predicate, validator = compile_predicate(schema, name=name), Draft202012Validator(schema)
    rng = random.Random(name)
    rejected = 0
    for _ in range(400):
        document = mutate(rng, rng.choice(valid))
        if predicate(document):
            assert validator.is_valid(document), document
        else:
            rejected += 1
    assert rejected > 100, "the mutations should mostly break the document"


@pytest.mark.parametrize("schema, good, bad", [
    ({"type": "integer", "minimum": 0}, [0, 7], [-1, 1.5, True, "1", None]),
    ({"type": ["string", "null"], "pattern": "^a+$"}, ["aa", None, "aaa\n"], ["b", 1, ["a"]]),
    ({"enum": ["x", 1, None]}, ["x", 1, None], [True, "y", [1], {"x": 1}]),
    ({"const": "k"}, ["k"], ["K", 0]),
    ({"type": "object", "properties": {"a": {"type": "number", "exclusiveMaximum": 5}}, "required": ["a"],
      "additionalProperties": {"type": "string"}}, [{"a": 1}, {"a": 4.5, "z": "s"}],
     [{}, {"a": 5}, {"a": 1, "z": 2}, {"a": "1"}]),
    ({"type": "array", "items": {"enum": ["p", "q"]}, "minItems": 1, "maxItems": 2}, [["p"], ["q", "p"]],
     [[], ["r"], ["p", "q", "p"], "pq"]),
    ({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "abc"], ["a", "abcd"]),
    ({"type": "object", "minProperties": 1, "properties": {"o": {"type": "boolean"}}}, [{"o": True}, {"x": 1}],
     [{}, {"o": 1}]),
    (False, [], [1, None]),
])
def test_compiled_subset_agrees_with_jsonschema(schema, good, bad):
    predicate = compile_predicate(schema)
    validator = Draft202012Validator(schema if isinstance(schema, dict) else {"not": {}})
    for value in good:
        assert predicate(value) and validator.is_valid(value), value
    for value in bad:
        assert not predicate(value) and not validator.is_valid(value), value


def test_unsupported_keywords_fall_back_to_fastjsonschema():
    predicate = compile_predicate({"anyOf": [{"type": "integer"}, {"type": "string"}]})
    assert predicate.source is None
    assert predicate(1) and predicate("a") and not predicate(1.5)


def _seal_bytes(body: bytes) -> tuple[str, bytes]:
    """Seal the raw bytes of an event without its hash (they need not be canonical)."""
    import hashlib

    digest = hashlib.sha256(body).hexdigest()
    cut = body.index(b',"level":')
    return digest, body[:cut] + b',"hash":"' + digest.encode() + b'"' + body[cut:]


def test_a_false_alarm_of_the_fast_path_is_not_an_error(tmp_path, run_lines):
    """``3.0`` where the schema says integer is valid JSON Schema. The fast path trusts exact types
    only and says "not proven"; jsonschema then accepts it, and so does the verifier."""
    from treasure.canonical import canonical_bytes

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
