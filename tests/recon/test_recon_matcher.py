"""The matcher's rules, one by one, on hand-built ledgers (see treasure/recon/matcher.py)."""

from __future__ import annotations

import numpy as np
import pytest

from treasure.recon import Ledger, LedgerBuilder, Tolerances, reconcile
from treasure.recon.model import STATE_CODE

TOL = Tolerances(price_tolerance_bps=5.0, fee_tolerance_abs_usd=0.01, fee_tolerance_rel=0.001,
                 time_window_ms=600_000, max_mismatches=2)
T = 1_767_225_600_000
BAR = 300_000


def ledger(*orders: tuple) -> Ledger:
    """``(order_id, side, qty, state, [(ts, qty, price, fee), ...])`` -> Ledger."""
    builder = LedgerBuilder()
    for oid, side, qty, state, fills in orders:
        index = builder.order(oid, side=side, qty=qty, ts_ms=T)
        for ts, fqty, price, fee in fills:
            builder.fill(index, ts_ms=ts, qty=fqty, price=price, fee=fee)
        builder.reach(index, state)
    return builder.build()


def one(fills=((T + BAR, 10.0, 100.0, 0.5),), *, oid="o000001", side="buy", state="filled"):
    return ledger((oid, side, 10.0, state, list(fills)))


def codes(expected: Ledger, live: Ledger, tol: Tolerances = TOL) -> list[tuple[str, str]]:
    return reconcile(expected, live, tol).pairs()


def test_identical_ledgers_are_clean_and_counted() -> None:
    result = reconcile(one(), one(), TOL)
    assert result.pairs() == [] and result.matched == 1 and result.orders_compared == 1
    assert result.summary == {"MISSING_FILL": 0, "ORDER_STATE_DRIFT": 0, "PRICE_MISMATCH": 0, "FEE_MISMATCH": 0}


@pytest.mark.parametrize("bps, flagged", [(4.99, False), (5.0, False), (5.01, True), (-5.01, True), (-4.9, False)])
def test_price_tolerance_is_inclusive_and_two_sided(bps: float, flagged: bool) -> None:
    price = 100.0 * (1 + bps / 1e4)
    live = one([(T + BAR + 150, 10.0, price, 0.5 * price / 100.0)])
    assert codes(one(), live) == ([("PRICE_MISMATCH", "o000001")] if flagged else [])


def test_price_delta_is_adverse_bps_for_both_sides() -> None:
    buy = reconcile(one(), one([(T + BAR, 10.0, 100.1, 0.5005)]), TOL).mismatches[0]
    sell = reconcile(one(side="sell"), one([(T + BAR, 10.0, 100.1, 0.5005)], side="sell"), TOL).mismatches[0]
    assert buy.delta["bps"] == pytest.approx(10.0) and "adverse" in buy.detail
    assert sell.delta["bps"] == pytest.approx(-10.0) and "favourable" in sell.detail
    assert buy.expected == {"price": 100.0, "side": "buy"} and buy.actual["price"] == pytest.approx(100.1)


def test_price_is_compared_per_matched_fill_so_a_dropped_fill_is_only_missing() -> None:
    expected = one([(T + BAR, 5.0, 100.0, 0.25), (T + 2 * BAR, 5.0, 101.0, 0.2525)])
    live = one([(T + 2 * BAR + 90, 5.0, 101.0, 0.2525)])
    assert codes(expected, live) == [("MISSING_FILL", "o000001")]


@pytest.mark.parametrize("fee, flagged", [(0.509, False), (0.49, False), (0.5101, True), (0.4899, True)])
def test_fee_tolerance_absolute(fee: float, flagged: bool) -> None:
    assert codes(one(), one([(T + BAR, 10.0, 100.0, fee)])) == ([("FEE_MISMATCH", "o000001")] if flagged else [])


def test_fee_tolerance_relative_wins_when_larger() -> None:
    big = [(T + BAR, 10_000.0, 100.0, 500.0)]
    tol = Tolerances(5.0, 0.01, 0.001, 600_000, 10)  # 0.001 * 500 = 0.5 USD
    assert codes(one(big), one([(T + BAR, 10_000.0, 100.0, 500.4)]), tol) == []
    assert codes(one(big), one([(T + BAR, 10_000.0, 100.0, 500.6)]), tol) == [("FEE_MISMATCH", "o000001")]


def test_fee_is_compared_as_the_expected_rate_on_the_live_notional() -> None:
    """A fill at a different price pays the same rate: only the price mismatches."""
    live = one([(T + BAR, 10.0, 101.0, 0.505)])
    assert codes(one(), live) == [("PRICE_MISMATCH", "o000001")]


def test_missing_fill_both_ways_and_its_numbers() -> None:
    two = [(T + BAR, 4.0, 100.0, 0.2), (T + 2 * BAR, 6.0, 100.0, 0.3)]
    result = reconcile(one(two), one([(T + 2 * BAR, 6.0, 100.0, 0.3)]), TOL)
    (m,) = result.mismatches
    assert (m.code, m.expected, m.actual) == ("MISSING_FILL", {"filled_qty": 10.0, "fills": 2},
                                              {"filled_qty": 6.0, "fills": 1})
    assert m.delta == {"qty": -4.0, "unmatched_live_fills": 0, "unmatched_expected_fills": 0}
    extra = one(two + [(T + BAR + 5, 1.0, 100.0, 0.05)])
    assert codes(one(two), extra) == [("MISSING_FILL", "o000001")]


def test_a_fill_outside_the_time_window_is_missing_even_with_equal_quantity() -> None:
    late = one([(T + BAR + 600_001, 10.0, 100.0, 0.5)])
    (m,) = reconcile(one(), late, TOL).mismatches
    assert m.code == "MISSING_FILL"
    assert m.delta == {"qty": 0.0, "unmatched_live_fills": 1, "unmatched_expected_fills": 1}
    assert codes(one(), one([(T + BAR + 600_000, 10.0, 100.0, 0.5)])) == []


def test_split_fills_within_the_window_reconcile() -> None:
    split = one([(T + BAR + 10, 6.0, 100.0, 0.3), (T + BAR + 20, 4.0, 100.0, 0.2)])
    assert codes(one(), split) == []


@pytest.mark.parametrize("live_state", ["partially_filled", "cancelled", "rejected", "new"])
def test_state_drift(live_state: str) -> None:
    result = reconcile(one(), one(state=live_state), TOL)
    (m,) = result.mismatches
    assert (m.code, m.expected, m.actual, m.delta) == (
        "ORDER_STATE_DRIFT", {"state": "filled"}, {"state": live_state}, {"state": f"filled->{live_state}"})


def test_state_is_the_highest_precedence_reached() -> None:
    builder = LedgerBuilder()
    index = builder.order("o1")
    for state in ("cancelled", "partially_filled", "filled", "new"):
        builder.reach(index, state)
    assert builder.build().state.tolist() == [STATE_CODE["cancelled"]]


def test_orders_known_to_one_side_are_one_mismatch() -> None:
    expected = ledger(("o1", "buy", 1.0, "filled", [(T, 1.0, 10.0, 0.01)]), ("o2", "buy", 1.0, "rejected", []))
    live = ledger(("o3", "sell", 1.0, "filled", [(T, 1.0, 10.0, 0.01)]), ("o4", "sell", 1.0, "new", []))
    assert codes(expected, live) == [("MISSING_FILL", "o1"), ("MISSING_FILL", "o3"),
                                     ("ORDER_STATE_DRIFT", "o2"), ("ORDER_STATE_DRIFT", "o4")]
    result = reconcile(expected, live, TOL)
    assert result.orders_compared == 4 and result.matched == 0
    absent = {m.order_id: m for m in result.mismatches}
    assert absent["o2"].actual == {"state": "absent"} and absent["o4"].expected == {"state": "absent"}
    assert "no record" in absent["o1"].detail and "never placed" in absent["o3"].detail


def test_mismatches_sort_by_order_then_code_and_several_codes_per_order() -> None:
    expected = ledger(("o2", "buy", 10.0, "filled", [(T, 10.0, 100.0, 0.5)]),
                      ("o1", "buy", 10.0, "filled", [(T, 10.0, 100.0, 0.5)]))
    live = ledger(("o1", "buy", 10.0, "cancelled", [(T, 9.0, 102.0, 2.0)]),
                  ("o2", "buy", 10.0, "filled", [(T, 10.0, 100.0, 0.9)]))
    assert [(m.order_id, m.code) for m in reconcile(expected, live, TOL).mismatches] == [
        ("o1", "MISSING_FILL"), ("o1", "ORDER_STATE_DRIFT"), ("o1", "PRICE_MISMATCH"), ("o1", "FEE_MISMATCH"),
        ("o2", "FEE_MISMATCH")]


def test_halt_counts_mismatched_orders_strictly_above_the_threshold() -> None:
    expected = ledger(*[(f"o{i}", "buy", 1.0, "filled", [(T, 1.0, 10.0, 0.0)]) for i in range(3)])
    live_two = ledger(*[(f"o{i}", "buy", 1.0, "filled", [(T, 1.0, 10.0 if i == 2 else 11.0, 0.0)]) for i in range(3)])
    live_three = ledger(*[(f"o{i}", "buy", 1.0, "new", [(T, 1.0, 11.0, 0.0)]) for i in range(3)])
    at = reconcile(expected, live_two, TOL)      # 2 orders, threshold 2
    above = reconcile(expected, live_three, TOL)  # 3 orders (6 mismatches)
    assert (at.mismatched_orders, at.halted) == (2, False)
    assert (above.mismatched_orders, len(above.mismatches), above.halted) == (3, 6, True)


def test_empty_sides() -> None:
    empty = Ledger.empty()
    assert reconcile(empty, empty, TOL).orders_compared == 0
    assert codes(one(), empty) == [("MISSING_FILL", "o000001")]
    assert codes(empty, one()) == [("MISSING_FILL", "o000001")]


def test_ledger_rejects_inconsistent_columns() -> None:
    with pytest.raises(ValueError, match="side"):
        Ledger.from_columns(ids=["a"], side=[], qty=[1.0], state=[1], fill_order=[], fill_ts=[], fill_qty=[],
                            fill_price=[], fill_fee=[])
    with pytest.raises(ValueError, match="outside"):
        Ledger.from_columns(ids=["a"], side=[1], qty=[1.0], state=[1], fill_order=[3], fill_ts=[0], fill_qty=[1],
                            fill_price=[1], fill_fee=[0])


def test_large_vectorised_reconcile_matches_injected_rows() -> None:
    n = 20_000
    ids = np.char.mod("o%07d", np.arange(n))
    side = np.where(np.arange(n) % 2 == 0, 1, -1)
    price = 100.0 + np.arange(n) % 50
    columns = dict(ids=ids, side=side, qty=np.ones(n), state=np.full(n, STATE_CODE["filled"]),
                   fill_order=np.arange(n), fill_ts=T + np.arange(n) * 1000, fill_qty=np.ones(n),
                   fill_price=price, fill_fee=price * 0.0005)
    expected = Ledger.from_columns(**columns)
    live_price = price.copy()
    live_price[[7, 4242]] *= 1.01
    live = Ledger.from_columns(**{**columns, "fill_price": live_price, "fill_fee": live_price * 0.0005})
    assert reconcile(expected, live, TOL).pairs() == [("PRICE_MISMATCH", "o0000007"), ("PRICE_MISMATCH", "o0004242")]


def test_time_keys_fall_back_to_ranks_for_huge_time_spans() -> None:
    """orders x time span beyond 62 bits: the matcher ranks timestamps instead; same answers."""
    n = 600
    ts = np.where(np.arange(n) % 2 == 0, 1_000, 9_000_000_000_000_000) + np.arange(n)
    columns = dict(ids=np.char.mod("o%04d", np.arange(n)), side=np.ones(n), qty=np.ones(n),
                   state=np.full(n, STATE_CODE["filled"]), fill_order=np.arange(n), fill_ts=ts,
                   fill_qty=np.ones(n), fill_price=np.full(n, 10.0), fill_fee=np.zeros(n))
    expected = Ledger.from_columns(**columns)
    late = ts.copy()
    late[[3, 8]] += [TOL.time_window_ms, TOL.time_window_ms + 1]
    live = Ledger.from_columns(**{**columns, "fill_ts": late})
    assert reconcile(expected, live, TOL).pairs() == [("MISSING_FILL", "o0008")]
