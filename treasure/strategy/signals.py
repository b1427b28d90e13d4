"""The built-in strategies' signals: the bars where their ``on_bar`` can act.

They live here, not in :mod:`treasure.strategy.builtin`, because a built-in strategy's evidence
names the SHA-256 of its source file (``run_start.strategy.source_sha256``, and so the default run
id): a scheduling hint that changes no event must not change the evidence of every run. They are
computed from the same trailing indicators ``on_start`` built, and apply only to exactly these
classes (a subclass may act elsewhere: it declares its own :meth:`Strategy.signals` or runs per bar).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from treasure.strategy.builtin import BuyAndHold, MeanReversion, SmaCrossover

if TYPE_CHECKING:  # pragma: no cover
    from treasure.data import Bars
    from treasure.strategy.base import Strategy


def _sma_crossover(strategy: Any, bars: "Bars") -> np.ndarray:
    """Crossings only: ``on_bar`` returns None wherever the precomputed signal is 0."""
    return np.flatnonzero(np.asarray(strategy._signal, dtype=np.int64))


def _mean_reversion(strategy: Any, bars: "Bars") -> np.ndarray:
    """Where an entry (z <= -entry_z) or an exit (z >= exit_z) is possible; which one, if any,
    depends on the position. NaN (the window filling) compares False: no signal."""
    z = np.asarray(strategy._z, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (z <= -strategy.entry_z) | (z >= strategy.exit_z)


def _buy_and_hold(strategy: Any, bars: "Bars") -> list[int]:
    """The first bar ``on_bar`` sees (always bar 0: it is never skipped)."""
    return [0]


BUILTIN_SIGNALS: dict[type, Callable[[Any, "Bars"], Any]] = {
    SmaCrossover: _sma_crossover,
    MeanReversion: _mean_reversion,
    BuyAndHold: _buy_and_hold,
}


def declared_signals(strategy: "Strategy", bars: "Bars") -> Any:
    """What ``strategy`` declares: its own :meth:`~treasure.strategy.base.Strategy.signals`, else
    the built-in's (exact class only), else ``None`` (run every bar)."""
    own = strategy.signals(bars)
    if own is not None:
        return own
    builtin = BUILTIN_SIGNALS.get(type(strategy))
    return None if builtin is None else builtin(strategy, bars)
