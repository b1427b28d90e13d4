"""The signal-driven fast path changes nothing: a differential property against the per-bar path.

For generated datasets (gaps, duplicates, outliers, regimes), SSOTs (cash, position limits, daily
loss limits, qty steps, fees, slippage, partial fills, cash/margin accounts, emergency-flag
cadences), seeds and strategies (the three built-ins and a random-signal strategy that buys and
sells, so position limits, buying power and daily-loss halts all happen), the fast path and the
per-bar path (``RunRequest(force_per_bar=True)``) write byte-identical event logs, equal reports
(``timing`` aside) and identical equity curves.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treasure.engine import RunRequest, RunResult, execute_run, loop, prepare_run
from treasure.errors import StrategyError, TreasureError
from treasure.hunt.case import Case
from treasure.hunt.runner import Scratch
from treasure.hunt.strategies import cases
from treasure.workspace import Workspace

RANDOM_SIGNALS = '''
import numpy as np
from treasure.strategy import Intent, Strategy


class RandomSignals(Strategy):
    """Acts on seeded-random bars only (its signals); buys or sells a random USD amount."""

    name = "random_signals"
    params_schema = {"type": "object"}

    def __init__(self, seed=0, density=0.1, order_usd=1000.0, sell_share=0.4):
        super().__init__(seed=seed, density=density, order_usd=order_usd, sell_share=sell_share)
        self.seed, self.density, self.order_usd, self.sell_share = seed, density, order_usd, sell_share

    def on_start(self, ctx, bars):
        rng = np.random.default_rng(self.seed)
        n = len(bars.close)
        self._acts = rng.random(n) < self.density
        self._sell = (rng.random(n) < self.sell_share).tolist()
        self._size = rng.uniform(0.05, 3.0, n).tolist()

    def signals(self, bars):
        return self._acts

    def on_bar(self, ctx, bar):
        if not self._acts[bar.idx]:
            return None
        if self._sell[bar.idx]:
            held = ctx.position + ctx.open_order_qty
            return [Intent("sell", held, "exit")] if held > 0 else None
        return [Intent("buy", self.order_usd * self._size[bar.idx] / bar.close, "entry")]
'''

STRATEGIES = ("sma_crossover", "mean_reversion", "buy_and_hold", "strategies/random_signals.py:RandomSignals")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Scratch:
    scratch = Scratch(tmp_path_factory.mktemp("fast-path") / "ws")
    target = scratch.workspace.root / "strategies" / "random_signals.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(RANDOM_SIGNALS)
    return scratch


def _random_params(order_usd: float) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "seed": st.integers(0, 2**16), "density": st.sampled_from((0.05, 0.2, 0.5, 1.0)),
        "order_usd": st.just(order_usd), "sell_share": st.sampled_from((0.0, 0.3, 0.6))})


@st.composite
def fast_path_cases(draw: Any) -> tuple[Case, str, int]:
    strategy = draw(st.sampled_from(STRATEGIES))
    params = _random_params(draw(st.sampled_from((1e3, 1e4, 1e5, 1e6)))) if strategy.endswith("RandomSignals") else None
    case = draw(cases(strategy=strategy, params=params, min_bars=2, max_bars=draw(st.sampled_from((60, 200))),
                      policies=("warn",)))
    ssot = copy.deepcopy(case.ssot)
    if draw(st.integers(0, 2)) == 0:  # a tight daily loss limit: halts inside long spans
        ssot["risk"]["daily_loss_limit_usd"] = ssot["run"]["starting_cash_usd"] * draw(st.sampled_from((2e-4, 2e-3)))
    # flag checks every few bars split the spans; 1 is the live cadence (every bar, per-bar path)
    ssot["risk"]["emergency_check_bars"] = draw(st.sampled_from((1024, 2, 7, 33)))
    if draw(st.integers(0, 3)) == 0:
        ssot["account"] = {"type": "margin", "max_leverage": draw(st.sampled_from((1.0, 2.5, 10.0)))}
    # numpy marks spans from SPAN_NUMPY_MIN bars on, a plain loop the shorter ones: draw both
    return Case(case.dataset, ssot), draw(st.sampled_from(("memory", "files"))), draw(st.sampled_from((17, 1)))


def _run(scratch: Scratch, case: Case, *, force_per_bar: bool, evidence: str) -> tuple[Any, ...]:
    ssot_path = scratch.stage(case)
    request = RunRequest(workspace=scratch.workspace, ssot_path=ssot_path, run_id="case",
                         overwrite=True, evidence=evidence, force_per_bar=force_per_bar)
    try:
        result = execute_run(prepare_run(request))
    except TreasureError as exc:
        return ("refused", exc.code, exc.message)
    return ("ran", result.status, result.exit_code, *_evidence(scratch.workspace, result))


def _evidence(ws: Workspace, result: RunResult) -> tuple[Any, ...]:
    if result.log_lines is not None:
        assert result.report_bytes is not None and result.equity_bytes is not None
        reports, equity = result.report_bytes, result.equity_bytes
    else:
        folder = ws.run_reports(result.run_id)
        reports = {name: (folder / name).read_bytes() for name in ("court_report.json", "eqs_report.json")}
        equity = (folder / "equity.npy").read_bytes()
    court = orjson.loads(reports["court_report.json"])
    court.pop("timing", None)
    return result.log_bytes, court, reports["eqs_report.json"], equity


@given(drawn=fast_path_cases())
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
def test_fast_path_and_per_bar_path_leave_the_same_evidence(scratch: Scratch, drawn: tuple[Case, str, int]) -> None:
    case, evidence, numpy_min = drawn
    default = loop.SPAN_NUMPY_MIN
    loop.SPAN_NUMPY_MIN = numpy_min
    try:
        fast = _run(scratch, case, force_per_bar=False, evidence=evidence)
    finally:
        loop.SPAN_NUMPY_MIN = default
    slow = _run(scratch, case, force_per_bar=True, evidence=evidence)
    assert fast[:3] == slow[:3]
    for name, a, b in zip(("event log", "court report", "eqs report", "equity.npy"), fast[3:], slow[3:]):
        assert a == b, f"{name} differs between the fast and per-bar paths"


# --------------------------------------------------------------------------------------------
# targeted cases: a daily-loss breach deep inside a long span, a flag that appears mid-run


def _workspace_with(tmp_path: Path, close: list[float], ssot_edit: Any) -> Workspace:
    from treasure.data import Bars, bars_to_csv
    from treasure.workspace import init_workspace, pin_dataset

    ws = init_workspace(tmp_path / "ws")
    n = len(close)
    c = np.array(close, dtype=np.float64)
    bars = Bars(t_ms=1_767_225_600_000 + 60_000 * np.arange(n, dtype=np.int64), open=c, high=c * 1.001,
                low=c * 0.999, close=c, volume=np.full(n, 1000.0))
    pin_dataset(ws, bars_to_csv(bars), "data/falling.csv", interval_ms=60_000)
    ssot = orjson.loads(ws.ssot_path.read_bytes())
    ssot_edit(ssot)
    ws.ssot_path.write_bytes(orjson.dumps(ssot, option=orjson.OPT_INDENT_2))
    return ws


def _both(ws: Workspace) -> tuple[RunResult, RunResult]:
    results = []
    for force in (False, True):
        results.append(execute_run(prepare_run(RunRequest(workspace=ws, run_id="t", evidence="memory",
                                                         force_per_bar=force))))
    return results[0], results[1]


def _halt(result: RunResult) -> dict[str, Any]:
    events = [orjson.loads(line) for line in result.log_lines or ()]
    return next(e["payload"] for e in events if e["event_type"] == "halt")


@pytest.mark.parametrize("numpy_min", [17, 10_000])
def test_a_daily_loss_breach_inside_a_long_span_halts_at_the_same_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     numpy_min: int) -> None:
    monkeypatch.setattr(loop, "SPAN_NUMPY_MIN", numpy_min)
    close = [100.0] * 5 + [100.0 * 0.999 ** k for k in range(1, 300)]

    def edit(ssot: dict[str, Any]) -> None:
        ssot["strategy"] = {"name": "buy_and_hold", "params": {"order_usd": 50_000.0}}
        ssot["risk"].update(max_position_size_usd=1e9, daily_loss_limit_usd=2_000.0)
        ssot["execution"].update(partial_fill_prob=0.0)

    fast, slow = _both(_workspace_with(tmp_path, close, edit))
    assert fast.status == slow.status == "halted"
    assert fast.log_lines == slow.log_lines and fast.equity_bytes == slow.equity_bytes
    halt_bar = _halt(fast)["bar_idx"]
    assert 40 < halt_bar < 200  # deep inside the span that follows the fill at bar 1


def test_a_flag_that_appears_mid_run_halts_both_paths_at_the_same_check(tmp_path: Path) -> None:
    flagger = tmp_path / "ws" / "strategies" / "flagger.py"

    def edit(ssot: dict[str, Any]) -> None:
        ssot["strategy"] = {"name": "strategies/flagger.py:Flagger", "params": {}}
        ssot["risk"].update(emergency_check_bars=50)

    ws = _workspace_with(tmp_path, [100.0 + (k % 7) for k in range(400)], edit)
    flagger.parent.mkdir(parents=True, exist_ok=True)
    flagger.write_text(
        "from treasure.strategy import Intent, Strategy\n\n\n"
        "class Flagger(Strategy):\n"
        "    name = 'flagger'\n\n"
        "    def signals(self, bars):\n"
        "        return [3]\n\n"
        "    def on_bar(self, ctx, bar):\n"
        "        return [Intent('buy', 1.0, 'once')] if bar.idx == 3 else None\n\n"
        "    def on_fill(self, ctx, fill):\n"
        f"        open({str(ws.emergency_flag)!r}, 'w').write('{{}}')\n")
    results = []
    for force in (False, True):
        ws.emergency_flag.unlink(missing_ok=True)
        results.append(execute_run(prepare_run(RunRequest(workspace=ws, run_id="t", evidence="memory",
                                                         force_per_bar=force))))
    fast, slow = results
    assert fast.status == slow.status == "halted"
    assert fast.log_lines == slow.log_lines
    assert _halt(fast)["bar_idx"] == 50  # the first check after the fill at bar 4


def test_a_malformed_schedule_is_a_coded_strategy_error(tmp_path: Path) -> None:
    target = tmp_path / "ws" / "strategies" / "bad.py"

    def edit(ssot: dict[str, Any]) -> None:
        ssot["strategy"] = {"name": "strategies/bad.py:Bad", "params": {}}

    ws = _workspace_with(tmp_path, [100.0] * 20, edit)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("from treasure.strategy import Strategy\n\n\nclass Bad(Strategy):\n    name = 'bad'\n\n"
                      "    def signals(self, bars):\n        return [0, 99]\n")
    result = execute_run(prepare_run(RunRequest(workspace=ws, run_id="t", evidence="memory")))
    assert (result.status, result.error.code if result.error else None) == ("error", "STRATEGY_INVALID")
