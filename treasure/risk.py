"""Pre-trade and at-fill risk: position size, buying power, daily loss and the halt rule.

Position size is checked twice: before an order is placed (against position + open orders, at the
decision price), and again at the fill (at the fill price), so no fill can ever leave the position
beyond ``max_position_size_usd`` even when the market gaps between decision and fill.

Buying power (``account`` in the SSOT) is checked at the same two points. A ``cash`` account (the
default) can buy only with cash not already committed to working buys (and, at the fill, with the
fee paid too), so cash never goes below zero; a ``margin`` account may hold a gross position of up
to ``max_leverage`` times its equity.
"""

from __future__ import annotations

from dataclasses import dataclass

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class SizeDecision:
    qty: float          # what may be placed (0 -> reject)
    action: str         # "ok" | "cut" | "rejected"
    requested_usd: float


def _room(cap: float, exposure_qty: float, signed: float, qty: float) -> float:
    """Largest part of ``qty`` (moving ``exposure_qty`` by ``signed``) keeping |exposure| <= cap."""
    after = exposure_qty + signed
    if abs(after) <= cap * (1.0 + _EPS):
        return qty
    if abs(after) < abs(exposure_qty):
        return qty  # reduces exposure even if still above the cap
    # grow only up to the cap on the side we are moving to
    room = cap - abs(exposure_qty) if (exposure_qty >= 0) == (signed > 0) else cap + abs(exposure_qty)
    return max(0.0, min(qty, room))


def _decide(allowed: float, qty: float, requested_usd: float) -> SizeDecision:
    if allowed >= qty:
        return SizeDecision(qty, "ok", requested_usd)
    if allowed <= qty * 1e-9:
        return SizeDecision(0.0, "rejected", requested_usd)
    return SizeDecision(allowed, "cut", requested_usd)


class RiskEngine:
    def __init__(self, *, max_position_usd: float, daily_loss_limit_usd: float, account_type: str = "cash",
                 max_leverage: float = 1.0) -> None:
        self.max_position_usd = float(max_position_usd)
        self.daily_loss_limit_usd = float(daily_loss_limit_usd)
        if account_type not in ("cash", "margin"):
            raise ValueError(f"unknown account type {account_type!r}")
        self.account_type = account_type
        self.max_leverage = float(max_leverage)

    def allowed_qty(self, side: str, qty: float, price: float, exposure_qty: float) -> float:
        """Largest part of ``qty`` that keeps |exposure| * price within the limit (never negative)."""
        signed = qty if side == "buy" else -qty
        return _room(self.max_position_usd / price, exposure_qty, signed, qty)

    def pre_trade(self, side: str, qty: float, price: float, exposure_qty: float) -> SizeDecision:
        allowed = self.allowed_qty(side, qty, price, exposure_qty)
        signed = qty if side == "buy" else -qty
        return _decide(allowed, qty, abs(exposure_qty + signed) * price)

    # buying power ---------------------------------------------------------------------------------
    def buying_power_usd(self, *, cash: float, equity: float, exposure_qty: float, price: float) -> float:
        """What the account can still commit at ``price``: free cash (cash account) or the
        leverage headroom (margin account)."""
        if self.account_type == "cash":
            return cash - max(exposure_qty, 0.0) * price if exposure_qty > 0 else cash
        return self.max_leverage * max(equity, 0.0) - abs(exposure_qty) * price

    def affordable_qty(self, side: str, qty: float, price: float, *, cash: float, equity: float,
                       position_qty: float, working_qty: float, fee_per_unit: float = 0.0) -> float:
        """Largest part of ``qty`` the account can pay for.

        cash: a buy needs ``(price + fee_per_unit) * qty`` of cash not committed to working buys
        (working buys are valued at ``price``); sells are not limited here. margin: the gross
        position after the order (position plus working orders) stays within ``max_leverage`` x
        equity at ``price``.
        """
        signed = qty if side == "buy" else -qty
        if self.account_type == "cash":
            if side == "sell":
                return qty
            free = cash - max(working_qty, 0.0) * price
            unit = price + fee_per_unit
            if unit <= 0.0:
                return qty
            if qty * unit <= free * (1.0 + _EPS) and free >= 0.0:
                return qty
            return max(0.0, min(qty, free / unit))
        cap = self.max_leverage * max(equity, 0.0) / price
        return _room(cap, position_qty + working_qty, signed, qty)

    def buying_power_check(self, side: str, qty: float, price: float, *, cash: float, equity: float,
                           position_qty: float, working_qty: float) -> SizeDecision:
        allowed = self.affordable_qty(side, qty, price, cash=cash, equity=equity, position_qty=position_qty,
                                      working_qty=working_qty)
        return _decide(allowed, qty, qty * price)

    def leverage(self, position_qty: float, price: float, equity: float) -> float:
        """Gross position value over equity (0 when flat; inf when equity is gone)."""
        gross = abs(position_qty) * price
        if gross == 0.0:
            return 0.0
        return gross / equity if equity > 0 else float("inf")

    def daily_loss_breached(self, day_pnl: float) -> bool:
        return day_pnl < -self.daily_loss_limit_usd
