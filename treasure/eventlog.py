"""Reading and verifying event logs, streaming, with the first broken line named.

A log may be split into parts by rotation (``run_<id>.jsonl`` preceded by archived parts); the
hash chain and ``seq`` simply continue across them, so verification takes the parts in order.
Memory stays flat: one line at a time.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from treasure.contracts import Contracts
from treasure.errors import EventLogError
from treasure.events import GENESIS_HASH, hashed_body


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


def iter_lines(paths: Iterable[Path]) -> Iterator[tuple[str, int, bytes, bool]]:
    """Yield ``(path, line number, raw line, has newline)`` over the parts of a log."""
    for path in paths:
        try:
            handle = open(path, "rb")
        except FileNotFoundError as exc:
            raise EventLogError("RUN_UNKNOWN", f"no event log at {path}", path=str(path)) from exc
        except IsADirectoryError as exc:
            raise EventLogError("EVENTS_JSON", f"{path} is a directory", path=str(path)) from exc
        with handle:
            for number, raw in enumerate(handle, start=1):
                complete = raw.endswith(b"\n")
                yield str(path), number, raw.rstrip(b"\r\n") if complete else raw, complete


def read_events(paths: Iterable[Path] | Path, *, tolerate_torn_tail: bool = True) -> Iterator[dict[str, Any]]:
    """Parse events without verifying; a torn last line (crash mid-write) is dropped if tolerated."""
    if isinstance(paths, (str, Path)):
        paths = [Path(paths)]
    for source, number, raw, complete in iter_lines(paths):
        if not raw.strip():
            continue
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if not complete and tolerate_torn_tail:
                return
            code = "EVENTS_TRUNCATED" if not complete else "EVENTS_JSON"
            raise EventLogError(code, f"line {number} is not valid JSON ({exc.msg})",
                                path=source, line=number) from exc
        yield event


def verify_log(paths: Iterable[Path] | Path, contracts: Contracts | None = None, *,
               run_id: str | None = None, collect: list[dict[str, Any]] | None = None) -> LogSummary:
    """Verify a whole log: JSON per line, schema, run_id, seq, time order, hash chain.

    Raises :class:`EventLogError` at the first problem, naming file, line and field. A last line
    without a newline is reported as ``EVENTS_TRUNCATED`` ("truncated at line N"), never a crash.
    """
    if isinstance(paths, (str, Path)):
        paths = [Path(paths)]
    summary = LogSummary(run_id=run_id)
    expected_seq = 0
    prev_hash = GENESIS_HASH
    last_ts: int | None = None
    seen_files: list[str] = []
    for source, number, raw, complete in iter_lines(paths):
        if not seen_files or seen_files[-1] != source:
            seen_files.append(source)
        summary.bytes += len(raw) + (1 if complete else 0)
        if not complete:
            raise EventLogError("EVENTS_TRUNCATED", f"log truncated at line {number}: the last line is "
                                "incomplete", path=source, line=number)
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise EventLogError("EVENTS_JSON", f"line {number} is not valid JSON ({exc.msg})",
                                path=source, line=number) from exc
        if not isinstance(event, dict):
            raise EventLogError("EVENTS_SCHEMA", "an event must be a JSON object", path=source, line=number)
        if contracts is not None:
            contracts.check_event(event, source=source, line=number)
        else:
            for key in ("run_id", "seq", "ts_ms", "prev", "hash", "category", "event_type", "level"):
                if key not in event:
                    raise EventLogError("EVENTS_SCHEMA", f"missing field {key}", path=source,
                                        line=number, field=key)
        if summary.run_id is None:
            summary.run_id = event["run_id"]
        elif event["run_id"] != summary.run_id:
            raise EventLogError("EVENTS_RUN_ID", f"run_id {event['run_id']!r} differs from "
                                f"{summary.run_id!r}", path=source, line=number, field="run_id")
        if event["seq"] != expected_seq:
            raise EventLogError("EVENTS_SEQ", f"seq {event['seq']} where {expected_seq} was expected",
                                path=source, line=number, field="seq")
        ts = event["ts_ms"]
        if last_ts is not None and ts < last_ts:
            raise EventLogError("EVENTS_TIME", f"ts_ms {ts} goes back from {last_ts}",
                                path=source, line=number, field="ts_ms",
                                hint="events must be in sim-time order; the log was reordered or edited")
        if event["prev"] != prev_hash:
            raise EventLogError("EVENTS_CHAIN", f"prev does not match the hash of the previous event "
                                f"(chain broken at line {number})", path=source, line=number, field="prev")
        try:
            body, stated = hashed_body(raw)
        except ValueError as exc:
            raise EventLogError("EVENTS_CHAIN", "no hash member", path=source, line=number,
                                field="hash") from exc
        if hashlib.sha256(body).hexdigest() != event["hash"] or stated != event["hash"]:
            raise EventLogError("EVENTS_CHAIN", f"hash does not match the event's content (edited at "
                                f"line {number})", path=source, line=number, field="hash")
        prev_hash = event["hash"]
        last_ts = ts
        expected_seq += 1
        if summary.first_ts_ms is None:
            summary.first_ts_ms = ts
        summary.by_category[event["category"]] += 1
        summary.by_level[event["level"]] += 1
        summary.by_type[event["event_type"]] += 1
        if collect is not None:
            collect.append(event)
    summary.events = expected_seq
    summary.last_ts_ms = last_ts
    summary.last_hash = prev_hash
    summary.files = seen_files
    if expected_seq == 0:
        raise EventLogError("EVENTS_EMPTY", "the event log holds no events",
                            path=seen_files[0] if seen_files else None)
    return summary
