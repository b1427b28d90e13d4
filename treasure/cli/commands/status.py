"""``treasure status``: runs, gates, emergency flag, DB, log sizes and pending alerts at a glance."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.cli.types import count, megabytes
from treasure.ops import DEFAULT_MAX_MB
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "status", parents=[common], help="last runs, gate state, emergency flag, DB, log sizes, pending alerts",
        description="The runbook's first diagnostic step in one read-only command. Always exits 0 when the "
        "workspace can be read; use `treasure checklist pre` to gate on what it shows.")
    parser.add_argument("--limit", type=count, default=10, metavar="N", help="runs to list (default 10)")
    parser.add_argument("--max-mb", type=megabytes, default=DEFAULT_MAX_MB, metavar="MB",
                        help=f"log size that needs rotating (default {DEFAULT_MAX_MB:g})")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops import status  # imported here: `treasure --help` stays fast

    ws = Workspace.at(args.workspace)
    doc = status.build(ws, limit=max(args.limit, 0), max_mb=args.max_mb)
    emit(args, status.render(doc), doc)
    return 0
