"""Run invariants: they hold on real runs (built-in strategies, scripted orders drawn by
hypothesis) and each one fails, naming what broke and where, on evidence broken on purpose."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treasure.hunt import strategies as ts
from treasure.invariants import (
    CHECKS,
    INVARIANTS,
    InvariantViolation,
    check_accounting,
    check_clean_run,
    check_coded_errors,
    check_data_events,
    check_determinism,
    check_event_log,
    check_orders,
    check_outcome,
    check_report_agreement,
    check_risk,
    restrict,
    selected,
)
from treasure.data import Bars, bars_to_csv, generate_bars
from treasure.errors import DataError
from treasure.hunt.case import DATASET_PATH, Case, GeneratedDataset
from treasure.hunt.runner import Evidence, Outcome, Scratch, run_staged
from treasure.hunt.scripted import REF as SCRIPTED
from treasure.workspace import bundle_dir

pytest_plugins = ["pytester"]
FEW = settings(max_examples=max(4, settings().max_examples // 5), deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def make_case(*, n_bars: int = 300, seed: int = 7, gaps: int = 0, duplicates: int = 1,
              strategy: str = "sma_crossover", params: dict[str, Any] | None = None,
              edit: Callable[[dict[str, Any]], None] | None = None) -> Case:
    bars = generate_bars(n_bars=n_bars, seed=seed, gaps=gaps, duplicates=duplicates)
    from treasure.data.dataset import find_duplicates, find_gaps

    interval = 300_000
    ds = GeneratedDataset(bars=bars, csv=bars_to_csv(bars), interval_ms=interval,
                          gaps=tuple(g.bar_idx for g in find_gaps(bars.t_ms, interval)),
                          duplicates=tuple(d.bar_idx for d in find_duplicates(bars.t_ms)))
    ssot = json.loads((bundle_dir() / "spec" / "ssot.json").read_text())
    ssot["dataset"].update(path=DATASET_PATH, sha256=ds.sha256, interval_ms=interval)
    ssot["strategy"] = {"name": strategy, "params": params if params is not None else
                        {"fast": 3, "slow": 8, "order_usd": 15000, "allow_short": True}}
    if edit is not None:
        edit(ssot)
    return Case(ds, ssot)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Scratch:
    return Scratch(tmp_path_factory.mktemp("inv") / "ws")


@pytest.fixture(scope="module")
def good(scratch: Scratch) -> tuple[Case, Outcome]:
    """A complete run with fills, partial fills, risk cuts, a duplicate timestamp and day ends."""
    case = make_case()
    return case, scratch.run(case, run_id="good")


@pytest.fixture(scope="module")
def halted(scratch: Scratch) -> tuple[Case, Outcome]:
    case = make_case(edit=lambda s: s["risk"].update(daily_loss_limit_usd=5))
    return case, scratch.run(case, run_id="halted")


def with_events(evidence: Evidence, tmp_path: Path, change: Callable[[list[dict[str, Any]]], None]) -> Evidence:
    """The same evidence with its events edited (lines re-serialised; the chain is not fixed)."""
    events = [json.loads(line) for line in evidence.log_bytes.splitlines()]
    change(events)
    data = b"".join(orjson.dumps(e, option=orjson.OPT_SORT_KEYS) + b"\n" for e in events)
    path = tmp_path / "run_edited.jsonl"
    path.write_bytes(data)
    return dataclasses.replace(evidence, log_paths=(path,), log_bytes=data)


def with_equity(evidence: Evidence, change: Callable[[np.ndarray], None]) -> Evidence:
    curve = evidence.equity.copy()
    change(curve)
    buffer = io.BytesIO()
    np.save(buffer, curve, allow_pickle=False)
    return dataclasses.replace(evidence, equity_bytes=buffer.getvalue())


def first(events: list[dict[str, Any]], event_type: str, **payload: Any) -> dict[str, Any]:
    return next(e for e in events if e["event_type"] == event_type
                and all(e["payload"].get(k) == v for k, v in payload.items()))


def violation(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> InvariantViolation:
    with pytest.raises(InvariantViolation) as caught:
        fn(*args, **kwargs)
    return caught.value


# --------------------------------------------------------------------------------------------
# real runs keep every invariant


def test_the_reference_runs_exercise_what_the_invariants_check(good, halted) -> None:
    case, outcome = good
    counts = outcome.evidence.court["events"]["by_category"]
    types = {e["event_type"] for e in outcome.evidence.events}
    assert outcome.status == "complete" and counts["EXEC"] > 20
    assert {"order_filled", "limit_exceeded", "duplicate_timestamp", "day_end", "order_cancelled"} <= types
    assert any(e["payload"]["status"] == "partially_filled" for e in outcome.evidence.of_type("order_filled"))
    assert halted[1].status == "halted"


def test_a_good_run_and_a_halted_run_keep_every_invariant(good, halted, scratch: Scratch) -> None:
    for case, outcome in (good, halted):
        check_outcome(case, outcome)
    again = scratch.run(good[0], run_id="good")
    check_outcome(good[0], good[1], again)  # determinism: the same inputs twice


@FEW
@given(case=ts.cases(strategy="sma_crossover", max_bars=40)
       | ts.cases(strategy="mean_reversion", max_bars=40)
       | ts.cases(strategy="buy_and_hold", max_bars=40))
def test_builtin_strategies_keep_every_invariant_on_generated_cases(treasure_invariants, case) -> None:
    treasure_invariants.run(case)


@st.composite
def scripted_cases(draw: Any) -> Case:
    """Cases whose orders are drawn directly: sizes from dust to far beyond the position limit."""
    case = draw(ts.cases(strategy=SCRIPTED, params={}, max_bars=25))
    n = len(case.dataset)
    price = float(case.dataset.bars.close.max())
    limit = case.ssot["risk"]["max_position_size_usd"]
    script = draw(st.dictionaries(st.integers(0, n - 1).map(str),
                                  st.lists(ts.intents(max_qty=3 * limit / price).map(
                                      lambda i: [i.side, i.qty, i.reason]), min_size=1, max_size=3), max_size=n))
    return Case(case.dataset, {**case.ssot, "strategy": {"name": SCRIPTED, "params": {"intents": script}}})


@FEW
@given(case=scripted_cases())
def test_arbitrary_order_streams_keep_every_invariant(treasure_invariants, case) -> None:
    treasure_invariants.run(case)


@FEW
@given(broken=ts.broken_datasets(max_bars=12))
def test_broken_data_is_refused_with_its_code_never_a_crash(scratch: Scratch, broken) -> None:
    case = make_case()
    ssot = {**case.ssot, "dataset": {**case.ssot["dataset"], "sha256": broken.sha256}}
    path = scratch.stage(Case(case.dataset, ssot))
    (scratch.root / DATASET_PATH).write_bytes(broken.data)
    outcome = run_staged(scratch.workspace, path, "broken")
    if outcome.status == "crashed":
        check_clean_run(outcome)  # raises the coded_errors violation, with the traceback
    assert (outcome.status, outcome.code, outcome.error["line"]) == ("refused", broken.code, broken.line)


def test_selection_by_name_and_restrict() -> None:
    assert selected() == INVARIANTS
    assert selected(skip=["determinism"]) == tuple(n for n in INVARIANTS if n != "determinism")
    with pytest.raises(ValueError, match="unknown invariant"):
        selected(only=["speed"])
    with restrict(["event_log", "risk", "determinism"]):
        assert selected(skip=["risk"]) == ("event_log", "determinism")
        with restrict(["risk", "orders"]):  # nested: the intersection
            assert selected() == ("risk",)
    assert selected() == INVARIANTS


@pytest.mark.treasure_invariants(skip=["determinism", "orders"])
def test_the_marker_narrows_what_the_fixture_checks() -> None:
    assert selected() == tuple(n for n in INVARIANTS if n not in ("determinism", "orders"))


def test_invariants_are_one_registry() -> None:
    """The names, the hunt's report and the CLI's --skip choices all come from CHECKS."""
    from treasure.cli.main import build_parser
    from treasure.hunt import search

    assert INVARIANTS == tuple(c.name for c in CHECKS) and len(set(INVARIANTS)) == len(INVARIANTS)
    assert all(callable(c.check) and c.promise for c in CHECKS)
    assert not hasattr(search, "INVARIANT_NAMES")
    hunt = build_parser()._subparsers._group_actions[0].choices["hunt"]  # type: ignore[union-attr]
    (skip,) = [a for a in hunt._actions if a.dest == "skip"]
    assert tuple(skip.choices) == INVARIANTS


# --------------------------------------------------------------------------------------------
# each invariant fails on evidence broken on purpose, saying what and where


def test_event_log_fails_on_an_edited_line(good, tmp_path: Path) -> None:
    evidence = good[1].evidence
    lines = evidence.log_bytes.splitlines(keepends=True)
    lines[5] = lines[5].replace(b'"level":"', b'"level":"', 1).replace(b'"bar_idx":', b'"bar_idx":1', 1)
    path = tmp_path / "run_x.jsonl"
    path.write_bytes(b"".join(lines))
    broken = dataclasses.replace(evidence, log_paths=(path,), log_bytes=path.read_bytes())
    err = violation(check_event_log, broken)
    assert err.invariant == "event_log" and "EVENTS_CHAIN" in str(err) and ":6" in str(err)


def test_event_log_fails_without_run_end(good, tmp_path: Path) -> None:
    evidence = good[1].evidence
    path = tmp_path / "run_x.jsonl"
    path.write_bytes(b"".join(evidence.log_bytes.splitlines(keepends=True)[:-1]))
    broken = dataclasses.replace(evidence, log_paths=(path,), log_bytes=path.read_bytes())
    assert "must close with the only run_end; it closes with" in str(violation(check_event_log, broken))


def test_accounting_fails_when_equity_is_not_cash_plus_position(good) -> None:
    broken = with_equity(good[1].evidence, lambda c: c["equity"].__setitem__(10, c["equity"][10] + 1.0))
    err = violation(check_accounting, broken)
    assert err.invariant == "accounting" and "bar 10: equity" in err.message and "!= cash" in err.message


def test_accounting_fails_when_the_curve_disagrees_with_the_fills(good) -> None:
    def shift(c: np.ndarray) -> None:
        c["cash"][-1] += 50.0
        c["equity"][-1] += 50.0
    err = violation(check_accounting, with_equity(good[1].evidence, shift))
    assert "but after the fills up to that bar the position is" in err.message


def test_accounting_fails_when_a_fill_moves_cash_wrongly(good, tmp_path: Path) -> None:
    broken = with_events(good[1].evidence, tmp_path,
                         lambda ev: first(ev, "position_updated")["payload"].__setitem__("cash", 1.0))
    err = violation(check_accounting, broken)
    assert "position_updated" in err.message and "cash 1.0, but the fill (" in err.message


def test_risk_fails_on_a_fill_beyond_the_position_limit(good, tmp_path: Path) -> None:
    def grow(ev: list[dict[str, Any]]) -> None:
        p = first(ev, "position_updated")["payload"]
        p["qty"] = p["qty"] * 1000
    err = violation(check_risk, with_events(good[1].evidence, tmp_path, grow))
    assert err.invariant == "risk" and "beyond max_position_size_usd 10000" in err.message


def test_risk_fails_on_trading_after_a_halt(halted, tmp_path: Path) -> None:
    def trade_after(ev: list[dict[str, Any]]) -> None:
        at = next(i for i, e in enumerate(ev) if e["event_type"] == "halt")
        ev.insert(at + 1, {**first(ev, "order_placed"), "seq": ev[at]["seq"] + 1})
    err = violation(check_risk, with_events(halted[1].evidence, tmp_path, trade_after))
    assert "trading after the halt at seq" in err.message and "(order_placed" in err.message


def test_risk_fails_when_a_loss_day_did_not_halt(good, tmp_path: Path) -> None:
    broken = with_events(good[1].evidence, tmp_path,
                         lambda ev: first(ev, "day_end")["payload"].__setitem__("min_pnl_usd", -99999.0))
    assert "below -daily_loss_limit_usd 1500, and trading went on without a halt" in str(violation(check_risk, broken))


def test_orders_fail_on_an_order_left_open(good, tmp_path: Path) -> None:
    broken = with_events(good[1].evidence, tmp_path, lambda ev: ev.remove(first(ev, "order_cancelled")))
    assert "never reached a terminal state" in violation(check_orders, broken).message


def test_orders_allow_the_rounding_of_partial_fills_but_not_an_overfill(good, tmp_path: Path) -> None:
    evidence = good[1].evidence
    partial = first(evidence.events, "order_filled", status="partially_filled")["payload"]["order_id"]

    def bump(by: float) -> Callable[[list[dict[str, Any]]], None]:
        def change(ev: list[dict[str, Any]]) -> None:
            for e in ev:
                if e["event_type"] == "order_filled" and e["payload"]["order_id"] == partial:
                    e["payload"]["fill_qty"] += by
        return change

    check_orders(with_events(evidence, tmp_path, bump(4e-11)))  # each fill_qty is rounded to 1e-10
    qty = first(evidence.events, "order_placed", order_id=partial)["payload"]["qty"]
    err = violation(check_orders, with_events(evidence, tmp_path, bump(qty)))
    assert f"order {partial} filled" in err.message


def test_orders_fail_on_a_fill_on_the_decision_bar(good, tmp_path: Path) -> None:
    case = good[0]

    def same_bar(ev: list[dict[str, Any]]) -> None:
        fill = first(ev, "order_filled")
        placed = first(ev, "order_placed", order_id=fill["payload"]["order_id"])
        fill["payload"]["bar_idx"] = placed["payload"]["bar_idx"]
    err = violation(check_orders, with_events(good[1].evidence, tmp_path, same_bar), case.dataset.bars)
    assert "not after the decision bar" in err.message and "(look-ahead)" in err.message


def test_orders_fail_on_a_fill_price_the_bar_never_traded(good, tmp_path: Path) -> None:
    broken = with_events(good[1].evidence, tmp_path,
                         lambda ev: first(ev, "order_filled")["payload"].__setitem__("price", 1e6))
    assert "outside bar" in violation(check_orders, broken, good[0].dataset.bars).message


def test_report_agreement_fails_on_a_miscounted_report(good) -> None:
    evidence = good[1].evidence
    court = json.loads(json.dumps(evidence.court))
    court["metrics"]["fills"] += 1
    err = violation(check_report_agreement, dataclasses.replace(evidence, court=court))
    fills = court["metrics"]["fills"]
    assert err.message == f"court metrics.fills is {fills}, the events say {fills - 1}"


def test_data_events_fail_on_a_missing_duplicate_event(good, tmp_path: Path) -> None:
    case, outcome = good
    check_data_events(outcome.evidence, case.dataset)
    broken = with_events(outcome.evidence, tmp_path, lambda ev: ev.remove(first(ev, "duplicate_timestamp")))
    err = violation(check_data_events, broken, case.dataset)
    assert f"duplicate_timestamp at bars [], but the data has them at [{case.dataset.duplicates[0]}]" in err.message


def test_determinism_fails_on_differing_evidence_naming_the_first_event(good, tmp_path: Path) -> None:
    evidence = good[1].evidence
    check_determinism(evidence, evidence)
    broken = with_events(evidence, tmp_path,
                         lambda ev: first(ev, "intent_emitted")["payload"].__setitem__("reason", "x"))
    err = violation(check_determinism, evidence, broken)
    seq = first(evidence.events, "intent_emitted")["seq"]
    assert f"differ from seq {seq} on" in err.message
    assert any("['payload']['reason']: 'golden_cross' -> 'x'" in d or "-> 'x'" in d for d in err.details)


def test_coded_errors_lets_treasure_errors_through_and_nothing_else() -> None:
    def bad() -> None:
        raise DataError("DATA_NAN", "nan", line=3)

    assert isinstance(check_coded_errors(bad), DataError)
    assert check_coded_errors(lambda: 41 + 1) == 42
    err = violation(check_coded_errors, lambda: {}["missing"])
    assert err.invariant == "coded_errors" and "KeyError escaped instead of a coded TreasureError" in err.message


def test_clean_run_reports_errors_refusals_and_crashes(good) -> None:
    case = good[0]
    err = violation(check_clean_run, Outcome("error", error={"code": "STRATEGY_FAILED", "message": "boom",
                                                             "path": "s.py", "line": 9}), case)
    assert err.message == "the run ended in error: STRATEGY_FAILED: boom (path s.py line 9)"
    err = violation(check_clean_run, Outcome("crashed", traceback="Traceback ...\nKeyError: 'x'"), case)
    assert err.invariant == "coded_errors" and "KeyError: 'x'" in err.message
    gap_error = Case(case.dataset, {**case.ssot, "dataset": {**case.ssot["dataset"], "on_duplicate": "error"}})
    line = case.dataset.duplicates[0] + 2
    check_clean_run(Outcome("refused", error={"code": "DATA_DUPLICATE", "line": line}), gap_error)
    err = violation(check_clean_run, good[1], gap_error)
    assert f"demands refusal DATA_DUPLICATE at line {line}; got complete" in err.message


def test_the_engine_refuses_what_the_data_policy_says(scratch: Scratch) -> None:
    case = make_case(edit=lambda s: s["dataset"].update(on_duplicate="error"))
    outcome = scratch.run(case, run_id="policy")
    assert outcome.status == "refused" and outcome.code == "DATA_DUPLICATE"
    check_outcome(case, outcome)


# --------------------------------------------------------------------------------------------
# engine bugs `treasure hunt` found (pinned by strict xfails until the engine was fixed; now
# regression tests)


def test_engine_reports_the_bars_a_gap_misses(scratch: Scratch) -> None:
    case = make_case(gaps=2, duplicates=0)
    outcome = scratch.run(case, run_id="gaps")
    check_data_events(outcome.evidence, case.dataset)


def test_engine_reports_a_run_whose_equity_goes_negative(scratch: Scratch) -> None:
    t = [1_767_225_600_000 + i * 300_000 for i in range(4)]
    prices = [100.0, 100.0, 500.0, 500.0]  # a 5x jump, as after a trading halt
    bars = Bars(t, prices, prices, prices, prices, [1.0] * 4)
    ds = GeneratedDataset(bars=bars, csv=bars_to_csv(bars), interval_ms=300_000)
    case = make_case(strategy=SCRIPTED, params={"intents": {"0": [["sell", 1500, "short 1.5x cash"]]}},
                     edit=lambda s: s["risk"].update(max_position_size_usd=200_000))
    case = Case(ds, {**case.ssot, "dataset": {**case.ssot["dataset"], "sha256": ds.sha256}})
    check_outcome(case, scratch.run(case, run_id="negative"))


def test_engine_partial_fills_stop_at_the_qty_step(scratch: Scratch) -> None:
    t = [1_767_225_600_000 + i * 300_000 for i in range(40)]
    prices = [100.0] * 40
    bars = Bars(t, prices, prices, prices, prices, [1.0] * 40)
    ds = GeneratedDataset(bars=bars, csv=bars_to_csv(bars), interval_ms=300_000)
    case = make_case(strategy=SCRIPTED, params={"intents": {"0": [["buy", 0.5, "one order"]]}},
                     edit=lambda s: s["execution"].update(partial_fill_prob=1.0, partial_fill_min_ratio=0.5))
    case = Case(ds, {**case.ssot, "dataset": {**case.ssot["dataset"], "sha256": ds.sha256}})
    outcome = scratch.run(case, run_id="dust")
    check_outcome(case, outcome)
    step = case.ssot["instrument"]["qty_step"]
    dust = [q for q in (e["payload"]["fill_qty"] for e in outcome.evidence.of_type("order_filled")) if q < step]
    assert not dust, f"fills below qty_step {step}: {dust}"


# --------------------------------------------------------------------------------------------
# the fixture and marker in a user's test suite

USER_TESTS = '''
import pytest
from hypothesis import given, settings
from pytest_treasure.strategies import cases

@settings(max_examples=4, deadline=None)
@given(case=cases(strategy="strats.py:{cls}", params={{}}, max_bars=12, gaps=0))
@pytest.mark.treasure_invariants(skip=["determinism"])
def test_my_strategy(treasure_invariants, case):
    treasure_invariants.run(case)
'''

STRATS = '''
from treasure.strategy import Intent, Strategy


class Steady(Strategy):
    def on_bar(self, ctx, bar):
        return [Intent("buy", 0.01, "dca")] if bar.idx % 3 == 0 else None


class Fragile(Strategy):
    """Divides by the step between bar timestamps: a duplicate timestamp makes it raise."""

    def on_start(self, ctx, bars):
        t = bars.t_ms.tolist()
        self.speed = [0.0] + [1.0 / (b - a) for a, b in zip(t, t[1:])]
'''


@pytest.mark.parametrize("cls, outcome", [("Steady", "passed"), ("Fragile", "failed")])
def test_fixture_and_marker_in_a_user_suite(pytester: pytest.Pytester, cls: str, outcome: str) -> None:
    pytester.makepyfile(strats=STRATS, test_user=USER_TESTS.format(cls=cls))
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                                "test_user.py")
    result.assert_outcomes(**{outcome: 1})
    if outcome == "failed":
        result.stdout.fnmatch_lines(["*InvariantViolation: [[]clean_run[]] the run ended in error: STRATEGY_FAILED: "
                                     "strategy raised ZeroDivisionError*"])
