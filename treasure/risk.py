"""Pre-trade and at-fill risk: position size, daily loss and the halt rule.

Position size is checked twice: before an order is placed (against position + open orders, at the
decision price), and again at the fill (at the fill price), so no fill can ever leave the position
beyond ``max_position_size_usd`` even when the market gaps between decision and fill.
"""

from __future__ import annotations

from dataclasses import dataclass

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class SizeDecision:
    qty: float          # what may be placed (0 -> reject)
    action: str         # "ok" | "cut" | "rejected"
    requested_usd: float


class RiskEngine:
    def __init__(self, *, max_position_usd: float, daily_loss_limit_usd: float) -> None:
        self.max_position_usd = float(max_position_usd)
        self.daily_loss_limit_usd = float(daily_loss_limit_usd)

    def allowed_qty(self, side: str, qty: float, price: float, exposure_qty: float) -> float:
        """Largest part of ``qty`` that keeps |exposure| * price within the limit (never negative)."""
        signed = qty if side == "buy" else -qty
        after = exposure_qty + signed
        cap = self.max_position_usd / price
        if abs(after) <= cap * (1.0 + _EPS):
            return qty
        if abs(after) < abs(exposure_qty):
            return qty  # reduces exposure even if still above the cap
        # grow only up to the cap on the side we are moving to
        room = cap - abs(exposure_qty) if (exposure_qty >= 0) == (signed > 0) else cap + abs(exposure_qty)
        return max(0.0, min(qty, room))

    def pre_trade(self, side: str, qty: float, price: float, exposure_qty: float) -> SizeDecision:
        allowed = self.allowed_qty(side, qty, price, exposure_qty)
        signed = qty if side == "buy" else -qty
        requested_usd = abs(exposure_qty + signed) * price
        if allowed >= qty:
            return SizeDecision(qty, "ok", requested_usd)
        if allowed <= qty * 1e-9:
            return SizeDecision(0.0, "rejected", requested_usd)
        return SizeDecision(allowed, "cut", requested_usd)

    def daily_loss_breached(self, day_pnl: float) -> bool:
        return day_pnl < -self.daily_loss_limit_usd
