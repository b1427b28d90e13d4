"""``treasure hunt``: hypothesis against a strategy; a shrunk reproducer when an invariant breaks."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from treasure.cli.output import emit
from treasure.cli.types import minutes, positive_count, seed
from treasure.invariants import INVARIANTS
from treasure.workspace import Workspace

EXIT_FOUND = 2


def _params(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "hunt", parents=[common], help="hunt for inputs that break a strategy's run invariants",
        description="Generate datasets and SSOTs with hypothesis, run the strategy on each, check every "
        "run invariant (coded errors only, clean runs, valid event log, accounting, risk limits and halts, "
        "order lifecycle, reports agree with events, data events, determinism across processes). On a "
        "failure the case is shrunk and written to fixtures/regressions/<id>/ with a pytest test that "
        "reproduces it. Exit 0 nothing found, 2 an invariant broke (or bad arguments).")
    parser.add_argument("--strategy", metavar="NAME|module:Class|file.py:Class",
                        help="strategy to hunt (default: the SSOT's strategy.name)")
    parser.add_argument("--params", type=_params, metavar="JSON",
                        help="fixed strategy params (default: drawn for built-ins, the SSOT's for the SSOT's "
                        "strategy, {} otherwise)")
    parser.add_argument("--examples", type=positive_count, default=100, metavar="N",
                        help="generated cases to try (default 100)")
    parser.add_argument("--seed", type=seed, default=0, metavar="N",
                        help="search seed: the same seed gives the same cases and result (default 0)")
    parser.add_argument("--max-minutes", type=minutes, metavar="M",
                        help="wall-clock budget; the hunt stops generating when it is spent")
    parser.add_argument("--max-bars", type=positive_count, default=60, metavar="N",
                        help="largest generated dataset (default 60 bars)")
    parser.add_argument("--determinism", choices=("process", "inprocess", "off"), default="process",
                        help="process: run each case in two processes with different PYTHONHASHSEED "
                        "(default); inprocess: twice in this process; off: once")
    parser.add_argument("--skip", action="append", default=[], metavar="INVARIANT",
                        choices=INVARIANTS,
                        help="do not check this invariant (repeatable), e.g. while a known bug is being fixed")
    parser.add_argument("--no-write", action="store_true", help="report a failure without writing a reproducer")
    sweep = parser.add_argument_group(
        "hunt sweep", "--sweep runs one hunt per (strategy, seed) as tasks on a Dask LocalCluster (default), a "
        "running scheduler or serially, writes every shrunk reproducer once and the report "
        "sweeps/hunt-<id>/hunt_report.json; hypothesis' example database is .hypothesis/examples")
    sweep.add_argument("--sweep", action="store_true", help="spread hunts over --strategies x --seeds")
    sweep.add_argument("--strategies", type=_strategies, metavar="A,B,...",
                       help="strategies to hunt (default: --strategy, else the SSOT's)")
    sweep.add_argument("--seeds", type=_seeds, metavar="0-7|0,1,2", help="seeds to hunt with (default: --seed)")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--serial", action="store_true", help="run the hunts in this process, without Dask")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="a running dask scheduler")
    sweep.add_argument("--workers", type=positive_count, default=2, metavar="N",
                       help="LocalCluster workers (default 2)")
    sweep.add_argument("--no-database", action="store_true",
                       help="neither replay nor save examples in .hypothesis/examples (each hunt as plain "
                       "`treasure hunt --seed N`)")
    parser.set_defaults(handler=handle)


def _strategies(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one strategy, e.g. sma_crossover,mean_reversion")
    return names


def _seeds(text: str) -> tuple[int, ...]:
    from treasure.hunt.distributed import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Progress:
    """Progress on stderr, at most once a second: examples done, failures found, time elapsed (a
    rewritten line on a terminal, a line at a time otherwise); the last example is always shown."""

    def __init__(self, enabled: bool, every_s: float = 1.0) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.shrinking = False
        self.every_s = every_s
        self.shown_at: float | None = None

    def __call__(self, p: Any) -> None:
        if not self.enabled:
            return
        if p.phase == "shrink":
            if not self.shrinking:
                self.shrinking = True
                sys.stderr.write(("\n" if self.tty else "") + f"hunt: invariant broken after {p.found_after} "
                                 f"example(s); shrinking\n")
            elif self.tty and self._due(p):
                sys.stderr.write(f"\rhunt: shrinking, step {p.examples}, {p.bars} bars, {p.elapsed_s:.0f}s   ")
            sys.stderr.flush()
            return
        last = p.examples >= p.total
        if not (last or self._due(p)):
            return
        line = (f"hunt: {p.examples}/{p.total} examples, {p.found} found, {p.elapsed_s:.0f}s elapsed "
                f"(last: {p.bars} bars, {p.status})")
        sys.stderr.write(("\r" + line.ljust(78) + ("\n" if last else "")) if self.tty else line + "\n")
        sys.stderr.flush()

    def _due(self, p: Any) -> bool:
        if self.shown_at is not None and p.elapsed_s - self.shown_at < self.every_s:
            return False
        self.shown_at = p.elapsed_s
        return True


def _strategy_from_ssot(ws: Workspace) -> tuple[str, dict[str, Any] | None]:
    from treasure.config import load_config
    from treasure.strategy import BUILTIN

    config = load_config(ws.ssot_path, ws.config_schema_path, display_path=ws.relative(ws.ssot_path))
    name = config.strategy_name
    return name, (None if name in BUILTIN else config.strategy_params)


def summary(report: Any, ws: Workspace) -> str:
    d = report.to_dict(ws.relative)
    bars = d["bars"]
    runs = d["examples"]["run"]
    outcomes = ", ".join(f"{k} {v}" for k, v in d["outcomes"].items()) or "none"
    if d["refusals"]:
        outcomes += " (" + ", ".join(f"{k} {v}" for k, v in d["refusals"].items()) + ")"
    determinism = {"process": "in two processes, PYTHONHASHSEED 1 vs 2", "inprocess": "twice in one process",
                   "off": "not checked"}[d["determinism"]]
    head = "PASSED" if report.passed else f"FAILED: {report.failure['invariant']}"
    lines = [
        f"treasure hunt: {head}   strategy {d['strategy']}   seed {d['seed']}",
        f"  examples    {runs} of {d['examples']['requested']}"
        + ("  (stopped by --max-minutes)" if d["examples"]["stopped_by_time"] else ""),
        f"  bars        {bars['total']} in all, up to {bars['max']} a case; {bars['with_gaps']} case(s) with gaps, "
        f"{bars['with_duplicates']} with duplicates, {bars['with_outliers']} with outliers",
        f"  outcomes    {outcomes}",
        f"  invariants  {', '.join(d['invariants'])}"
        + (f" (skipped: {', '.join(d['skipped'])})" if d["skipped"] else ""),
        f"  determinism {determinism}",
    ]
    if report.failure is not None:
        f = report.failure
        lines += [f"  violation   [{f['invariant']}] {f['message']}"]
        lines += [f"              {line}" for line in f["details"][:8]]
        lines += [f"  case        {f['case']}", f"  shrunk in   {f['shrinks']} step(s)"]
        if d["reproducer"]:
            lines += [f"  reproducer  {d['reproducer']}/ (dataset.csv, ssot.json, test_reproduce.py)",
                      f"  re-run      pytest {d['reproducer']}/test_reproduce.py"]
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    from treasure.hunt.search import HuntRequest, hunt

    ws = Workspace.at(args.workspace)
    if args.sweep:
        return handle_sweep(args, ws)
    for option, value in (("--strategies", args.strategies), ("--seeds", args.seeds), ("--serial", args.serial),
                          ("--scheduler", args.scheduler), ("--no-database", args.no_database)):
        if value:
            from treasure.errors import TreasureError

            raise TreasureError("CLI_VALUE", f"{option} needs --sweep", field=option)
    strategy, params = (args.strategy, None) if args.strategy else _strategy_from_ssot(ws)
    if args.params is not None:
        params = args.params
    report = hunt(HuntRequest(
        workspace=ws, strategy=strategy, params=params, examples=args.examples, seed=args.seed,
        max_minutes=args.max_minutes, max_bars=args.max_bars, determinism=args.determinism,
        skip=tuple(args.skip), write=not args.no_write, progress=_Progress(not args.quiet and not args.json)))
    emit(args, summary(report, ws), report.to_dict(ws.relative))
    return 0 if report.passed else EXIT_FOUND


def handle_sweep(args: argparse.Namespace, ws: Workspace) -> int:
    """``treasure hunt --sweep``: one hunt per (strategy, seed) on the sweep executor."""
    from treasure.cli.commands.sweep import EtaBar
    from treasure.hunt.distributed import HuntSweepRequest, hunt_sweep
    from treasure.strategy import BUILTIN
    from treasure.sweep import ExecutorOptions

    ssot_name, ssot_params = _strategy_from_ssot(ws) if not (args.strategies or args.strategy) else ("", None)
    strategies = tuple(args.strategies or [args.strategy or ssot_name])
    params: dict[str, dict[str, Any] | None] = {}
    for name in strategies:
        if args.params is not None:
            params[name] = args.params
        elif name == ssot_name and name not in BUILTIN:
            params[name] = ssot_params
    request = HuntSweepRequest(
        workspace=ws, strategies=strategies, seeds=args.seeds or (args.seed,), params=params,
        examples=args.examples, max_bars=args.max_bars, max_minutes=args.max_minutes, determinism=args.determinism,
        skip=tuple(args.skip), write=not args.no_write, database=not args.no_database)
    options = ExecutorOptions(serial=args.serial, scheduler=args.scheduler, n_workers=args.workers)
    outcome = hunt_sweep(request, options, progress=EtaBar(enabled=not args.json and not args.quiet))
    report = outcome.report
    failed = [r for r in report["rows"] if r["status"] != "passed"]
    head = "PASSED" if not failed else f"FAILED: {len(report['failures'])} reproducer(s)"
    lines = [f"treasure hunt --sweep: {head}   {report['tasks']} hunt(s): "
             + ", ".join(f"{k} {v}" for k, v in report["by_status"].items()),
             f"  strategies  {', '.join(report['strategies'])}",
             f"  seeds       {', '.join(map(str, report['seeds']))}   examples {report['examples']} each, "
             f"up to {report['max_bars']} bars"]
    for row in report["rows"]:
        found = ", ".join(f"[{f['invariant']}] {f['reproducer']}" for f in row["failures"])
        err = f" {row['error']['code']}: {row['error']['message']}" if row.get("error") else ""
        lines.append(f"    {row['strategy']}  seed {row['seed']}  {row['status']}  "
                     f"{row['examples']['run']} example(s){'  ' + found if found else ''}{err}")
    for entry in report["failures"]:
        folder = f"fixtures/regressions/{entry['reproducer']}"
        lines.append(f"  reproducer  {folder}/  (found by {len(entry['found_by'])} hunt(s)); "
                     f"re-run: pytest {folder}/test_reproduce.py")
    lines.append(f"  files       {outcome.written} written, {outcome.unchanged} unchanged, {outcome.kept} kept")
    if request.database:
        lines.append(f"  database    {report['database']['path']}: {report['database']['entries_before']} example(s) "
                     f"replayed from, {outcome.database_added} saved, {outcome.database_deleted} deleted")
    lines.append(f"  report      {ws.relative(outcome.report_path)}")
    document = {**report, "report": ws.relative(outcome.report_path), "reproducers": outcome.reproducers,
                "written": outcome.written, "unchanged": outcome.unchanged, "kept": outcome.kept}
    emit(args, "\n".join(lines), document)
    return 0 if not failed else EXIT_FOUND
