"""Engine throughput: Treasure vs backtrader vs backtesting.py on one SMA(10)/SMA(30) crossover.

Run:  .venv/bin/pip install -e '.[bench]' vectorbt && .venv/bin/python bench/engine_bench.py [--bars 200000]

All engines run the same long-only rule on the same generated bars, in this one process,
one after another: buy ``order_usd`` worth when SMA(10) crosses above SMA(30), sell everything when
it crosses below; market orders fill at the next bar's open; 5 bps commission, no slippage.
Treasure runs with its full evidence on (hash-chained event log, schema validation of every event,
reports, equity curve), once driven by the strategy's signals and once per bar (the same bytes);
vectorbt (numba) is timed on its first call (kernels compiled) and warm. Prints wall and CPU time
(CPU is steadier on a shared machine; ratios are CPU against backtesting.py) and trade counts; trade counts should agree closely (a
crossover on the very last bar can leave one trade open in one engine and not another).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from treasure.data import bars_to_csv, generate_bars
from treasure.engine import RunRequest, run
from treasure.workspace import init_workspace, pin_dataset

FAST, SLOW, ORDER_USD, FEE_BPS = 10, 30, 8000.0, 5.0


def make_workspace(root: Path, n_bars: int) -> tuple[Path, bytes]:
    ws = init_workspace(root / "ws")
    bars = generate_bars(n_bars=n_bars, seed=7, interval_ms=60_000)
    csv = bars_to_csv(bars)
    pin_dataset(ws, csv, "data/bench.csv", interval_ms=60_000)
    ssot = json.loads(ws.ssot_path.read_text())
    ssot["strategy"] = {"name": "sma_crossover", "params": {"fast": FAST, "slow": SLOW, "order_usd": ORDER_USD}}
    ssot["execution"].update(fees={"taker_bps": FEE_BPS, "min_fee_usd": 0}, slippage={"model": "fixed_bps", "bps": 0},
                             partial_fill_prob=0.0)
    ssot["risk"].update(max_position_size_usd=1e9, daily_loss_limit_usd=1e9)
    ws.ssot_path.write_text(json.dumps(ssot, indent=2))
    return ws.root, csv


def bench_treasure(ws_root: Path, *, force_per_bar: bool = False, evidence: str = "files") -> dict:
    """One run with the full evidence (every event hashed, chained and schema-checked; with
    ``files``, the log, reports and equity.npy written and fsynced). ``force_per_bar`` runs every
    bar through Python; otherwise the strategy's signals drive the loop (the same bytes)."""
    from treasure.workspace import Workspace

    request = RunRequest(workspace=Workspace.at(ws_root), run_id="bench", overwrite=True,
                         force_per_bar=force_per_bar, evidence=evidence)
    start, cpu = time.perf_counter(), time.process_time()
    result = run(request)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    m = result.court["metrics"]
    name = "treasure per-bar" if force_per_bar else "treasure signals"
    if evidence != "files":
        name += f" ({evidence})"
    return {"engine": name, "seconds": elapsed, "cpu": cpu, "bars": m["bars"], "trades": m["trades"],
            "final_equity": m["final_equity_usd"], "events": result.court["events"]["total"]}


def bench_vectorbt(csv: bytes, *, first: bool) -> dict:
    """vectorbt (numba-compiled, vectorised, no per-event evidence): the same rule. ``first``
    times the first call in this process (numba compiles its kernels then), else a warm call.
    Orders fill at the next bar's open: signals shifted one bar, priced at the open."""
    import warnings

    import vectorbt as vbt

    df = load_frame(csv)

    def once() -> tuple[int, float]:
        fast = vbt.MA.run(df["Close"], FAST)
        slow = vbt.MA.run(df["Close"], SLOW)
        entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
        exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
        pf = vbt.Portfolio.from_signals(df["Open"], entries, exits, size=ORDER_USD, size_type="value",
                                        fees=FEE_BPS / 10_000, init_cash=100_000.0)
        return int(pf.trades.count()), float(pf.final_value())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not first:
            once()
        start, cpu = time.perf_counter(), time.process_time()
        trades, final = once()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"engine": "vectorbt " + ("first call" if first else "warm"), "seconds": elapsed, "cpu": cpu,
            "bars": len(df), "trades": trades, "final_equity": final, "events": None}


def load_frame(csv: bytes):
    import io

    import pandas as pd

    df = pd.read_csv(io.BytesIO(csv))
    df.index = pd.to_datetime(df["t_ms"], unit="ms")
    return df.rename(columns={"open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"})[
        ["Open", "High", "Low", "Close", "Volume"]]


def bench_backtrader(csv: bytes) -> dict:
    import backtrader as bt

    df = load_frame(csv)
    trades = []

    class Cross(bt.Strategy):
        def __init__(self):
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=FAST), bt.ind.SMA(period=SLOW))

        def next(self):
            if self.cross > 0 and not self.position:
                self.buy(size=ORDER_USD / self.data.close[0])
            elif self.cross < 0 and self.position:
                self.close()

        def notify_trade(self, trade):
            if trade.isclosed:
                trades.append(trade.pnlcomm)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(Cross)
    cerebro.broker.setcash(100_000.0)
    cerebro.broker.setcommission(commission=FEE_BPS / 10_000)
    start, cpu = time.perf_counter(), time.process_time()
    cerebro.run()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"engine": "backtrader", "seconds": elapsed, "cpu": cpu, "bars": len(df), "trades": len(trades),
            "final_equity": cerebro.broker.getvalue(), "events": None}


def bench_backtesting(csv: bytes) -> dict:
    import warnings

    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    df = load_frame(csv)

    def sma(values, n):
        out = np.full(len(values), np.nan)
        c = np.cumsum(np.insert(np.asarray(values, dtype=float), 0, 0.0))
        out[n - 1:] = (c[n:] - c[:-n]) / n
        return out

    class Cross(Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self):
            if crossover(self.fast, self.slow) and not self.position:
                self.buy(size=max(1, int(ORDER_USD / self.data.Close[-1])))
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt_ = Backtest(df, Cross, cash=100_000, commission=FEE_BPS / 10_000, finalize_trades=True)
        start, cpu = time.perf_counter(), time.process_time()
        stats = bt_.run()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"engine": "backtesting.py", "seconds": elapsed, "cpu": cpu, "bars": len(df), "trades": int(stats["# Trades"]),
            "final_equity": float(stats["Equity Final [$]"]), "events": None}


ENGINES = ("treasure", "backtrader", "backtesting", "vectorbt")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--only", choices=ENGINES, action="append")
    parser.add_argument("--memory", action="store_true", help="also run Treasure with in-memory evidence")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="treasure-bench-"))
    try:
        ws_root, csv = make_workspace(tmp, args.bars)
        bench_treasure(ws_root)  # warm: schemas compiled, modules imported (the others get theirs too)
        runners: dict[str, list] = {
            "treasure": [lambda: bench_treasure(ws_root), lambda: bench_treasure(ws_root, force_per_bar=True)]
            + ([lambda: bench_treasure(ws_root, evidence="memory"),
                lambda: bench_treasure(ws_root, force_per_bar=True, evidence="memory")] if args.memory else []),
            "backtrader": [lambda: bench_backtrader(csv)],
            "backtesting": [lambda: bench_backtesting(csv)],
            "vectorbt": [lambda: bench_vectorbt(csv, first=True), lambda: bench_vectorbt(csv, first=False)],
        }
        rows = []
        for name in args.only or ENGINES:
            for runner in runners[name]:
                try:
                    rows.append(runner())
                except ImportError as exc:
                    print(f"skipping {name}: {exc} (pip install -e '.[bench]'; vectorbt: pip install vectorbt)",
                          file=sys.stderr)
                    break
        base = next((r for r in rows if r["engine"] == "backtesting.py"), None)
        print(f"SMA({FAST})/SMA({SLOW}) crossover on {args.bars:,} bars, python {sys.version.split()[0]}")
        print(f"{'engine':<26}{'wall s':>8}{'cpu s':>8}{'bars/s wall':>13}{'bars/s cpu':>12}{'trades':>8}"
              f"{'final equity':>15}{'vs bt.py (cpu)':>16}")
        for r in rows:
            ratio = (base["cpu"] / r["cpu"]) if base else float("nan")
            print(f"{r['engine']:<26}{r['seconds']:>8.3f}{r['cpu']:>8.3f}{r['bars'] / r['seconds']:>13,.0f}"
                  f"{r['bars'] / r['cpu']:>12,.0f}{r['trades']:>8}{r['final_equity']:>15,.2f}{ratio:>15.2f}x")
        treasure_rows = [r for r in rows if r["engine"].startswith("treasure")]
        if treasure_rows:
            print(f"treasure wrote {treasure_rows[0]['events']:,} hash-chained, schema-validated events per run")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
