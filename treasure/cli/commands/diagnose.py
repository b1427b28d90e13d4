"""``treasure diagnose RUN_ID``: the runbook's triage of one run, with an Action per finding."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "diagnose", parents=[common], help="triage a run: SYS events, dataset, errors, risk, halts, recon, data",
        description="One screen of triage with the runbook's action for every finding. --json prints a "
        "document valid against truth/diagnose.schema.json. Exit 0 when the run could be diagnosed "
        "(whatever the verdict), 2 when it cannot (unknown run, unreadable log).")
    parser.add_argument("run_id", nargs="?", default="latest", metavar="RUN_ID",
                        help="run to diagnose (default: latest)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the hash-chain verification pass (faster on very large logs)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops import diagnose
    from treasure.ops.run_catalog import resolve_run_id

    ws = Workspace.at(args.workspace)
    run_id = resolve_run_id(ws, args.run_id)
    doc = diagnose.diagnose(ws, run_id, verify=not args.no_verify)
    emit(args, diagnose.render(doc), doc)
    return 0
