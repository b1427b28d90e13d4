"""The execution adapter interface: the one seam between the engine and a venue.

An adapter receives orders and answers with :class:`ExecReport` messages in sim time. The engine
owns order state, risk and accounting; the adapter only decides *whether, when, how much and at
what price* an order executes. The simulated adapter models this from bars; a recorded-live adapter
replays a venue's messages; a real exchange adapter would translate to and from its API.

Adapters must be deterministic given their inputs and ``rng`` (a seeded numpy Generator from the
run context), and must never raise for bad venue data: they return ``ExecReport(kind="error")``,
which the engine records as an ``adapter_error`` event.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np

from treasure.execution.messages import ExecReport, Order
from treasure.strategy.base import Bar


class ExecutionAdapter(ABC):
    """Base class of execution adapters; see the module docstring for the contract."""

    name: str = "adapter"
    #: True when fills are modelled from bars (the engine may cut them at risk limits); False when
    #: a venue reports them (booked as reported). A non-simulated adapter is also live-paced.
    simulated: bool = True
    #: True when bars arrive at the pace of a venue (dry-run, replay of live sessions, a real
    #: exchange): the engine then checks the emergency flag on every bar, not every
    #: ``risk.emergency_check_bars`` bars.
    live_paced: bool = False

    @property
    def checks_flag_every_bar(self) -> bool:
        return self.live_paced or not self.simulated

    def start(self, *, rng: np.random.Generator, config: Any, symbol: str) -> None:
        """Called once before the first bar."""
        self.rng = rng

    @abstractmethod
    def submit(self, order: Order) -> list[ExecReport]:
        """Accept an order; return any immediate reports (e.g. a reject)."""

    @abstractmethod
    def cancel(self, order_id: str) -> list[ExecReport]:
        """Cancel what is left of an order; return the resulting reports."""

    @abstractmethod
    def on_bar(self, bar: Bar) -> list[ExecReport]:
        """Return what executed at this bar (before the strategy sees its close)."""

    def has_open_orders(self) -> bool:
        return False

    def stop(self) -> list[ExecReport]:
        """Called once at the end; return final reports (e.g. cancels of what is still open)."""
        return []


AdapterFactory = Callable[..., ExecutionAdapter]
_REGISTRY: dict[str, AdapterFactory] = {}


def register_adapter(name: str, factory: AdapterFactory) -> None:
    """Make an adapter available by name to the SSOT (``execution.adapter``) and the CLI."""
    _REGISTRY[name] = factory


def adapter_names() -> list[str]:
    return sorted(_REGISTRY)


def create_adapter(name: str, **kwargs: Any) -> ExecutionAdapter:
    from treasure.errors import RunError

    if name not in _REGISTRY:
        raise RunError("ADAPTER_UNKNOWN", f"unknown execution adapter {name!r} (known: "
                       f"{', '.join(adapter_names())})", field="execution.adapter",
                       hint="set execution.adapter to one of the known adapters")
    return _REGISTRY[name](**kwargs)
