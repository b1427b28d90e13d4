"""Accounts and buying power (issue 12, finding 4): $150k orders on $100k cash used to trade with cash
at -$60k and no finding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from treasure.engine import RunRequest, run
from treasure.risk import RiskEngine


def _events(result, event_type):
    return [e["payload"] for e in map(json.loads, result.event_log.read_text().splitlines())
            if e["event_type"] == event_type]


@pytest.fixture
def big_orders(edit_ssot):
    def setup(account):
        def change(s):
            s["strategy"]["params"] = {**s["strategy"].get("params", {}), "order_usd": 150_000}
            s["risk"].update(max_position_size_usd=1e9, daily_loss_limit_usd=1e9)
            if account is not None:
                s["account"] = account
        edit_ssot(change)
    return setup


def test_a_cash_account_never_spends_more_than_its_cash(workspace, big_orders):
    big_orders(None)  # cash is the default
    result = run(RunRequest(workspace, run_id="cash"))
    assert result.status == "complete"
    cuts = _events(result, "insufficient_buying_power")
    assert cuts and {c["account"] for c in cuts} == {"cash"}
    assert all(c["allowed_qty"] < c["requested_qty"] for c in cuts)
    court = result.court
    assert any(f["code"] == "INSUFFICIENT_BUYING_POWER" and f["count"] == len(cuts) for f in court["findings"])
    assert court["account"]["type"] == "cash" and court["account"]["min_cash_usd"] >= -1e-6
    curve = np.load(workspace.run_reports("cash") / "equity.npy")
    assert curve["cash"].min() >= -1e-6
    assert 0.9 < court["account"]["peak_leverage"] <= 1.0 + 1e-9


def test_a_margin_account_trades_up_to_its_leverage(workspace, big_orders):
    big_orders({"type": "margin", "max_leverage": 2})
    result = run(RunRequest(workspace, run_id="margin2"))
    account = result.court["account"]
    assert account == {**account, "type": "margin", "max_leverage": 2}
    # orders are sized at decision prices; between orders leverage drifts with the price
    assert 1.4 < account["peak_leverage"] <= 2 * 1.05 and account["min_cash_usd"] < 0  # 150k on ~100k: borrowed
    fills = _events(result, "order_filled")
    assert len(fills) > 40  # it trades, unlike the cash account's cut orders


def test_a_margin_account_cuts_orders_beyond_its_leverage(workspace, big_orders):
    big_orders({"type": "margin", "max_leverage": 1.2})
    result = run(RunRequest(workspace, run_id="margin12"))
    cuts = _events(result, "insufficient_buying_power")
    assert cuts and {c["account"] for c in cuts} == {"margin"} and {c["max_leverage"] for c in cuts} == {1.2}
    assert result.court["account"]["peak_leverage"] <= 1.2 * 1.05  # sized at decision prices; then it drifts


def test_buying_power_rules():
    cash = RiskEngine(max_position_usd=1e9, daily_loss_limit_usd=1)
    assert cash.affordable_qty("buy", 10, 100, cash=500, equity=500, position_qty=0, working_qty=0) == 5
    assert cash.affordable_qty("buy", 10, 100, cash=500, equity=500, position_qty=0, working_qty=3) == 2
    assert cash.affordable_qty("sell", 10, 100, cash=0, equity=0, position_qty=10, working_qty=0) == 10
    assert cash.buying_power_check("buy", 10, 100, cash=-1, equity=0, position_qty=0,
                                   working_qty=0).action == "rejected"
    margin = RiskEngine(max_position_usd=1e9, daily_loss_limit_usd=1, account_type="margin", max_leverage=2)
    assert margin.affordable_qty("buy", 30, 100, cash=1000, equity=1000, position_qty=0, working_qty=0) == 20
    assert margin.affordable_qty("sell", 30, 100, cash=1000, equity=1000, position_qty=20, working_qty=0) == 30
    assert margin.leverage(20, 100, 1000) == 2.0 and margin.leverage(0, 100, -5) == 0.0
