"""Evidence of a run, assembled from what the loop recorded: the equity curve and the reports.

Pure: arrays and documents in, arrays and documents out. :mod:`treasure.engine.service` writes them.
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from treasure.contracts import Contracts
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
    summary = RunSummary(
        run_id=prep.run_id, status=status, reason=reason,
        inputs=run_inputs(seed=prep.seed, config=prep.config, dataset=prep.dataset,
                          dataset_override=prep.dataset_override, strategy=prep.strategy,
                          adapter=prep.adapter),
        metrics=loop.metrics(), events_total=bus.seq, events_by_category=dict(bus.by_category),
        events_by_level=dict(bus.by_level), events_by_type=dict(bus.by_type), last_hash=bus.prev,
        findings=list(loop.findings), event_log=ws.relative(ws.event_log(prep.run_id)),
        report_dir=ws.relative(report_dir), equity_curve=ws.relative(report_dir / "equity.npy"),
        equity_sha256=hashlib.sha256(equity).hexdigest(), wall_ms=wall_ms,
        bars_processed=loop.bars_processed)
    court = build_court(summary)
    contracts.validate("eqs_report", eqs, source="eqs_report.json")
    contracts.validate("court_report", court, source="court_report.json")
    return court, eqs, equity
