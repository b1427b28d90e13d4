"""The engine's order book: the orders a run placed, what is still working, and what filled.

Pure bookkeeping, no I/O and no events: the bar loop asks it and emits what happened. Sizes are
kept as they are decided (see :mod:`treasure.engine.lots` for the exact representation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from treasure.execution.messages import Fill, Order


@dataclass(slots=True)
class WorkingOrder:
    """An order with its unfilled and filled parts."""

    order: Order
    remaining: float
    filled: float = 0.0


@dataclass
class OrderBook:
    """Every order and fill of a run, and the orders still working at the venue."""

    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    open: dict[str, WorkingOrder] = field(default_factory=dict)
    ref_prices: dict[str, float] = field(default_factory=dict)
    order_bars: dict[str, int] = field(default_factory=dict)
    #: signed units still working (buys positive)
    working_qty: float = 0.0
    count: int = 0

    def next_id(self) -> str:
        """A new order id (ids are numbered in decision order, rejected intents included)."""
        self.count += 1
        return f"o{self.count:06d}"

    def add(self, order: Order) -> None:
        self.orders.append(order)
        self.open[order.order_id] = WorkingOrder(order, order.qty)
        self.ref_prices[order.order_id] = order.ref_price
        self.order_bars[order.order_id] = order.bar_idx
        self.working_qty += _signed(order.side, order.qty)

    def record_fill(self, fill: Fill) -> tuple[WorkingOrder, bool]:
        """Book ``fill`` (already cut to what may fill) against its working order; returns the
        order and whether it is now done (done orders leave the book)."""
        working = self.open[fill.order_id]
        self.fills.append(fill)
        working.remaining -= fill.qty
        working.filled += fill.qty
        self.working_qty -= _signed(fill.side, fill.qty)
        if abs(self.working_qty) < 1e-12:
            self.working_qty = 0.0
        done = working.remaining <= working.order.qty * 1e-9
        if done:
            self.working_qty -= _signed(fill.side, working.remaining)
            del self.open[fill.order_id]
        return working, done

    def close(self, order_id: str) -> WorkingOrder:
        """Take an order off the book (cancelled or rejected); its remainder stops working."""
        working = self.open.pop(order_id)
        self.working_qty -= _signed(working.order.side, working.remaining)
        if abs(self.working_qty) < 1e-12:
            self.working_qty = 0.0
        return working


def _signed(side: str, qty: float) -> float:
    return qty if side == "buy" else -qty
