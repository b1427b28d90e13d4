"""Gate phase2: the engine's accounting invariants over a full run on the default data.

From the evidence of a fresh run (event log, equity curve, reports) and the dataset alone:

* equity = cash + position marked at the bar's close, at every bar: the curve in equity.npy is
  rebuilt from the ``position_updated`` events and the dataset's closes and must match;
* fees and PnL add up: the fills' fees sum (``math.fsum``) to the reports' fees, a replay of the
  fills gives the reported realised PnL, the positions after each fill close the reported number
  of trades, and the final equity equals
  starting cash + realised PnL - fees + the open position's unrealised PnL;
* no fill leaves the position beyond ``risk.max_position_size_usd``;
* every placed order ends in exactly one terminal state (filled, cancelled, rejected);
* the court report's metrics, recomputed from the events with ``treasure.metrics.summarize``,
  equal the report's;
* the default run's canonical reports equal the goldens in fixtures/golden/ (re-record with
  ``--treasure-update-goldens`` after an intended change).

Events carry values rounded to 10 decimals, so money is compared within ``ABS_TOL`` USD: far below
a cent, far above float noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.gate("phase2")

ABS_TOL = 1e-6   # USD, and units for quantities
REL_TOL = 1e-9
RISK_TOL = 1e-9  # |position_usd| <= limit * (1 + RISK_TOL)
SHOWN = 5        # problems listed in a failure message


def close_enough(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _fail(title: str, problems: list[str]) -> None:
    """Fail with the first problem on the first line (the gate summary's reason), then the first few."""
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        listing = "".join(f"\n  {p}" for p in problems[:SHOWN]) if len(problems) > 1 else ""
        tail = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        pytest.fail(f"phase2: {title}: {problems[0]}{more}{listing}{tail}", pytrace=False)


@dataclass
class Evidence:
    """One run's evidence, loaded once per test; every check below reads only this."""

    run: Any
    events: list[dict[str, Any]]

    @cached_property
    def workspace(self) -> Any:
        from pytest_treasure import workspace_of

        return workspace_of(self.run)

    def report(self, name: str) -> dict[str, Any]:
        from treasure.jsonio import read_json

        return read_json(Path(self.run.report_dir) / f"{name}.json")

    @cached_property
    def court(self) -> dict[str, Any]:
        return self.report("court_report")

    @cached_property
    def eqs(self) -> dict[str, Any]:
        return self.report("eqs_report")

    @property
    def curve_path(self) -> Path:
        return Path(self.run.report_dir) / "equity.npy"

    @cached_property
    def curve(self) -> Any:
        import numpy as np

        return np.load(self.curve_path, allow_pickle=False)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event_type"] == event_type]

    @cached_property
    def start(self) -> dict[str, Any]:
        return self.of_type("run_start")[0]["payload"]

    @cached_property
    def dataset(self) -> Any:
        from treasure.data import load_dataset

        recorded = self.start["dataset"]
        path = self.workspace.root / recorded["path"]
        dataset = load_dataset(path, display_path=recorded["path"])
        assert dataset.sha256 == recorded["sha256"], f"{recorded['path']} changed since the run"
        return dataset

    @property
    def starting_cash(self) -> float:
        return float(self.start["starting_cash_usd"])

    @cached_property
    def rebuilt(self) -> tuple[Any, Any, Any]:
        """(qty, cash, equity) at every bar of the curve, from position_updated events + closes."""
        import numpy as np

        updates = self.of_type("position_updated")
        at = np.array([e["payload"]["bar_idx"] for e in updates], dtype=np.int64)
        qty = np.array([0.0] + [e["payload"]["qty"] for e in updates])
        cash = np.array([self.starting_cash] + [e["payload"]["cash"] for e in updates])
        idx = self.curve["bar_idx"]
        pick = np.searchsorted(at, idx, side="right")
        closes = self.dataset.bars.close[idx]
        return qty[pick], cash[pick], cash[pick] + qty[pick] * closes

    @cached_property
    def trade_pnls(self) -> list[float]:
        """Closed trades' PnL (realised less fees), a trade running from flat to flat or to a flip
        of side, segmented on the positions the engine reported after each fill."""
        pnls: list[float] = []
        running, realized, fees, qty = 0.0, 0.0, 0.0, 0.0
        for event in self.of_type("position_updated"):
            p = event["payload"]
            running += (p["realized_pnl"] - realized) - (p["fees_paid"] - fees)
            realized, fees = p["realized_pnl"], p["fees_paid"]
            if p["qty"] == 0.0 or (qty != 0.0 and (qty > 0.0) != (p["qty"] > 0.0)):
                pnls.append(running)
                running = 0.0
            qty = p["qty"]
        return pnls

    @cached_property
    def replay(self) -> Any:
        """The portfolio after replaying every order_filled event in order."""
        from treasure.execution.messages import Fill
        from treasure.portfolio import Portfolio

        portfolio = Portfolio(cash=self.starting_cash)
        for event in self.of_type("order_filled"):
            p = event["payload"]
            portfolio.apply(Fill(p["order_id"], p["side"], p["fill_qty"], p["price"], p["fee"], p["bar_idx"],
                                 event["ts_ms"]))
        return portfolio


@pytest.fixture
def evidence(treasure_run, event_log) -> Evidence:
    return Evidence(treasure_run, event_log)


def test_run_completes_over_the_whole_dataset(evidence):
    court, end = evidence.court, evidence.of_type("run_end")
    problems = []
    if court["status"] != "complete":
        problems.append(f"court_report.json field status: {court['status']!r} (reason {court['reason']!r}), "
                        "expected 'complete' on the default data")
    if len(end) != 1:
        problems.append(f"the event log holds {len(end)} run_end events, expected exactly 1")
    else:
        used = len(evidence.dataset.bars) - len(evidence.dataset.duplicates)
        if end[0]["payload"]["bars_processed"] != used:
            problems.append(f"run_end field payload.bars_processed: {end[0]['payload']['bars_processed']}, "
                            f"expected {used} (dataset bars less duplicates)")
    _fail("full run", problems)


def test_equity_is_cash_plus_marked_position_at_every_bar(evidence):
    import numpy as np

    curve, court = evidence.curve, evidence.court
    shown = "equity.npy"
    problems: list[str] = []
    from treasure.digest import file_sha256

    digest = file_sha256(evidence.curve_path)
    if digest != court["evidence"]["equity_curve_sha256"]:
        problems.append(f"{shown} hashes to {digest[:16]}…, but court_report.json field "
                        f"evidence.equity_curve_sha256 says {court['evidence']['equity_curve_sha256'][:16]}…")
    bars = evidence.dataset.bars
    idx = curve["bar_idx"]
    for column, truth in (("t_ms", bars.t_ms[idx]), ("close", bars.close[idx])):
        for row in np.flatnonzero(curve[column] != truth)[:SHOWN]:
            problems.append(f"{shown} row {row} (bar {idx[row]}) field {column}: {curve[column][row]!r}, "
                            f"the dataset says {truth[row]!r}")
    qty, cash, equity = evidence.rebuilt
    stated = curve["equity"]
    bad_formula = ~np.isclose(stated, curve["cash"] + curve["qty"] * curve["close"], rtol=REL_TOL, atol=ABS_TOL)
    bad_events = ~np.isclose(stated, equity, rtol=REL_TOL, atol=ABS_TOL)
    for row in np.flatnonzero(bad_formula | bad_events):
        problems.append(
            f"{shown} row {row} (bar {idx[row]}): equity {stated[row]!r} but cash {cash[row]!r} + qty {qty[row]!r} "
            f"x close {bars.close[idx[row]]!r} = {equity[row]!r} (from position_updated events and the dataset)")
    final = float(stated[-1]) if len(stated) else evidence.starting_cash
    if not close_enough(final, court["metrics"]["final_equity_usd"]):
        problems.append(f"court_report.json field metrics.final_equity_usd: {court['metrics']['final_equity_usd']!r} "
                        f"but the curve ends at {final!r}")
    _fail("equity = cash + marked position", problems)


def fees_and_pnl_problems(evidence: Evidence) -> list[str]:
    """Fees, realised PnL, trades and final equity recomputed from the fills, against the reports."""
    fills = evidence.of_type("order_filled")
    metrics, eqs = evidence.court["metrics"], evidence.eqs
    fees = math.fsum(e["payload"]["fee"] for e in fills)
    replay = evidence.replay
    last_close = float(evidence.curve["close"][-1]) if len(evidence.curve) else 0.0
    unrealised = replay.qty * (last_close - replay.avg_price)
    expected_final = evidence.starting_cash + replay.realized_pnl - fees + unrealised
    checks = [
        ("court_report.json field metrics.fees_usd", metrics["fees_usd"], fees, f"fsum of {len(fills)} order_filled fees"),
        ("eqs_report.json field fees.total_usd", eqs["fees"]["total_usd"], fees, f"fsum of {len(fills)} order_filled fees"),
        ("court_report.json field metrics.realized_pnl_usd", metrics["realized_pnl_usd"], replay.realized_pnl,
         "a replay of the fills"),
        ("court_report.json field metrics.final_equity_usd", metrics["final_equity_usd"], expected_final,
         "starting cash + realised PnL - fees + unrealised PnL of the open position"),
        ("court_report.json field metrics.total_return", metrics["total_return"],
         expected_final / evidence.starting_cash - 1.0, "final equity / starting cash - 1"),
    ]
    problems = [f"{where}: {stated!r}, but {how} gives {computed!r}"
                for where, stated, computed, how in checks if not close_enough(stated, computed)]
    if metrics["trades"] != len(evidence.trade_pnls):
        problems.append(f"court_report.json field metrics.trades: {metrics['trades']}, but the positions after "
                        f"each fill close {len(evidence.trade_pnls)} trades")
    updates = evidence.of_type("position_updated")
    if updates:
        last = updates[-1]["payload"]
        for field, computed in (("fees_paid", fees), ("realized_pnl", replay.realized_pnl), ("qty", replay.qty)):
            if not close_enough(last[field], computed):
                problems.append(f"last position_updated (seq {updates[-1]['seq']}) field payload.{field}: "
                                f"{last[field]!r}, but the fills give {computed!r}")
    return problems


def test_fees_and_pnl_add_up(evidence):
    _fail("fees and PnL", fees_and_pnl_problems(evidence))


def test_every_recorded_runs_accounting_adds_up(treasure_workspace, gate_note):
    """Every run of the workspace, not only the latest: its log (wherever it is: logs/events/ or an
    archive) is verified and its fills replayed against its own reports. A log re-chained after an
    edit (a fill price halved, every hash recomputed, the court report's last_hash edited to match)
    passes the chain checks but not this one."""
    from types import SimpleNamespace

    from treasure.contracts import Contracts
    from treasure.errors import TreasureError
    from treasure.eventlog import verify_run
    from treasure.logfiles import locate

    ws = treasure_workspace
    runs_dir = ws.reports_dir / "runs"
    run_ids = sorted(p.name for p in runs_dir.iterdir() if (p / "court_report.json").is_file()
                     and (p / "eqs_report.json").is_file() and (p / "equity.npy").is_file()) \
        if runs_dir.is_dir() else []
    problems: list[str] = []
    checked = 0
    for run_id in run_ids:
        found = locate(ws, run_id)
        if not found.segments:
            continue  # no log at all: e2 and the events gate say so
        events: list[dict[str, Any]] = []
        try:
            verify_run(found, Contracts(ws.truth_dir), ws=ws, collect=events)
        except TreasureError as exc:
            problems.append(f"run {run_id}: its log does not verify ({exc.code}: {exc.message})")
            continue
        if not any(e["event_type"] == "run_start" for e in events):
            continue  # not an engine run (e.g. a recon log)
        evidence = Evidence(SimpleNamespace(run_id=run_id, report_dir=runs_dir / run_id), events)
        problems.extend(f"run {run_id}: {problem}" for problem in fees_and_pnl_problems(evidence))
        checked += 1
    gate_note(f"accounting recomputed from the logs of {checked} recorded run(s)")
    _fail("recorded runs' fees and PnL", problems)


def test_no_fill_beyond_the_risk_limits(evidence):
    limit = float(evidence.start["ssot"]["risk"]["max_position_size_usd"])
    cap = limit * (1.0 + RISK_TOL)
    problems = []
    last_fill: dict[str, Any] | None = None
    for event in evidence.events:
        if event["event_type"] == "order_filled":
            last_fill = event
        elif event["event_type"] == "position_updated":
            p = event["payload"]
            marked = abs(p["qty"]) * last_fill["payload"]["price"] if last_fill else abs(p["position_usd"])
            worst = max(abs(p["position_usd"]), marked)
            if worst > cap:
                problems.append(f"position_updated seq {event['seq']} (bar {p['bar_idx']}): |position| "
                                f"{worst:.6f} USD > risk.max_position_size_usd {limit:g}")
    _fail("risk limits", problems)


def test_every_order_ends_in_exactly_one_terminal_state(evidence):
    placed: dict[str, dict[str, Any]] = {}
    filled: dict[str, float] = {}
    ends: dict[str, list[str]] = {}
    for event in evidence.events:
        kind, p = event["event_type"], event["payload"]
        if kind == "order_placed":
            placed[p["order_id"]] = event
        elif kind == "order_filled":
            filled[p["order_id"]] = filled.get(p["order_id"], 0.0) + p["fill_qty"]
            if p["status"] == "filled":
                ends.setdefault(p["order_id"], []).append(f"filled (seq {event['seq']})")
        elif kind in ("order_cancelled", "order_rejected") and p["order_id"] in placed:
            ends.setdefault(p["order_id"], []).append(f"{kind[len('order_'):]} (seq {event['seq']})")
    problems = []
    for order_id, event in placed.items():
        states = ends.get(order_id, [])
        where = f"order {order_id} (order_placed seq {event['seq']}, bar {event['payload']['bar_idx']})"
        if not states:
            problems.append(f"{where}: no terminal state (no filled, cancelled or rejected event); "
                            f"{filled.get(order_id, 0.0):g} of {event['payload']['qty']:g} filled")
        elif len(states) > 1:
            problems.append(f"{where}: {len(states)} terminal states: {', '.join(states)}")
        elif states[0].startswith("filled") and not close_enough(filled[order_id], event["payload"]["qty"]):
            problems.append(f"{where}: status filled after {filled[order_id]!r} of {event['payload']['qty']!r}")
    for order_id in sorted(set(filled) - set(placed)):
        problems.append(f"order {order_id}: filled but never placed")
    _fail("order states", problems)


def test_court_metrics_recomputed_from_events_equal_the_report(evidence):
    from treasure.metrics import summarize

    qty, _cash, equity = evidence.rebuilt
    replay = evidence.replay
    loaded = evidence.of_type("dataset_loaded")[0]["payload"]
    from treasure.data.calendar import annualization_for

    yearly = annualization_for(evidence.of_type("run_start")[0]["payload"]["ssot"], loaded["interval_ms"],
                               loaded["first_t_ms"], loaded["last_t_ms"])
    recomputed = summarize(equity=equity, qty=qty, starting_cash=evidence.starting_cash,
                           interval_ms=loaded["interval_ms"], trade_pnls=evidence.trade_pnls,
                           fees=replay.fees_paid, realized_pnl=replay.realized_pnl,
                           orders=len(evidence.of_type("order_placed")), fills=len(evidence.of_type("order_filled")),
                           annualization=yearly)
    stated = evidence.court["metrics"]
    problems = []
    for key in sorted(set(stated) | set(recomputed)):
        a, b = stated.get(key), recomputed.get(key)
        if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) \
                or not isinstance(b, (int, float)):
            same = a == b
        elif isinstance(a, int) and isinstance(b, int):
            same = a == b
        else:
            same = close_enough(float(a), float(b))
        if not same:
            problems.append(f"court_report.json field metrics.{key}: {a!r}, recomputed from the events {b!r}")
    _fail("court metrics", problems)


def _golden_inputs(court: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in court["inputs"].items() if k != "package_version"}


@pytest.mark.parametrize("report", ["court_report", "eqs_report"])
def test_default_run_reports_equal_the_goldens(evidence, canonical, report):
    from treasure.jsonio import read_json

    document = evidence.report(report)
    golden = canonical.golden_path("default_court_report")
    if golden.is_file() and not canonical.update_goldens:
        recorded = read_json(golden)
        if _golden_inputs(recorded) != _golden_inputs(evidence.court):
            pytest.skip(f"{canonical.workspace.relative(golden)} was recorded for other inputs (SSOT, dataset, "
                        "seed or strategy); re-record with --treasure-update-goldens to pin this workspace's")
    canonical.assert_golden(f"default_{report}", document, schema=report, drop=["inputs.package_version"])
