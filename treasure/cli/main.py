"""Entry point of the ``treasure`` command.

Subcommands live one per module in :mod:`treasure.cli.commands`, each exposing
``register(subparsers, common)``; they are discovered in name order so adding a command never
touches this file. Every :class:`TreasureError` is caught here, once, and printed as
``error[CODE]: message`` with its hint, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
from typing import Sequence

from treasure import __version__
from treasure.errors import EXIT_INTERNAL, TreasureError

EPILOG = """exit codes:
  0  success (run complete, gates passed, checks clean)
  1  internal error in Treasure itself (a bug: please report it with TREASURE_DEBUG=1 output)
  2  bad input or failed check: the message names the file, line or field and a fix
  3  the run halted (risk limit, emergency flag, recon escalation)
"""


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", "-w", metavar="PATH", default=None,
                        help="workspace folder (default: the current directory)")
    common.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="treasure", description="Deterministic trading simulation, evidence and operator gates.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"treasure {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    common = common_options()
    from treasure.cli import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"treasure.cli.commands.{info.name}")
        module.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except TreasureError as exc:
        if getattr(args, "json", False):
            from treasure.cli.output import print_json

            print_json({"error": exc.to_dict()})
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug in Treasure: say so plainly, keep the trace for debugging
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("TREASURE_DEBUG"):
            traceback.print_exc()
        else:
            print("  hint: re-run with TREASURE_DEBUG=1 for the traceback and report it", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
