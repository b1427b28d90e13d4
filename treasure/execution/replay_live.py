"""The replay-live adapter: a recorded venue session played back against a run.

Messages come from a recorded live session (``fixtures/live/*.jsonl``, format in
:mod:`treasure.recon.venue_sessions`), keyed by our deterministic client order ids. Each message is delivered
at the bar its venue timestamp falls in (``bar.t_ms <= venue_ts_ms < bar.t_ms + interval_ms``, or
the next bar the engine processes), in venue-time order. Fills are the venue's facts: this adapter
is ``simulated = False``, so the engine books them as reported and does not cut them at risk limits.

Nothing in a recording can crash a run. Every problem becomes an ``ExecReport(kind="error")`` with a
stable code and, where there is one, the fixture line; the engine records it as ``adapter_error``:

==========================  =========================================================================
``LIVE_MISSING``            the session file cannot be read (the run continues with no venue)
``LIVE_JSON``               a line is not JSON
``LIVE_TRUNCATED``          the last line is incomplete
``LIVE_SCHEMA``             a message breaks the format (the field is named)
``LIVE_HEADER``             a session line after the first line
``LIVE_OUT_OF_ORDER``       a message older than the newest one by more than ``recon.time_window_ms``
``LIVE_DUPLICATE_FILL``     a fill_id seen before
``LIVE_SYMBOL``             the session is for another instrument (all its messages are ignored)
``LIVE_UNKNOWN_ORDER``      messages for an order id the run had not placed when they were due
``LIVE_BEFORE_ORDER``       a message timestamped before its order was decided
``LIVE_ORDER_MISMATCH``     an ack whose side or quantity differs from the order sent
``LIVE_ORDER_UNRECORDED``   the run placed an order the session has no message for
``LIVE_OVERFILL``           fills beyond the order quantity (the excess is dropped)
``LIVE_AFTER_TERMINAL``     a message for an order already filled, cancelled or rejected
``LIVE_UNDELIVERED``        messages still due when the run ended
==========================  =========================================================================
"""

from __future__ import annotations

import heapq
from collections import deque
from pathlib import Path
from typing import Any

from treasure.errors import TreasureError
from treasure.execution.base import ExecutionAdapter, register_adapter
from treasure.execution.messages import ExecReport, Fill, Order
from treasure.strategy.base import Bar

_QTY_EPS = 1e-9


class ReplayLiveAdapter(ExecutionAdapter):
    """Plays a recorded venue session back, bar by bar, by venue timestamp."""

    name = "replay-live"
    simulated = False

    def __init__(self, *, execution: Any = None, config: Any = None, workspace: Any = None,
                 run_id: str | None = None, live_fixture: str | Path | None = None, **_: Any) -> None:
        self.config = config
        self.workspace = workspace
        self.live_fixture = live_fixture
        self.path: str | None = None
        dataset = {} if config is None else config.section("dataset")
        recon = {} if config is None else config.section("recon")
        self.interval_ms = int(dataset.get("interval_ms", 60_000))
        self.window_ms = int(recon.get("time_window_ms", 0))
        self._pending: list[ExecReport] = []
        self._queues: dict[str, deque] = {}
        self._due: list[tuple[int, int, str]] = []      # (venue ts, line, order id): every order's first message
        self._next: list[tuple[int, int, str]] = []     # the next message of each submitted order
        self._orders: dict[str, Order] = {}
        self._filled: dict[str, float] = {}
        self._closed: dict[str, str] = {}

    # loading ----------------------------------------------------------------------------------
    def _resolve(self) -> Path:
        from treasure.recon.service import live_fixture_path

        if self.live_fixture is not None:
            candidate = Path(self.live_fixture)
            if candidate.is_absolute() or self.workspace is None:
                return candidate
            return self.workspace.resolve_inside(candidate, field="live_fixture")
        return live_fixture_path(self.workspace, None if self.config is None else self.config.section("recon"),
                                 source=None if self.config is None else self.config.path)

    def start(self, *, rng: Any, config: Any, symbol: str) -> None:
        super().start(rng=rng, config=config, symbol=symbol)
        from treasure.recon.venue_sessions import read_live

        try:
            path = self._resolve()
            self.path = self.workspace.relative(path) if self.workspace is not None else str(path)
            session = read_live(path, display_path=self.path, time_window_ms=self.window_ms, strict=False)
        except TreasureError as exc:
            self._error(exc.code if exc.code.startswith("LIVE_") else "LIVE_MISSING", str(exc))
            return
        except (OSError, ValueError) as exc:  # e.g. a NUL byte in the configured path: still no crash
            self._error("LIVE_MISSING", f"cannot read the live session {self.live_fixture!r}: {exc}")
            return
        for problem in session.problems:
            where = f" (field {problem.field})" if problem.field else ""
            self._error(problem.code, f"{self.path}: {problem.message}{where}", line=problem.line,
                        order_id=problem.order_id)
        if session.symbol and session.symbol != symbol:
            self._error("LIVE_SYMBOL", f"{self.path} records {session.symbol}, this run trades {symbol}; "
                        "its messages are ignored", line=1)
            return
        grouped: dict[str, list] = {}
        for message in session.messages:
            grouped.setdefault(message.order_id, []).append(message)
        for order_id, messages in grouped.items():
            messages.sort(key=lambda m: (m.venue_ts_ms, m.line))
            self._queues[order_id] = deque(messages)
            self._due.append((messages[0].venue_ts_ms, messages[0].line, order_id))
        heapq.heapify(self._due)

    def _error(self, code: str, reason: str, *, line: int | None = None, order_id: str | None = None) -> None:
        self._pending.append(ExecReport("error", order_id, reason=reason, code=code, line=line))

    def _drain(self) -> list[ExecReport]:
        reports, self._pending = self._pending, []
        return reports

    # the adapter interface --------------------------------------------------------------------
    def submit(self, order: Order) -> list[ExecReport]:
        oid = order.order_id
        self._orders[oid] = order
        self._filled[oid] = 0.0
        queue = self._queues.get(oid)
        if not queue:
            self._error("LIVE_ORDER_UNRECORDED", f"{self.path}: no venue message for order {oid}", order_id=oid)
            return self._drain()
        while queue and queue[0].venue_ts_ms < order.ts_ms:
            early = queue.popleft()
            self._error("LIVE_BEFORE_ORDER", f"{early.type} for {oid} at venue_ts_ms {early.venue_ts_ms}, before "
                        f"the order was decided at {order.ts_ms}", line=early.line, order_id=oid)
        for message in queue:
            if message.type == "ack" and ((message.side is not None and message.side != order.side) or (
                    message.qty is not None and abs(message.qty - order.qty) > _QTY_EPS * max(1.0, order.qty))):
                self._error("LIVE_ORDER_MISMATCH", f"ack for {oid} says {message.side} {message.qty}, the order was "
                            f"{order.side} {order.qty}", line=message.line, order_id=oid)
        if queue:
            heapq.heappush(self._next, (queue[0].venue_ts_ms, queue[0].line, oid))
        return self._drain()

    def cancel(self, order_id: str) -> list[ExecReport]:
        if order_id in self._orders and order_id not in self._closed:
            self._closed[order_id] = "cancelled by the engine"
        return []

    def has_open_orders(self) -> bool:
        return any(self._queues.get(oid) for oid in self._orders if oid not in self._closed)

    def on_bar(self, bar: Bar) -> list[ExecReport]:
        while self._due and self._due[0][0] < bar.t_ms:
            _, line, oid = heapq.heappop(self._due)
            queue = self._queues.get(oid)
            if oid not in self._orders and queue:
                self._error("LIVE_UNKNOWN_ORDER", f"{self.path}: {len(queue)} venue message(s) for order {oid}, "
                            "which the run had not placed when they were due", line=line, order_id=oid)
                queue.clear()
        horizon = bar.t_ms + self.interval_ms
        reports = self._drain()
        while self._next and self._next[0][0] < horizon:
            _, _, oid = heapq.heappop(self._next)
            queue = self._queues[oid]
            reports.extend(self._deliver(queue.popleft(), bar))
            if queue:
                heapq.heappush(self._next, (queue[0].venue_ts_ms, queue[0].line, oid))
        return reports

    def stop(self) -> list[ExecReport]:
        for oid in sorted(self._queues):
            queue = self._queues[oid]
            if not queue:
                continue
            if oid not in self._orders:
                self._error("LIVE_UNKNOWN_ORDER", f"{self.path}: {len(queue)} venue message(s) for order {oid}, "
                            "which the run never placed", line=queue[0].line, order_id=oid)
            else:
                self._error("LIVE_UNDELIVERED", f"{self.path}: {len(queue)} venue message(s) for {oid} due after "
                            "the run ended or the order was closed", line=queue[0].line, order_id=oid)
            queue.clear()
        return self._drain()

    # delivery ---------------------------------------------------------------------------------
    def _deliver(self, message: Any, bar: Bar) -> list[ExecReport]:
        oid = message.order_id
        if oid in self._closed:
            return [ExecReport("error", oid, code="LIVE_AFTER_TERMINAL", line=message.line,
                               reason=f"venue {message.type} for {oid} after the order was {self._closed[oid]}")]
        order = self._orders[oid]
        if message.type == "ack":
            return []
        if message.type == "cancel":
            self._closed[oid] = "cancelled"
            return [ExecReport("cancel", oid, reason=f"venue:{message.reason or 'cancelled'}")]
        if message.type == "reject":
            self._closed[oid] = "rejected"
            return [ExecReport("reject", oid, reason=f"venue:{message.reason or 'rejected'}")]
        reports: list[ExecReport] = []
        remaining = order.qty - self._filled[oid]
        qty = float(message.qty)
        fee = float(message.fee)
        if qty > remaining + _QTY_EPS * max(1.0, order.qty):
            reports.append(ExecReport("error", oid, code="LIVE_OVERFILL", line=message.line,
                                      reason=f"fill {message.fill_id} of {qty} for {oid} exceeds the remaining "
                                             f"{remaining}; the excess is dropped"))
            fee = fee * remaining / qty if qty > 0 else fee
            qty = remaining
        if qty > _QTY_EPS * max(1.0, order.qty):
            self._filled[oid] += qty
            reports.append(ExecReport("fill", oid, Fill(oid, order.side, qty, float(message.price), fee, bar.idx,
                                                        message.venue_ts_ms)))
        left = order.qty - self._filled[oid]
        if message.status == "filled" or left <= _QTY_EPS * max(1.0, order.qty):
            self._closed[oid] = "filled"
            if left > _QTY_EPS * max(1.0, order.qty):  # the venue calls it done: release the remainder
                reports.append(ExecReport("cancel", oid, reason="venue:filled_short"))
        return reports


register_adapter("replay-live", ReplayLiveAdapter)
