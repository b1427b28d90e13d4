"""Execution quality (eqs_report.json): slippage, fees, fill ratio, latency and a 0-100 score.

Score formula (documented in truth/eqs_report.schema.json and the README)::

    score = 100 * fill_ratio
                * max(0, 1 - max(avg_slippage_bps, 0) / 50)
                * max(0, 1 - avg_fee_bps / 50)
                / (1 + max(0, avg_latency_bars - 1) / 5)

so a perfect venue (all filled, no adverse slippage, no fees, next-bar fills) scores 100, and 50 bps
of average adverse slippage or of fees alone takes the score to 0.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from treasure.execution.messages import Fill, Order
from treasure.metrics import r10

SCORE_FORMULA = ("100 * fill_ratio * max(0, 1 - max(avg_slippage_bps, 0)/50) * max(0, 1 - avg_fee_bps/50)"
                 " / (1 + max(0, avg_latency_bars - 1)/5)")


def slippage_bps(side: str, price: float, ref_price: float) -> float:
    """Adverse slippage against the decision price: positive means worse than the arrival price."""
    move = (price - ref_price) / ref_price * 10_000.0
    return move if side == "buy" else -move


def score(fill_ratio: float, avg_slippage: float, avg_fee_bps: float, avg_latency: float) -> float:
    value = (100.0 * fill_ratio * max(0.0, 1.0 - max(avg_slippage, 0.0) / 50.0)
             * max(0.0, 1.0 - avg_fee_bps / 50.0) / (1.0 + max(0.0, avg_latency - 1.0) / 5.0))
    return r10(value)


def build_eqs(*, run_id: str, orders: Sequence[Order], fills: Sequence[Fill],
              ref_prices: dict[str, float], order_bars: dict[str, int]) -> dict[str, Any]:
    requested = math.fsum(o.qty for o in orders)
    filled = math.fsum(f.qty for f in fills)
    slips = [slippage_bps(f.side, f.price, ref_prices[f.order_id]) for f in fills]
    notional = [f.qty * f.price for f in fills]
    fee_bps = [f.fee / n * 10_000.0 if n > 0 else 0.0 for f, n in zip(fills, notional)]
    latency = [f.bar_idx - order_bars[f.order_id] for f in fills]
    n = len(fills)
    avg_slip = math.fsum(slips) / n if n else 0.0
    avg_fee = math.fsum(fee_bps) / n if n else 0.0
    avg_lat = sum(latency) / n if n else 0.0
    ratio = filled / requested if requested > 0 else 1.0
    return {
        "schema_version": 1,
        "run_id": run_id,
        "orders": len(orders),
        "fills": n,
        "slippage_bps": {
            "avg": r10(avg_slip),
            "max": r10(max(slips)) if slips else 0.0,
            "min": r10(min(slips)) if slips else 0.0,
        },
        "fees": {
            "total_usd": r10(math.fsum(f.fee for f in fills)),
            "avg_bps": r10(avg_fee),
            "notional_usd": r10(math.fsum(notional)),
        },
        "fill_ratio": r10(ratio),
        "fill_latency_bars": {"avg": r10(avg_lat), "max": max(latency) if latency else 0},
        "score": score(ratio, avg_slip, avg_fee, avg_lat),
        "score_formula": SCORE_FORMULA,
    }
