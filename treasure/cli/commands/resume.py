"""``treasure resume``: clear the emergency flag, only if the e2 and determinism gates pass."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "resume", parents=[common], help="clear the emergency flag once the e2 and determinism gates pass",
        description="Runs `treasure verify e2 determinism` against this workspace (the runbook's recovery "
        "steps) and clears data/emergency.flag only if both pass; otherwise refuses (exit 2) and keeps "
        "the flag. Every attempt is appended to data/emergency.log.")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops import emergency

    ws = Workspace.at(args.workspace)
    previous, gates = emergency.resume(ws)
    if gates is None:
        emit(args, "no emergency halt in force: nothing to resume", {"resumed": False, "halted": False})
        return 0
    cells = ", ".join(f"{g} {s}" for g, s in gates.statuses.items())
    emit(args, f"resumed: emergency flag cleared (gates: {cells}; was: {previous.reason or previous.problem})",
         {"resumed": True, "halted": False, "gates": gates.to_dict(), "cleared": previous.to_dict()})
    return 0
