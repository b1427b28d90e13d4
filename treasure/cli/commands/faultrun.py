"""``treasure faultrun``: run another treasure command under a fault plan (for crash testing).

Not for operators. The crash harness (bench/crash_test.py) starts ``python -m treasure faultrun
run --workspace W --run-id X`` with ``TREASURE_FAULTS="kill@bar:1234"`` to SIGKILL the child at an
exact, reproducible point; tests use it to inject ENOSPC or EIO at a chosen write. The wrapped
command runs unchanged; only the engine's fault hook is set (see :func:`treasure.faults.injected`).
"""

from __future__ import annotations

import argparse
import contextlib

from treasure.faults import ENV_VAR, FaultPlan, injected


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "faultrun",  # no help=: a test harness, kept out of `treasure --help`
        description="For crash testing only: run COMMAND (e.g. `run --run-id x`) with the fault plan "
        f"given by --faults or ${ENV_VAR}, e.g. 'kill@bar:1234', 'enospc@event_write:1+', "
        "'eio@replace:3', 'sleep=0.5@report_write'. See treasure/faults.py for the grammar.")
    parser.add_argument("--faults", metavar="SPEC", default=None,
                        help=f"fault plan (default: ${ENV_VAR}); rules ACTION@POINT[:N[+]] joined by ';'")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND ...",
                        help="the treasure command to run, with its options")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.cli.main import parse_args

    plan = FaultPlan.parse(args.faults) if args.faults is not None else FaultPlan.from_env()
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv or argv[0] == "faultrun":
        from treasure.errors import RunError

        raise RunError("FAULTS_SPEC", "faultrun needs a command to wrap, e.g. `treasure faultrun "
                       "--faults kill@bar:10 run --run-id x`", field="COMMAND")
    inner = parse_args(argv)
    if plan is None:
        return int(inner.handler(inner) or 0)
    hooks = plan.io_hooks() if plan.needs_io_hooks else contextlib.nullcontext()
    with injected(plan), hooks:
        return int(inner.handler(inner) or 0)
