"""Benchmark of ``treasure sweep``: N runs of M bars, serially and on a 2-worker Dask LocalCluster.

The sweep is N seeds of the SSOT's ``sma_crossover`` over one generated dataset of M bars. Each mode
runs in its own fresh workspace (nothing reused). Reported: wall time of each mode, the cluster's
start-up alone (the LocalCluster is started, timed, then the sweep runs on it through its scheduler
address), the speed-up (with and without start-up), the per-task overhead of Dask
(``(T_dask_without_startup * workers - T_serial) / N``), evidence bytes per run, and whether the two
reports are byte-identical.

Usage::

    python bench/sweep_bench.py                       # 64 runs x 50k bars (issue 16)
    python bench/sweep_bench.py --runs 8 --bars 5000  # quick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from treasure.data import bars_to_csv, generate_bars
from treasure.sweep import ExecutorOptions, run_sweep
from treasure.workspace import Workspace, init_workspace


def make_workspace(root: Path, runs: int, bars: int, data: bytes) -> Path:
    ws = init_workspace(root)
    (ws.root / "data").mkdir(exist_ok=True)
    (ws.root / "data/bench.csv").write_bytes(data)
    spec = {"version": 1, "name": "bench",
            "strategies": [{"name": "sma_crossover"}],
            "datasets": [{"path": "data/bench.csv", "sha256": hashlib.sha256(data).hexdigest(), "interval_ms": 300000}],
            "seeds": {"start": 1, "stop": runs, "step": 1}}
    path = ws.root / "spec/sweep.bench.json"
    path.write_text(json.dumps(spec))
    return path


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_cpu(cluster: Any) -> float:
    """CPU seconds used so far by the cluster's worker processes (user + system)."""
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        return float(sum(client.run(_cpu_seconds).values()))


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", metavar="DIR", help="keep the workspaces here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    data = bars_to_csv(generate_bars(n_bars=args.bars, seed=7))
    if isinstance(data, str):
        data = data.encode()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    from distributed import LocalCluster

    times: dict[str, float] = {}
    reports: dict[str, bytes] = {}
    sizes: dict[str, int] = {}
    cpu: dict[str, float] = {}
    startup = 0.0
    for mode in ("serial", "dask"):
        spec = make_workspace(base / mode, args.runs, args.bars, data)
        cluster = None
        if mode == "dask":  # the cluster the sweep runs on, started (and timed) apart from the sweep
            t0 = time.perf_counter()
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
            startup = time.perf_counter() - t0
        options = ExecutorOptions(serial=mode == "serial", n_workers=args.workers,
                                  scheduler=None if cluster is None else cluster.scheduler_address)
        workers_cpu = 0.0 if cluster is None else -worker_cpu(cluster)
        c0 = time.process_time()
        t0 = time.perf_counter()
        try:
            outcome = run_sweep(Workspace.at(base / mode), spec, options)
        finally:
            times[mode] = time.perf_counter() - t0
            cpu[mode] = time.process_time() - c0
            if cluster is not None:
                workers_cpu += worker_cpu(cluster)
                cpu["workers"] = workers_cpu
                cluster.close()
        reports[mode] = outcome.report_path.read_bytes()
        sizes[mode] = du(outcome.report_path.parent)
        print(f"{mode}: {times[mode]:.1f} s", file=sys.stderr, flush=True)
    serial, dask = times["serial"] + 0.0, times["dask"] + startup  # dask: start-up + the sweep on it
    result: dict[str, Any] = {
        "runs": args.runs, "bars": args.bars, "workers": args.workers, "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "serial_s": round(serial, 2), "dask_s": round(dask, 2), "cluster_startup_s": round(startup, 2),
        "per_run_serial_s": round(serial / args.runs, 3),
        "speedup": round(serial / dask, 2),
        "speedup_without_startup": round(serial / max(dask - startup, 1e-9), 2),
        "per_task_overhead_s": round(((dask - startup) * args.workers - serial) / args.runs, 3),
        # CPU seconds (immune to other jobs on the machine): the client's and the workers' in the Dask mode
        "cpu_serial_s": round(cpu["serial"], 2), "cpu_dask_client_s": round(cpu["dask"], 2),
        "cpu_dask_workers_s": round(cpu["workers"], 2),
        "cpu_overhead_per_task_s": round((cpu["dask"] + cpu["workers"] - cpu["serial"]) / args.runs, 3),
        # the speed-up N idle cores would give: serial CPU over the busiest of (each worker's share, the client)
        "speedup_idle_estimate": round(cpu["serial"] / max(cpu["workers"] / args.workers, cpu["dask"]), 2),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "evidence_bytes_per_run": sizes["serial"] // args.runs,
        "reports_identical": reports["serial"] == reports["dask"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<26} {value}")
    if not args.keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    return 0 if result["reports_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
