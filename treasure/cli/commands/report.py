"""``treasure report [RUN_ID]``: a self-contained HTML report of a run (HTML is the only format)."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.cli.types import add_out_option, out_target
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "report", parents=[common], help="write a self-contained HTML report of a run (plots, fills, risk, gates)",
        description="One HTML file, no network and no scripts: verdict, metrics, findings, equity and "
        "drawdown plots (inline SVG), fills, risk events, daily PnL, reconciliation and gate status. "
        "Deterministic: the same evidence gives the same bytes.")
    parser.add_argument("run_id", nargs="?", default="latest", metavar="RUN_ID", help="default: latest")
    parser.add_argument("--html", action="store_true", help="HTML output (the only format and the default)")
    add_out_option(parser, help="where to write (default reports/runs/<id>/report.html); an existing file "
                   "needs --force")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops.run_catalog import resolve_run_id

    ws = Workspace.at(args.workspace)
    out = out_target(ws.root, ws.resolve_cli, args.out, force=args.force) if args.out else None
    run_id = resolve_run_id(ws, args.run_id)
    from treasure.ops.html_report import write_report  # matplotlib is imported only here

    target = write_report(ws, run_id, out)
    emit(args, f"report written: {ws.relative(target)}", {"run_id": run_id, "path": ws.relative(target)})
    return 0
