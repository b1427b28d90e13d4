"""Built-in strategies: honest baselines, vectorised where state allows.

Both precompute their indicators with numpy in ``on_start`` from trailing windows only, then do
O(1) work per bar, which is what keeps the engine's per-bar cost small.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from treasure.strategy.base import Bar, Intent, Strategy


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over the last ``window`` values; NaN until the window is full.

    Computed per window with a cumulative sum of a shifted series, which is sequential and so
    identical on every platform (no SIMD-order dependence).
    """
    out = np.full(values.shape, np.nan)
    if window <= 0 or len(values) < window:
        return out
    csum = np.cumsum(np.concatenate(([0.0], values)))
    out[window - 1:] = (csum[window:] - csum[:-window]) / window
    return out


def _order_qty(notional_usd: float, price: float) -> float:
    return notional_usd / price


class SmaCrossover(Strategy):
    """Long when the fast SMA is above the slow SMA, flat (or short) otherwise."""

    name = "sma_crossover"
    params_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "fast": {"type": "integer", "minimum": 1, "default": 10},
            "slow": {"type": "integer", "minimum": 2, "default": 30},
            "order_usd": {"type": "number", "exclusiveMinimum": 0, "default": 8000},
            "allow_short": {"type": "boolean", "default": False},
        },
    }

    def __init__(self, fast: int = 10, slow: int = 30, order_usd: float = 8000.0,
                 allow_short: bool = False) -> None:
        super().__init__(fast=fast, slow=slow, order_usd=order_usd, allow_short=allow_short)
        if fast >= slow:
            raise ValueError("fast must be shorter than slow")
        self.fast, self.slow, self.order_usd, self.allow_short = fast, slow, float(order_usd), allow_short
        self._signal: list[int] = []

    def on_start(self, ctx, bars) -> None:
        fast = trailing_mean(bars.close, self.fast)
        slow = trailing_mean(bars.close, self.slow)
        above = np.where(np.isnan(slow), 0, np.where(fast > slow, 1, -1))
        change = np.zeros(len(above), dtype=np.int64)
        change[1:] = np.where((above[1:] != above[:-1]) & (above[:-1] != 0), above[1:], 0)
        self._signal = change.tolist()

    def on_bar(self, ctx, bar: Bar) -> Sequence[Intent] | None:
        direction = self._signal[bar.idx]
        if direction == 0:
            return None
        held = ctx.position + ctx.open_order_qty
        if direction > 0:
            target = self.order_usd / bar.close
            reason = "golden_cross"
        else:
            target = -self.order_usd / bar.close if self.allow_short else 0.0
            reason = "death_cross"
        delta = target - held
        if abs(delta) * bar.close < 1e-6:
            return None
        return [Intent("buy" if delta > 0 else "sell", abs(delta), reason)]


class MeanReversion(Strategy):
    """Buys when the close is ``entry_z`` standard deviations below its mean, exits at the mean."""

    name = "mean_reversion"
    params_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "window": {"type": "integer", "minimum": 2, "default": 48},
            "entry_z": {"type": "number", "exclusiveMinimum": 0, "default": 2.0},
            "exit_z": {"type": "number", "default": 0.0},
            "order_usd": {"type": "number", "exclusiveMinimum": 0, "default": 8000},
        },
    }

    def __init__(self, window: int = 48, entry_z: float = 2.0, exit_z: float = 0.0,
                 order_usd: float = 8000.0) -> None:
        super().__init__(window=window, entry_z=entry_z, exit_z=exit_z, order_usd=order_usd)
        self.window, self.entry_z, self.exit_z, self.order_usd = window, entry_z, exit_z, float(order_usd)
        self._z: list[float] = []

    def on_start(self, ctx, bars) -> None:
        close = bars.close
        mean = trailing_mean(close, self.window)
        mean_sq = trailing_mean(close * close, self.window)
        var = np.maximum(mean_sq - mean * mean, 0.0)
        std = np.sqrt(var)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(std > 0, (close - mean) / std, np.nan)
        self._z = z.tolist()

    def on_bar(self, ctx, bar: Bar) -> Sequence[Intent] | None:
        z = self._z[bar.idx]
        if z != z:  # NaN while the window fills
            return None
        held = ctx.position + ctx.open_order_qty
        if held <= 0 and z <= -self.entry_z:
            return [Intent("buy", self.order_usd / bar.close, "z_entry")]
        if held > 0 and z >= self.exit_z:
            return [Intent("sell", held, "z_exit")]
        return None


class BuyAndHold(Strategy):
    """Buys once on the first bar: the benchmark every other strategy should beat."""

    name = "buy_and_hold"
    params_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"order_usd": {"type": "number", "exclusiveMinimum": 0, "default": 8000}},
    }

    def __init__(self, order_usd: float = 8000.0) -> None:
        super().__init__(order_usd=order_usd)
        self.order_usd = float(order_usd)
        self._done = False

    def on_bar(self, ctx, bar: Bar) -> Sequence[Intent] | None:
        if self._done:
            return None
        self._done = True
        return [Intent("buy", self.order_usd / bar.close, "enter")]


BUILTIN: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (SmaCrossover, MeanReversion, BuyAndHold)
}


def describe_builtin() -> dict[str, Any]:
    return {name: cls.__doc__ for name, cls in sorted(BUILTIN.items())}
