"""Stateful: the engine driven bar by bar, with orders, operator halts and restarts interleaved.

The engine runs a whole dataset per call, so "bar by bar" is a growing dataset: every step that
adds bars runs the engine over all bars so far (stored to SQLite as it goes, like ``treasure run
--db``). After every run all invariants are checked, and the run must be a prefix-consistent
extension of the previous one: the events and equity rows of the shorter run, up to its
end-of-data epilogue, are exactly the first events and rows of the longer one (the puppet
strategy decides by bar index only, so nothing may change in hindsight). Operator actions: the
emergency flag raised mid-run (the strategy writes it at a bar, as ``treasure halt`` would land
while a run is in progress: the engine must halt at the next bar), raised between runs (the next
run must halt before its first bar), and cleared. A restart replays the last run from the DB and
from the JSONL log (``treasure.replay``) and must reproduce it exactly.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pytest_treasure import strategies as ts
from pytest_treasure.invariants import check_outcome
from treasure.compare import compare_event_logs
from treasure.data import Bars, bars_to_csv
from treasure.data.dataset import find_duplicates, find_gaps
from treasure.engine import RunRequest
from treasure.errors import TreasureError
from treasure.hunt.case import DATASET_PATH, Case, GeneratedDataset
from treasure.hunt.runner import Evidence, Outcome, Scratch
from treasure.hunt.scripted import REF as SCRIPTED
from treasure.replay import replay
from treasure.store import check_store
from treasure.store.run_sink import run_stored

INTERVAL = 3_600_000  # hourly bars: a few steps cross UTC midnight, so day ends and loss days happen
RUN_ID = "step"
END_OF_RUN = ("run_end", "day_end")


def _epilogue(event: dict[str, Any]) -> bool:
    return event["event_type"] in END_OF_RUN or (
        event["event_type"] == "order_cancelled" and event["payload"]["reason"] == "end_of_data")


def assert_prefix(shorter: Evidence, longer: Evidence) -> None:
    """The shorter run, up to its end-of-data epilogue, is the start of the longer one."""
    head = list(shorter.events)
    while head and _epilogue(head[-1]):
        head.pop()
    head = head[2:]  # run_start and dataset_loaded name the dataset, which grew
    tail = longer.events[2:2 + len(head)]
    drop = ["hash", "prev"]
    diff = compare_event_logs(head, tail, drop=drop)
    assert diff.equal, f"the run over more bars rewrote history:\n{diff.summary}"
    rows = shorter.equity
    assert np.array_equal(rows, longer.equity[: len(rows)]), "equity rows of the shorter run changed"


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="treasure-stateful-"))
        self.scratch = Scratch(self.tmp / "ws")
        self.ws = self.scratch.workspace
        self.db = self.tmp / "treasure.db"
        self.columns: list[list[Any]] = [[] for _ in range(6)]
        self.script: dict[str, list[list[Any]]] = {}
        self.flag_at: int | None = None
        self.ssot: dict[str, Any] = {}
        self.previous: Evidence | None = None
        self.last: tuple[Case, Outcome, bool] | None = None
        self.runs = 0

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    # inputs -----------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.columns[0])

    def _case(self) -> Case:
        t, o, h, lo, c, v = self.columns
        bars = Bars(t, o, h, lo, c, v)
        csv = bars_to_csv(bars)
        ds = GeneratedDataset(bars=bars, csv=csv, interval_ms=INTERVAL,
                              gaps=tuple(g.bar_idx for g in find_gaps(bars.t_ms, INTERVAL)),
                              duplicates=tuple(d.bar_idx for d in find_duplicates(bars.t_ms)))
        params = {"intents": self.script, "flag_at": self.flag_at, "flag_path": str(self.ws.emergency_flag)}
        # the flag is looked for on every bar here (a live-paced cadence), so "halts at the next bar"
        # stays exact; the simulated default (every risk.emergency_check_bars) has its own tests
        doc = {**self.ssot, "dataset": {**self.ssot["dataset"], "sha256": ds.sha256},
               "strategy": {"name": SCRIPTED, "params": params},
               "risk": {**self.ssot["risk"], "emergency_check_bars": 1}}
        return Case(ds, doc)

    def _append(self, more: GeneratedDataset, skipped: int) -> None:
        """Append ``more`` after ``skipped`` missing bars, rescaled to open where the series closed
        (rounding to the CSV grid is monotonic, so the OHLC rules survive it)."""
        cols = more.bars.columns()
        start = (self.columns[0][-1] + INTERVAL * (1 + skipped)) if self.n else int(cols["t_ms"][0])
        factor = self.columns[4][-1] / float(cols["open"][0]) if self.n else 1.0
        shift = start - int(cols["t_ms"][0])
        self.columns[0].extend(int(x) + shift for x in cols["t_ms"].tolist())
        for j, name in enumerate(("open", "high", "low", "close"), start=1):
            self.columns[j].extend(max(round(x * factor, 4), 0.0001) for x in cols[name].tolist())
        self.columns[5].extend(cols["volume"].tolist())

    # running ----------------------------------------------------------------------------------
    def _run(self) -> None:
        case = self._case()
        flag_before = self.ws.emergency_flag.exists()
        ssot_path = self.scratch.stage(case, clear_flag=False)
        request = RunRequest(workspace=self.ws, ssot_path=ssot_path, run_id=RUN_ID, overwrite=True,
                             validate_events=False)
        try:
            result, stored = run_stored(request, db_path=self.db)
        except TreasureError as exc:  # the engine must not raise once a run started: clean_run says so
            check_outcome(case, Outcome("raised", error=exc.to_dict()))
            raise
        assert stored is not None and stored.error is None, stored
        outcome = Outcome(result.status, error=result.error.to_dict() if result.error else None,
                          evidence=Evidence.load(self.ws, RUN_ID))
        check_outcome(case, outcome)
        self._check_halts(case, outcome, flag_before)
        if self.previous is not None and not flag_before:
            assert_prefix(self.previous, outcome.evidence)
        self.previous = None if flag_before else outcome.evidence
        self.last = (case, outcome, flag_before)
        self.runs += 1

    def _check_halts(self, case: Case, outcome: Outcome, flag_before: bool) -> None:
        ev = outcome.evidence
        halts = ev.of_type("halt")
        if flag_before:
            assert outcome.status == "halted" and halts[0]["payload"]["reason"] == "emergency_flag"
            assert ev.court["metrics"]["bars"] == 0 and not ev.of_type("order_placed", "intent_emitted")
            return
        dups = set(case.dataset.duplicates)
        later = [i for i in range(self.flag_at + 1, self.n) if i not in dups] if self.flag_at is not None else []
        loss_halt = next((h for h in halts if h["payload"]["reason"] == "daily_loss_limit"), None)
        if later and (loss_halt is None or loss_halt["payload"]["bar_idx"] > self.flag_at):
            assert outcome.status == "halted", "the flag raised mid-run did not halt the run"
            # at the next bar, or already at the flag's own bar when its on_bar then submitted an
            # order (the flag is checked before every order)
            assert halts[0]["payload"]["reason"] == "emergency_flag"
            assert halts[0]["payload"]["bar_idx"] in (self.flag_at, later[0]), halts[0]["payload"]
        elif loss_halt is None:
            assert outcome.status == "complete" and not halts

    # rules ------------------------------------------------------------------------------------
    @initialize(first=ts.datasets(min_bars=2, max_bars=4, duplicates=1, interval_ms=INTERVAL),
                ssot=ts.ssot_configs(strategy=SCRIPTED, params={}, policies=("warn",)))
    def start(self, first: GeneratedDataset, ssot: dict[str, Any]) -> None:
        ssot["dataset"].update(path=DATASET_PATH, interval_ms=INTERVAL)
        self.ssot = ssot
        self._append(first, 0)
        self._run()

    @rule(more=ts.datasets(min_bars=1, max_bars=4, gaps=1, duplicates=1, interval_ms=INTERVAL),
          skipped=st.integers(0, 30))
    def add_bars(self, more: GeneratedDataset, skipped: int) -> None:
        self._append(more, skipped)
        self._run()

    @rule(orders=st.lists(ts.intents(max_qty=2000), min_size=1, max_size=3))
    def order_at_next_bar(self, orders: list[Any]) -> None:
        self.script.setdefault(str(self.n), []).extend([i.side, i.qty, i.reason] for i in orders)

    @precondition(lambda self: self.flag_at is None)
    @rule()
    def operator_halts_at_next_bar(self) -> None:
        self.flag_at = self.n

    @precondition(lambda self: not self.ws.emergency_flag.exists())
    @rule()
    def operator_halts_now(self) -> None:
        self.ws.emergency_flag.write_text(json.dumps({"status": "EMERGENCY_HALT", "reason": "stateful test"}))
        self._run()

    @precondition(lambda self: self.ws.emergency_flag.exists() or self.flag_at is not None)
    @rule()
    def operator_resumes(self) -> None:
        self.ws.emergency_flag.unlink(missing_ok=True)
        self.flag_at = None
        self.previous = None  # the flag's schedule changed: earlier runs halted where this one won't
        self._run()

    @precondition(lambda self: self.last is not None and self.last[1].status != "halted")
    @rule()
    def restart_from_persistence(self) -> None:
        for source in ("db", "events"):
            result = replay(self.ws, RUN_ID, source=source, db_path=self.db)
            assert result.identical, f"replay from {source} differs: {result.notes} {result.diff_path}"
        report = check_store(self.db)
        assert report.ok, report.render()

    @invariant()
    def the_flag_a_run_halted_on_stays_until_resumed(self) -> None:
        if self.last is None:
            return
        halts = self.last[1].evidence.of_type("halt")
        if halts and halts[0]["payload"]["reason"] == "emergency_flag":
            assert self.ws.emergency_flag.exists(), "the flag the run halted on must stay until resumed"


EngineMachine.TestCase.settings = settings(
    max_examples=max(3, settings().max_examples // 5),
    stateful_step_count=max(6, settings().stateful_step_count // 5),
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestEngineStateful = EngineMachine.TestCase
