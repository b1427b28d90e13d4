"""Hunt throughput: checked cases per second on 300-bar cases, beside the per-run fixed cost and a floor.

Run:  .venv/bin/python bench/hunt_bench.py [--cases 40] [--bars 300] [--evidence files|memory|both]

Prints, for the same pre-drawn cases (hypothesis, seed 0, every case exactly ``--bars`` bars):

* ``run``          one engine run of a case, evidence read back (what the hunt's executor does);
* ``checked``      one case as ``treasure hunt --determinism inprocess`` checks it: two runs and every
                   invariant (coded_errors .. determinism); this is the hunt's cases/s;
* ``fixed cost``   a 2-bar run: what a run costs before it has any bars to process;
* ``plain loop``   the floor: the same SMA crossover and accounting over the bars in a plain Python
                   loop, no framework, no evidence.

``--evidence files`` runs the engine as the hunt always did (event log, reports, equity.npy written to
a tmpfs scratch workspace, then read back); ``memory`` keeps the evidence in memory (no files, no fsync;
events still hashed and checked), where the engine supports it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from treasure.hunt.case import Case


def draw_cases(n: int, bars: int, strategy: str) -> list[Case]:
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st

    from treasure.hunt.strategies import cases

    out: list[Case] = []
    generated = cases(strategy=strategy, min_bars=bars, max_bars=bars, policies=("warn",))

    @seed(0)
    @settings(max_examples=n, database=None, deadline=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def collect(data: Any) -> None:
        if len(out) < n:
            out.append(data.draw(generated))

    collect()
    return out


CLOCK: Callable[[], float] = time.perf_counter


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = CLOCK()
        fn()
        times.append(CLOCK() - t0)
    return statistics.median(times)


def plain_loop(case: Case) -> float:
    """SMA crossover + cash/qty accounting over the bars: what a run must do at least."""
    close = case.dataset.bars.close.tolist()
    params = case.ssot["strategy"]["params"]
    fast, slow, order_usd = int(params.get("fast", 10)), int(params.get("slow", 30)), float(params.get("order_usd", 1e3))
    cash, qty, fs, ss = 1e6, 0.0, 0.0, 0.0
    equity = []
    for i, c in enumerate(close):
        fs += c - (close[i - fast] if i >= fast else 0.0)
        ss += c - (close[i - slow] if i >= slow else 0.0)
        if i >= slow:
            above = fs / fast > ss / slow
            if above and qty <= 0:
                q = order_usd / c
                qty += q
                cash -= q * c * 1.0005
            elif not above and qty > 0:
                cash += qty * c * 0.9995
                qty = 0.0
        equity.append(cash + qty * c)
    return equity[-1]


SKIP: tuple[str, ...] = ()


def bench(cases: list[Case], evidence: str) -> dict[str, float]:
    from treasure.hunt.execute import make_executor
    from treasure.hunt.runner import scratch_parent
    from treasure.invariants import check_outcome

    root = Path(tempfile.mkdtemp(prefix="treasure-hunt-bench-", dir=scratch_parent()))
    try:
        try:
            once = make_executor("off", root / "once", evidence=evidence)  # type: ignore[call-arg]
            twice = make_executor("inprocess", root / "twice", evidence=evidence)  # type: ignore[call-arg]
        except TypeError:
            if evidence != "files":
                raise SystemExit(f"this version has no --evidence {evidence}")
            once = make_executor("off", root / "once")
            twice = make_executor("inprocess", root / "twice")
        for case in cases[:3]:  # warm: schemas compiled, modules imported
            first, second = twice.run(case)
            check_outcome(case, first, second, skip=SKIP)
        t0 = CLOCK()
        for case in cases:
            once.run(case, twice=False)
        run_s = (CLOCK() - t0) / len(cases)
        t0 = CLOCK()
        for case in cases:
            first, second = twice.run(case)
            check_outcome(case, first, second, skip=SKIP)
            assert first.status in ("complete", "halted"), first
        checked_s = (CLOCK() - t0) / len(cases)
        tiny = draw_cases(1, 2, cases[0].strategy_ref)[0]
        fixed_s = timed(lambda: once.run(tiny, twice=False), 15)
        once.close()
        twice.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    t0 = CLOCK()
    for case in cases:
        plain_loop(case)
    floor_s = (CLOCK() - t0) / len(cases)
    return {"run": run_s, "checked": checked_s, "fixed": fixed_s, "floor": floor_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--bars", type=int, default=300)
    parser.add_argument("--strategy", default="sma_crossover")
    parser.add_argument("--evidence", choices=("files", "memory", "both"), default="both")
    parser.add_argument("--skip", action="append", default=[], metavar="INVARIANT",
                        help="leave an invariant out (e.g. lookahead, which runs the engine 4 more times a case)")
    parser.add_argument("--cpu", action="store_true", help="time with process CPU time (steadier on a loaded machine)")
    args = parser.parse_args()
    parser_skip = args.skip
    global CLOCK, SKIP
    SKIP = tuple(parser_skip)
    if args.cpu:
        CLOCK = time.process_time
    cases = draw_cases(args.cases, args.bars, args.strategy)
    print(f"{len(cases)} cases of {args.bars} bars, strategy {args.strategy}, every invariant on, "
          f"{'CPU' if args.cpu else 'wall'} time" + (f", skipping {', '.join(SKIP)}" if SKIP else ""))
    print(f"{'evidence':<9} {'run ms':>8} {'checked ms':>11} {'cases/s':>8} {'fixed ms':>9} {'floor ms':>9}")
    for evidence in (("files", "memory") if args.evidence == "both" else (args.evidence,)):
        r = bench(cases, evidence)
        print(f"{evidence:<9} {r['run'] * 1e3:8.2f} {r['checked'] * 1e3:11.2f} {1 / r['checked']:8.1f} "
              f"{r['fixed'] * 1e3:9.2f} {r['floor'] * 1e3:9.3f}")


if __name__ == "__main__":
    main()
