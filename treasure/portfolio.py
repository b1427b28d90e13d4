"""Cash, position and PnL of one instrument, by the average-cost method.

Kept deliberately small and exact in its bookkeeping: the position is a whole number of
``qty_step`` lots (:mod:`treasure.execution.quantity`), so a position sold in full is flat exactly;
every fill moves cash by ``-signed_qty * price - fee``; realised PnL accrues only on the reducing
part of a fill; a trade is the life of a position from flat to flat (a flip closes one trade and
opens the next).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from treasure.execution.messages import Fill
from treasure.execution.quantity import to_lots

DEFAULT_QTY_STEP = 1e-8  # the SSOT schema's default instrument.qty_step


@dataclass
class Portfolio:
    cash: float
    qty_step: float = DEFAULT_QTY_STEP
    #: the position in lots of ``qty_step`` (signed): the exact state
    lots: int = 0
    #: the position in units, ``lots * qty_step`` (kept with ``lots``; read on every bar)
    qty: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0
    fees_paid: float = 0.0
    trade_pnls: list[float] = field(default_factory=list)
    _trade_pnl: float = 0.0

    def equity(self, price: float) -> float:
        return self.cash + self.qty * price

    def apply(self, fill: Fill, lots: int | None = None) -> None:
        """Book a fill of ``lots`` lots (default: ``fill.qty`` as whole lots, float noise forgiven,
        rounded down) at ``fill.price``: cash moves by exactly the size booked."""
        if lots is None:
            lots = to_lots(fill.qty, self.qty_step)
        size = lots * self.qty_step
        signed_lots = lots if fill.side == "buy" else -lots
        signed = size if fill.side == "buy" else -size
        self.cash -= signed * fill.price + fill.fee
        self.fees_paid += fill.fee
        self._trade_pnl -= fill.fee
        old, old_lots = self.qty, self.lots
        new_lots = old_lots + signed_lots
        if old_lots == 0 or (old_lots > 0) == (signed_lots > 0):
            # opening or adding: new average cost
            total = abs(old) + size
            self.avg_price = (abs(old) * self.avg_price + size * fill.price) / total
            self._set(new_lots)
            return
        closing = min(abs(signed), abs(old))
        pnl = (fill.price - self.avg_price) * closing * (1.0 if old_lots > 0 else -1.0)
        self.realized_pnl += pnl
        self._trade_pnl += pnl
        if new_lots == 0:
            self._set(0)
            self.avg_price = 0.0
            self._close_trade()
        elif (new_lots > 0) != (old_lots > 0):
            # flipped: the rest opens a new trade at the fill price
            self._close_trade()
            self._set(new_lots)
            self.avg_price = fill.price
        else:
            self._set(new_lots)

    def _set(self, lots: int) -> None:
        self.lots = lots
        self.qty = lots * self.qty_step

    def _close_trade(self) -> None:
        self.trade_pnls.append(self._trade_pnl)
        self._trade_pnl = 0.0

    @property
    def open_trade_pnl(self) -> float:
        """Fees (and realised parts) of the trade still open; counted once it closes."""
        return self._trade_pnl
