"""Shared helpers of the store and replay tests (no tests here): small real runs and synthetic
sealed event streams.

Real runs use a generated dataset (``treasure.data.generate_bars``) and ``sma_crossover`` with
short windows, so a run of a few thousand bars has several thousand events (more than one 2048
event batch) yet takes well under a second. They are made once per test process and shared:
tests that modify evidence copy it first.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from treasure.data import bars_to_csv, generate_bars
from treasure.data import synth
from treasure.engine import RunRequest, RunResult, run
from treasure.events import EventBus, MemorySink
from treasure.workspace import Workspace, init_workspace, pin_dataset

DENSE = {"name": "sma_crossover", "params": {"fast": 2, "slow": 5, "order_usd": 8000}}
RUN_SEEDS = {"r1": 1, "r2": 2, "r3": 3}


def make_workspace(root: Path, *, n_bars: int = 2500, seed: int = 11, strategy: dict[str, Any] = DENSE,
                   persistence: dict[str, Any] | None = None) -> Workspace:
    """A fresh workspace whose SSOT pins a generated dataset and the given strategy."""
    ws = init_workspace(root)
    pin_dataset(ws, bars_to_csv(generate_bars(n_bars=n_bars, seed=seed)), f"fixtures/data/gen_{n_bars}_{seed}.csv",
                interval_ms=synth.DEFAULT_INTERVAL_MS)
    ssot = json.loads(ws.ssot_path.read_text())
    ssot["strategy"] = strategy
    if persistence is not None:
        ssot["persistence"] = persistence
    ws.ssot_path.write_text(json.dumps(ssot, indent=2))
    return ws


@dataclass
class RunSet:
    """A workspace holding runs r1, r2, r3 (same data, seeds 1..3): read only."""

    ws: Workspace
    results: dict[str, RunResult]

    def log(self, run_id: str) -> Path:
        return self.ws.event_log(run_id)

    def reports(self, run_id: str) -> Path:
        return self.ws.run_reports(run_id)


_CACHE: dict[str, RunSet] = {}


def reference_runs(tmp_path_factory: pytest.TempPathFactory) -> RunSet:
    """The shared :class:`RunSet`, made on first use in this process."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _CACHE:
        ws = make_workspace(tmp_path_factory.mktemp("store_runs") / "ws")
        results = {rid: run(RunRequest(workspace=ws, run_id=rid, seed=seed)) for rid, seed in RUN_SEEDS.items()}
        _CACHE[key] = RunSet(ws, results)
    return _CACHE[key]


def copy_run(runs: RunSet, run_id: str, dest: Path) -> tuple[Path, Path]:
    """Copy a run's log and reports folder under ``dest``; return (log, reports dir)."""
    dest.mkdir(parents=True, exist_ok=True)
    log = dest / f"run_{run_id}.jsonl"
    shutil.copy2(runs.log(run_id), log)
    reports = dest / "reports"
    shutil.copytree(runs.reports(run_id), reports)
    return log, reports


# synthetic sealed streams --------------------------------------------------------------------

@dataclass
class Sealed:
    run_id: str
    events: list[dict[str, Any]]
    lines: list[bytes]
    court: dict[str, Any]
    eqs: dict[str, Any]


def sealed_run(run_id: str, *, orders: int = 3, seed: int = 0, status: str = "complete",
               after_end: int = 0) -> Sealed:
    """A small hash-chained run built with the real EventBus: run_start, per order an
    order_placed + order_filled + position_updated, run_end; plus minimal matching reports.
    ``after_end`` appends that many strategy_log events after run_end (an impossible log)."""
    sink = MemorySink()
    bus = EventBus(run_id, [sink])
    t = 1_767_225_600_000 + seed * 1000
    bus.emit(t, "SYS", "run_start", "INFO", {
        "seed": seed, "ssot_sha256": "a" * 64, "ssot": {"version": 1},
        "dataset": {"path": "x.csv", "sha256": "b" * 64, "pinned_sha256": "b" * 64, "override": False},
        "strategy": {"name": "s", "ref": "s", "params": {}, "source_sha256": "c" * 64}, "adapter": "sim"})
    qty = 0.0
    for i in range(orders):
        t += 300_000
        oid = f"o{i + 1:06d}"
        price = 100.0 + seed + i * 0.5
        bus.emit(t, "EXEC", "order_placed", "INFO", {"order_id": oid, "bar_idx": i, "side": "buy", "qty": 1.5,
                                                      "requested_qty": 1.5, "ref_price": price, "type": "market",
                                                      "adapter": "sim"})
        bus.emit(t, "EXEC", "order_filled", "INFO", {"order_id": oid, "bar_idx": i, "side": "buy", "fill_qty": 1.5,
                                                      "price": price + 0.01, "fee": 0.07, "remaining_qty": 0,
                                                      "status": "filled", "slippage_bps": 1, "latency_bars": 1})
        qty += 1.5
        bus.emit(t, "EXEC", "position_updated", "INFO", {"bar_idx": i, "qty": qty, "avg_price": price,
                                                          "position_usd": qty * price, "cash": 1000.0 - qty * price,
                                                          "realized_pnl": 0, "fees_paid": 0.07 * (i + 1),
                                                          "equity": 1000.0})
    if status in ("complete", "halted", "degraded"):
        bus.emit(t, "SYS", "run_end", "INFO", {"status": status, "reason": None})
    for i in range(after_end):
        bus.emit(t, "STRAT", "strategy_log", "INFO", {"message": f"late {i}"})
    bus.flush(durable=True)
    court = {"run_id": run_id, "status": status, "reason": None,
             "events": {"total": bus.seq, "last_hash": bus.prev, "by_category": dict(sorted(bus.by_category.items())),
                        "by_level": dict(sorted(Counter(bus.by_level).items()))},
             "metrics": {"orders": orders, "fills": orders}, "timing": {"wall_ms": 1.0}}
    eqs = {"run_id": run_id, "orders": orders, "fills": orders}
    return Sealed(run_id, sink.events, sink.lines, court, eqs)
