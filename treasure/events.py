"""Events: the hash-chained, append-only record of everything a run did.

Each event is written as one line of RFC 8785 canonical JSON. ``hash`` is the SHA-256 of the
canonical bytes of the event *without* its ``hash`` field (which include ``prev``, the previous
event's hash; the first event's ``prev`` is 64 zeros). Any edit, deletion or reordering of a line
therefore breaks the chain at that line. Because the line itself is canonical, a verifier recovers
the hashed bytes by cutting the ``"hash"`` member out of the raw line instead of re-encoding it.

The :class:`EventBus` assigns ``seq``, chains, serialises once and hands the same bytes to every
sink (the JSONL log, the SQLite store, ...), so all evidence carries identical events.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Protocol

from treasure import faults as _faults
from treasure.canonical import canonical_bytes, canonical_event_bytes
from treasure.errors import TreasureIOError

CATEGORIES = ("SYS", "DATA", "STRAT", "RISK", "EXEC", "RECON", "PERSIST")
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")
GENESIS_HASH = "0" * 64
_LEVEL_KEY = b',"level":'
_HASH_KEY = b',"hash":"'
_HASH_MEMBER_LEN = len(_HASH_KEY) + 64 + 1  # ,"hash":"<64 hex>"


def hashed_body(line: bytes) -> tuple[bytes, str]:
    """Split a canonical event line into the bytes its hash covers and the stated hash.

    The first ``,"hash":"`` in a canonical line is the top-level member: it sorts after
    ``category`` and ``event_type``, whose string values cannot hold an unescaped quote.
    """
    start = line.find(_HASH_KEY)
    if start < 0:
        raise ValueError("no hash member")
    stated = line[start + len(_HASH_KEY): start + len(_HASH_KEY) + 64]
    return line[:start] + line[start + _HASH_MEMBER_LEN:], stated.decode("ascii", "replace")


def seal(event: dict[str, Any]) -> tuple[str, bytes]:
    """Hash an event (without ``hash``) and return ``(hash, canonical line with hash, no newline)``."""
    body = canonical_bytes(event)
    return _seal_body(body)


def _seal_body(body: bytes) -> tuple[str, bytes]:
    digest = hashlib.sha256(body).hexdigest()
    cut = body.index(_LEVEL_KEY)
    return digest, body[:cut] + _HASH_KEY + digest.encode("ascii") + b'"' + body[cut:]


class EventSink(Protocol):
    """Where sealed events go. Sinks receive batches of (event dict, canonical line) pairs."""

    def write(self, events: list[dict[str, Any]], lines: list[bytes]) -> None: ...

    def checkpoint(self, *, durable: bool) -> None:
        """Make everything written so far visible (and, if ``durable``, fsynced)."""

    def close(self) -> None: ...


class JsonlSink:
    """The event log file: append-only, created exclusively, fsynced at the points that matter."""

    def __init__(self, path: Path, *, fault_points: bool = False) -> None:
        """``fault_points``: pass ``event_write`` / ``event_fsync`` to :func:`treasure.faults.fire`
        (the run's event log does; other logs written with this sink do not)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fault: Callable[[str], None] | None = _faults.fire if fault_points else None
        try:
            self._handle = open(self.path, "xb", buffering=1 << 20)
        except FileExistsError:
            raise
        except OSError as exc:
            raise TreasureIOError("IO_ERROR", f"cannot create event log: {exc.strerror}",
                                  path=str(self.path)) from exc

    def write(self, events: list[dict[str, Any]], lines: list[bytes]) -> None:
        try:
            if self._fault is not None:
                self._fault("event_write")
            self._handle.write(b"\n".join(lines) + b"\n")
        except OSError as exc:
            raise TreasureIOError("IO_ERROR", f"writing the event log failed: {exc.strerror or exc}",
                                  path=str(self.path)) from exc

    def checkpoint(self, *, durable: bool) -> None:
        try:
            self._handle.flush()
            if durable:
                if self._fault is not None:
                    self._fault("event_fsync")
                os.fsync(self._handle.fileno())
        except OSError as exc:
            raise TreasureIOError("IO_ERROR", f"flushing the event log failed: {exc.strerror or exc}",
                                  path=str(self.path)) from exc

    def close(self) -> None:
        try:
            self._handle.close()
        except OSError:
            pass


class MemorySink:
    """Keeps sealed events in memory: for building logs in code (strategies, tests) without a file."""

    def __init__(self, *, keep_events: bool = True) -> None:
        """``keep_events=False`` keeps only the lines (what a log file would hold)."""
        self.events: list[dict[str, Any]] = []
        self.lines: list[bytes] = []
        self.checkpoints: list[bool] = []
        self._keep_events = keep_events

    def write(self, events: list[dict[str, Any]], lines: list[bytes]) -> None:
        if self._keep_events:
            self.events.extend(events)
        self.lines.extend(lines)

    def checkpoint(self, *, durable: bool) -> None:
        self.checkpoints.append(durable)

    def close(self) -> None:
        pass


class EventBus:
    """Numbers, chains and fans out events; counts them for the court report."""

    def __init__(self, run_id: str, sinks: list[EventSink], *,
                 check: Callable[[dict[str, Any]], None] | None = None, batch_size: int = 2048) -> None:
        self.run_id = run_id
        self.sinks = list(sinks)
        self._check = check
        self._batch_size = batch_size
        self._events: list[dict[str, Any]] = []
        self._lines: list[bytes] = []
        self.seq = 0
        self.prev = GENESIS_HASH
        #: events per (category, level, event_type): one dict update per event on the hot path;
        #: by_category, by_level and by_type are summed from it when asked
        self._counts: dict[tuple[str, str, str], int] = {}
        self.failure: Exception | None = None
        #: what the sinks hold: (events, last hash, by category, by level, by type) as of the last
        #: batch every sink accepted; differs from the live counts only after a sink failed
        self._written: tuple[int, str, Counter[str], Counter[str], Counter[str]] = (
            0, GENESIS_HASH, Counter(), Counter(), Counter())

    def emit(self, ts_ms: int, category: str, event_type: str, level: str,
             payload: dict[str, Any]) -> dict[str, Any]:
        event = {
            "category": category,
            "event_type": event_type,
            "level": level,
            "payload": payload,
            "prev": self.prev,
            "run_id": self.run_id,
            "seq": self.seq,
            "ts_ms": ts_ms,
        }
        # the envelope is built here from str/int values; only the payload needs normalising
        digest, line = _seal_body(canonical_event_bytes(event))
        event["hash"] = digest
        if self._check is not None:
            self._check(event)
        self.prev = digest
        self.seq += 1
        key = (category, level, event_type)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        self._events.append(event)
        self._lines.append(line)
        if len(self._lines) >= self._batch_size:
            self.flush(durable=False)
        return event

    def _sum(self, part: int) -> Counter[str]:
        total: Counter[str] = Counter()
        for key, count in self._counts.items():
            total[key[part]] += count
        return total

    @property
    def by_category(self) -> Counter[str]:
        """Events emitted per category (a fresh Counter)."""
        return self._sum(0)

    @property
    def by_level(self) -> Counter[str]:
        """Events emitted per level (a fresh Counter)."""
        return self._sum(1)

    @property
    def by_type(self) -> Counter[str]:
        """Events emitted per event type (a fresh Counter)."""
        return self._sum(2)

    def flush(self, *, durable: bool) -> None:
        """Hand buffered events to the sinks; ``durable`` also fsyncs them (run end, halt).

        After a sink fails, the bus refuses every further write with the same error: writing a
        later batch after a lost one would leave a log with a hole, indistinguishable from
        tampering, where stopping leaves a valid (possibly torn) prefix.
        """
        if self.failure is not None:
            raise self.failure
        try:
            if self._lines:
                events, lines = self._events, self._lines
                for sink in self.sinks:
                    sink.write(events, lines)
                self._events, self._lines = [], []
                self._written = (self.seq, self.prev, self.by_category, self.by_level, self.by_type)
            for sink in self.sinks:
                sink.checkpoint(durable=durable)
        except Exception as exc:
            self.failure = exc
            raise

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def on_disk(self) -> tuple[int, str, Counter[str], Counter[str], Counter[str]]:
        """``(events, last hash, by category, by level, by type)`` of what the sinks hold: every
        event emitted while no sink has failed (the caller flushes first); after a failure, only
        the batches written before it, so a report never counts events that are not in the log."""
        if self.failure is None and not self._lines:
            return self.seq, self.prev, self.by_category, self.by_level, self.by_type
        return self._written
