"""Issue 16's "Done when", run by hand (not in the suite): a 200-point sweep on a 2-worker
LocalCluster with one worker SIGKILLed mid-way gives a report byte-identical to the serial one.

The sweep: ``sma_crossover`` fast 5..14 x slow 20..60 step 10 x seeds 1..4 (200 points) over the
first BARS bars of the default dataset. Each mode runs in its own fresh workspace.

Usage::

    python bench/sweep_chaos.py                 # 200 points, 2000 bars, kill after 60 results
    python bench/sweep_chaos.py --kill-after 100 --bars 1000 --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from treasure.sweep import ExecutorOptions, run_sweep
from treasure.workspace import Workspace, init_workspace


def make_workspace(root: Path, bars: int) -> Path:
    ws = init_workspace(root)
    lines = (ws.root / "fixtures/data/default_bars.csv").read_bytes().splitlines(keepends=True)[:bars + 1]
    data = b"".join(lines)
    (ws.root / "data").mkdir(exist_ok=True)
    (ws.root / "data/small.csv").write_bytes(data)
    spec = {"version": 1, "name": "chaos200",
            "strategies": [{"name": "sma_crossover",
                            "params": {"fast": {"start": 5, "stop": 14, "step": 1},
                                       "slow": {"start": 20, "stop": 60, "step": 10}}}],
            "datasets": [{"path": "data/small.csv", "sha256": hashlib.sha256(data).hexdigest()}],
            "seeds": {"start": 1, "stop": 4, "step": 1},
            "heatmap": {"x": "fast", "y": "slow"}}
    path = ws.root / "spec/sweep.chaos200.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-after", type=int, default=60, metavar="N", help="kill a busy worker after N results")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", metavar="DIR", help="keep both workspaces here (to diff them)")
    args = parser.parse_args(argv)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sweep-chaos-"))
    killed: list[dict[str, Any]] = []

    def chaos(client: Any, done: int) -> None:
        if done == args.kill_after and not killed:
            busy = client.processing()
            victim = sorted(w for w, keys in busy.items() if keys)[0] if any(busy.values()) else sorted(busy)[0]
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
            killed.append({"worker": victim, "pid": pid, "in_flight": sorted(map(str, busy[victim])), "after": done})

    result: dict[str, Any] = {"bars": args.bars, "workers": args.workers}
    reports: dict[str, bytes] = {}
    try:
        for mode in ("serial", "dask"):
            spec = make_workspace(base / mode, args.bars)
            options = ExecutorOptions(serial=mode == "serial", n_workers=args.workers,
                                      chaos=chaos if mode == "dask" else None)
            t0 = time.perf_counter()
            outcome = run_sweep(Workspace.at(base / mode), spec, options)
            result[f"{mode}_s"] = round(time.perf_counter() - t0, 1)
            reports[mode] = outcome.report_path.read_bytes()
            result["points"] = outcome.report["points"]
            result[f"{mode}_by_status"] = outcome.report["by_status"]
            if mode == "dask":
                result["lost_workers"] = options.lost_workers
            print(f"{mode}: {result[f'{mode}_s']} s", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    result["killed"] = killed
    result["report_sha256"] = hashlib.sha256(reports["serial"]).hexdigest()
    result["report_bytes"] = len(reports["serial"])
    result["equal"] = reports["serial"] == reports["dask"]
    ok = result["equal"] and bool(killed) and killed[0]["worker"] in result["lost_workers"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<18} {value}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
