"""``treasure ack [ALERT...]``: list pending alerts, or acknowledge them."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "ack", parents=[common], help="acknowledge alerts (without arguments: list the pending ones)",
        description="Alerts are runs that did not complete or logged ERROR/CRITICAL events, and runs whose "
        "reconciliation found mismatches. `checklist pre` fails while any is pending. Ids accept a unique "
        "prefix. Acks are kept in data/alerts.json.")
    parser.add_argument("alert_ids", nargs="*", metavar="ALERT", help="alert id (or unique prefix)")
    parser.add_argument("--run", metavar="RUN_ID", help="acknowledge every alert of this run")
    parser.add_argument("--all", action="store_true", help="acknowledge every pending alert")
    parser.add_argument("--note", default="", metavar="TEXT", help="why it is acceptable (kept with the ack)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops import alerts

    ws = Workspace.at(args.workspace)
    if not (args.alert_ids or args.run or args.all):
        pending = alerts.pending(ws)
        lines = [f"{len(pending)} pending alert(s)"] + [
            f"  {a.id}  {a.level:<8} {a.title}\n      action: {a.action}" for a in pending]
        emit(args, "\n".join(lines), {"pending": [a.to_dict() for a in pending]})
        return 0
    new, old = alerts.acknowledge(ws, args.alert_ids, note=args.note, run_id=args.run, everything=args.all)
    lines = [f"acknowledged {a.id}: {a.title}" for a in new] + [f"already acknowledged {a.id}" for a in old]
    emit(args, "\n".join(lines) or "nothing to acknowledge",
         {"acknowledged": [a.id for a in new], "already": [a.id for a in old]})
    return 0
