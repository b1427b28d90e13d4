"""Event queries: the runbook's ``grep`` and ``jq`` lines as one streaming filter.

``grep '"level":"ERROR"' logs/events/run_*.jsonl | jq '.payload.code'`` becomes
``treasure events RUN --level ERROR --field payload.code``. The reader streams over every segment
of a run's log (rotated parts, the live file, or members of an archive), one line in memory, and
rejects most lines on their raw bytes before parsing them: event lines are canonical JSON, so a
line holding ``"level":"ERROR"`` is the only kind that can be an ERROR event (the parsed event is
then checked for real, since a payload could hold the same bytes).
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import re
import tarfile
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import orjson

from treasure.errors import EventLogError
from treasure.events import _HASH_KEY, CATEGORIES, GENESIS_HASH, LEVELS, hashed_body
from treasure.logfiles import Segment, require_segments
from treasure.logread import bounded_lines, open_segment
from treasure.ops import OpsError
from treasure.workspace import Workspace

#: The largest --head/--tail accepted: far beyond any log, and small enough for a bounded window.
MAX_COUNT = 1 << 40

LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MS = _dt.timedelta(milliseconds=1)
_WHERE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(==|!=|>=|<=|=|>|<|~)\s*(.*?)\s*$")


# ------------------------------------------------------------------------------------------
# fields, times, predicates
# ------------------------------------------------------------------------------------------
def field_path(text: str) -> tuple[str, ...]:
    """``payload.code`` -> ``("payload", "code")``; a leading ``.`` (jq style) is accepted."""
    parts = tuple(p for p in text.strip().lstrip(".").split("."))
    if not parts or any(not p for p in parts):
        raise OpsError("QUERY_INVALID", f"bad field path {text!r}", field="--field")
    return parts


def get_path(document: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` (list items by index), or :data:`MISSING`."""
    value = document
    for key in path:
        if isinstance(value, dict):
            if key not in value:
                return MISSING
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
    return value


def parse_time(text: str, *, option: str = "--since") -> int:
    """A ts_ms integer, or an ISO-8601 date/time (UTC unless it says otherwise), as ms."""
    value = text.strip()
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    try:
        moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise OpsError("QUERY_INVALID", f"{option} {text!r} is neither a ts_ms integer nor an ISO date",
                       field=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return (moment - _EPOCH) // _MS


def format_ts(ts_ms: int) -> str:
    """``2026-01-05T10:00:00Z`` (with milliseconds only when there are some)."""
    moment = _EPOCH + _dt.timedelta(milliseconds=int(ts_ms))
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if ts_ms % 1000:
        text += f".{ts_ms % 1000:03d}"
    return text + "Z"


@dataclass(frozen=True)
class Predicate:
    """``FIELD OP VALUE`` (``payload.duration_ms>1000``); ``~`` is a regex search on the text."""

    path: tuple[str, ...]
    op: str
    value: Any
    text: str

    def __call__(self, event: dict[str, Any]) -> bool:
        found = get_path(event, self.path)
        if found is MISSING:
            return self.op == "!="
        if self.op == "~":
            return self.value.search(found if isinstance(found, str) else _compact(found)) is not None
        if self.op in ("=", "=="):
            return _same(found, self.value)
        if self.op == "!=":
            return not _same(found, self.value)
        if isinstance(found, bool) or isinstance(self.value, bool):
            return False
        numbers = isinstance(found, (int, float)) and isinstance(self.value, (int, float))
        strings = isinstance(found, str) and isinstance(self.value, str)
        if not (numbers or strings):
            return False
        return {">": found > self.value, ">=": found >= self.value,
                "<": found < self.value, "<=": found <= self.value}[self.op]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def parse_where(text: str) -> Predicate:
    match = _WHERE.match(text)
    if match is None:
        raise OpsError("QUERY_INVALID", f"--where {text!r}: expected FIELD OP VALUE with OP one of "
                       "= != > >= < <= ~", field="--where")
    path, op, raw = match.groups()
    if not raw or raw[0] in "=<>!~":
        raise OpsError("QUERY_INVALID", f"--where {text!r}: missing value after {op!r}", field="--where")
    if op == "~":
        try:
            value: Any = re.compile(raw)
        except re.error as exc:
            raise OpsError("QUERY_INVALID", f"--where {text!r}: bad regex ({exc})", field="--where") from None
    else:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = raw  # a bare word is a string: level=ERROR
    return Predicate(field_path(path), op, value, text)


def _split(values: Iterable[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or ():
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------
# the filter
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventFilter:
    """Which events to keep. Empty means "any". ``types`` accept shell patterns (``order_*``)."""

    categories: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    min_level: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None   # exclusive
    where: tuple[Predicate, ...] = ()
    _needles: tuple[tuple[bytes, ...], ...] = field(default=(), compare=False, repr=False)
    _levels: frozenset[str] | None = field(default=None, compare=False, repr=False)
    _trivial: bool = field(default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        bad = [c for c in self.categories if c not in CATEGORIES]
        if bad:
            raise OpsError("QUERY_INVALID", f"unknown category {bad[0]!r}; categories: {', '.join(CATEGORIES)}",
                           field="--category")
        bad = [lv for lv in (*self.levels, *((self.min_level,) if self.min_level else ())) if lv not in LEVELS]
        if bad:
            raise OpsError("QUERY_INVALID", f"unknown level {bad[0]!r}; levels: {', '.join(LEVELS)}",
                           field="--level")
        if self.since_ms is not None and self.until_ms is not None and self.until_ms <= self.since_ms:
            raise OpsError("QUERY_INVALID", "--until must be after --since", field="--until")
        needles = []
        if self.categories:
            needles.append(tuple(b'"category":"%s"' % c.encode() for c in self.categories))
        levels = self._level_set()
        if levels is not None:
            needles.append(tuple(b'"level":"%s"' % lv.encode() for lv in levels))
        if self.types and not any(_is_pattern(t) for t in self.types):
            needles.append(tuple(b'"event_type":"%s"' % t.encode() for t in self.types))
        object.__setattr__(self, "_needles", tuple(needles))
        object.__setattr__(self, "_levels", None if levels is None else frozenset(levels))
        object.__setattr__(self, "_trivial", not (self.categories or self.types or levels is not None or self.where
                                                  or self.since_ms is not None or self.until_ms is not None))

    @classmethod
    def from_options(cls, *, categories: Iterable[str] | None = None, types: Iterable[str] | None = None,
                     levels: Iterable[str] | None = None, min_level: str | None = None,
                     since: str | None = None, until: str | None = None,
                     where: Iterable[str] | None = None) -> "EventFilter":
        """Build from CLI-style strings (comma lists, ISO times, ``FIELD OP VALUE``)."""
        return cls(categories=tuple(c.upper() for c in _split(categories)), types=_split(types),
                   levels=tuple(lv.upper() for lv in _split(levels)),
                   min_level=min_level.upper() if min_level else None,
                   since_ms=parse_time(since, option="--since") if since else None,
                   until_ms=parse_time(until, option="--until") if until else None,
                   where=tuple(parse_where(w) for w in where or ()))

    def _level_set(self) -> tuple[str, ...] | None:
        levels = set(self.levels) if self.levels else set(LEVELS)
        if self.min_level:
            levels &= {lv for lv in LEVELS if LEVEL_RANK[lv] >= LEVEL_RANK[self.min_level]}
        if not self.levels and not self.min_level:
            return None
        return tuple(lv for lv in LEVELS if lv in levels)

    def may_match(self, raw: bytes) -> bool:
        """Cheap test on the raw line: False means the event cannot match."""
        for group in self._needles:
            for needle in group:
                if needle in raw:
                    break
            else:
                return False
        return True

    def matches(self, event: dict[str, Any]) -> bool:
        if self._trivial:
            return True
        if self.categories and event.get("category") not in self.categories:
            return False
        if self._levels is not None and event.get("level") not in self._levels:
            return False
        if self.types and not any(fnmatch.fnmatchcase(str(event.get("event_type")), t) for t in self.types):
            return False
        ts = event.get("ts_ms")
        if self.since_ms is not None and (not isinstance(ts, int) or ts < self.since_ms):
            return False
        if self.until_ms is not None and (not isinstance(ts, int) or ts >= self.until_ms):
            return False
        return all(p(event) for p in self.where)


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


# ------------------------------------------------------------------------------------------
# streaming
# ------------------------------------------------------------------------------------------
class Hit(NamedTuple):
    """A matching event, its raw line (no newline), and where it was read."""

    event: dict[str, Any]
    raw: bytes
    segment: Segment
    line: int


@dataclass
class ScanStats:
    """What a scan read: lines, matches, whether the log ended in a torn line, and whether what
    was read verifies as a hash chain (``unverified``: the first line that does not, and why)."""

    lines: int = 0
    matched: int = 0
    truncated_at: str | None = None
    segments: list[str] = field(default_factory=list)
    unverified: str | None = None
    unverified_lines: int = 0


def iter_events(ws: Workspace, run_id: str, flt: EventFilter | None = None, *,
                stats: ScanStats | None = None, segments: list[Segment] | None = None) -> Iterator[Hit]:
    """Matching events of a run's log in chain order (streaming; flat memory).

    A torn last line (the writer was killed mid-line) ends the stream and is noted in ``stats``;
    any other unparsable line is a coded ``EVENTS_JSON`` error naming the segment and line.
    """
    flt = flt or EventFilter()
    segments = segments if segments is not None else require_segments(ws, run_id)
    stats = stats if stats is not None else ScanStats()
    stats.segments = [s.display(ws) for s in segments]
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    may_match, matches, trivial = flt.may_match, flt.matches, flt._trivial
    quick = bool(flt._needles)
    until = flt.until_ms
    chain = _Chain(stats)
    sha256, hash_key, prev_key = hashlib.sha256, _HASH_KEY, b',"prev":"'
    prev = GENESIS_HASH.encode()
    for index, segment in enumerate(segments):
        last_segment = index == len(segments) - 1
        number = 0
        with open_segment(segment, ws) as handle:
            try:
                for raw in bounded_lines(handle, segment.display(ws), segment.size if segment.archived else None):
                    number += 1  # the hot loop: keep it to what every line needs
                    if raw[-1:] == b"\n":
                        raw = raw[:-1]
                    elif last_segment:
                        stats.truncated_at = f"{segment.display(ws)}:{number}"
                        stats.lines += number - 1
                        return
                    # the chain, on the raw bytes (no parsing): this line's hash covers it, its prev
                    # names the line before; the first line that does not fit is noted in the stats
                    cut = raw.find(hash_key)
                    stated = raw[cut + 9:cut + 73]
                    if cut < 0 or sha256(raw[:cut] + raw[cut + 74:]).hexdigest().encode() != stated \
                            or raw.find(prev_key + prev, cut) < 0:
                        chain.problem(raw, segment, ws, number, prev)
                    prev = stated
                    if raw[-1:] == b"\r":
                        raw = raw[:-1]
                    if quick and not may_match(raw):
                        if until is not None:
                            ts = _raw_ts(raw)
                            if ts is not None and ts >= until:
                                stats.lines += number
                                return
                        continue
                    if not raw:
                        continue
                    try:
                        event = loads(raw)
                    except decode_error as exc:
                        raise EventLogError("EVENTS_JSON", f"line {number} is not valid JSON ({exc.msg})",
                                            path=segment.display(ws), line=number) from None
                    if type(event) is not dict:
                        raise EventLogError("EVENTS_SCHEMA", "an event must be a JSON object",
                                            path=segment.display(ws), line=number)
                    if until is not None and isinstance(event.get("ts_ms"), int) and event["ts_ms"] >= until:
                        stats.lines += number
                        return  # events are in sim-time order (the events gate enforces it)
                    if trivial or matches(event):
                        stats.matched += 1
                        yield Hit(event, raw, segment, number)
            except (OSError, EOFError, tarfile.TarError) as exc:
                raise EventLogError("ARCHIVE_INVALID" if segment.archived else "IO_ERROR",
                                    f"reading {segment.name} failed after line {number}: {exc}",
                                    path=segment.display(ws), line=number + 1) from exc
        stats.lines += number


class _Chain:
    """Notes the first line of a scan that does not fit the hash chain, and why (edited,
    re-ordered, a CRLF line ending, a JSON line that is no event); schemas are the events gate's job."""

    def __init__(self, stats: ScanStats) -> None:
        self.stats = stats

    def problem(self, raw: bytes, segment: Segment, ws: Workspace, number: int, prev: bytes) -> None:
        self.stats.unverified_lines += 1
        if self.stats.unverified is not None:
            return
        try:
            body, stated = hashed_body(raw)
        except ValueError:
            problem = "no hash member: not an event of a Treasure log"
        else:
            if raw.endswith(b"\r"):
                problem = "the line ends with \\r\\n: its line ending was converted"
            elif hashlib.sha256(body).hexdigest() != stated:
                problem = "its hash does not match its content: the line was edited"
            else:
                problem = "its prev is not the previous line's hash: a line was deleted, moved or edited"
        self.stats.unverified = f"{segment.display(ws)}:{number}: {problem}"


def _raw_ts(raw: bytes) -> int | None:
    """ts_ms read off the end of a canonical line (its last key) without parsing the line."""
    at = raw.rfind(b'"ts_ms":')
    if at < 0:
        return None
    digits = raw[at + 8:].rstrip(b"}")
    return int(digits) if digits.isdigit() else None


def select(hits: Iterable[Hit], *, head: int | None = None, tail: int | None = None) -> Iterator[Hit]:
    """The first ``head`` and/or last ``tail`` hits (a bounded deque: memory stays flat)."""
    for option, value in (("--head", head), ("--tail", tail)):
        if value is not None and not 0 <= value <= MAX_COUNT:
            raise OpsError("QUERY_INVALID", f"{option} {value}: must be between 0 and {MAX_COUNT}", field=option,
                           hint=f"e.g. `treasure events latest {option} 20`")
    if head is not None:
        def limited(source: Iterable[Hit], n: int) -> Iterator[Hit]:
            if n <= 0:
                return
            for i, hit in enumerate(source, start=1):
                yield hit
                if i >= n:
                    return
        hits = limited(hits, head)
    if tail is not None:
        return iter(deque(hits, maxlen=max(tail, 0)))
    return iter(hits)


def count_by(hits: Iterable[Hit], path: Sequence[str]) -> list[tuple[str, int]]:
    """``jq group_by | length`` / ``sort | uniq -c``: counts per value, most frequent first."""
    counts: Counter[str] = Counter()
    for hit in hits:
        value = get_path(hit.event, path)
        counts["(missing)" if value is MISSING else value if isinstance(value, str) else _compact(value)] += 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


# ------------------------------------------------------------------------------------------
# printing
# ------------------------------------------------------------------------------------------
def _compact(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def render_value(value: Any) -> str:
    """Like ``jq -r``: strings raw, everything else as compact JSON."""
    return value if isinstance(value, str) else _compact(value)


def summarize_payload(payload: Any, width: int = 160) -> str:
    """``key=value`` pairs of a payload, cut to ``width`` characters."""
    if not isinstance(payload, dict):
        return render_value(payload)[:width]
    text = " ".join(f"{k}={render_value(v)}" for k, v in payload.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_event(event: dict[str, Any], width: int = 160) -> str:
    """One human line: ``#seq time LEVEL CATEGORY type  key=value ...``."""
    ts = event.get("ts_ms")
    when = format_ts(ts) if isinstance(ts, int) else "?"
    return (f"#{event.get('seq', '?'):<6} {when} {str(event.get('level', '?')):<8} "
            f"{str(event.get('category', '?')):<7} {event.get('event_type', '?')}  "
            f"{summarize_payload(event.get('payload'), width)}")
