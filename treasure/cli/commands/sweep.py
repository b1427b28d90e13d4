"""``treasure sweep SPEC``: every point of a sweep file as a full run, on Dask or serially."""

from __future__ import annotations

import argparse
import sys
import time

from treasure.cli.output import emit
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "sweep", parents=[common], help="run every point of a sweep file (strategies x params x datasets x seeds)",
        description="Run a sweep: each point is a full run with its own evidence under "
        "sweeps/<sweep_id>/runs/<point_id>/, and sweeps/<sweep_id>/sweep_report.json ranks them. Runs on an "
        "in-process Dask LocalCluster by default; points already done are kept (re-running is a no-op).")
    parser.add_argument("spec", metavar="SPEC", help="sweep file (e.g. spec/sweep.example.json)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--serial", action="store_true", help="run in this process, without Dask")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="a running dask scheduler")
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="LocalCluster workers (default 2)")
    parser.add_argument("--db", metavar="PATH|URL",
                        help="also store every run in this SQLite DB or postgresql:// store (idempotent; several "
                        "sweeps may write one PostgreSQL store at once)")
    parser.add_argument("--force", action="store_true",
                        help="re-run every point and replace evidence that differs")
    parser.set_defaults(handler=handle)


class EtaBar:
    """Progress with ETA on stderr: a redrawn bar on a TTY, a line per 10% otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()  # treasure: allow-nondeterminism progress display only
        self.first: int | None = None
        self.last_decile = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total == 0:
            return
        now = time.monotonic()  # treasure: allow-nondeterminism progress display only
        if self.first is None:
            self.first, self.start = done, now
            return
        fresh = done - self.first
        elapsed = now - self.start
        eta = (total - done) * elapsed / fresh if fresh else 0.0
        width = 30
        filled = int(width * done / total)
        text = f"sweep [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ETA {eta:,.0f}s"
        if self.tty:
            sys.stderr.write("\r" + text + ("\n" if done >= total else ""))
        else:
            decile = done * 10 // total
            if decile == self.last_decile:
                return
            self.last_decile = decile
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def handle(args: argparse.Namespace) -> int:
    from treasure.errors import TreasureError
    from treasure.sweep import ExecutorOptions, run_sweep

    ws = Workspace.at(args.workspace)
    if args.workers < 1:
        raise TreasureError("CLI_VALUE", "--workers must be at least 1", field="--workers")
    from treasure.store.location import db_label, resolve_db

    db = resolve_db(ws, args.db) if args.db else None
    options = ExecutorOptions(serial=args.serial, scheduler=args.scheduler, n_workers=args.workers)
    outcome = run_sweep(ws, args.spec, options, db=db, force=args.force,
                        progress=EtaBar(enabled=not args.json and not args.quiet))
    report = outcome.report
    by_id = {r["point_id"]: r for r in report["runs"]}
    lines = [f"treasure sweep: {report['sweep_id']}  {report['points']} points ("
             + ", ".join(f"{k} {v}" for k, v in report["by_status"].items()) + ")",
             f"  ran now       {outcome.ran}   already done {outcome.reused}   files written {outcome.written}",
             f"  report        {ws.relative(outcome.report_path)}",
             f"                {ws.relative(outcome.html_path)}",
             f"  best by {report['rank_by']['metric']} ({report['rank_by']['order']}):"]
    for entry in report["ranking"][:5]:
        row = by_id[entry["point_id"]]
        params = " ".join(f"{k}={v}" for k, v in row["params"].items())
        lines.append(f"    {entry['rank']:>3}. {entry['value']:>10.4f}  {row['point_id']}  {row['strategy']} {params} "
                     f"seed={row['seed']}")
    if db is not None:
        lines.append(f"  db            {db_label(ws, db)} ({len(outcome.stored)} runs stored or unchanged)")
    failed = [r for r in report["runs"] if r["status"] != "complete"]
    exit_code = 0
    if failed:
        exit_code = max(r["exit_code"] for r in failed) or 2
        lines.append(f"  not complete  {len(failed)}: " + ", ".join(
            f"{r['point_id']} {r['status']} ({r['reason']})" for r in failed[:5]))
    emit(args, "\n".join(lines), {"sweep_id": report["sweep_id"], "report": ws.relative(outcome.report_path),
                                  "html": ws.relative(outcome.html_path), "points": report["points"],
                                  "by_status": report["by_status"], "ran": outcome.ran, "reused": outcome.reused,
                                  "written": outcome.written, "ranking": report["ranking"][:10],
                                  "db": None if db is None else db_label(ws, db), "stored": len(outcome.stored),
                                  "exit_code": exit_code})
    return exit_code
