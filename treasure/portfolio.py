"""Cash, position and PnL of one instrument, by the average-cost method.

Kept deliberately small and exact in its bookkeeping: every fill moves cash by
``-signed_qty * price - fee``; realised PnL accrues only on the reducing part of a fill; a trade is
the life of a position from flat to flat (a flip closes one trade and opens the next).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from treasure.execution.messages import Fill

_FLAT = 1e-12


@dataclass
class Portfolio:
    cash: float
    qty: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0
    fees_paid: float = 0.0
    trade_pnls: list[float] = field(default_factory=list)
    _trade_pnl: float = 0.0

    def equity(self, price: float) -> float:
        return self.cash + self.qty * price

    def apply(self, fill: Fill) -> None:
        signed = fill.qty if fill.side == "buy" else -fill.qty
        self.cash -= signed * fill.price + fill.fee
        self.fees_paid += fill.fee
        self._trade_pnl -= fill.fee
        old = self.qty
        new = old + signed
        if old == 0.0 or (old > 0) == (signed > 0):
            # opening or adding: new average cost
            total = abs(old) + fill.qty
            self.avg_price = (abs(old) * self.avg_price + fill.qty * fill.price) / total
            self.qty = new
            return
        closing = min(abs(signed), abs(old))
        pnl = (fill.price - self.avg_price) * closing * (1.0 if old > 0 else -1.0)
        self.realized_pnl += pnl
        self._trade_pnl += pnl
        if abs(new) <= _FLAT * max(1.0, abs(old)):
            self.qty = 0.0
            self.avg_price = 0.0
            self._close_trade()
        elif (new > 0) != (old > 0):
            # flipped: the rest opens a new trade at the fill price
            self._close_trade()
            self.qty = new
            self.avg_price = fill.price
        else:
            self.qty = new

    def _close_trade(self) -> None:
        self.trade_pnls.append(self._trade_pnl)
        self._trade_pnl = 0.0

    @property
    def open_trade_pnl(self) -> float:
        """Fees (and realised parts) of the trade still open; counted once it closes."""
        return self._trade_pnl
