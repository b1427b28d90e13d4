"""The strategy API: what a quant implements to run in backtest, dry-run or against live fills.

A strategy sees the market one bar at a time and answers with intents; it never touches orders,
cash or files. Work that does not depend on state (indicators) belongs in :meth:`Strategy.on_start`,
vectorised over the whole series: indicators computed there must only look backwards, which the
built-ins do with trailing windows. Time and randomness come from ``ctx`` (``ctx.now_ms``,
``ctx.rng``) so the run stays deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from treasure.context import RunContext
    from treasure.data import Bars
    from treasure.execution.messages import Fill


class Bar(NamedTuple):
    """One bar as the strategy sees it; ``idx`` is the bar's row in the dataset."""

    idx: int
    t_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Intent:
    """What a strategy wants: buy or sell ``qty`` units at market on the next bar."""

    side: Literal["buy", "sell"]
    qty: float
    reason: str = ""


class Strategy:
    """Base class of every strategy. Subclasses set ``name`` and may declare ``params_schema``."""

    name: ClassVar[str] = "strategy"
    #: JSON Schema of the params the SSOT may pass; checked before the run starts.
    params_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def __init__(self, **params: Any) -> None:
        self.params = params

    def on_start(self, ctx: "RunContext", bars: "Bars") -> None:
        """Called once before the first bar with the full series, for trailing indicators."""

    def signals(self, bars: "Bars") -> "np.ndarray | Sequence[int] | None":
        """Optional: the bars where :meth:`on_bar` can act, for the whole series at once (called
        after :meth:`on_start`): a bool mask over the bars, or their indices; ``None`` (the
        default) runs ``on_bar`` on every bar.

        A strategy that declares signals promises that on every other bar ``on_bar`` returns
        ``None`` and changes nothing, and that the signals use trailing data only (bar ``i``'s
        from bars ``0..i``). The engine then runs Python only on bars where something can happen
        (a signal, an open order, a day's first bar, a gap or duplicate, an emergency-flag check)
        and marks the bars between to market with numpy; the evidence is byte-identical to the
        per-bar run (``RunRequest(force_per_bar=True)``), which the test suite proves.
        """
        return None

    def on_bar(self, ctx: "RunContext", bar: Bar) -> Sequence[Intent] | None:
        """Called after each bar closes; return intents (or None) to act at the next bar's open."""
        return None

    def on_fill(self, ctx: "RunContext", fill: "Fill") -> None:
        """Called for every (partial) fill of this strategy's orders."""

    def on_end(self, ctx: "RunContext") -> None:
        """Called once after the last bar (or when the run halts)."""
