"""``treasure checklist pre|post|eod``: the runbook's checklists, each line a pass/warn/fail check."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.errors import EXIT_BAD_INPUT, EXIT_OK
from treasure.ops import OpsError
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "checklist", parents=[common], help="run the pre-run, post-run or end-of-day checklist",
        description="Each runbook checklist line as a check with pass, warn or fail and a reason. Exit 0 "
        "only if nothing fails (warnings allowed), 2 otherwise. eod archives finished event logs to "
        "archive/ and backs up the DB (unless --dry-run).")
    parser.add_argument("which", choices=("pre", "post", "eod"), help="which checklist")
    parser.add_argument("run_id", nargs="?", default=None, metavar="RUN_ID",
                        help="post only: the run to check (default: latest)")
    parser.add_argument("--run-gates", action="store_true",
                        help="pre only: run `treasure verify` first instead of reading the last gate report")
    parser.add_argument("--dry-run", action="store_true", help="eod only: report, but archive and back up nothing")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops import checklist

    ws = Workspace.at(args.workspace)
    if args.run_id is not None and args.which != "post":
        raise OpsError("QUERY_INVALID", f"RUN_ID is only for `checklist post` (got {args.run_id!r} for "
                       f"{args.which})", field="RUN_ID", hint="treasure checklist post RUN_ID")
    if args.which == "pre":
        doc = checklist.pre(ws, run_all_gates=args.run_gates)
    elif args.which == "post":
        doc = checklist.post(ws, args.run_id)
    else:
        doc = checklist.eod(ws, dry_run=args.dry_run)
    emit(args, checklist.render(doc), doc)
    return EXIT_OK if doc["ok"] else EXIT_BAD_INPUT
