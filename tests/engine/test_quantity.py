"""Exact quantities: sizes are whole numbers of ``qty_step`` lots inside the engine (issue 12, finding 1).

The reproducer: with the old float ``quantize`` (which forgave a millionth of a step of noise),
``qty / step`` carries a relative error near 1e-16, so selling a position of >= 16,384 units at step
1e-6 (or >= 128 units at step 1e-8) left one step behind in a few percent of cases.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treasure.engine import RunRequest, run
from treasure.engine.orders import OrderBook
from treasure.execution.messages import Fill, Order, quantize
from treasure.execution.quantity import QuantityError, to_lots, to_qty
from treasure.portfolio import Portfolio

STEPS = st.sampled_from([1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0]) | \
    st.floats(min_value=1e-10, max_value=1.0, allow_nan=False, allow_infinity=False)


def test_the_reproducer_leaves_no_dust():
    """The issue's numbers: a sell of the whole position at step 1e-6 and 1e-8 is flat exactly."""
    stuck = 0
    for step, start in ((1e-6, 16_384.0), (1e-8, 128.0)):
        for k in range(2000):
            q = start * (1.0 + k * 0.000731)
            held = quantize(q, step)           # what the engine would have bought
            sold = quantize(held, step)        # "sell everything" of that position
            stuck += sold != held
    assert stuck == 0


@settings(max_examples=300, deadline=None)
@given(step=STEPS, q=st.floats(min_value=0.0, max_value=1e12, allow_nan=False))
def test_buying_q_and_selling_everything_is_flat_exactly(step, q):
    portfolio = Portfolio(cash=0.0, qty_step=step)
    lots = to_lots(q, step)
    if lots == 0:
        return
    portfolio.apply(Fill("o1", "buy", to_qty(lots, step), 1.0, 0.0, 0, 0))
    assert portfolio.lots == lots
    everything = portfolio.qty  # what a strategy sees and sells
    sell = to_lots(everything, step, near=portfolio.lots)
    portfolio.apply(Fill("o2", "sell", to_qty(sell, step), 1.0, 0.0, 1, 0))
    assert portfolio.lots == 0 and portfolio.qty == 0.0 and len(portfolio.trade_pnls) == 1


@settings(max_examples=200, deadline=None)
@given(step=STEPS, q=st.floats(min_value=0.0, max_value=1e12, allow_nan=False),
       parts=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=5))
def test_partial_fills_of_an_order_add_up_to_it_exactly(step, q, parts):
    lots = to_lots(q, step)
    if lots == 0:
        return
    book = OrderBook(qty_step=step)
    book.add(Order("o1", "buy", to_qty(lots, step), 0, 0, 1.0), lots)
    remaining = lots
    for ratio in parts:
        part = min(remaining, max(1, int(remaining * ratio)))
        _, done = book.record_fill(Fill("o1", "buy", to_qty(part, step), 1.0, 0.0, 1, 0), part)
        remaining -= part
        assert done == (remaining == 0)
        if done:
            break
    assert book.working_lots == remaining


@pytest.mark.parametrize("qty, step, expected", [(66.812205, 1e-6, 66_812_205), (1.0000004, 1e-6, 1_000_000),
                                                 (2.9999999999, 1.0, 3), (2.5, 1.0, 2), (0.0, 1e-8, 0)])
def test_to_lots_forgives_float_noise_and_rounds_down_otherwise(qty, step, expected):
    assert to_lots(qty, step) == expected


@pytest.mark.parametrize("qty", [float("inf"), float("nan"), -1.0, 1e305])
def test_sizes_out_of_range_are_a_coded_refusal_not_an_overflow(qty):
    with pytest.raises(QuantityError) as info:
        to_lots(qty, 1e-8)
    assert info.value.code == "QTY_OUT_OF_RANGE"


def test_a_run_at_a_price_of_1e_300_does_not_overflow(workspace, edit_ssot):
    """A size of 1e305 units (an all-in order at 1e-300 USD) is refused as an order, not a crash."""
    from treasure.data.synth import bars_to_csv, generate_bars
    from treasure.workspace import pin_dataset

    lines = bars_to_csv(generate_bars(n_bars=300, seed=3)).decode().splitlines()
    rows = [lines[0]]
    for line in lines[1:]:
        t, *prices, volume = line.split(",")
        rows.append(",".join([t, *(f"{float(x) * 1e-302:.6e}" for x in prices), volume]))
    pin_dataset(workspace, ("\n".join(rows) + "\n").encode(), "fixtures/data/tiny.csv")
    edit_ssot(lambda s: s["risk"].update(max_position_size_usd=1e12))
    result = run(RunRequest(workspace, run_id="tiny", strategy="buy_and_hold"))
    assert result.status == "complete", result.error
    events = [json.loads(line) for line in result.event_log.read_text().splitlines()]
    reasons = {e["payload"]["reason"] for e in events if e["event_type"] == "order_rejected"}
    assert "qty_out_of_range" in reasons


def test_price_tick_rounds_fill_prices_to_whole_ticks(workspace, edit_ssot):
    edit_ssot(lambda s: s["instrument"].update(price_tick=0.05))
    result = run(RunRequest(workspace, run_id="ticks"))
    prices = [json.loads(line)["payload"]["price"] for line in result.event_log.read_text().splitlines()
              if '"order_filled"' in line]
    assert prices and all(abs(p / 0.05 - round(p / 0.05)) < 1e-6 for p in prices)
