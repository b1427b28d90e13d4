"""A deliberately leaking strategy, for the ``lookahead`` gate to catch (see examples/README.md).

``LeakyZScore`` is mean reversion with the most common look-ahead bug there is: it standardises
each close against the mean and standard deviation of the *whole* series, computed once in
``on_start`` (which receives every bar so that indicators can be vectorised). At bar 100 it
therefore "knows" where prices will be at bar 5,000. Its backtest looks fine, even good; nothing in
the numbers shows the leak. The lookahead gate runs it on prefixes of the data and finds the first
bar whose decision changes when the future is cut off. The fix: trailing statistics only
(``treasure.strategy.builtin.trailing_mean``, as ``mean_reversion`` does).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from treasure.strategy import Bar, Intent, Strategy


class LeakyZScore(Strategy):
    """Buys below ``-entry_z`` whole-series standard deviations, sells back above the series mean."""

    name = "leaky_zscore"
    params_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "entry_z": {"type": "number", "exclusiveMinimum": 0, "default": 1.0},
            "order_usd": {"type": "number", "exclusiveMinimum": 0, "default": 5000},
        },
    }

    def __init__(self, entry_z: float = 1.0, order_usd: float = 5000.0) -> None:
        super().__init__(entry_z=entry_z, order_usd=order_usd)
        self.entry_z, self.order_usd = float(entry_z), float(order_usd)
        self._z: list[float] = []

    def on_start(self, ctx: Any, bars: Any) -> None:
        close = np.asarray(bars.close, dtype=float)
        std = float(close.std())
        # THE LEAK: mean and std of every bar, including all the bars after the current one
        self._z = ((close - close.mean()) / std).tolist() if std > 0 else [0.0] * len(close)

    def on_bar(self, ctx: Any, bar: Bar) -> Sequence[Intent] | None:
        z = self._z[bar.idx]
        held = ctx.position + ctx.open_order_qty
        if held <= 0 and z <= -self.entry_z:
            return [Intent("buy", self.order_usd / bar.close, "below_series_mean")]
        if held > 0 and z >= 0.0:
            return [Intent("sell", held, "back_to_series_mean")]
        return None
