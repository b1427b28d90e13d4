"""RunContext: the only source of time, randomness and identity inside a run.

Library code never reads the wall clock or a global RNG; it asks the context. ``now_ms`` is the sim
clock (the current bar's timestamp) and ``rng`` a numpy Generator seeded from the run seed, so a
run is a pure function of (SSOT, dataset, seed). Strategies see the public attributes below; the
engine keeps them current.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from treasure.events import EventBus


def make_rng(seed: int, stream: int = 0) -> np.random.Generator:
    """A PCG64 generator for (seed, stream); streams keep components' draws independent."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(stream)])))


class RunContext:
    """What a strategy may read (and the engine writes) while a run is in progress."""

    __slots__ = ("run_id", "seed", "rng", "now_ms", "bar_idx", "position", "cash", "equity",
                 "open_order_qty", "symbol", "faults", "_bus")

    def __init__(self, *, run_id: str, seed: int, symbol: str, bus: "EventBus",
                 starting_cash: float, faults: Any = None) -> None:
        self.run_id = run_id
        self.seed = seed
        self.symbol = symbol
        self.rng = make_rng(seed, stream=1)
        self.now_ms = 0
        self.bar_idx: int | None = None
        self.position = 0.0         # units held
        self.cash = starting_cash
        self.equity = starting_cash
        self.open_order_qty = 0.0   # signed units still working at the venue
        self.faults = faults
        self._bus = bus

    def log(self, message: str, **data: Any) -> None:
        """Record a strategy message as a STRAT ``strategy_log`` event (JSON-compatible data only)."""
        self._bus.emit(self.now_ms, "STRAT", "strategy_log", "INFO",
                       {"bar_idx": self.bar_idx, "message": str(message), "data": data})


FaultHook = Callable[[str], None]
