"""``treasure halt --reason TEXT``: set the emergency flag; running engines halt at the next bar."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "halt", parents=[common], help="emergency halt: set data/emergency.flag (runs stop at the next bar)",
        description="Writes data/emergency.flag atomically and appends the reason to data/emergency.log. "
        "A running engine halts at its next bar (CRITICAL halt event, run ends halted, exit 3); new runs "
        "halt before their first bar. Clear it with `treasure resume`.")
    # required, but checked by the halt itself so a missing reason gets HALT_REASON and its hint
    parser.add_argument("--reason", default="", metavar="TEXT", help="why (required; recorded in data/emergency.log)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops import emergency

    ws = Workspace.at(args.workspace)
    state, created = emergency.halt(ws, args.reason)
    if created:
        human = (f"EMERGENCY HALT set: {state.reason}\n"
                 "  running engines halt at their next bar; new runs halt before the first bar\n"
                 "  next: notify the trading desk; diagnose with `treasure status` / `treasure diagnose`;\n"
                 "        `treasure resume` once the e2 and determinism gates pass")
    else:
        human = (f"already halted {state.describe()}; "
                 "your reason was added to data/emergency.log")
    emit(args, human, {"halted": True, "created": created, "flag": state.to_dict()})
    return 0
