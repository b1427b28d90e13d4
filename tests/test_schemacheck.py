"""The schema compilers: fast checks that may reject a valid document but never accept an invalid one."""

from __future__ import annotations

import copy
import random
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from treasure import schemacheck
from treasure.contracts import Contracts
from treasure.schemacheck import compile_predicate, compile_struct, union_decoder
from treasure.workspace import bundle_dir

TRUTH = bundle_dir() / "truth"
CONTRACTS = Contracts(TRUTH)
needs_msgspec = pytest.mark.skipif(not schemacheck.HAVE_MSGSPEC, reason="msgspec is not installed")
FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

IN_A_DEFAULT_RUN = ["event"] + [f"events/{name}" for name in (
    "run_start", "dataset_loaded", "data_gap_detected", "duplicate_timestamp", "intent_emitted", "order_placed",
    "order_filled", "position_updated", "day_end", "run_end")]
# The busy event types of a log: the speed of verify_log rests on these compiling.
BUSY = ("order_placed", "order_filled", "position_updated", "intent_emitted", "day_end", "limit_exceeded")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """Valid documents per schema name, from one real engine run."""
    from treasure.engine import RunRequest, run
    from treasure.workspace import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("schemacheck") / "ws")
    lines = run(RunRequest(workspace=ws, run_id="r")).event_log.read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]
    by_name: dict[str, list[Any]] = {"event": events[:50]}
    for event in events:
        by_name.setdefault(f"events/{event['event_type']}", []).append(event["payload"])
    return by_name


_ODD_VALUES: list[Any] = [None, True, False, 0, -1, 3, 0.0, -0.5, 1.5, 1.0, 1e300, 2**63, 2**64 + 1, -(2**63) - 1,
                          "", "buy", "INFO", "EXEC", "a" * 64, "0" * 64, "x-y", "run_start", "filled", [], [1],
                          ["buy"], {}, {"qty": 1}]


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


def exact(value: Any) -> bytes:
    """A type-exact fingerprint (1 and 1.0 differ), key order aside."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


# --- predicates ------------------------------------------------------------------------------
def test_eventlog_re_exports_the_predicate_compiler():
    from treasure import eventlog

    assert eventlog.compile_predicate is compile_predicate


@pytest.mark.parametrize("name", IN_A_DEFAULT_RUN)
def test_predicates_accept_every_valid_document_seen(samples, name):
    predicate = compile_predicate(CONTRACTS.schema(name), name=name)
    assert samples[name]
    for document in samples[name]:
        assert predicate(document), document


def test_the_envelope_and_busy_event_types_compile_natively():
    for name in ("event", *(f"events/{kind}" for kind in BUSY)):
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


SUBSET = [
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
]


@pytest.mark.parametrize("schema, good, bad", SUBSET)
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


# --- msgspec structs -------------------------------------------------------------------------
def decode(struct: Any, document: bytes) -> tuple[bool, Any]:
    import msgspec

    try:
        return True, msgspec.to_builtins(msgspec.json.decode(document, type=struct))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False, None


def assert_never_wrong(struct: Any, schema: Any, document: bytes) -> bool:
    """If the struct accepts ``document``, orjson parses it to the very same value and jsonschema
    accepts that value. Returns whether the struct accepted."""
    accepted, value = decode(struct, document)
    if accepted:
        parsed = orjson.loads(document)
        assert exact(value) == exact(parsed), document
        assert Draft202012Validator(schema).is_valid(parsed), document
    return accepted


@needs_msgspec
@pytest.mark.parametrize("name", [n for n in IN_A_DEFAULT_RUN if n not in ("event", "events/run_start")])
def test_structs_accept_every_valid_document_seen(samples, name):
    schema = CONTRACTS.schema(name)
    struct = compile_struct(schema, name=name)
    assert struct is not None, name
    for document in samples[name]:
        assert assert_never_wrong(struct, schema, orjson.dumps(document)), document


@needs_msgspec
def test_busy_event_types_compile_to_structs():
    from treasure.eventlog import _chained_envelope, _with_payload

    chained = _chained_envelope(CONTRACTS.schema("event"), typed=True)
    for kind in BUSY:
        schema = _with_payload(chained, CONTRACTS.schema(f"events/{kind}"), keep_event_type=True)
        assert compile_struct(schema, name=kind, tag_field="event_type", tag=kind) is not None, kind


@needs_msgspec
@pytest.mark.parametrize("name", [n for n in IN_A_DEFAULT_RUN if n not in ("event", "events/run_start")])
def test_structs_never_accept_what_jsonschema_rejects(samples, name):
    """The fuzz of the predicates, on JSON bytes: what the struct's decoder accepts, jsonschema
    accepts, and it decodes to exactly what orjson gives (so both tiers see the same values)."""
    schema = CONTRACTS.schema(name)
    struct = compile_struct(schema, name=name)
    assert struct is not None
    rng = random.Random(name)
    rejected = 0
    for _ in range(400):
        if not assert_never_wrong(struct, schema, _dumps(mutate(rng, rng.choice(samples[name])))):
            rejected += 1
    assert rejected > 100


def _dumps(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()  # the stdlib writes integers beyond 64 bits too


STRUCT_SUBSET = [  # schema, JSON texts it must accept, JSON texts it must reject
    ({"type": "integer", "minimum": 0}, ["0", "7"], ["-1", "1.5", "true", '"1"', "null", "1.0"]),
    ({"type": "integer", "exclusiveMinimum": 0.5, "exclusiveMaximum": 3}, ["1", "2"], ["0", "3"]),
    ({"type": "number", "exclusiveMinimum": 0}, ["1", "0.5", "1e2"], ["0", "-0.0", "true", '"1"']),
    ({"type": ["string", "null"], "pattern": "^a+$"}, ['"aa"', "null", '"aaa\\n"'], ['"b"', "1", '["a"]']),
    ({"enum": ["x", "y", None]}, ['"x"', "null"], ['"z"', "1", "true"]),
    ({"type": "string", "enum": ["x", None]}, ['"x"'], ["null", '"y"']),
    ({"const": "k"}, ['"k"', '"\\u006b"'], ['"K"', "0"]),
    ({"type": "array", "items": {"enum": ["p", "q"]}, "minItems": 1, "maxItems": 2}, ['["p"]', '["q","p"]'],
     ["[]", '["r"]', '["p","q","p"]', '"pq"']),
    ({"type": "string", "minLength": 2, "maxLength": 3}, ['"ab"', '"abc"', '"\\ud83d\\ude00x"'], ['"a"', '"abcd"']),
    ({"type": "object", "additionalProperties": False, "required": ["a"],
      "properties": {"a": {"type": "boolean"}, "class": {"type": "null"}, "b-c": {"type": "string"}}},
     ['{"a":true}', '{"a":false,"class":null,"b-c":"s"}', '{"a":true,"a":false}'],
     ["{}", '{"a":1}', '{"a":true,"z":1}', '{"a":true,"class":1}', '{"a":true,"b-c":null}', "[]"]),
]


@needs_msgspec
@pytest.mark.parametrize("schema, good, bad", STRUCT_SUBSET)
def test_struct_subset_agrees_with_jsonschema(schema, good, bad):
    struct = compile_struct(schema)
    assert struct is not None
    validator = Draft202012Validator(schema)
    for text in good:
        assert decode(struct, text.encode())[0] and validator.is_valid(orjson.loads(text)), text
        assert_never_wrong(struct, schema, text.encode())
    for text in bad:
        assert not decode(struct, text.encode())[0], text


@needs_msgspec
@pytest.mark.parametrize("schema", [
    {"type": "object"},                                                   # any members: unbounded
    {"type": "object", "properties": {"a": {"type": "integer"}}},         # open: unknown members skipped
    {"type": "object", "properties": {"a": {}}, "additionalProperties": False},  # any value
    {"type": "array"},
    {"enum": ["x", 1]},
    {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    {"type": "object", "minProperties": 1, "properties": {}, "additionalProperties": False},
    {"type": "number", "maximum": 2**60},                                 # not exact as a double
    {"type": "integer", "minimum": 3, "maximum": 2},
    True,
    False,
])
def test_outside_the_struct_subset_is_none(schema):
    assert compile_struct(schema) is None


@needs_msgspec
def test_a_tagged_struct_checks_its_tag_against_the_schema():
    schema = {"type": "object", "additionalProperties": False, "required": ["t", "x"],
              "properties": {"t": {"type": "string", "pattern": "^[a-z]+$"}, "x": {"type": "integer"}}}
    assert compile_struct(schema, tag_field="t", tag="Bad") is None
    a = compile_struct(schema, name="a", tag_field="t", tag="a")
    b = compile_struct(schema, name="b", tag_field="t", tag="b")
    decoder = union_decoder([a, b])
    assert type(decoder.decode(b'{"t":"b","x":1}')) is b
    for text in (b'{"x":1}', b'{"t":"c","x":1}', b'{"t":"a","x":1,"t":"b"}', b'{"t":"a","x":1,"y":2}'):
        with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)):
            decoder.decode(text)


def test_without_msgspec_nothing_compiles_to_a_struct(monkeypatch):
    monkeypatch.setattr(schemacheck, "msgspec", None)
    assert compile_struct({"type": "integer"}) is None
    assert union_decoder([int, str]) is None


# Numbers and strings as JSON spells them: whatever the struct accepts, orjson reads identically.
SPELLINGS = ["0", "-0", "-0.0", "1E2", "1e-2", "0.1e1", "1.5e3", "18446744073709551616", "9223372036854775807",
             "9223372036854775808", "-9223372036854775809", "1e400", "5e-324", "2.2250738585072011e-308",
             "123456789012345678901234567890.5", '"\\ud800"', '"\\udc00\\ud800"', '"\\ud83d\\ude00"', '"\\u0000"',
             '"\xff"', '"\xed\xa0\x80"', '"\t"', "NaN", "Infinity", "01", "1.", '"\\/"', "true", "null"]


@needs_msgspec
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_odd_spellings_decode_as_orjson_reads_them_or_not_at_all(spelling):
    schema = {"type": "object", "additionalProperties": False, "required": ["n"],
              "properties": {"n": {"type": ["number", "string", "boolean", "null"]}}}
    struct = compile_struct(schema)
    assert struct is not None
    document = b'{"n":' + spelling.encode("utf-8", "surrogatepass") + b"}"
    try:
        orjson.loads(document)
    except orjson.JSONDecodeError:
        assert not decode(struct, document)[0], spelling
    else:
        assert_never_wrong(struct, schema, document)


@needs_msgspec
@FAST
@given(value=st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
                       st.text(), st.booleans(), st.none()))
def test_generated_values_decode_as_orjson_reads_them(value):
    schema = {"type": "object", "additionalProperties": False, "required": ["n"],
              "properties": {"n": {"type": ["number", "string", "boolean", "null"]}}}
    struct = compile_struct(schema)
    assert_never_wrong(struct, schema, _dumps({"n": value}))
