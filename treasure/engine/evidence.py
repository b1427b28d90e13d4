"""Evidence of a run, assembled from what the loop recorded: the equity curve and the reports.

Pure: arrays and documents in, arrays and documents out. :mod:`treasure.engine.service` writes them.
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from treasure.contracts import Contracts
from treasure.metrics import r10
from treasure.reports.court import RunSummary, build_court, run_inputs
from treasure.reports.eqs import build_eqs

if TYPE_CHECKING:  # pragma: no cover
    from treasure.data import Bars
    from treasure.engine.loop import BarLoop
    from treasure.events import EventBus

EQUITY_DTYPE = np.dtype([("bar_idx", "<i8"), ("t_ms", "<i8"), ("close", "<f8"), ("qty", "<f8"),
                         ("cash", "<f8"), ("equity", "<f8")])


def processed_indices(last_bar: int, skipped: Sequence[int]) -> np.ndarray:
    """Indices of the bars the loop processed: 0..last_bar without the skipped duplicates."""
    idx = np.arange(last_bar + 1, dtype=np.int64)
    if skipped:
        idx = idx[~np.isin(idx, np.array(skipped, dtype=np.int64))]
    return idx


def equity_curve(bars: "Bars", idx: np.ndarray, changes: Sequence[tuple[int, float, float]],
                 starting_cash: float) -> np.ndarray:
    """Per-bar curve over ``idx``, expanded from the sparse ``(bar_idx, qty, cash)`` fill changes."""
    curve = np.zeros(len(idx), dtype=EQUITY_DTYPE)
    curve["bar_idx"] = idx
    curve["t_ms"] = bars.t_ms[idx]
    curve["close"] = bars.close[idx]
    if changes:
        at = np.array([c[0] for c in changes], dtype=np.int64)
        qty = np.array([0.0] + [c[1] for c in changes])
        cash = np.array([starting_cash] + [c[2] for c in changes])
        pick = np.searchsorted(at, idx, side="right")  # 0 = before the first fill
        curve["qty"] = qty[pick]
        curve["cash"] = cash[pick]
    else:
        curve["cash"] = starting_cash
    curve["equity"] = curve["cash"] + curve["qty"] * curve["close"]
    return curve


def curve_bytes(curve: np.ndarray) -> bytes:
    """The ``.npy`` bytes of a curve (what ``equity.npy`` holds)."""
    buffer = io.BytesIO()
    np.save(buffer, curve, allow_pickle=False)
    return buffer.getvalue()


def account_summary(curve: np.ndarray, *, account_type: str, max_leverage: float, starting_cash: float
                    ) -> dict[str, Any]:
    """The court's ``account`` section: peak leverage (gross position value / equity) and lowest
    cash over the processed bars, computed over the whole curve at once."""
    gross = np.abs(curve["qty"] * curve["close"])
    equity = curve["equity"]
    peak: float | None = 0.0
    if len(curve) and bool(np.any(gross > 0)):
        if bool(np.any((gross > 0) & (equity <= 0))):
            peak = None  # a position with no equity left: unbounded leverage
        else:
            peak = float(np.max(np.where(gross > 0, gross / np.where(equity > 0, equity, 1.0), 0.0)))
    min_cash = float(np.min(curve["cash"])) if len(curve) else starting_cash
    return {"type": account_type, "max_leverage": max_leverage if account_type == "margin" else None,
            "peak_leverage": None if peak is None else r10(peak), "min_cash_usd": r10(min(min_cash, starting_cash))}


def build_reports(loop: "BarLoop", *, status: str, reason: str | None, bus: "EventBus", wall_ms: float,
                  contracts: Contracts) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """The court and EQS reports and the equity curve's bytes, checked against their schemas."""
    prep = loop.prep
    ws = prep.workspace
    equity = curve_bytes(loop.curve())
    book = loop.book
    eqs = build_eqs(run_id=prep.run_id, orders=book.orders, fills=book.fills,
                    ref_prices=book.ref_prices, order_bars=book.order_bars)
    report_dir = ws.run_reports(prep.run_id)
    total, last_hash, by_category, by_level, by_type = bus.on_disk()  # after a write failure: the prefix
    summary = RunSummary(
        run_id=prep.run_id, status=status, reason=reason,
        inputs=run_inputs(seed=prep.seed, config=prep.config, dataset=prep.dataset,
                          dataset_override=prep.dataset_override, strategy=prep.strategy,
                          adapter=prep.adapter),
        metrics=loop.metrics(), events_total=total, events_by_category=dict(by_category),
        events_by_level=dict(by_level), events_by_type=dict(by_type), last_hash=last_hash,
        findings=list(loop.findings), event_log=ws.relative(ws.event_log(prep.run_id)),
        report_dir=ws.relative(report_dir), equity_curve=ws.relative(report_dir / "equity.npy"),
        equity_sha256=hashlib.sha256(equity).hexdigest(), wall_ms=wall_ms,
        bars_processed=loop.bars_processed,
        extra={"account": account_summary(loop.curve(), account_type=loop.risk.account_type,
                                          max_leverage=loop.risk.max_leverage,
                                          starting_cash=prep.config.starting_cash)})
    court = build_court(summary)
    _validate(contracts, "eqs_report", eqs)
    _validate(contracts, "court_report", court)
    return court, eqs, equity


def _validate(contracts: Contracts, name: str, document: dict[str, Any]) -> None:
    """Check a report against its schema: a compiled conservative predicate (once per contracts)
    proves the common case in microseconds; anything it does not accept goes to jsonschema,
    which decides and names the field."""
    predicates = contracts.__dict__.setdefault("_treasure_report_predicates", {})
    predicate = predicates.get(name)
    if predicate is None:
        from treasure.schemacheck import compile_predicate

        predicate = predicates[name] = compile_predicate(contracts.schema(name), name=name)
    if not predicate(document):
        contracts.validate(name, document, source=f"{name}.json")
