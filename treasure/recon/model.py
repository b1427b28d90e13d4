"""What reconciliation compares: two ledgers of orders and fills, the tolerances, the mismatches.

A :class:`Ledger` is one side of a reconciliation (the dry-run as the engine recorded it, or the
live venue as it reported), held as numpy columns so that a million orders reconcile in one
vectorised pass. Both sides are built the same way, through :class:`LedgerBuilder`, from whatever
evidence they come from (an event log, a recorded venue session, a generator in a test).

Order states have a precedence (``STATES`` order): an order's state is the highest one any of its
messages reached, so the result never depends on the order in which messages are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

#: The four mismatch codes, in the order a report lists them within one order.
CODES: tuple[str, ...] = ("MISSING_FILL", "ORDER_STATE_DRIFT", "PRICE_MISMATCH", "FEE_MISMATCH")
CODE_RANK = {code: rank for rank, code in enumerate(CODES)}

#: Order states by precedence; "absent" means the side never heard of the order.
STATES: tuple[str, ...] = ("absent", "new", "partially_filled", "filled", "cancelled", "rejected")
STATE_CODE = {name: code for code, name in enumerate(STATES)}

SIDES = {"buy": 1, "sell": -1}
SIDE_NAME = {1: "buy", -1: "sell", 0: "unknown"}

_FILL_COLUMNS = ("fill_order", "fill_ts", "fill_qty", "fill_price", "fill_fee")


@dataclass(frozen=True)
class Tolerances:
    """The SSOT's ``recon`` section: how far live may drift from the dry-run before it is a mismatch.

    * price: the live VWAP of an order's matched fills may differ from the expected price by at
      most ``price_tolerance_bps`` basis points (either direction);
    * fee: live fees may differ from the expected fee rate applied to the live notional by at most
      ``max(fee_tolerance_abs_usd, fee_tolerance_rel * expected)``;
    * time: a live fill matches an expected fill of the same order at most ``time_window_ms`` apart;
    * escalation: more than ``max_mismatches`` mismatched orders halt trading.
    """

    price_tolerance_bps: float = 5.0
    fee_tolerance_abs_usd: float = 0.01
    fee_tolerance_rel: float = 0.001
    time_window_ms: int = 600_000
    max_mismatches: int = 10

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "Tolerances":
        return cls(
            price_tolerance_bps=float(section["price_tolerance_bps"]),
            fee_tolerance_abs_usd=float(section["fee_tolerance_abs_usd"]),
            fee_tolerance_rel=float(section["fee_tolerance_rel"]),
            time_window_ms=int(section["time_window_ms"]),
            max_mismatches=int(section.get("max_mismatches", 10)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "price_tolerance_bps": self.price_tolerance_bps,
            "fee_tolerance_abs_usd": self.fee_tolerance_abs_usd,
            "fee_tolerance_rel": self.fee_tolerance_rel,
            "time_window_ms": self.time_window_ms,
            "max_mismatches": self.max_mismatches,
        }


@dataclass(frozen=True)
class Ledger:
    """Orders and fills of one side, as columns.

    Orders: ``ids`` (unique str), ``side`` (+1 buy, -1 sell, 0 unknown), ``qty`` (NaN if unknown),
    ``state`` (index into :data:`STATES`), ``placed_ts`` and ``end_ts`` (ms, -1 if unknown).
    Fills: ``fill_order`` (index into ``ids``), ``fill_ts``, ``fill_qty``, ``fill_price``,
    ``fill_fee``.
    """

    ids: np.ndarray
    side: np.ndarray
    qty: np.ndarray
    state: np.ndarray
    placed_ts: np.ndarray
    end_ts: np.ndarray
    fill_order: np.ndarray
    fill_ts: np.ndarray
    fill_qty: np.ndarray
    fill_price: np.ndarray
    fill_fee: np.ndarray

    def __post_init__(self) -> None:
        n, m = len(self.ids), len(self.fill_order)
        for name in ("side", "qty", "state", "placed_ts", "end_ts"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Ledger.{name} has {len(getattr(self, name))} rows, ids has {n}")
        for name in _FILL_COLUMNS:
            if len(getattr(self, name)) != m:
                raise ValueError(f"Ledger.{name} has {len(getattr(self, name))} rows, fill_order has {m}")
        if m and (self.fill_order.min() < 0 or self.fill_order.max() >= n):
            raise ValueError("Ledger.fill_order points outside ids")

    @property
    def orders(self) -> int:
        return len(self.ids)

    @property
    def fills(self) -> int:
        return len(self.fill_order)

    @classmethod
    def empty(cls) -> "Ledger":
        return LedgerBuilder().build()

    @classmethod
    def from_columns(cls, *, ids: Any, side: Any, qty: Any, state: Any, fill_order: Any, fill_ts: Any,
                     fill_qty: Any, fill_price: Any, fill_fee: Any, placed_ts: Any = None,
                     end_ts: Any = None) -> "Ledger":
        """Build from array-likes (what a generator or a benchmark holds), with dtypes enforced."""
        ids = np.asarray(ids, dtype=str)
        n = len(ids)
        return cls(
            ids=ids,
            side=np.asarray(side, dtype=np.int8),
            qty=np.asarray(qty, dtype=np.float64),
            state=np.asarray(state, dtype=np.int8),
            placed_ts=np.full(n, -1, np.int64) if placed_ts is None else np.asarray(placed_ts, np.int64),
            end_ts=np.full(n, -1, np.int64) if end_ts is None else np.asarray(end_ts, np.int64),
            fill_order=np.asarray(fill_order, dtype=np.int64),
            fill_ts=np.asarray(fill_ts, dtype=np.int64),
            fill_qty=np.asarray(fill_qty, dtype=np.float64),
            fill_price=np.asarray(fill_price, dtype=np.float64),
            fill_fee=np.asarray(fill_fee, dtype=np.float64),
        )

    def fills_of(self, index: int) -> list[tuple[int, float, float, float]]:
        """``(ts, qty, price, fee)`` of one order's fills, in time order (for messages and details)."""
        rows = np.flatnonzero(self.fill_order == index)
        rows = rows[np.lexsort((self.fill_fee[rows], self.fill_qty[rows], self.fill_price[rows],
                                self.fill_ts[rows]))]
        return [(int(self.fill_ts[r]), float(self.fill_qty[r]), float(self.fill_price[r]),
                 float(self.fill_fee[r])) for r in rows]


@dataclass
class LedgerBuilder:
    """Accumulates orders and fills in any order; :meth:`build` freezes them into a :class:`Ledger`."""

    _index: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    side: list[int] = field(default_factory=list)
    qty: list[float] = field(default_factory=list)
    state: list[int] = field(default_factory=list)
    placed_ts: list[int] = field(default_factory=list)
    end_ts: list[int] = field(default_factory=list)
    fill_order: list[int] = field(default_factory=list)
    fill_ts: list[int] = field(default_factory=list)
    fill_qty: list[float] = field(default_factory=list)
    fill_price: list[float] = field(default_factory=list)
    fill_fee: list[float] = field(default_factory=list)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._index

    def order(self, order_id: str, *, side: str | None = None, qty: float | None = None,
              ts_ms: int | None = None) -> int:
        """Index of ``order_id``, created on first sight; known attributes fill in unknown ones."""
        index = self._index.get(order_id)
        if index is None:
            index = len(self.ids)
            self._index[order_id] = index
            self.ids.append(order_id)
            self.side.append(0)
            self.qty.append(float("nan"))
            self.state.append(STATE_CODE["new"])
            self.placed_ts.append(-1)
            self.end_ts.append(-1)
        if side is not None and self.side[index] == 0:
            self.side[index] = SIDES.get(side, 0)
        if qty is not None and self.qty[index] != self.qty[index]:  # NaN: unknown so far
            self.qty[index] = float(qty)
        if ts_ms is not None and (self.placed_ts[index] < 0 or ts_ms < self.placed_ts[index]):
            self.placed_ts[index] = int(ts_ms)
        return index

    def reach(self, index: int, state: str, ts_ms: int | None = None) -> None:
        """Record that the order reached ``state``; the highest-precedence state wins."""
        code = STATE_CODE[state]
        if code > self.state[index]:
            self.state[index] = code
        if ts_ms is not None and ts_ms > self.end_ts[index]:
            self.end_ts[index] = int(ts_ms)

    def fill(self, index: int, *, ts_ms: int, qty: float, price: float, fee: float) -> None:
        self.fill_order.append(index)
        self.fill_ts.append(int(ts_ms))
        self.fill_qty.append(float(qty))
        self.fill_price.append(float(price))
        self.fill_fee.append(float(fee))

    def build(self) -> Ledger:
        return Ledger.from_columns(
            ids=np.array(self.ids, dtype=str) if self.ids else np.array([], dtype="<U1"),
            side=self.side, qty=self.qty, state=self.state, placed_ts=self.placed_ts, end_ts=self.end_ts,
            fill_order=self.fill_order, fill_ts=self.fill_ts, fill_qty=self.fill_qty,
            fill_price=self.fill_price, fill_fee=self.fill_fee)


@dataclass(frozen=True)
class Mismatch:
    """One order disagreeing on one code. ``expected``/``actual``/``delta`` are JSON objects."""

    code: str
    order_id: str
    expected: dict[str, Any]
    actual: dict[str, Any]
    delta: dict[str, Any]
    detail: str

    def sort_key(self) -> tuple[str, int]:
        return self.order_id, CODE_RANK[self.code]

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "order_id": self.order_id, "expected": self.expected,
                "actual": self.actual, "delta": self.delta, "detail": self.detail}


@dataclass(frozen=True)
class ReconResult:
    """Outcome of reconciling two ledgers: counts and the mismatches sorted by (order id, code)."""

    orders_expected: int
    orders_live: int
    orders_compared: int
    fills_expected: int
    fills_live: int
    mismatches: tuple[Mismatch, ...]
    tolerances: Tolerances

    @property
    def mismatched_orders(self) -> int:
        return len({m.order_id for m in self.mismatches})

    @property
    def matched(self) -> int:
        return self.orders_compared - self.mismatched_orders

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(CODES, 0)
        for mismatch in self.mismatches:
            counts[mismatch.code] += 1
        return counts

    @property
    def halted(self) -> bool:
        """The runbook's escalation rule: more than ``max_mismatches`` mismatched orders."""
        return self.mismatched_orders > self.tolerances.max_mismatches

    def pairs(self) -> list[tuple[str, str]]:
        """``(code, order_id)`` of every mismatch, sorted: what tests and gates compare."""
        return sorted((m.code, m.order_id) for m in self.mismatches)
