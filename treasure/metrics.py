"""Performance metrics of a run, computed the same way by the engine and by the gates.

Sums use ``math.fsum`` (exactly rounded, so independent of summation order and SIMD width) and
results are rounded to 10 decimals, so canonical reports are identical on every platform.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

MS_PER_YEAR = 365 * 86_400_000


def r10(value: float) -> float:
    """Round for evidence: 10 decimals hides float noise that differs between equivalent paths."""
    result = round(float(value), 10)
    return 0.0 if result == 0 else result


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough fall, as a fraction of the peak (0 when equity never falls)."""
    if len(equity) == 0:
        return 0.0
    peaks = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, (peaks - equity) / peaks, 0.0)
    return float(falls.max())


def drawdown_series(equity: np.ndarray) -> np.ndarray:
    peaks = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peaks > 0, (equity - peaks) / peaks, 0.0)


def periods_24_7(interval_ms: int) -> float:
    """Bars in a 365-day year: the ``24/7`` calendar's annualisation."""
    return MS_PER_YEAR / interval_ms


def sharpe(equity: np.ndarray, interval_ms: int | None, periods_per_year: float | None = None) -> float:
    """Annualised Sharpe of per-bar simple returns (risk-free 0, sample standard deviation); 0 when
    undefined. A year is ``periods_per_year`` bars (the calendar's, see
    :func:`treasure.data.calendar.annualization`), by default 365 days of ``interval_ms`` bars."""
    if len(equity) < 3:
        return 0.0
    prev = equity[:-1]
    rets = np.divide(equity[1:] - prev, prev, out=np.zeros(len(prev)), where=prev != 0)
    n = len(rets)
    mean = math.fsum(rets.tolist()) / n
    dev = rets - mean  # elementwise IEEE operations: identical everywhere; only sums need fsum
    var = math.fsum((dev * dev).tolist()) / (n - 1)
    if var <= 0.0:
        return 0.0
    if periods_per_year is not None:
        periods = float(periods_per_year)
    elif interval_ms:
        periods = periods_24_7(interval_ms)
    else:
        return 0.0
    return mean / math.sqrt(var) * math.sqrt(periods)


def summarize(*, equity: np.ndarray, qty: np.ndarray, starting_cash: float, interval_ms: int | None,
              trade_pnls: Sequence[float], fees: float, realized_pnl: float, orders: int,
              fills: int, annualization: Any = None) -> dict[str, Any]:
    """The court report's metrics block from the equity curve and closed trades.

    ``annualization`` (a :class:`treasure.data.calendar.Annualization`) sets the bars per year of
    the Sharpe ratio and is recorded as ``metrics.annualization``; without it a year is 365 days of
    ``interval_ms`` bars and the block has no ``annualization`` key (reports as before calendars).
    """
    periods = None if annualization is None else float(annualization.periods_per_year)
    final = float(equity[-1]) if len(equity) else starting_cash
    wins = sum(1 for p in trade_pnls if p > 0)
    exposure = float(np.count_nonzero(qty)) / len(qty) if len(qty) else 0.0
    return {
        "starting_cash_usd": r10(starting_cash),
        "final_equity_usd": r10(final),
        "total_return": r10(final / starting_cash - 1.0),
        "max_drawdown": r10(max_drawdown(equity)),
        # the first bar's return is measured from the starting cash (as backtrader's TimeReturn does)
        "sharpe": r10(sharpe(np.concatenate(([float(starting_cash)], equity)), interval_ms, periods)),
        "trades": len(trade_pnls),
        "win_rate": r10(wins / len(trade_pnls)) if trade_pnls else 0.0,
        "fees_usd": r10(fees),
        "realized_pnl_usd": r10(realized_pnl),
        "exposure": r10(exposure),
        "orders": orders,
        "fills": fills,
        "bars": int(len(equity)),
        **({} if annualization is None else {"annualization": annualization.to_dict()}),
    }


def fsum(values: Iterable[float]) -> float:
    return math.fsum(values)
