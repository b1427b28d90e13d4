"""``treasure replay RUN_ID --from db|events``: re-run a recorded run and compare, canonically."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.errors import EXIT_BAD_INPUT, EXIT_OK
from treasure.replay import replay
from treasure.store.location import resolve_db
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "replay", parents=[common], help="re-run a recorded run from its evidence and compare",
        description="Rebuild a run's inputs from its run_start event (SSOT snapshot, dataset by SHA-256, seed, "
        "strategy source hash), re-run it in a temporary workspace, and compare the new events and reports "
        "with the recorded ones canonically. Exit 0 'replay identical', 2 when it differs (diff written to "
        "evidence/diffs/replay_<run_id>.txt) or an input changed since the run.")
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("--from", dest="source", choices=("db", "events"), default="events",
                        help="where the recorded run is read from (default: events, the JSONL log)")
    parser.add_argument("--db", metavar="PATH", help="database for --from db (default: SSOT persistence.db_path)")
    parser.add_argument("--run-id", dest="new_run_id", metavar="NEW",
                        help="replay under another run id (the id and the hash chain are then not compared)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary replay workspace and print its path")
    parser.add_argument("--allow-strategy-change", action="store_true",
                        help="replay even if the strategy's source changed since the run (it will likely differ)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    ws = Workspace.at(args.workspace)
    db = resolve_db(ws, args.db) if args.source == "db" else None
    result = replay(ws, args.run_id, source=args.source, db_path=db, new_run_id=args.new_run_id,
                    keep=args.keep, allow_strategy_change=args.allow_strategy_change)
    lines = [f"replay {'identical' if result.identical else 'DIFFERS'}: run {result.run_id} from {result.source}"
             + (f" as {result.replay_run_id}" if result.replay_run_id != result.run_id else "")
             + f" ({result.events} events, status {result.status})"]
    lines.append(f"  events         {'equal' if result.events_equal else 'DIFFER'}")
    for name, equal in result.reports_equal.items():
        lines.append(f"  {name:<14} {'equal' if equal else 'DIFFER'}")
    ignored = sorted({p for paths in result.dropped.values() for p in paths})
    if ignored:
        lines.append(f"  ignored        {', '.join(ignored)}")
    lines.extend(f"  note           {note}" for note in result.notes)
    if result.diff_path is not None:
        lines.append(f"  diff           {ws.relative(result.diff_path)}")
    if result.workspace is not None:
        lines.append(f"  workspace      {result.workspace}")
    emit(args, "\n".join(lines), result.to_dict())
    return EXIT_OK if result.identical else EXIT_BAD_INPUT
