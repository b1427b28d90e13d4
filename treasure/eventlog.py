"""Reading and verifying event logs: streaming, flat memory, the first broken line named.

A log may be split into parts by rotation (``run_<id>.jsonl.1``, ``.2``, ... then the live
``run_<id>.jsonl``); the hash chain and ``seq`` simply continue across them, so verification takes
the parts in order as one stream.

Why it is fast (see bench/events_bench.py and docs/verification.md): the verifier's floor is
parsing every line with orjson, and everything else is kept small next to it.

* Schemas are compiled once into plain Python predicates (:func:`compile_predicate`): generated
  functions of ``type(x) is ...`` tests, one ``dict.keys()`` comparison per closed object and
  memoised regexes; per event type, envelope and payload make one function. A predicate is
  *conservative*: it may reject a valid document but never accepts an invalid one, and a rejection
  is re-checked with ``jsonschema`` both to avoid a false alarm and to name the precise field.
* What the chain checks prove is not validated again: after the first event (which meets the
  whole envelope schema), ``run_id``, ``seq``, ``prev`` and ``hash`` are compared for equality
  with known-good values instead (see :func:`_chained_envelope`).
* The hash covers the raw line: it is recomputed over the bytes as read, with the ``hash`` member
  cut out (see :func:`treasure.events.hashed_body`), never by re-serialising the event.
* Lines come from a 1 MiB buffered reader, one at a time: memory does not grow with the log.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import fastjsonschema
import orjson

from treasure.contracts import Contracts, error_field, first_error
from treasure.errors import EventLogError
from treasure.events import GENESIS_HASH

__all__ = [
    "EventCheck",
    "LogFiles",
    "LogSummary",
    "PartSummary",
    "compile_predicate",
    "discover_logs",
    "event_check",
    "iter_lines",
    "read_events",
    "summary_counts",
    "verify_log",
    "verify_run",
]

_READ_BUFFER = 1 << 20
_HASH_KEY = b',"hash":"'
_HASH_MEMBER_LEN = len(_HASH_KEY) + 64 + 1  # ,"hash":"<64 hex>"
_ENVELOPE_KEYS = ("category", "event_type", "hash", "level", "payload", "prev", "run_id", "seq", "ts_ms")
_LOG_NAME = re.compile(r"run_(?P<run_id>[A-Za-z0-9][A-Za-z0-9_.-]{0,63}?)\.jsonl(?:\.(?P<part>[0-9]+))?")


# --------------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------------
@dataclass
class PartSummary:
    """One file of a log (a rotated part or the live file)."""

    path: str
    events: int = 0
    bytes: int = 0


@dataclass
class LogSummary:
    """What a verified log holds: enough for a report or a checklist without re-reading it."""

    run_id: str | None = None
    events: int = 0
    bytes: int = 0
    first_ts_ms: int | None = None
    last_ts_ms: int | None = None
    last_hash: str = GENESIS_HASH
    by_category: Counter[str] = field(default_factory=Counter)
    by_level: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    parts: list[PartSummary] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# schemas compiled to conservative predicates
# --------------------------------------------------------------------------------------------
class _Unsupported(Exception):
    """The schema uses a keyword the fast compiler does not handle; use fastjsonschema instead."""


_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$anchor", "$defs", "title", "description",
                          "examples", "default", "deprecated", "readOnly", "writeOnly", "format"})
_SUPPORTED = frozenset({"type", "enum", "const", "properties", "required", "additionalProperties",
                        "minProperties", "maxProperties", "minimum", "maximum", "exclusiveMinimum",
                        "exclusiveMaximum", "minLength", "maxLength", "pattern", "items", "minItems",
                        "maxItems"})
# Tests that a value is of a JSON type, on exact builtin types only: orjson produces nothing else,
# and anything unusual (an integral float for "integer", a subclass) is left to jsonschema.
_IS_TYPE = {
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
    "string": "type({v}) is str",
    "integer": "type({v}) is int",
    "number": "type({v}) in _NUM",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
}
_NOT_TYPE = {
    "object": "type({v}) is not dict",
    "array": "type({v}) is not list",
    "string": "type({v}) is not str",
    "integer": "type({v}) is not int",
    "number": "type({v}) not in _NUM",
    "boolean": "type({v}) is not bool",
    "null": "{v} is not None",
}
_KIND_OF_TYPE = {"integer": "number", "number": "number", "string": "string", "object": "object",
                 "array": "array", "boolean": "boolean", "null": "null"}
_GUARD = {"number": _IS_TYPE["number"], "string": _IS_TYPE["string"], "object": _IS_TYPE["object"],
          "array": _IS_TYPE["array"]}
_SCALARS = (str, int, float, bool, type(None))
_KIND_OF_VALUE = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
_PATTERN_MEMO = 1024

Body = Callable[[str, int], None]


def _pattern_miss(regex: re.Pattern[str], memo: set[str], value: str) -> bool:
    """True if ``value`` does not match; matches are memoised (the memo restarts when full)."""
    if regex.search(value) is None:
        return True
    if len(memo) >= _PATTERN_MEMO:
        memo.clear()
    memo.add(value)
    return False


class _Codegen:
    """Emits the body of ``def check(x) -> bool`` for a schema in a subset of draft 2020-12.

    Each schema becomes a list of *failure conditions* on one value (joined with ``or``, in an
    order where the type test guards the rest) plus statements for nested values. A value that
    needs only one test is not even bound to a local: ``if type(x['fee']) not in _NUM: ...``.
    The function body sits in ``try/except TypeError`` (free in CPython 3.11+), so membership
    tests need no hashability guard: an unhashable value is simply "not proven valid".
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "_JSON_TYPES": frozenset({dict, list, str, int, float, bool, type(None)}),
            "_NUM": frozenset({int, float}),
            "_SCALARS": frozenset(_SCALARS),
            "_MISSING": object(),
            "_pattern_miss": _pattern_miss,
        }
        self._counter = 0

    def fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def const(self, value: Any, prefix: str = "C") -> str:
        name = self.fresh(prefix)
        self.names[name] = value
        return name

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    # one value ---------------------------------------------------------------------------------
    def check(self, schema: Any, expr: str, depth: int, *, bound: bool = False) -> None:
        """Emit the checks of the value of ``expr`` (a local name if ``bound``, else e.g. x['k'])."""
        conds, bodies = self.plan(schema)
        self._emit_plan(conds, bodies, expr, depth, bound=bound)

    def _emit_plan(self, conds: list[str], bodies: list[tuple[str | None, Body]], expr: str, depth: int, *,
                   bound: bool) -> None:
        if not conds and not bodies:
            return
        joined = " or ".join(conds)
        if not bound and not bodies and joined.count("{v}") == 1:
            self.emit(depth, f"if {joined.format(v=expr)}: return False")
            return
        name = expr
        if not bound:
            name = self.fresh("x")
            self.emit(depth, f"{name} = {expr}")
        if conds:
            self.emit(depth, f"if {joined.format(v=name)}: return False")
        for guard, body in bodies:
            if guard is None:
                body(name, depth)
            else:
                self.emit(depth, f"if {guard.format(v=name)}:")
                body(name, depth + 1)

    def plan(self, schema: Any, *, typed: bool = False) -> tuple[list[str], list[tuple[str | None, Body]]]:
        """Failure conditions (templates over ``{v}``) and nested-statement emitters of a schema.

        ``typed``: the caller already proved the value has one of the schema's ``type``s.
        """
        if schema is True:
            return [], []
        if schema is False:
            return ["True"], []
        if not isinstance(schema, Mapping):
            raise _Unsupported("schema is not an object")
        unknown = [k for k in schema if k not in _SUPPORTED and k not in _ANNOTATIONS and not k.startswith("x-")]
        if unknown:
            raise _Unsupported(", ".join(sorted(unknown)))
        conds: list[str] = []
        kinds: set[str] | None
        if "type" in schema:
            kinds = self._types(schema["type"], [] if typed else conds)
            self._enum(schema, conds)
        elif "enum" in schema or "const" in schema:
            kinds = self._enum(schema, conds)  # the members' types bound the value's type
        else:
            conds.append("type({v}) not in _JSON_TYPES")
            kinds = None
        bodies: list[tuple[str | None, Body]] = []
        for kind, planner in (("number", self._number), ("string", self._string),
                              ("object", self._object), ("array", self._array)):
            if kinds is not None and kind not in kinds:
                continue  # the type test already excludes this kind: its keywords cannot apply
            kind_conds, body = planner(schema)
            exact = kinds == {kind}
            if kind_conds:
                joined = " or ".join(kind_conds)
                conds.append(joined if exact else f"({_GUARD[kind]} and ({joined}))")
            if body is not None:
                bodies.append((None if exact else _GUARD[kind], body))
        return conds, bodies

    def _types(self, declared: Any, conds: list[str]) -> set[str]:
        names = [declared] if isinstance(declared, str) else list(declared)
        if not names or any(name not in _IS_TYPE for name in names):
            raise _Unsupported(f"type {declared!r}")
        if len(names) == 1:
            conds.append(_NOT_TYPE[names[0]])
        else:
            conds.append("not (" + " or ".join(_IS_TYPE[name] for name in names) + ")")
        return {_KIND_OF_TYPE[name] for name in names}

    def _enum(self, schema: Mapping[str, Any], conds: list[str]) -> set[str] | None:
        members: list[Any] | None = None
        if "enum" in schema:
            members = list(schema["enum"])
        if "const" in schema:
            members = [schema["const"]] if members is None else [m for m in members if _same(m, schema["const"])]
        if members is None:
            return None
        if any(type(m) not in _SCALARS for m in members):
            raise _Unsupported("enum/const with containers")
        if members and all(type(m) is str for m in members):
            # A non-string never equals a string member (jsonschema's equality agrees).
            conds.append(f"{{v}} not in {self.const(frozenset(members), 'E')}")
        else:
            # (type, value) pairs keep 1, 1.0 and True apart; a mismatch only costs the slow path.
            conds.append(f"(type({{v}}), {{v}}) not in {self.const(frozenset((type(m), m) for m in members), 'E')}")
        return {_KIND_OF_VALUE[type(m)] for m in members}

    def _number(self, schema: Mapping[str, Any]) -> tuple[list[str], Body | None]:
        conds = []
        for key, op in (("minimum", "<"), ("exclusiveMinimum", "<="), ("maximum", ">"),
                        ("exclusiveMaximum", ">=")):
            if key in schema:
                bound = schema[key]
                if type(bound) not in (int, float):
                    raise _Unsupported(f"{key} {bound!r}")
                conds.append(f"{{v}} {op} {self.const(bound, 'N')}")
        return conds, None

    def _string(self, schema: Mapping[str, Any]) -> tuple[list[str], Body | None]:
        conds = []
        for key, op in (("minLength", "<"), ("maxLength", ">")):
            if key in schema:
                conds.append(f"len({{v}}) {op} {int(schema[key])}")
        if "pattern" in schema:
            regex = self.const(re.compile(schema["pattern"]), "P")
            memo = self.const(set(), "M")
            conds.append(f"({{v}} not in {memo} and _pattern_miss({regex}, {memo}, {{v}}))")
        return conds, None

    def _object(self, schema: Mapping[str, Any]) -> tuple[list[str], Body | None]:
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = list(dict.fromkeys(schema.get("required") or ()))
        extra = schema.get("additionalProperties", True)
        conds = []
        for key, op in (("minProperties", "<"), ("maxProperties", ">")):
            if key in schema:
                conds.append(f"len({{v}}) {op} {int(schema[key])}")
        known = self.const(frozenset(props), "K")
        if extra is False and set(required) == set(props):
            conds.append(f"{{v}}.keys() != {known}")  # a closed object, every member required
        else:
            if required:
                conds.append(f"not {{v}}.keys() >= {self.const(frozenset(required), 'R')}")
            if extra is False:
                conds.append(f"not {{v}}.keys() <= {known}")
        checked = [(name, sub) for name, sub in props.items() if not _trivial(sub)]
        open_schema = extra not in (True, False) and not _trivial(extra)
        if not checked and not open_schema:
            return conds, None

        def body(var: str, depth: int) -> None:
            if open_schema:
                key, item = self.fresh("k"), self.fresh("x")
                self.emit(depth, f"for {key}, {item} in {var}.items():")
                self.emit(depth + 1, f"if {key} in {known}: continue")
                self.check(extra, item, depth + 1, bound=True)
            for name, sub in checked:
                if name in required:
                    self.check(sub, f"{var}[{name!r}]", depth)
                    continue
                item = self.fresh("x")
                self.emit(depth, f"{item} = {var}.get({name!r}, _MISSING)")
                self.emit(depth, f"if {item} is not _MISSING:")
                start = len(self.lines)
                self.check(sub, item, depth + 1, bound=True)
                if len(self.lines) == start:
                    self.emit(depth + 1, "pass")

        return conds, body

    def _array(self, schema: Mapping[str, Any]) -> tuple[list[str], Body | None]:
        conds = []
        for key, op in (("minItems", "<"), ("maxItems", ">")):
            if key in schema:
                conds.append(f"len({{v}}) {op} {int(schema[key])}")
        items = schema.get("items", True)
        if _trivial(items):
            return conds, None

        def body(var: str, depth: int) -> None:
            item = self.fresh("x")
            self.emit(depth, f"for {item} in {var}:")
            start = len(self.lines)
            self.check(items, item, depth + 1, bound=True)
            if len(self.lines) == start:
                self.emit(depth + 1, "pass")

        return conds, body


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _trivial(schema: Any) -> bool:
    """True for a schema that accepts everything (``true`` or annotations only)."""
    if schema is True:
        return True
    return isinstance(schema, Mapping) and all(k in _ANNOTATIONS or k.startswith("x-") for k in schema)


def _strip_annotations(schema: Any) -> Any:
    if isinstance(schema, Mapping):
        return {k: _strip_annotations(v) for k, v in schema.items()
                if k not in ("$schema", "$id") and not k.startswith("x-")}
    if isinstance(schema, list):
        return [_strip_annotations(v) for v in schema]
    return schema


def compile_predicate(schema: Any, *, name: str = "check") -> Callable[[Any], bool]:
    """Compile a JSON Schema into a fast, *conservative* ``predicate(document) -> bool``.

    ``True`` means the document is valid; ``False`` means "not proven valid": re-check with
    jsonschema (which also names the failing field). Schemas outside the supported subset (type,
    enum, const, properties, required, additionalProperties, min/max*, exclusive*, *Length,
    pattern, items, *Items, *Properties) are compiled with fastjsonschema instead.
    """
    gen = _Codegen()
    try:
        gen.check(schema, "x", 2, bound=True)
    except _Unsupported:
        return _fastjsonschema_predicate(schema)
    func_name = "check_" + re.sub(r"\W", "_", name)
    source = "\n".join([f"def {func_name}(x):", "    try:", *gen.lines, "        pass",
                        "    except TypeError:  # an unhashable value in a membership test",
                        "        return False", "    return True", ""])
    namespace = dict(gen.names)
    exec(compile(source, f"<treasure schema {name}>", "exec"), namespace)  # noqa: S102 - generated above
    predicate = namespace[func_name]
    predicate.source = source  # type: ignore[attr-defined]  # for debugging and the tests
    return predicate


def _fastjsonschema_predicate(schema: Any) -> Callable[[Any], bool]:
    validate = fastjsonschema.compile(_strip_annotations(schema), use_default=False)

    def predicate(document: Any) -> bool:
        try:
            validate(document)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    predicate.source = None  # type: ignore[attr-defined]
    return predicate


class EventCheck:
    """The envelope and payload schemas of one truth/ folder, compiled once into predicates.

    ``envelope`` checks a whole envelope and :meth:`payload` one event type's payload, for
    :meth:`check`. :func:`verify_log` instead uses :meth:`event`: per event type, one predicate of
    the whole event (envelope and payload together) that leaves out what the log's chain checks
    prove anyway. :meth:`explain` turns a rejection into a precise :class:`EventLogError`, or
    returns quietly if jsonschema finds the document valid after all.
    """

    def __init__(self, contracts: Contracts) -> None:
        self.contracts = contracts
        self.envelope_schema = contracts.schema("event")
        self.envelope = compile_predicate(self.envelope_schema, name="event")
        self._chained = _chained_envelope(self.envelope_schema)
        self.payloads: dict[str, Callable[[Any], bool]] = {}
        #: event_type -> predicate of a whole event, for the known types seen so far.
        self.events: dict[str, Callable[[Any], bool]] = {}

    def payload(self, event_type: str) -> Callable[[Any], bool] | None:
        """The payload predicate of ``event_type``, or None when truth/ has no schema for it."""
        predicate = self.payloads.get(event_type)
        if predicate is None and self._has_schema(event_type):
            predicate = compile_predicate(self.contracts.schema(f"events/{event_type}"), name=event_type)
            self.payloads[event_type] = predicate
        return predicate

    def event(self, event_type: str) -> Callable[[Any], bool] | None:
        """Predicate of a whole ``event_type`` event in a chained log (see :func:`_chained_envelope`).

        Its ``event_type`` is not re-checked: the caller looks the predicate up by that very
        string, which passed the envelope schema the first time it was seen.
        """
        predicate = self.events.get(event_type)
        if predicate is None and self._has_schema(event_type):
            schema = _with_payload(self._chained, self.contracts.schema(f"events/{event_type}"))
            if schema is not None:
                predicate = compile_predicate(schema, name=f"{event_type}_event")
            else:
                chained = compile_predicate(self._chained, name="event_chained")
                payload = self.payload(event_type)
                predicate = lambda event: chained(event) and payload(event["payload"])  # noqa: E731
            self.events[event_type] = predicate
        return predicate

    def _has_schema(self, event_type: str) -> bool:
        return bool(_EVENT_TYPE.fullmatch(event_type)) and \
            self.contracts.schema_path(f"events/{event_type}").is_file()

    def check(self, event: Any, *, source: str | None = None, line: int | None = None) -> None:
        """Validate one event (envelope then payload); raise EventLogError naming the field."""
        if not self.envelope(event):
            self.explain("event", event, event, source, line)
        event_type = event["event_type"]
        predicate = self.payload(event_type)
        if predicate is None:
            raise _unknown_type(event_type, source, line)
        if not predicate(event["payload"]):
            self.explain(f"events/{event_type}", event["payload"], event, source, line)

    def explain(self, name: str, document: Any, event: Any, source: str | None, line: int | None) -> None:
        """Re-validate with jsonschema; raise the first (deepest) error, or return if valid."""
        found = first_error(self.contracts.validator(name), document)
        if found is None:
            return
        where = error_field(found)
        member = _member_at_fault(found)
        if member is not None:
            where = member if where == "(root)" else f"{where}.{member}"
        if name == "event":
            label, hint = "event envelope", None
        else:
            where = "payload" if where == "(root)" else f"payload.{where}"
            label, hint = f"{event.get('event_type')} event", f"the payload does not match truth/{name}.schema.json"
        raise EventLogError("EVENTS_SCHEMA", f"{label}: {found.message}", path=source, line=line,
                            field=where, hint=hint)


def _member_at_fault(error: Any) -> str | None:
    """For "missing member" and "unexpected member" errors, the member's name (the error's own
    path is the object holding it)."""
    instance, value = error.instance, error.validator_value
    if not isinstance(instance, dict):
        return None
    if error.validator == "required":
        missing = [key for key in value if key not in instance]
        named = [key for key in missing if error.message.startswith(repr(key))]
        return (named or missing or [None])[0]
    if error.validator == "additionalProperties" and value is False:
        known = error.schema.get("properties", {})
        extra = sorted(key for key in instance if key not in known)
        return extra[0] if extra else None
    return None


def _with_payload(envelope: Mapping[str, Any], payload: Any) -> Mapping[str, Any] | None:
    """The envelope schema with ``payload`` in place of its payload member, when that is exact:
    the envelope asks only "an object" of the payload and the payload schema asks it too."""
    props = envelope.get("properties")
    if not isinstance(props, Mapping) or not isinstance(payload, Mapping):
        return None
    outer = props.get("payload")
    if not isinstance(outer, Mapping) or {k: v for k, v in outer.items() if not _is_annotation(k)} != \
            {"type": "object"} or payload.get("type") != "object":
        return None
    return {**envelope, "properties": {**props, "event_type": True, "payload": payload}}


_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_HEX64_SCHEMAS = ({"type": "string", "pattern": r"^[0-9a-f]{64}$"},)


def _chained_envelope(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The envelope schema without what :func:`verify_log`'s chain checks already prove.

    The first event of a log is checked against the whole envelope. After it, ``run_id`` must
    equal the first event's, ``seq`` the count of events before it, ``ts_ms`` be at least the
    previous one, ``hash`` a freshly computed SHA-256 hex digest and ``prev`` the previous
    ``hash``. Where the schema asks no more than that implies (an integer >= 0, 64 lowercase hex
    digits), re-checking it per line proves nothing new; any other schema is kept.
    """
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(props, Mapping):
        return schema
    trimmed = dict(props)
    trimmed["run_id"] = True
    for key in ("seq", "ts_ms"):
        # seq equals a counter from 0 and ts_ms never goes below the first event's: only the type
        # is left to check when the schema asks "an integer >= 0".
        sub = props.get(key)
        if isinstance(sub, Mapping) and {k: v for k, v in sub.items() if not _is_annotation(k)} == \
                {"type": "integer", "minimum": 0}:
            trimmed[key] = {"type": "integer"}
    for key in ("prev", "hash"):
        sub = props.get(key)
        if isinstance(sub, Mapping) and {k: v for k, v in sub.items() if not _is_annotation(k)} in _HEX64_SCHEMAS:
            trimmed[key] = True
    return {**schema, "properties": trimmed}


def _is_annotation(key: str) -> bool:
    return key in _ANNOTATIONS or key.startswith("x-")


def _unknown_type(event_type: str, source: str | None, line: int | None) -> EventLogError:
    return EventLogError("EVENTS_SCHEMA", f"unknown event_type {event_type!r}", path=source,
                         line=line, field="event_type",
                         hint="every event_type needs a payload schema in truth/events/")


def event_check(contracts: Contracts) -> EventCheck:
    """The compiled checks of a Contracts object, made once and kept on it (so they live exactly
    as long as the contracts they were compiled from)."""
    check = contracts.__dict__.get("_treasure_event_check")
    if check is None:
        check = contracts.__dict__["_treasure_event_check"] = EventCheck(contracts)
    return check


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def _as_paths(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _open(path: Path):
    try:
        return open(path, "rb", buffering=_READ_BUFFER)
    except FileNotFoundError as exc:
        raise EventLogError("RUN_UNKNOWN", f"no event log at {path}", path=str(path)) from exc
    except IsADirectoryError as exc:
        raise EventLogError("EVENTS_JSON", f"{path} is a directory, not an event log",
                            path=str(path)) from exc
    except OSError as exc:
        raise EventLogError("EVENTS_IO", f"cannot read the event log: {exc.strerror or exc}",
                            path=str(path)) from exc


def iter_lines(paths: Iterable[str | Path] | str | Path) -> Iterator[tuple[str, int, bytes, bool]]:
    """Yield ``(path, line number, raw line without its newline, had a newline)`` over the parts."""
    for path in _as_paths(paths):
        with _open(path) as handle:
            for number, raw in enumerate(handle, start=1):
                complete = raw.endswith(b"\n")
                yield str(path), number, raw.rstrip(b"\r\n") if complete else raw, complete


def read_events(paths: Iterable[str | Path] | str | Path, *,
                tolerate_torn_tail: bool = True) -> Iterator[dict[str, Any]]:
    """Parse events without verifying them (streaming).

    A last line without its newline is torn (the writer was killed mid-line; it always ends a
    line with one), even if what is left happens to parse: it is dropped if
    ``tolerate_torn_tail``, else raises ``EVENTS_TRUNCATED``. Any other unparsable line raises
    ``EVENTS_JSON``; blank lines are skipped.
    """
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for path in _as_paths(paths):
        source = str(path)
        with _open(path) as handle:
            number = 0
            for raw in handle:
                number += 1
                if raw[-1:] != b"\n":
                    if tolerate_torn_tail:
                        return  # the log is the prefix before the tear
                    raise _truncated(source, number)
                if not raw.strip():
                    continue
                try:
                    event = loads(raw)
                except decode_error as exc:
                    raise EventLogError("EVENTS_JSON", f"line {number} is not valid JSON ({exc.msg})",
                                        path=source, line=number) from exc
                yield event


def _truncated(source: str, number: int) -> EventLogError:
    return EventLogError("EVENTS_TRUNCATED", f"log truncated at line {number}: the last line is incomplete "
                         "(no newline)", path=source, line=number)


# --------------------------------------------------------------------------------------------
# verifying
# --------------------------------------------------------------------------------------------
def verify_log(paths: Iterable[str | Path] | str | Path, contracts: Contracts | None = None, *,
               run_id: str | None = None, collect: list[dict[str, Any]] | None = None,
               on_event: Callable[[dict[str, Any], str, int], None] | None = None) -> LogSummary:
    """Verify a whole log: JSON per line, schema, run_id, seq, time order and hash chain.

    ``paths`` are the parts in chain order (see :meth:`Workspace.log_parts`). With ``contracts``,
    every envelope and payload is validated against truth/; without, only the envelope's keys and
    their types are. ``run_id`` (e.g. from the file name) must match every event's. ``collect``
    receives the events, ``on_event(event, path, line)`` is called for each verified event.

    Raises :class:`EventLogError` at the first problem, naming file, line and field. A last line
    without a newline is ``EVENTS_TRUNCATED`` ("truncated at line N"), never a crash.
    """
    verifier = _Verifier(contracts, run_id, collect, on_event)
    for path in _as_paths(paths):
        verifier.part(path)
    return verifier.finish()


class _Verifier:
    """State of one verification. :meth:`part` holds the hot loop; every failure branch calls out
    to a cold method, so the loop body stays a straight line of cheap tests."""

    def __init__(self, contracts: Contracts | None, run_id: str | None,
                 collect: list[dict[str, Any]] | None,
                 on_event: Callable[[dict[str, Any], str, int], None] | None) -> None:
        self.checks = event_check(contracts) if contracts is not None else None
        self.summary = LogSummary(run_id=run_id)
        self.named_run = run_id
        self.run_id = run_id
        self.seq = 0
        self.prev = GENESIS_HASH
        self.last_ts: float = float("-inf")
        self.counts: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.untyped: dict[str, Callable[[Any], bool]] = {}  # event types seen, without contracts
        self.sink: Callable[[dict[str, Any], str, int], Any] | None = on_event
        if collect is not None:
            append = collect.append
            if on_event is None:
                self.sink = lambda event, source, line: append(event)
            else:
                self.sink = lambda event, source, line: (append(event), on_event(event, source, line))

    def part(self, path: Path) -> None:
        """Verify one file of the log, continuing the chain of the previous ones."""
        source = str(path)
        checks = self.checks
        events_of = checks.events if checks is not None else self.untyped
        loads, decode_error, sha256 = orjson.loads, orjson.JSONDecodeError, hashlib.sha256
        hash_key, member_len = _HASH_KEY, _HASH_MEMBER_LEN
        seq, prev, last_ts, run = self.seq, self.prev, self.last_ts, self.run_id
        counts, sink = self.counts, self.sink
        start_seq, number, raw = seq, 0, b""
        with _open(path) as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    event = loads(raw)
                except decode_error as exc:
                    raise self.error(raw, source, number, "EVENTS_JSON",
                                     f"line {number} is not valid JSON ({exc.msg})") from exc
                try:
                    valid = events_of[event["event_type"]](event)
                except (KeyError, TypeError):  # a new event type, or not an event at all
                    valid = self.new_type(event, raw, source, number)
                if not valid:
                    self.bad_event(event, raw, source, number)
                event_type = event["event_type"]
                if event["run_id"] != run:
                    if run is not None or seq:
                        raise self.error(raw, source, number, "EVENTS_RUN_ID",
                                         _run_id_message(event["run_id"], run, self.named_run is not None),
                                         field="run_id")
                    run = event["run_id"]
                if event["seq"] != seq:
                    raise self.error(raw, source, number, "EVENTS_SEQ", _seq_message(event["seq"], seq),
                                     field="seq")
                ts = event["ts_ms"]
                if ts < last_ts:
                    raise self.error(raw, source, number, "EVENTS_TIME", f"ts_ms {ts} goes back from {last_ts}",
                                     field="ts_ms")
                if event["prev"] != prev:
                    raise self.error(raw, source, number, "EVENTS_CHAIN",
                                     "prev is not the hash of the previous event: the chain is broken "
                                     "(a line before it was edited, deleted or reordered)", field="prev")
                cut = raw.find(hash_key)
                prev = sha256(raw[:cut] + raw[cut + member_len:-1]).hexdigest()
                if prev != event["hash"] or cut < 0:
                    raise self.error(raw, source, number, "EVENTS_CHAIN", _hash_message(raw, cut), field="hash")
                if not seq:
                    self.first_event(event, raw, source, number)
                last_ts = ts
                seq += 1
                counts[event["category"], event["level"], event_type] += 1
                if sink is not None:
                    sink(event, source, number)
            if number and raw[-1] != 10:
                raise _truncated(source, number)  # it cannot pass the hash check; be explicit anyway
            size = handle.tell()
        self.seq, self.prev, self.last_ts, self.run_id = seq, prev, last_ts, run
        self.summary.files.append(source)
        self.summary.parts.append(PartSummary(source, seq - start_seq, size))

    # cold paths ---------------------------------------------------------------------------------
    def error(self, raw: bytes, source: str, number: int, code: str, message: str, *,
              field: str | None = None) -> EventLogError:
        """The error for a line, unless the line is torn: then that is what went wrong."""
        if raw[-1:] != b"\n":
            return _truncated(source, number)
        return EventLogError(code, message, path=source, line=number, field=field)

    def first_event(self, event: dict[str, Any], raw: bytes, source: str, number: int) -> None:
        # Per line the loop skips what the chain proves (run_id equals the first event's, prev the
        # previous hash): the first event is held to the whole envelope schema.
        self.summary.first_ts_ms = event["ts_ms"]
        if self.checks is not None and not self.checks.envelope(event):
            self.bad_event(event, raw, source, number)

    def new_type(self, event: Any, raw: bytes, source: str, number: int) -> bool:
        """The first event of a type (compile its predicate), or a line that is no event at all."""
        if raw[-1:] != b"\n":
            raise _truncated(source, number)
        checks = self.checks
        if checks is None:
            if not _has_envelope_keys(event):
                raise _envelope_keys_error(event, source, number)
            self.untyped[event["event_type"]] = _has_envelope_keys
            return True
        if not checks.envelope(event):
            checks.explain("event", event, event, source, number)
        predicate = checks.event(event["event_type"])
        if predicate is None:
            raise _unknown_type(event["event_type"], source, number)
        return predicate(event)

    def bad_event(self, event: Any, raw: bytes, source: str, number: int) -> None:
        """Name the field at fault (jsonschema); return only if the event is valid after all."""
        if raw[-1:] != b"\n":
            raise _truncated(source, number)
        assert self.checks is not None
        self.checks.explain("event", event, event, source, number)
        self.checks.explain(f"events/{event['event_type']}", event["payload"], event, source, number)

    def finish(self) -> LogSummary:
        summary = self.summary
        if self.seq == 0:
            raise EventLogError("EVENTS_EMPTY", "the event log holds no events",
                                path=summary.files[0] if summary.files else None)
        summary.run_id = self.run_id
        summary.events = self.seq
        summary.bytes = sum(part.bytes for part in summary.parts)
        summary.last_ts_ms = int(self.last_ts)
        summary.last_hash = self.prev
        for (category, level, event_type), n in sorted(self.counts.items()):
            summary.by_category[category] += n
            summary.by_level[level] += n
            summary.by_type[event_type] += n
        return summary


_STRINGS = ("category", "event_type", "hash", "level", "prev", "run_id")


def _has_envelope_keys(event: Any) -> bool:
    """The envelope check without contracts: every key present, with the types the loop relies on."""
    return (type(event) is dict and event.keys() >= _ENVELOPE_KEY_SET and type(event["seq"]) is int
            and type(event["ts_ms"]) is int and all(type(event[key]) is str for key in _STRINGS))


_ENVELOPE_KEY_SET = frozenset(_ENVELOPE_KEYS)


def _envelope_keys_error(event: Any, source: str, number: int) -> EventLogError:
    if type(event) is not dict:
        return EventLogError("EVENTS_SCHEMA", f"an event must be a JSON object, got {type(event).__name__}",
                             path=source, line=number)
    for key in _ENVELOPE_KEYS:
        if key not in event:
            return EventLogError("EVENTS_SCHEMA", f"missing field {key}", path=source, line=number, field=key)
    for key in ("seq", "ts_ms"):
        if type(event[key]) is not int:
            return EventLogError("EVENTS_SCHEMA", f"{key} must be an integer", path=source, line=number,
                                 field=key)
    key = next(k for k in _STRINGS if type(event[k]) is not str)
    return EventLogError("EVENTS_SCHEMA", f"{key} must be a string", path=source, line=number, field=key)


def _run_id_message(found: Any, expected: str | None, from_name: bool) -> str:
    origin = "the run id in the log's file name" if from_name else "the run_id of the log's first event"
    return f"run_id {found!r} differs from {expected!r}, {origin}"


def _seq_message(found: Any, expected: int) -> str:
    if type(found) is int and found > expected:
        missing = f"events {expected}..{found - 1} are" if found - 1 > expected else f"event {expected} is"
        return f"seq {found} where {expected} was expected: {missing} missing here (a line was deleted or moved)"
    return f"seq {found} where {expected} was expected: it repeats or goes back (lines reordered or duplicated)"


def _hash_message(raw: bytes, cut: int) -> str:
    if cut < 0:
        return "no top-level hash member"
    extra = " (the line ends with \\r\\n: its line ending was converted)" if raw.endswith(b"\r\n") else ""
    return f"hash does not match the line's content: the line was edited{extra}"


# --------------------------------------------------------------------------------------------
# logs of a workspace
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogFiles:
    """The files of one run's log in chain order, and rotated part numbers that are missing."""

    run_id: str
    paths: tuple[Path, ...]
    missing_parts: tuple[int, ...] = ()


def discover_logs(logs_dir: Path) -> tuple[list[LogFiles], list[Path]]:
    """Group the files of ``logs_dir`` into logs (``run_<id>.jsonl`` and its rotated parts).

    Returns the logs sorted by run id and the files that are not event logs (for the report).
    """
    logs_dir = Path(logs_dir)
    if not logs_dir.is_dir():
        return [], []
    groups: dict[str, dict[int, Path]] = {}
    ignored: list[Path] = []
    for path in sorted(logs_dir.iterdir()):
        match = _LOG_NAME.fullmatch(path.name)
        if match is None or not path.is_file():
            ignored.append(path)
            continue
        part = match.group("part")
        number = int(part) if part is not None else 0  # 0 = the live file, last in the chain
        if number == 0 and part is not None:
            ignored.append(path)
            continue
        groups.setdefault(match.group("run_id"), {})[number] = path
    logs = []
    for run_id in sorted(groups):
        parts = groups[run_id]
        rotated = sorted(n for n in parts if n > 0)
        missing = tuple(n for n in range(1, (rotated[-1] if rotated else 0) + 1) if n not in parts)
        ordered = tuple(parts[n] for n in rotated) + ((parts[0],) if 0 in parts else ())
        logs.append(LogFiles(run_id, ordered, missing))
    return logs, ignored


def verify_run(files: LogFiles, contracts: Contracts | None = None, **options: Any) -> LogSummary:
    """Verify one run's log (all its parts); a missing rotated part is reported before reading."""
    if files.missing_parts:
        first = files.missing_parts[0]
        raise EventLogError(
            "EVENTS_PART_MISSING",
            f"rotated part(s) {', '.join(map(str, files.missing_parts))} of run {files.run_id} are missing",
            path=str(files.paths[0].parent / f"run_{files.run_id}.jsonl.{first}"))
    return verify_log(files.paths, contracts, run_id=files.run_id, **options)


def summary_counts(summary: LogSummary) -> dict[str, dict[str, int]]:
    """The summary's counters as sorted plain dicts (for JSON reports)."""
    return {name: dict(sorted(getattr(summary, name).items()))
            for name in ("by_category", "by_level", "by_type")}

