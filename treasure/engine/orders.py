"""The engine's order book: the orders a run placed, what is still working, and what filled.

Pure bookkeeping, no I/O and no events: the bar loop asks it and emits what happened. Sizes are
whole lots of ``qty_step`` (:mod:`treasure.execution.quantity`), so an order is done exactly when
its remaining lots reach zero and the working quantity returns to exactly zero: no epsilons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from treasure.execution.messages import Fill, Order


@dataclass(slots=True)
class WorkingOrder:
    """An order with its unfilled and filled parts, in lots."""

    order: Order
    lots: int
    remaining: int
    filled: int = 0


@dataclass
class OrderBook:
    """Every order and fill of a run, and the orders still working at the venue."""

    qty_step: float
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    open: dict[str, WorkingOrder] = field(default_factory=dict)
    ref_prices: dict[str, float] = field(default_factory=dict)
    order_bars: dict[str, int] = field(default_factory=dict)
    #: signed lots still working (buys positive)
    working_lots: int = 0
    count: int = 0

    @property
    def working_qty(self) -> float:
        """Signed units still working, for the edges (``ctx.open_order_qty``, risk)."""
        return self.working_lots * self.qty_step

    def next_id(self) -> str:
        """A new order id (ids are numbered in decision order, rejected intents included)."""
        self.count += 1
        return f"o{self.count:06d}"

    def add(self, order: Order, lots: int) -> None:
        """Book a placed order of ``lots`` lots (``order.qty`` is the same size in units)."""
        self.orders.append(order)
        self.open[order.order_id] = WorkingOrder(order, lots, lots)
        self.ref_prices[order.order_id] = order.ref_price
        self.order_bars[order.order_id] = order.bar_idx
        self.working_lots += _signed(order.side, lots)

    def record_fill(self, fill: Fill, lots: int) -> tuple[WorkingOrder, bool]:
        """Book ``fill`` of ``lots`` lots (at most the order's remaining) against its working order;
        returns the order and whether it is now done (done orders leave the book)."""
        working = self.open[fill.order_id]
        if not 0 < lots <= working.remaining:
            raise ValueError(f"fill of {lots} lots for {fill.order_id} with {working.remaining} remaining")
        self.fills.append(fill)
        working.remaining -= lots
        working.filled += lots
        self.working_lots -= _signed(fill.side, lots)
        done = working.remaining == 0
        if done:
            del self.open[fill.order_id]
        return working, done

    def close(self, order_id: str) -> WorkingOrder:
        """Take an order off the book (cancelled or rejected); its remainder stops working."""
        working = self.open.pop(order_id)
        self.working_lots -= _signed(working.order.side, working.remaining)
        return working


def _signed(side: str, lots: int) -> int:
    return lots if side == "buy" else -lots

