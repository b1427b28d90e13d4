"""``treasure timings [RUN_ID] [--slower-than MS]``: the runbook's "find slow operations".

Wall-clock durations are not in the (canonical, byte-identical) event logs; ``treasure run``
appends them to logs/timings/run_<id>.jsonl and the gates plugin to evidence/gates_history.jsonl.
See :mod:`treasure.ops.timings`.
"""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "timings", parents=[common], help="wall-clock durations of runs' phases and of gates (find slow operations)",
        description="The runbook's `jq 'select(.payload.duration_ms > 1000)'`: event logs carry no durations "
        "(they are byte-identical between runs), so `treasure run` records its phases (run, simulate, "
        "prepare+reports+db) in logs/timings/run_<id>.jsonl, and gate durations come from the gate history. "
        "Exit 0 (also when nothing is slow).")
    parser.add_argument("run_id", nargs="?", default=None, metavar="RUN_ID",
                        help="one run (default: every run, plus gate durations)")
    parser.add_argument("--slower-than", type=float, default=None, metavar="MS",
                        help="only durations above this many milliseconds (the runbook's 1000)")
    parser.add_argument("--no-gates", action="store_true", help="runs only, without gate durations")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops.run_catalog import resolve_run_id
    from treasure.ops.timings import query

    ws = Workspace.at(args.workspace)
    run_id = resolve_run_id(ws, args.run_id) if args.run_id else None
    found = query(ws, run_id, slower_than_ms=args.slower_than, gates=not args.no_gates)
    threshold = f" slower than {args.slower_than:g} ms" if args.slower_than is not None else ""
    scope = f"run {run_id}" if run_id else "all runs and gates"
    if found:
        lines = [f"{len(found)} timing(s){threshold} ({scope})"]
        for t in found:
            lines.append(f"  {t.source:<4} {t.name:<40} {t.phase:<20} {t.duration_ms:>12,.1f} ms  {t.started_at or ''}")
    else:
        lines = [f"no timing{threshold} ({scope}); durations are recorded by `treasure run` "
                 "(logs/timings/) and by the gates (evidence/gates_history.jsonl)"]
    emit(args, "\n".join(lines), {"run_id": run_id, "slower_than_ms": args.slower_than,
                                  "timings": [t.to_dict() for t in found]})
    return 0
