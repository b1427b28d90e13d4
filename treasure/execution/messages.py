"""Messages between the engine and an execution adapter: small, frozen, hashable.

These are the whole contract a venue adapter implements (see :mod:`treasure.execution.base`):
orders go in, execution reports come out, in sim time.
"""

from __future__ import annotations

import math
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


def quantize(qty: float, step: float) -> float:
    """Round down to a multiple of ``step``, forgiving float noise (a millionth of a step), so
    selling exactly what was bought yields exactly zero rather than a dust position."""
    steps = qty / step
    nearest = round(steps)
    return (nearest if abs(steps - nearest) < 1e-6 else math.floor(steps)) * step
