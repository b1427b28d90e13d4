"""Recorded live venue sessions (``fixtures/live/*.jsonl``): format, reader, writer.

One JSON object per line, in arrival order. An optional first line describes the session; every
other line is a venue message about one of *our* orders, keyed by the engine's deterministic client
order id (``o000001``...)::

    {"type":"session","format":"treasure-live/1","venue":"recorded-replay","symbol":"SYNTH-USD"}
    {"type":"ack","order_id":"o000001","venue_ts_ms":1767252300020,"venue_order_id":"V000001","side":"buy","qty":80.67}
    {"type":"fill","order_id":"o000001","venue_ts_ms":1767252300140,"fill_id":"F000001","qty":80.67,
     "price":99.1846,"fee":4.0008,"status":"filled"}
    {"type":"cancel","order_id":"o000007","venue_ts_ms":...,"reason":"expired"}
    {"type":"reject","order_id":"o000009","venue_ts_ms":...,"reason":"insufficient margin"}

Timestamps are the venue's (ms since epoch, UTC). A recording may be slightly out of order (venues
deliver concurrently), but no message may be older than the newest one seen so far by more than the
reconciliation time window; beyond that, and for malformed, truncated, duplicated or schema-breaking
lines, the reader reports a problem naming the line. ``strict=True`` (recon) raises the first one as
a coded :class:`~treasure.errors.DataError`; the replay adapter reads leniently and turns each
problem into an ``adapter_error`` event instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import fastjsonschema
import orjson
from jsonschema import Draft202012Validator

from treasure.contracts import error_field, first_error
from treasure.errors import HINTS, DataError
from treasure.recon.model import STATE_CODE, Ledger, LedgerBuilder

LIVE_FORMAT = "treasure-live/1"
MESSAGE_TYPES = ("session", "ack", "fill", "cancel", "reject")
ORDER_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"

_ORDER_MESSAGE = {
    "order_id": {"type": "string", "pattern": ORDER_ID_PATTERN, "description": "our client order id"},
    "venue_ts_ms": {"type": "integer", "minimum": 0, "description": "venue timestamp, ms since epoch UTC"},
    "venue_order_id": {"type": "string", "maxLength": 128},
}


def _message_schema(kind: str, properties: dict[str, Any], required: list[str], *, extra: bool = False) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"recorded live message: {kind}",
        "type": "object",
        "additionalProperties": extra,
        "required": ["type", *required],
        "properties": {"type": {"const": kind}, **properties},
    }


#: JSON Schema (draft 2020-12) of each message type: the contract a recording must meet.
MESSAGE_SCHEMAS: dict[str, dict[str, Any]] = {
    "session": _message_schema("session", {
        "format": {"const": LIVE_FORMAT},
        "venue": {"type": "string", "maxLength": 128},
        "symbol": {"type": "string", "maxLength": 64},
    }, ["format"], extra=True),
    "ack": _message_schema("ack", {
        **_ORDER_MESSAGE,
        "side": {"enum": ["buy", "sell"]},
        "qty": {"type": "number", "exclusiveMinimum": 0},
    }, ["order_id", "venue_ts_ms"]),
    "fill": _message_schema("fill", {
        **_ORDER_MESSAGE,
        "fill_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "qty": {"type": "number", "exclusiveMinimum": 0},
        "price": {"type": "number", "exclusiveMinimum": 0},
        "fee": {"type": "number", "description": "negative for a rebate"},
        "status": {"enum": ["partially_filled", "filled"], "description": "the order's state after this fill"},
    }, ["order_id", "venue_ts_ms", "fill_id", "qty", "price", "fee", "status"]),
    "cancel": _message_schema("cancel", {**_ORDER_MESSAGE, "reason": {"type": "string", "maxLength": 500}},
                              ["order_id", "venue_ts_ms"]),
    "reject": _message_schema("reject", {**_ORDER_MESSAGE, "reason": {"type": "string", "maxLength": 500}},
                              ["order_id", "venue_ts_ms"]),
}

#: The reader's error codes; their hints live in :data:`treasure.errors.HINTS`.
LIVE_CODES = ("LIVE_MISSING", "LIVE_EMPTY", "LIVE_JSON", "LIVE_TRUNCATED", "LIVE_SCHEMA", "LIVE_HEADER",
              "LIVE_OUT_OF_ORDER", "LIVE_DUPLICATE_FILL", "LIVE_SYMBOL")
LIVE_HINTS: dict[str, str] = {code: HINTS.get(code, "") for code in LIVE_CODES}


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One venue message (``type`` ack, fill, cancel or reject) with its line number."""

    line: int
    type: str
    order_id: str
    venue_ts_ms: int
    qty: float | None = None
    price: float | None = None
    fee: float | None = None
    status: str | None = None
    side: str | None = None
    fill_id: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LiveProblem:
    """A line the reader refused: code, message and where."""

    line: int
    code: str
    message: str
    field: str | None = None
    order_id: str | None = None


@dataclass
class LiveSession:
    """A parsed recording: the header (if any), the accepted messages in file order, the problems."""

    path: str
    sha256: str
    header: dict[str, Any] | None = None
    messages: list[LiveMessage] = field(default_factory=list)
    problems: list[LiveProblem] = field(default_factory=list)
    lines: int = 0

    @property
    def symbol(self) -> str | None:
        return None if self.header is None else self.header.get("symbol")

    @property
    def venue(self) -> str | None:
        return None if self.header is None else self.header.get("venue")


class _Validators:
    """fastjsonschema on the hot path; jsonschema only to name the field of a failure."""

    def __init__(self) -> None:
        self.fast: dict[str, Callable[[Any], Any]] = {
            kind: fastjsonschema.compile({k: v for k, v in schema.items() if k != "$schema"})
            for kind, schema in MESSAGE_SCHEMAS.items()}
        self.slow = {kind: Draft202012Validator(schema) for kind, schema in MESSAGE_SCHEMAS.items()}

    def explain(self, doc: Any) -> tuple[str, str]:
        """``(field, message)`` of a message that failed the fast check (cold path)."""
        if not isinstance(doc, dict):
            return "(root)", "a message must be a JSON object"
        kind = doc.get("type")
        if kind not in self.fast:
            return "type", f"unknown message type {kind!r} (expected one of {', '.join(MESSAGE_TYPES)})"
        found = first_error(self.slow[kind], doc)
        if found is None:  # the two validators disagree: trust the stricter message
            return "(root)", f"{kind} message does not match its schema"
        if found.validator == "required" and isinstance(found.instance, dict) \
                and isinstance(found.validator_value, list):
            missing = [name for name in found.validator_value if name not in found.instance]
            if missing:
                return missing[0], f"{kind} message: missing required field {missing[0]!r}"
        return error_field(found), f"{kind} message: {found.message}"


_VALIDATORS: _Validators | None = None


def _validators() -> _Validators:
    global _VALIDATORS
    if _VALIDATORS is None:
        _VALIDATORS = _Validators()
    return _VALIDATORS


def _decode(raw_lines: list[bytes], numbers: list[int], complete_last: bool) -> list[tuple[int, Any, tuple | None]]:
    """``(line number, document, error)`` of every non-blank line, in order. One orjson call parses
    the whole file as an array when it is well formed; otherwise lines are parsed one by one, and a
    bad one carries ``error = (code, message)`` instead of a document."""
    if numbers:
        try:
            docs = orjson.loads(b"[" + b",".join(raw_lines[n - 1] for n in numbers) + b"]")
            if len(docs) == len(numbers):
                return [(n, doc, None) for n, doc in zip(numbers, docs)]
        except orjson.JSONDecodeError:
            pass
    out: list[tuple[int, Any, tuple | None]] = []
    for number in numbers:
        try:
            out.append((number, orjson.loads(raw_lines[number - 1]), None))
        except orjson.JSONDecodeError as exc:
            if number == len(raw_lines) and not complete_last:
                error = ("LIVE_TRUNCATED", f"live session truncated at line {number}: the last line is incomplete")
            else:
                error = ("LIVE_JSON", f"line {number} is not valid JSON ({exc.msg})")
            out.append((number, None, error))
    return out


def parse_live(data: bytes, *, path: str = "<live>", time_window_ms: int, strict: bool) -> LiveSession:
    """Parse a recording. ``strict`` raises the first problem as a coded DataError (exit code 2)."""
    session = LiveSession(path=path, sha256=hashlib.sha256(data).hexdigest())
    validators = _validators()
    newest: int | None = None
    fill_ids: dict[str, int] = {}

    def problem(line: int, code: str, message: str, field_name: str | None = None,
                order_id: str | None = None) -> None:
        if strict:
            raise DataError(code, message, path=path, line=line, field=field_name, hint=LIVE_HINTS[code])
        session.problems.append(LiveProblem(line, code, message, field_name, order_id))

    raw_lines = data.split(b"\n")
    complete_last = data.endswith(b"\n")
    if complete_last:
        raw_lines.pop()
    session.lines = len(raw_lines)
    numbers = [n for n, raw in enumerate(raw_lines, start=1) if raw.strip()]
    fast, messages = validators.fast, session.messages
    for number, doc, error in _decode(raw_lines, numbers, complete_last):
        if error is not None:
            problem(number, *error)
            continue
        kind = doc.get("type", "") if type(doc) is dict else ""  # "" is no message type: fails below
        check = fast.get(kind)
        try:
            if check is None:
                raise fastjsonschema.JsonSchemaException("unknown type")
            check(doc)
        except fastjsonschema.JsonSchemaException:
            field_name, message = validators.explain(doc)
            oid = doc.get("order_id") if type(doc) is dict else None
            problem(number, "LIVE_SCHEMA", f"line {number}: {message}", field_name, oid if isinstance(oid, str) else None)
            continue
        if kind == "session":
            if session.header is not None or messages:
                problem(number, "LIVE_HEADER", f"line {number}: a session line after the start of the recording",
                        "type")
            else:
                session.header = doc
            continue
        ts = doc["venue_ts_ms"]
        order_id = doc["order_id"]
        if newest is not None and ts < newest - time_window_ms:
            problem(number, "LIVE_OUT_OF_ORDER", f"line {number}: venue_ts_ms {ts} is {newest - ts} ms older than "
                    f"an earlier message (window {time_window_ms} ms)", "venue_ts_ms", order_id)
            continue
        if kind == "fill":
            fill_id = doc["fill_id"]
            if fill_id in fill_ids:
                problem(number, "LIVE_DUPLICATE_FILL", f"line {number}: fill_id {fill_id!r} already seen at line "
                        f"{fill_ids[fill_id]}", "fill_id", order_id)
                continue
            fill_ids[fill_id] = number
            messages.append(LiveMessage(number, kind, order_id, int(ts), float(doc["qty"]), float(doc["price"]),
                                        float(doc["fee"]), doc["status"], None, fill_id, ""))
        else:
            qty = doc.get("qty")
            messages.append(LiveMessage(number, kind, order_id, int(ts), None if qty is None else float(qty),
                                        None, None, None, doc.get("side"), None, doc.get("reason", "")))
        if newest is None or ts > newest:
            newest = ts
    if strict and not session.messages:
        raise DataError("LIVE_EMPTY", "the live session holds no venue messages", path=path,
                        hint=LIVE_HINTS["LIVE_EMPTY"])
    return session


def read_live(path: Path, *, display_path: str | None = None, time_window_ms: int, strict: bool) -> LiveSession:
    """Read and parse a recording file (see :func:`parse_live`)."""
    shown = display_path or str(path)
    try:
        from treasure.logread import read_regular  # refuses devices and FIFOs (/dev/zero, /dev/urandom)

        data = read_regular(path)
    except FileNotFoundError as exc:
        raise DataError("LIVE_MISSING", f"no live session at {shown}", path=shown,
                        hint=LIVE_HINTS["LIVE_MISSING"]) from exc
    except IsADirectoryError as exc:
        raise DataError("LIVE_MISSING", f"{shown} is a directory, not a live session", path=shown,
                        hint=LIVE_HINTS["LIVE_MISSING"]) from exc
    except OSError as exc:
        raise DataError("LIVE_MISSING", f"cannot read {shown}: {exc.strerror}", path=shown,
                        hint=LIVE_HINTS["LIVE_MISSING"]) from exc
    return parse_live(data, path=shown, time_window_ms=time_window_ms, strict=strict)


def ledger_from_messages(messages: Iterable[LiveMessage]) -> Ledger:
    """The live side of a reconciliation: every order the venue spoke about, its fills and state."""
    builder = LedgerBuilder()
    for msg in messages:
        index = builder.order(msg.order_id, side=msg.side if msg.type == "ack" else None,
                              qty=msg.qty if msg.type == "ack" else None)
        if msg.type == "fill":
            builder.fill(index, ts_ms=msg.venue_ts_ms, qty=msg.qty, price=msg.price, fee=msg.fee)  # type: ignore[arg-type]
            builder.reach(index, msg.status or "partially_filled", msg.venue_ts_ms)
        elif msg.type == "cancel":
            builder.reach(index, "cancelled", msg.venue_ts_ms)
        elif msg.type == "reject":
            builder.reach(index, "rejected", msg.venue_ts_ms)
        else:
            builder.reach(index, "new", msg.venue_ts_ms)
    return builder.build()


# writing -------------------------------------------------------------------------------------------
def dump_line(doc: Mapping[str, Any]) -> bytes:
    """One recording line: compact JSON with sorted keys (stable bytes)."""
    return orjson.dumps(dict(doc), option=orjson.OPT_SORT_KEYS)


def dump_session(messages: Iterable[Mapping[str, Any]], *, header: Mapping[str, Any] | None = None) -> bytes:
    """A whole recording: the header line (if given) then one line per message, newline-terminated."""
    lines = [dump_line({"type": "session", "format": LIVE_FORMAT, **header})] if header is not None else []
    lines.extend(dump_line(m) for m in messages)
    return b"".join(line + b"\n" for line in lines)


def messages_from_ledger(ledger: Ledger, *, ack_latency_ms: Callable[[int], int] = lambda i: 20,
                         fill_latency_ms: Callable[[int, int], int] = lambda i, k: 120,
                         venue_prefix: str = "V") -> list[dict[str, Any]]:
    """What a venue would report for ``ledger``: an ack, the fills (the last one carrying the final
    status) and a cancel or reject where the order ended so. Sorted by venue time (then order id).

    ``ack_latency_ms(i)`` and ``fill_latency_ms(i, k)`` give the venue latency of order ``i`` and of
    its ``k``-th fill, so a generator can vary them deterministically.
    """
    out: list[tuple[int, str, int, dict[str, Any]]] = []
    fill_no = 0
    filled = STATE_CODE["filled"]
    ended = (STATE_CODE["cancelled"], STATE_CODE["rejected"])
    for i, order_id in enumerate(ledger.ids.tolist()):
        fills = ledger.fills_of(i)
        state = int(ledger.state[i])
        first_ts = fills[0][0] if fills else int(ledger.end_ts[i] if ledger.end_ts[i] >= 0 else ledger.placed_ts[i])
        ack: dict[str, Any] = {"type": "ack", "order_id": order_id,
                               "venue_ts_ms": max(first_ts, 0) + ack_latency_ms(i),
                               "venue_order_id": f"{venue_prefix}{i + 1:07d}"}
        side = {1: "buy", -1: "sell"}.get(int(ledger.side[i]))
        if side is not None:
            ack["side"] = side
        if ledger.qty[i] == ledger.qty[i]:
            ack["qty"] = float(ledger.qty[i])
        out.append((ack["venue_ts_ms"], order_id, 0, ack))
        last_ts = ack["venue_ts_ms"]
        for k, (ts, qty, price, fee) in enumerate(fills):
            fill_no += 1
            final = k == len(fills) - 1 and state == filled
            when = max(ts + fill_latency_ms(i, k), last_ts + 1)
            last_ts = when
            out.append((when, order_id, 1 + k, {
                "type": "fill", "order_id": order_id, "venue_ts_ms": when, "fill_id": f"F{fill_no:07d}",
                "venue_order_id": ack["venue_order_id"], "qty": qty, "price": price, "fee": fee,
                "status": "filled" if final else "partially_filled"}))
        if state in ended:
            kind = "reject" if state == STATE_CODE["rejected"] else "cancel"
            when = max(int(ledger.end_ts[i]) + fill_latency_ms(i, len(fills)), last_ts + 1)
            out.append((when, order_id, 1 + len(fills), {
                "type": kind, "order_id": order_id, "venue_ts_ms": when,
                "venue_order_id": ack["venue_order_id"], "reason": "cancelled" if kind == "cancel" else "rejected"}))
    out.sort(key=lambda item: (item[0], item[1], item[2]))
    return [doc for *_, doc in out]
