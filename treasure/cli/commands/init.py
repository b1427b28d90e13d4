"""``treasure init DIR``: a new workspace with the packaged defaults."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.workspace import init_workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("init", parents=[common], help="create a workspace with the default spec, "
                                   "contracts and dataset")
    parser.add_argument("dir", help="folder to create (may exist if empty)")
    parser.add_argument("--force", action="store_true", help="refresh the defaults in an existing workspace")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    ws = init_workspace(args.dir, force=args.force)
    emit(args, f"workspace ready: {ws.root}\n  next: cd {ws.root} && treasure run",
         {"workspace": str(ws.root)})
    return 0
