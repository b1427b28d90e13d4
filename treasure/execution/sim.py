"""The simulated venue: market orders fill at the next bar's open, with slippage and fees.

Slippage is adverse by a fixed number of basis points. With ``partial_fill_prob`` > 0 an order
may fill only a seeded-random fraction on a bar and the rest on the following bars. All draws come
from the run's seeded generator, in order, so a run reproduces exactly.
"""

from __future__ import annotations

from typing import Any

from treasure.execution.base import ExecutionAdapter, register_adapter
from treasure.execution.messages import ExecReport, Fill, Order
from treasure.execution.quantity import to_lots, to_qty
from treasure.strategy.base import Bar


class FillModel:
    """Prices and fees of a fill, from the SSOT's ``execution`` section."""

    def __init__(self, execution: Any) -> None:
        fees = execution["fees"]
        self.taker_rate = float(fees["taker_bps"]) / 10_000.0
        self.min_fee = float(fees.get("min_fee_usd", 0.0))
        self.slip = float(execution["slippage"]["bps"]) / 10_000.0
        self.partial_prob = float(execution.get("partial_fill_prob", 0.0))
        self.partial_min = float(execution.get("partial_fill_min_ratio", 0.5))

    def price(self, side: str, open_price: float) -> float:
        return open_price * (1.0 + self.slip) if side == "buy" else open_price * (1.0 - self.slip)

    def fee(self, qty: float, price: float) -> float:
        fee = qty * price * self.taker_rate
        return fee if fee > self.min_fee else self.min_fee


class SimAdapter(ExecutionAdapter):
    """Fills from bars; the reference for what dry-run expects and live is reconciled against."""

    name = "sim"

    def __init__(self, *, execution: Any, **_: Any) -> None:
        self.model = FillModel(execution)
        self._open: dict[str, list] = {}  # order_id -> [order, remaining lots]
        self.qty_step = 1e-8

    def start(self, *, rng: Any, config: Any, symbol: str) -> None:
        super().start(rng=rng, config=config, symbol=symbol)
        if config is not None:
            self.qty_step = config.qty_step

    def submit(self, order: Order) -> list[ExecReport]:
        self._open[order.order_id] = [order, to_lots(order.qty, self.qty_step)]
        return []

    def cancel(self, order_id: str) -> list[ExecReport]:
        if self._open.pop(order_id, None) is None:
            return []
        return [ExecReport("cancel", order_id, reason="cancelled")]

    def has_open_orders(self) -> bool:
        return bool(self._open)

    def on_bar(self, bar: Bar) -> list[ExecReport]:
        if not self._open:
            return []
        reports = []
        model = self.model
        for order_id in list(self._open):
            order, remaining = self._open[order_id]
            if order.bar_idx >= bar.idx:
                continue
            step = self.qty_step
            lots = remaining
            if model.partial_prob > 0.0 and self.rng.random() < model.partial_prob:
                ratio = model.partial_min + (1.0 - model.partial_min) * float(self.rng.random())
                # a venue fills whole lots: a part below one step, or leaving less than one, is all
                part = to_lots(to_qty(remaining, step) * ratio, step)
                if 0 < part < remaining:
                    lots = part
            qty = to_qty(lots, step)
            price = model.price(order.side, bar.open)
            fill = Fill(order_id, order.side, qty, price, model.fee(qty, price), bar.idx, bar.t_ms)
            if lots == remaining:
                del self._open[order_id]
            else:
                self._open[order_id][1] = remaining - lots
            reports.append(ExecReport("fill", order_id, fill))
        return reports


register_adapter("sim", SimAdapter)
