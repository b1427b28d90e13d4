"""Risk sizing and portfolio accounting, as properties."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from treasure.execution.messages import Fill
from treasure.portfolio import Portfolio
from treasure.risk import RiskEngine

prices = st.floats(0.01, 1e5)
quantities = st.floats(1e-6, 1e4)
sides = st.sampled_from(["buy", "sell"])


@given(side=sides, qty=quantities, price=prices, exposure=st.floats(-1e4, 1e4), limit=st.floats(1.0, 1e7))
@settings(max_examples=500, deadline=None)
def test_allowed_qty_never_grows_exposure_beyond_the_limit(side, qty, price, exposure, limit):
    risk = RiskEngine(max_position_usd=limit, daily_loss_limit_usd=1)
    allowed = risk.allowed_qty(side, qty, price, exposure)
    assert 0.0 <= allowed <= qty
    after = exposure + (allowed if side == "buy" else -allowed)
    if allowed > 0:
        # either within the limit, or strictly reducing an exposure that was already beyond it
        assert abs(after) * price <= limit * (1 + 1e-6) or abs(after) < abs(exposure)


def test_pre_trade_decisions():
    risk = RiskEngine(max_position_usd=1000, daily_loss_limit_usd=1)
    assert risk.pre_trade("buy", 5, 100, 0).action == "ok"
    cut = risk.pre_trade("buy", 15, 100, 0)
    assert cut.action == "cut" and math.isclose(cut.qty, 10)
    assert risk.pre_trade("buy", 1, 100, 10).action == "rejected"
    assert risk.pre_trade("sell", 15, 100, 10).action == "ok"  # flip to a short within the limit
    flip = risk.pre_trade("sell", 25, 100, 10)  # flip to a short capped at the limit
    assert flip.action == "cut" and math.isclose(flip.qty, 20)
    assert risk.daily_loss_breached(-1.5) and not risk.daily_loss_breached(-0.5)


@given(st.lists(st.tuples(sides, st.floats(0.01, 100), st.floats(1, 1000), st.floats(0, 5)), min_size=1, max_size=30))
@settings(max_examples=300, deadline=None)
def test_accounting_identity_holds_after_any_fill_sequence(fills):
    start = 100_000.0
    book = Portfolio(cash=start)
    fees = 0.0
    for i, (side, qty, price, fee) in enumerate(fills):
        book.apply(Fill(f"o{i}", side, qty, price, fee, i, i))
        fees += fee
    last_price = fills[-1][2]
    # equity - start == realized + unrealized - fees
    unrealized = book.qty * (last_price - book.avg_price) if book.qty else 0.0
    expected = book.realized_pnl + unrealized - fees
    assert math.isclose(book.equity(last_price) - start, expected, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(book.fees_paid, fees, rel_tol=1e-12, abs_tol=1e-12)


def test_round_trip_records_one_trade_including_fees():
    book = Portfolio(cash=1000.0)
    book.apply(Fill("a", "buy", 2, 10, 0.5, 0, 0))
    book.apply(Fill("b", "sell", 2, 12, 0.5, 1, 1))
    assert book.qty == 0 and book.trade_pnls == [3.0]
    book.apply(Fill("c", "sell", 1, 12, 0, 2, 2))   # open short
    book.apply(Fill("d", "buy", 3, 10, 0, 3, 3))    # flip: closes the short (+2), opens long 2
    assert book.trade_pnls == [3.0, 2.0] and book.qty == 2 and book.avg_price == 10
