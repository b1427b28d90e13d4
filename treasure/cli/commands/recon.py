"""``treasure recon RUN_ID [--live FIXTURE]``: dry-run vs live reconciliation of one run."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.errors import EXIT_BAD_INPUT
from treasure.recon import CODES, ReconOutcome, run_recon
from treasure.workspace import Workspace

SHOWN_MISMATCHES = 10


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "recon", parents=[common], help="reconcile a run's dry-run orders and fills against a recorded live session",
        description="Reconcile a run order by order against a recorded live session, with the SSOT's recon "
        "tolerances. Writes reports/recon_report.json, reports/runs/RUN_ID/recon_report.json and the RECON "
        "event log logs/events/run_recon-RUN_ID.jsonl. Exit 0 clean or within recon.max_mismatches, "
        "2 bad input (or any mismatch with --strict), 3 halted: more than recon.max_mismatches mismatched orders.")
    parser.add_argument("run_id", metavar="RUN_ID", help="the run to reconcile (a name in logs/events/run_<RUN_ID>.jsonl)")
    parser.add_argument("--live", metavar="FIXTURE", help="recorded live session, JSONL (default: the SSOT's "
                        "recon.live_fixture, else fixtures/live/clean.jsonl)")
    parser.add_argument("--ssot", metavar="PATH", help="SSOT file holding the recon tolerances (default: spec/ssot.json)")
    parser.add_argument("--strict", action="store_true", help="exit 2 on any mismatch, even below the halt threshold")
    parser.set_defaults(handler=handle)


def summary_text(outcome: ReconOutcome, ws: Workspace) -> str:
    report = outcome.report
    verdict = {"clean": "CLEAN", "mismatches": f"{report['mismatched_orders']} MISMATCHED ORDER(S)",
               "halted": f"HALTED ({report['mismatched_orders']} mismatched orders > "
                         f"{report['halt']['threshold']})"}[report["status"]]
    run, live = report["run"], report["live"]
    lines = [
        f"treasure recon: {verdict}",
        f"  run id        {report['run_id']} (adapter {run['adapter']}, {run['orders']} orders, {run['fills']} fills)",
        f"  live          {live['path']} ({live['messages']} messages, {live['orders']} orders, sha {live['sha256'][:12]}…)",
        f"  matched       {report['matched']} / {report['orders_compared']} orders",
        "  mismatches    " + "   ".join(f"{code} {report['summary'][code]}" for code in CODES),
    ]
    for mismatch in report["mismatches"][:SHOWN_MISMATCHES]:
        lines.append(f"    {mismatch['order_id']}  {mismatch['code']:<18} {mismatch['detail']}")
    if len(report["mismatches"]) > SHOWN_MISMATCHES:
        lines.append(f"    ... and {len(report['mismatches']) - SHOWN_MISMATCHES} more (see the report)")
    lines += [
        f"  evidence      {ws.relative(outcome.latest_report_path)}",
        f"                {ws.relative(outcome.report_path)}",
        f"                {ws.relative(outcome.event_log)}",
    ]
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    ws = Workspace.at(args.workspace)
    outcome = run_recon(
        ws, args.run_id,
        live_path=ws.resolve_cli(args.live, field="--live") if args.live else None,
        ssot_path=ws.resolve_cli(args.ssot, field="--ssot") if args.ssot else None,
    )
    code = outcome.exit_code
    if args.strict and code == 0 and outcome.report["mismatches"]:
        code = EXIT_BAD_INPUT
    emit(args, summary_text(outcome, ws), {"exit_code": code, "report": outcome.report,
                                           "report_path": ws.relative(outcome.report_path),
                                           "event_log": ws.relative(outcome.event_log)})
    return code
