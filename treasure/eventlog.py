"""Reading and verifying event logs: streaming, flat memory, the first broken line named.

A log may be split into parts by rotation (``run_<id>.jsonl.1``, ``.2``, ... then the live
``run_<id>.jsonl``); the hash chain and ``seq`` simply continue across them, so verification takes
the parts in order as one stream.

Why it is fast (see bench/events_bench.py and docs/verification.md): the floor of any verifier is
parsing every line, and everything else is kept small next to it.

* Lines come one at a time from a 1 MiB buffered reader: memory does not grow with the log (and
  it beats splitting big blocks, which allocates every line of a block at once).
* Schemas are compiled once (:mod:`treasure.schemacheck`) into *conservative* checks: they may
  reject a valid event but never accept an invalid one, and every rejection is re-checked with
  ``jsonschema``, both to avoid a false alarm and to name the precise field.
* With msgspec installed (the *msgspec tier*), each event type's envelope and payload schemas
  become one tagged msgspec struct: decoding a line into it is parsing and validating in one C
  call, cheaper than orjson's parse alone. Without msgspec, or for a line the tier does not
  accept (a first event, an event type outside the struct subset, anything wrong), the *pure
  path* parses with orjson and checks with generated Python predicates; it alone decides what
  is an error and what the error says, so both paths give the same verdicts and messages.
* What the chain checks prove is not validated again: after the first event (which meets the
  whole envelope schema), ``run_id``, ``seq``, ``prev`` and ``hash`` are compared for equality
  with known-good values instead (see :func:`_chained_envelope`).
* The hash covers the raw line: it is recomputed over the bytes as read, with the ``hash`` member
  cut out (see :func:`treasure.events.hashed_body`), never by re-serialising the event.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import orjson

from treasure.contracts import Contracts, error_field, first_error
from treasure.errors import EventLogError
from treasure.events import _HASH_KEY, _HASH_MEMBER_LEN, GENESIS_HASH  # the one definition of the hash member
from treasure.logfiles import RunLog, Segment, discover
from treasure.logread import READ_BUFFER, bounded_lines, open_log, open_segment
from treasure.schemacheck import HAVE_MSGSPEC, compile_predicate, compile_struct, is_annotation, union_decoder

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
    "verify_log_bytes",
    "verify_run",
    "check_against_court",
    "court_mismatches",
]

#: Use the msgspec tier when msgspec is installed. Set it to False to force the pure path (the
#: tests compare the two; the benchmark reports both). Read at the start of each verification.
USE_MSGSPEC = HAVE_MSGSPEC
#: A log file smaller than this takes the pure path: the tier's decoder needs every event type's
#: schemas loaded and compiled (30-300 ms, once per Contracts), more than it saves on a small file
#: (the tier saves about 2.5 µs a line, ~6 ms per MiB).
MSGSPEC_MIN_BYTES = 4 << 20

_READ_BUFFER = READ_BUFFER
_ENVELOPE_KEYS = ("category", "event_type", "hash", "level", "payload", "prev", "run_id", "seq", "ts_ms")


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
# the compiled checks of a truth/ folder
# --------------------------------------------------------------------------------------------
class EventCheck:
    """The envelope and payload schemas of one truth/ folder, compiled once into checks.

    ``envelope`` checks a whole envelope and :meth:`payload` one event type's payload, for
    :meth:`check`. :func:`verify_log` instead uses :meth:`event`: per event type, one predicate of
    the whole event (envelope and payload together) that leaves out what the log's chain checks
    prove anyway, and, with msgspec, :attr:`decoder`, the same per event type as msgspec structs.
    :meth:`explain` turns a rejection into a precise :class:`EventLogError`, or returns quietly if
    jsonschema finds the document valid after all.
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
                assert payload is not None  # _has_schema(event_type) holds here
                predicate = lambda event: chained(event) and payload(event["payload"])  # noqa: E731
            self.events[event_type] = predicate
        return predicate

    @cached_property
    def decoder(self) -> Any | None:
        """A msgspec JSON decoder of the events of a chained log, or None (no msgspec, or fewer
        than two event types fit the struct subset: a lone tagged struct accepts a missing tag).

        It decodes a union of tagged structs, one per event type of truth/events/ whose envelope
        and payload schemas compile (:func:`treasure.schemacheck.compile_struct`), dispatched on
        ``event_type``; the envelope is :func:`_chained_envelope`'s, so a decoded line is valid
        but for the chain checks, and only once a first event has met the whole envelope.
        Event types outside the subset are not in the union: their lines take the pure path.
        """
        chained = _chained_envelope(self.envelope_schema, typed=True)
        variants = []
        for event_type in self.contracts.event_types:
            if not self._has_schema(event_type):
                continue
            schema = _with_payload(chained, self.contracts.schema(f"events/{event_type}"), keep_event_type=True)
            struct = None if schema is None else compile_struct(
                schema, name=f"{event_type}_event", tag_field="event_type", tag=event_type)
            if struct is not None:
                variants.append(struct)
        return union_decoder(variants) if len(variants) >= 2 else None

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


def _with_payload(envelope: Mapping[str, Any], payload: Any, *,
                  keep_event_type: bool = False) -> Mapping[str, Any] | None:
    """The envelope schema with ``payload`` in place of its payload member, when that is exact:
    the envelope asks only "an object" of the payload and the payload schema asks it too.
    ``event_type`` is dropped (the caller dispatches on it) unless ``keep_event_type``."""
    props = envelope.get("properties")
    if not isinstance(props, Mapping) or not isinstance(payload, Mapping):
        return None
    outer = props.get("payload")
    if not isinstance(outer, Mapping) or {k: v for k, v in outer.items() if not is_annotation(k)} != \
            {"type": "object"} or payload.get("type") != "object":
        return None
    event_type = props.get("event_type", True) if keep_event_type else True
    return {**envelope, "properties": {**props, "event_type": event_type, "payload": payload}}


_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_HEX64_SCHEMAS = ({"type": "string", "pattern": r"^[0-9a-f]{64}$"},)


def _chained_envelope(schema: Mapping[str, Any], *, typed: bool = False) -> Mapping[str, Any]:
    """The envelope schema without what :func:`verify_log`'s chain checks already prove.

    The first event of a log is checked against the whole envelope. After it, ``run_id`` must
    equal the first event's, ``seq`` the count of events before it, ``ts_ms`` be at least the
    previous one, ``hash`` a freshly computed SHA-256 hex digest and ``prev`` the previous
    ``hash``. Where the schema asks no more than that implies (a string for ``run_id``, an
    integer >= 0, 64 lowercase hex digits), re-checking it per line proves nothing new; any other
    schema is kept. ``typed`` keeps ``{"type": "string"}`` for the proven strings instead of
    dropping them, for :func:`treasure.schemacheck.compile_struct`, which wants every value typed.
    """
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(props, Mapping):
        return schema
    proven: Any = {"type": "string"} if typed else True
    trimmed = dict(props)
    sub = props.get("run_id")
    if isinstance(sub, Mapping) and sub.get("type") == "string":
        trimmed["run_id"] = proven  # equal to the first event's string (1 == True: only for strings)
    for key in ("seq", "ts_ms"):
        # seq equals a counter from 0 and ts_ms never goes below the first event's: only the type
        # is left to check when the schema asks "an integer >= 0".
        sub = props.get(key)
        if isinstance(sub, Mapping) and {k: v for k, v in sub.items() if not is_annotation(k)} == \
                {"type": "integer", "minimum": 0}:
            trimmed[key] = {"type": "integer"}
    for key in ("prev", "hash"):
        sub = props.get(key)
        if isinstance(sub, Mapping) and {k: v for k, v in sub.items() if not is_annotation(k)} in _HEX64_SCHEMAS:
            trimmed[key] = proven
    return {**schema, "properties": trimmed}


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


def _open(path: Path, root: Path | None = None) -> Any:
    """Open one file of a log: a regular file only, inside ``root`` when given
    (see :func:`treasure.logread.open_log`)."""
    return open_log(path, root=root)


def iter_lines(paths: Iterable[str | Path] | str | Path, *,
               root: Path | None = None) -> Iterator[tuple[str, int, bytes, bool]]:
    """Yield ``(path, line number, raw line without its newline, had a newline)`` over the parts."""
    for path in _as_paths(paths):
        with _open(path, root) as handle:
            for number, raw in enumerate(bounded_lines(handle, str(path)), start=1):
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
            for raw in bounded_lines(handle, source):
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
               on_event: Callable[[dict[str, Any], str, int], None] | None = None,
               root: Path | None = None) -> LogSummary:
    """Verify a whole log: JSON per line, schema, run_id, seq, time order and hash chain.

    ``paths`` are the parts in chain order (see :meth:`Workspace.log_parts`). With ``contracts``,
    every envelope and payload is validated against truth/; without, only the envelope's keys and
    their types are. ``run_id`` (e.g. from the file name) must match every event's. ``collect``
    receives the events, ``on_event(event, path, line)`` is called for each verified event.
    With ``root`` (a workspace root), a file resolving outside it is refused (``PATH_ESCAPE``).

    Raises :class:`EventLogError` at the first problem, naming file, line and field. A last line
    without a newline is ``EVENTS_TRUNCATED`` ("truncated at line N"), never a crash.
    """
    verifier = _Verifier(contracts, run_id, collect, on_event)
    for path in _as_paths(paths):
        verifier.part(path, root=root)
    return verifier.finish()


def verify_log_bytes(data: bytes, contracts: Contracts | None = None, *, run_id: str | None = None,
                     source: str = "<memory>", collect: list[dict[str, Any]] | None = None,
                     on_event: Callable[[dict[str, Any], str, int], None] | None = None) -> LogSummary:
    """:func:`verify_log` for a log held in memory (``RunRequest(evidence="memory")``): the same
    checks, verdicts and messages, ``source`` standing for the file name."""
    verifier = _Verifier(contracts, run_id, collect, on_event)
    verifier.data(data, source)
    return verifier.finish()


class _Verifier:
    """State of one verification. The hot loops (:meth:`fast_lines`, :meth:`pure_lines`) hold the
    state in locals and run a straight line of cheap tests per line; every failure branch calls
    out to a cold method. The msgspec tier hands any line it does not accept, state stored back,
    to the pure path, which alone raises errors: both tiers give the same verdicts and messages."""

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
        #: counts of the msgspec tier, keyed by struct class (its tag is the event type) until finish().
        self.struct_counts: defaultdict[tuple[type, str, str], int] = defaultdict(int)
        self.untyped: dict[str, Callable[[Any], bool]] = {}  # event types seen, without contracts
        self.sink: Callable[[dict[str, Any], str, int], Any] | None = on_event
        if collect is not None:
            append = collect.append
            if on_event is None:
                self.sink = lambda event, source, line: append(event)
            else:
                self.sink = lambda event, source, line: (append(event), on_event(event, source, line))
        # The tier yields structs, not the dicts that collect/on_event receive: with a sink, the
        # pure path does everything (it builds those dicts anyway).
        self.tiered = USE_MSGSPEC and self.checks is not None and self.sink is None

    def part(self, path: Path | Segment, ws: Any = None, *, root: Path | None = None) -> None:
        """Verify one file of the log (a path, or a local or archived :class:`Segment`),
        continuing the chain of the previous ones."""
        if isinstance(path, Segment):
            source = path.display(ws) if ws is not None and path.archived else \
                str(path.path if path.path is not None else path.name)
            opened: Any = open_segment(path, ws)
            size: int | None = path.size if path.archived else None
        else:
            source, opened, size = str(path), _open(path, root), None
        start_seq = self.seq
        with opened as handle:
            # One line at a time from a 1 MiB buffer: the cheapest way to get lines in CPython
            # (each line's memory is reused by the next), and memory stays flat. A file larger
            # than MAX_LINE_BYTES is read with a cap on each line.
            lines = bounded_lines(handle, source, size)
            number, last = 0, b""
            decoder = self.decoder(handle)
            if decoder is None:
                number, last = self.pure_lines(lines, source, number, last)
            else:
                if not self.seq:  # the first event meets the whole envelope schema: the pure path checks it
                    number, last = self.pure_lines(islice(lines, 1), source, number, last)
                number, last = self.fast_lines(decoder, lines, source, number, last)
            if number and last[-1] != 10:
                raise _truncated(source, number)  # even a torn line that passed every check
            size = handle.tell()
        self.summary.files.append(source)
        self.summary.parts.append(PartSummary(source, self.seq - start_seq, size))

    def data(self, data: bytes, source: str) -> None:
        """Verify a log held in memory as one part (see :meth:`part`)."""
        start_seq = self.seq
        parts = data.split(b"\n")  # lines as a file gives them: split at \n only, newline kept
        tail = parts.pop()
        lines: Iterator[bytes] = iter([*(part + b"\n" for part in parts), *((tail,) if tail else ())])
        number, last = 0, b""
        decoder = self.checks.decoder if self.tiered and len(data) >= MSGSPEC_MIN_BYTES else None  # type: ignore[union-attr]
        if decoder is None:
            number, last = self.pure_lines(lines, source, number, last)
        else:
            if not self.seq:
                number, last = self.pure_lines(islice(lines, 1), source, number, last)
            number, last = self.fast_lines(decoder, lines, source, number, last)
        if number and last[-1] != 10:
            raise _truncated(source, number)
        self.summary.files.append(source)
        self.summary.parts.append(PartSummary(source, self.seq - start_seq, len(data)))

    def decoder(self, handle: Any) -> Any | None:
        """The msgspec tier's decoder for this file, or None for the pure path."""
        if not self.tiered:
            return None
        try:
            size = os.fstat(handle.fileno()).st_size
        except (OSError, AttributeError, ValueError):  # an archive member has no file descriptor
            return None
        return self.checks.decoder if size >= MSGSPEC_MIN_BYTES else None  # type: ignore[union-attr]

    def fast_lines(self, decoder: Any, lines: Iterable[bytes], source: str, number: int,
                   raw: bytes) -> tuple[int, bytes]:
        """The msgspec tier: decoding a line is parsing it and validating envelope and payload;
        what is left is the chain. Returns the number and content of the last line read."""
        decode, sha256 = decoder.decode, hashlib.sha256
        hash_key, member_len = _HASH_KEY, _HASH_MEMBER_LEN
        seq, prev, last_ts, run = self.seq, self.prev, self.last_ts, self.run_id
        counts = self.struct_counts
        for raw in lines:
            number += 1
            try:
                event = decode(raw)
            except Exception:  # noqa: BLE001 - whatever msgspec refuses is the pure path's to judge
                event = None
            if event is None or event.run_id != run or event.seq != seq or event.ts_ms < last_ts \
                    or event.prev != prev:
                self.seq, self.prev, self.last_ts, self.run_id = seq, prev, last_ts, run
                self.pure_lines((raw,), source, number - 1, raw)
                seq, prev, last_ts, run = self.seq, self.prev, self.last_ts, self.run_id
                continue
            cut = raw.find(hash_key)
            digest = sha256(raw[:cut] + raw[cut + member_len:-1]).digest().hex()
            if digest != event.hash or cut < 0:  # the pure path names the chain error
                self.seq, self.prev, self.last_ts, self.run_id = seq, prev, last_ts, run
                self.pure_lines((raw,), source, number - 1, raw)
                seq, prev, last_ts, run = self.seq, self.prev, self.last_ts, self.run_id
                continue
            prev, last_ts = digest, event.ts_ms
            seq += 1
            counts[type(event), event.category, event.level] += 1
        self.seq, self.prev, self.last_ts, self.run_id = seq, prev, last_ts, run
        return number, raw

    def pure_lines(self, lines: Iterable[bytes], source: str, number: int, raw: bytes) -> tuple[int, bytes]:
        """The pure path (orjson and compiled predicates), the one that names every error.
        Returns the number and content of the last line read."""
        checks = self.checks
        events_of = checks.events if checks is not None else self.untyped
        loads, decode_error, sha256 = orjson.loads, orjson.JSONDecodeError, hashlib.sha256
        hash_key, member_len = _HASH_KEY, _HASH_MEMBER_LEN
        seq, prev, last_ts, run = self.seq, self.prev, self.last_ts, self.run_id
        counts, sink = self.counts, self.sink
        for raw in lines:
            number += 1
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
            prev = sha256(raw[:cut] + raw[cut + member_len:-1]).digest().hex()
            if prev != event["hash"] or cut < 0:
                raise self.error(raw, source, number, "EVENTS_CHAIN", _hash_message(raw, cut), field="hash")
            if not seq:
                self.first_event(event, raw, source, number)
            last_ts = ts
            seq += 1
            counts[event["category"], event["level"], event_type] += 1
            if sink is not None:
                sink(event, source, number)
        self.seq, self.prev, self.last_ts, self.run_id = seq, prev, last_ts, run
        return number, raw

    # cold paths ---------------------------------------------------------------------------------
    def error(self, raw: bytes, source: str, number: int, code: str, message: str, *,
              field: str | None = None) -> EventLogError:
        """The error for a line, unless the line is torn: then that is what went wrong."""
        if raw[-1:] != b"\n":
            return _truncated(source, number)
        return EventLogError(code, message, path=source, line=number, field=field)

    def first_event(self, event: dict[str, Any], raw: bytes, source: str, number: int) -> None:
        # Per line the loops skip what the chain proves (run_id equals the first event's, prev the
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
        counts = self.counts
        for (struct, category, level), n in self.struct_counts.items():
            counts[category, level, getattr(struct, "__struct_config__").tag] += n
        for (category, level, event_type), n in sorted(counts.items()):
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
#: A run's log as found in logs/events/ or an archive (the layout is :mod:`treasure.logfiles`').
LogFiles = RunLog


def discover_logs(logs_dir: Path) -> tuple[list[RunLog], list[Path]]:
    """The logs of ``logs_dir`` sorted by run id, and the files that are not in any log's chain
    (strays such as ``run_a.jsonl.0`` and non-log files; see :func:`treasure.logfiles.discover`)."""
    found = discover(logs_dir)
    return found.logs, sorted(found.strays + found.ignored)


def verify_run(files: RunLog, contracts: Contracts | None = None, *, ws: Any = None,
               **options: Any) -> LogSummary:
    """Verify one run's log (all its segments, local or archived); a missing rotated part is
    reported before reading."""
    if files.missing_parts:
        first = files.missing_parts[0]
        folder = files.paths[0].parent if files.paths else Path("logs/events")
        raise EventLogError(
            "EVENTS_PART_MISSING",
            f"rotated part(s) {', '.join(map(str, files.missing_parts))} of run {files.run_id} are missing",
            path=str(folder / f"run_{files.run_id}.jsonl.{first}"))
    if not files.segments:
        raise EventLogError("RUN_UNKNOWN", f"no event log for run {files.run_id}", field="run_id")
    verifier = _Verifier(contracts, files.run_id, options.pop("collect", None), options.pop("on_event", None))
    if options:
        raise TypeError(f"unexpected options {sorted(options)}")
    for segment in files.segments:
        verifier.part(segment, ws)
    return verifier.finish()


def summary_counts(summary: LogSummary) -> dict[str, dict[str, int]]:
    """The summary's counters as sorted plain dicts (for JSON reports)."""
    return {name: dict(sorted(getattr(summary, name).items()))
            for name in ("by_category", "by_level", "by_type")}



# --------------------------------------------------------------------------------------------
# a log against its own court report
# --------------------------------------------------------------------------------------------
def court_mismatches(summary: LogSummary, court: Mapping[str, Any], *, shown: str = "court_report.json") -> list[str]:
    """Where a verified log disagrees with the court report of its run: run id, event total,
    head hash (``events.last_hash``) and the per-category/level counts. Empty when they agree.

    A log re-chained after an edit (e.g. a fill price halved and every hash recomputed) still
    verifies on its own; its head hash no longer matches what the run's court report recorded.
    """
    problems: list[str] = []
    if court.get("run_id") != summary.run_id:
        problems.append(f"{shown} field run_id: {court.get('run_id')!r} but the event log is of run {summary.run_id!r}")
    events = court.get("events")
    if not isinstance(events, Mapping):
        return problems + [f"{shown} field events: missing, so the event log cannot be tied to it"]
    if events.get("total") != summary.events:
        problems.append(f"{shown} field events.total: {events.get('total')} but the event log holds "
                        f"{summary.events} lines")
    if events.get("last_hash") != summary.last_hash:
        problems.append(f"{shown} field events.last_hash: {events.get('last_hash')} but the log's last event "
                        f"hashes to {summary.last_hash}")
    for name in ("by_category", "by_level"):
        recorded = events.get(name)
        if isinstance(recorded, Mapping):
            actual = dict(sorted(getattr(summary, name).items()))
            if dict(sorted(recorded.items())) != actual:
                problems.append(f"{shown} field events.{name}: {dict(sorted(recorded.items()))} but the event log "
                                f"counts {actual}")
    return problems


def check_against_court(ws: Any, run_id: str, court: Mapping[str, Any], contracts: Contracts | None = None, *,
                        shown: str | None = None) -> tuple[LogSummary | None, list[str]]:
    """Verify ``run_id``'s log wherever it is (logs/events/ or an archive, see
    :func:`treasure.logfiles.locate`) and compare it with ``court``, its court report.

    Returns the summary (None when the log is missing or broken) and the problems, each naming
    the report and field or the log file and line. For the events gate, e2 and ``diagnose``.
    """
    from treasure.logfiles import locate

    shown = shown or f"reports/runs/{run_id}/court_report.json"
    found = locate(ws, run_id)
    if not found.segments:
        return None, [f"{shown} field evidence.event_log: no event log for run {run_id} in "
                      f"{ws.relative(ws.logs_dir)} or {ws.relative(ws.archive_dir)}"]
    try:
        summary = verify_run(found, contracts, ws=ws)
    except EventLogError as exc:
        where = exc.path or f"the event log of run {run_id}"
        if exc.path and Path(exc.path).is_absolute():
            where = ws.relative(Path(exc.path))
        if exc.line is not None:
            where += f":{exc.line}"
        return None, [f"{where}: [{exc.code}] {exc.message}"]
    return summary, court_mismatches(summary, court, shown=shown)
