"""Entry point of the ``treasure`` command.

Subcommands live one per module in :mod:`treasure.cli.commands`, each exposing
``register(subparsers, common)``. :data:`COMMANDS` names them with their one-line help, so the
top-level parser is built without importing any of them: only the module of the command being run
is imported (``treasure --version`` and ``treasure --help`` import none). A module present in the
commands package but missing from the table still works (its help line is generic).

Every :class:`TreasureError` is caught here, once, and printed as ``error[CODE]: message`` with its
hint, without a traceback; argparse's own errors are turned into coded errors too (exit 2).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import NamedTuple, NoReturn, Sequence

from treasure.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, TreasureError

PACKAGE = "treasure.cli.commands"

EPILOG = """exit codes:
  0  success (run complete, gates passed, checks clean)
  1  internal error in Treasure itself (a bug: re-run with TREASURE_DEBUG=1 for the traceback and report it)
  2  bad input or failed check: the message names the file, line or field and a fix
  3  halted (risk limit, emergency flag, recon escalation); `treasure resume` after the cause is fixed
  4  run degraded: it completed, but its health checks failed (e.g. the adapter's ERROR rate)

global options (--workspace, --json, --quiet) go before or after the command.
"""


class Command(NamedTuple):
    """A subcommand: the module defining ``register(subparsers, common)``, and its ``--help`` line
    (``None``: a hidden command, kept out of ``treasure --help``)."""

    module: str
    help: str | None


#: name -> command, in the order ``treasure --help`` lists them (everyday use first).
COMMANDS: dict[str, Command] = {
    "init": Command("init", "create a workspace with the default spec, contracts and dataset"),
    "run": Command("run", "run a simulation on the SSOT's dataset and write its evidence"),
    "data": Command("data", "import an OHLCV file (CSV/Parquet) as the workspace's dataset and pin it"),
    "verify": Command("verify", "run the operator gates (pytest -m gate) against the workspace"),
    "status": Command("status", "last runs, gate state, emergency flag, DB, log sizes, pending alerts"),
    "diagnose": Command("diagnose", "triage a run: SYS events, dataset, errors, risk, halts, recon, data"),
    "events": Command("events", "filter a run's events (category, type, level, time, fields)"),
    "report": Command("report", "write a self-contained HTML report of a run (plots, fills, risk, gates)"),
    "checklist": Command("checklist", "run the pre-run, post-run or end-of-day checklist"),
    "recon": Command("recon", "reconcile a run's dry-run orders and fills against a recorded live session"),
    "ack": Command("ack", "acknowledge alerts (without arguments: list the pending ones)"),
    "halt": Command("halt", "emergency halt: set data/emergency.flag (runs stop at the next bar)"),
    "resume": Command("resume", "clear the emergency flag once the e2 and determinism gates pass"),
    "gates": Command("gates", "gate history: each gate's results, trends and durations"),
    "timings": Command("timings", "wall-clock durations of runs' phases and of gates (find slow operations)"),
    "rotate": Command("rotate", "rotate event logs over --max-mb into run_<id>.jsonl.<N> parts"),
    "archive": Command("archive", "move finished event logs into archive/*.tar.gz with a SHA-256 manifest"),
    "db": Command("db", "the run database: ingest logs, check, back up, restore, export"),
    "replay": Command("replay", "re-run a recorded run from its evidence and compare"),
    "ssot": Command("ssot", "approve the SSOT, schemas and dataset (spec/ssot.lock), or check for changes"),
    "migrate": Command("migrate", "upgrade a workspace made by an older release (spec/, truth/, store, lock)"),
    "keys": Command("keys", "signing key for anchored evidence: init, show, anchor, verify"),
    "hunt": Command("hunt", "hunt for inputs that break a strategy's run invariants"),
    "sweep": Command("sweep", "run every point of a sweep file on Dask (or --serial) and rank them"),
    "scan": Command("scan", "scan Python code for wall clock, global random, set order and other "
                    "nondeterminism"),
    # test harness, not for operators: `python -m treasure faultrun --help` still documents it
    "faultrun": Command("faultrun", None),
}

#: Global options: they may come before the command (``treasure -w DIR status``) or after it.
_GLOBAL_WITH_VALUE = ("--workspace", "-w")
_GLOBAL_FLAGS = ("--json", "--quiet", "-q")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is a coded :class:`TreasureError` (exit 2), not argparse's own
    ``usage: ...`` text and exit."""

    def error(self, message: str) -> NoReturn:
        field = None
        code = "CLI_USAGE"
        if message.startswith("argument ") and ": " in message:
            name, detail = message[len("argument "):].split(": ", 1)
            field = name.split("/")[0]
            if not detail.startswith(_USAGE_PROBLEMS):
                code = "CLI_VALUE"  # a value the option's type or choices refused
        elif message.startswith("the following arguments are required: "):
            field = message.split(": ", 1)[1]
        raise TreasureError(code, message, field=field, hint=f"`{self.prog} --help` lists what it accepts")


#: argparse messages about the shape of the command line rather than a value.
_USAGE_PROBLEMS = ("expected ", "not allowed with", "ignored explicit")


def _installed_modules() -> list[str]:
    """Names of the modules in the commands package, without importing them."""
    import pkgutil

    from treasure.cli import commands

    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


def command_table() -> dict[str, Command]:
    """Every runnable command: the table's entries whose module exists, then unlisted modules."""
    installed = _installed_modules()
    table = {name: cmd for name, cmd in COMMANDS.items() if cmd.module in installed}
    listed = {cmd.module for cmd in table.values()}
    for module in installed:
        if module not in listed:
            table[module] = Command(module, f"(see `treasure {module} --help`)")
    return table


def selected_command(argv: Sequence[str]) -> str | None:
    """The subcommand in ``argv`` (the first word that is not a global option or its value)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--":
            return None
        if token in _GLOBAL_WITH_VALUE:
            skip = True
            continue
        if token.startswith("-"):
            continue
        return token
    return None


def common_options() -> argparse.ArgumentParser:
    common = ArgumentParser(add_help=False)
    common.add_argument("--workspace", "-w", metavar="PATH", default=None,
                        help="workspace folder (default: the current directory)")
    common.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    return common


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``treasure`` parser. Only the command named in ``argv`` gets its options (its module is
    imported); without ``argv`` every command is registered (for docs and tests)."""
    from treasure import __version__

    parser = ArgumentParser(
        prog="treasure", description="Deterministic trading simulation, evidence and operator gates.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"treasure {__version__}")
    # the global options, before the command; dests differ so the command's own defaults cannot
    # overwrite them (merged in parse_args)
    parser.add_argument("--workspace", "-w", dest="global_workspace", metavar="PATH", default=None,
                        help="workspace folder (default: the current directory)")
    parser.add_argument("--json", dest="global_json", action="store_true",
                        help="print one JSON document instead of text")
    parser.add_argument("--quiet", "-q", dest="global_quiet", action="store_true", help="no progress output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    subparsers.required = True
    common = common_options()
    table = command_table()
    wanted = None if argv is None else selected_command(argv)
    import importlib

    for name, cmd in table.items():
        if argv is None or name == wanted:
            importlib.import_module(f"{PACKAGE}.{cmd.module}").register(subparsers, common)
        elif cmd.help is None:
            subparsers.add_parser(name)  # hidden: no line in `treasure --help`
        else:
            subparsers.add_parser(name, help=cmd.help)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    wanted = selected_command(argv)
    if wanted is not None and wanted not in command_table():
        raise TreasureError("CLI_USAGE", f"unknown command {wanted!r}", field="COMMAND",
                            hint="`treasure --help` lists the commands")
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        raise TreasureError("CLI_USAGE", f"unrecognized arguments: {' '.join(extra)}", field=extra[0],
                            hint=f"`treasure {args.command} --help` lists its options")
    if getattr(args, "workspace", None) is None and args.global_workspace is not None:
        args.workspace = args.global_workspace
    for name in ("json", "quiet"):
        if getattr(args, f"global_{name}", False):
            setattr(args, name, True)
    if not hasattr(args, "handler"):  # a hidden or unlisted name whose module was not registered
        raise TreasureError("CLI_USAGE", f"unknown command {args.command!r}", field="COMMAND",
                            hint="`treasure --help` lists the commands")
    return args


def _print_error(exc: TreasureError, want_json: bool) -> None:
    if want_json:
        from treasure.cli.output import print_json

        print_json({"error": exc.to_dict()})
    print(exc.render(), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
    except TreasureError as exc:
        _print_error(exc, "--json" in argv)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    try:
        from treasure.migrate import cli_guard

        cli_guard(args)  # WORKSPACE_OLD / WORKSPACE_NEWER before a command that runs or verifies
        return int(args.handler(args) or 0)
    except TreasureError as exc:
        _print_error(exc, getattr(args, "json", False))
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
