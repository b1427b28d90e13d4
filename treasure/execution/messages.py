"""Messages between the engine and an execution adapter: small, frozen, hashable.

These are the whole contract a venue adapter implements (see :mod:`treasure.execution.base`):
orders go in, execution reports come out, in sim time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Side = Literal["buy", "sell"]
ReportKind = Literal["fill", "reject", "cancel", "error"]


@dataclass(frozen=True, slots=True)
class Order:
    """A market order for ``qty`` units, decided at the close of bar ``bar_idx``."""

    order_id: str
    side: Side
    qty: float
    bar_idx: int
    ts_ms: int
    ref_price: float  # the decision bar's close: the arrival price slippage is measured against


@dataclass(frozen=True, slots=True)
class Fill:
    """A (partial) execution of an order."""

    order_id: str
    side: Side
    qty: float
    price: float
    fee: float
    bar_idx: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class ExecReport:
    """What an adapter tells the engine about an order: a fill, a reject, a cancel or an error."""

    kind: ReportKind
    order_id: str | None
    fill: Fill | None = None
    reason: str = ""
    code: str = ""
    line: int | None = None


from treasure.execution.quantity import quantize as quantize  # noqa: E402  (re-exported: the old home)
