"""A deliberately buggy strategy, for ``treasure hunt`` to find (see examples/README.md).

``GapFade`` fades the price jump across a data outage: when bars are missing before the current
bar it trades against the move, in two legs. The bug is a classic: the legs are kept in a *set*
of strings, and a set of strings iterates in hash order, which Python salts per process
(``PYTHONHASHSEED``). Two runs of the same inputs can place the legs in a different order, so
their event logs differ. On regular data it never trades, so an ordinary backtest looks fine;
``treasure hunt --strategy examples/buggy_gap.py:GapFade`` finds it with the determinism
invariant and shrinks it to a few bars around one gap. The fix: iterate ``sorted(legs)`` (or a
tuple).
"""

from __future__ import annotations

from typing import Any, Sequence

from treasure.strategy import Bar, Intent, Strategy


class GapFade(Strategy):
    """Trades against the move across a gap in the data: a fade leg and a half-size hedge leg."""

    name = "gap_fade"
    params_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"order_usd": {"type": "number", "exclusiveMinimum": 0, "default": 5000}},
    }

    def __init__(self, order_usd: float = 5000.0) -> None:
        super().__init__(order_usd=order_usd)
        self.order_usd = float(order_usd)
        self._t: list[int] = []
        self._close: list[float] = []
        self._interval = 0

    def on_start(self, ctx: Any, bars: Any) -> None:
        self._t = bars.t_ms.tolist()
        self._close = bars.close.tolist()

    def on_bar(self, ctx: Any, bar: Bar) -> Sequence[Intent] | None:
        i = bar.idx
        step = bar.t_ms - self._t[i - 1] if i else 0
        # the bar interval seen so far (trailing: a minimum over *all* bars would read the future,
        # which the lookahead invariant catches; this example's one bug is the set below)
        interval = self._interval
        if step > 0:
            self._interval = min(self._interval, step) if self._interval else step
        if i == 0 or not interval or step <= interval:
            return None
        missing = step // interval - 1
        fade = "sell" if bar.close >= self._close[i - 1] else "buy"
        qty = self.order_usd / bar.close
        legs = {f"fade:{missing}", f"hedge:{missing}"}  # BUG: set order depends on PYTHONHASHSEED
        return [Intent(fade, qty if leg.startswith("fade") else qty / 2, leg) for leg in legs]
