"""``treasure recon RUN_ID [--live FIXTURE]``: dry-run vs live reconciliation of one run;
``treasure recon history``: accuracy over time; ``treasure recon record RUN_ID``: a run's sessions."""

from __future__ import annotations

import argparse
from typing import Any

from treasure.cli.output import emit
from treasure.errors import EXIT_BAD_INPUT, EXIT_OK, RunError
from treasure.recon import CODES, ReconOutcome, run_recon
from treasure.workspace import Workspace

SHOWN_MISMATCHES = 10
ACTIONS = ("history", "record")
ABBREV = {"MISSING_FILL": "MISS", "ORDER_STATE_DRIFT": "STATE", "PRICE_MISMATCH": "PRICE", "FEE_MISMATCH": "FEE"}


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "recon", parents=[common], help="reconcile a run against a recorded live session; history; record sessions",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="treasure recon RUN_ID [--live FIXTURE]\n"
        "  Reconcile a run order by order against a recorded live session, with the SSOT's recon tolerances.\n"
        "  Every recon keeps its own evidence under its recon id (a digest of the run, the session and the\n"
        "  tolerances): reports/recon/RECON_ID/recon_report.json and logs/events/run_RECON_ID.jsonl, plus a\n"
        "  line in reports/recon/history.jsonl; reports/recon_report.json and reports/runs/RUN_ID/recon_report.json\n"
        "  are copies of the latest. Any mismatch raises an alert, pending until `treasure ack`; more than\n"
        "  recon.max_mismatches mismatched orders also sets the emergency flag (trading halts until\n"
        "  `treasure resume`). Exit 0 clean or within recon.max_mismatches, 2 bad input (or any mismatch with\n"
        "  --strict), 3 halted.\n"
        "treasure recon history [--run RUN_ID] [--last N]\n"
        "  Reconciliation accuracy over time: every recon, in order, with matched orders, mismatches by code,\n"
        "  match rate and status (the runbook's weekly recon_report.json trends).\n"
        "treasure recon record RUN_ID [--overwrite]\n"
        "  Derive the run's recorded live sessions (a clean one and faulty variants) from its own evidence into\n"
        "  fixtures/live/runs/RUN_ID/, for `treasure recon RUN_ID` and the dryrun-live gate on any workspace.")
    parser.add_argument("words", nargs="+", metavar="RUN_ID | history | record RUN_ID",
                        help="the run to reconcile (a name in logs/events/run_<RUN_ID>.jsonl), or an action")
    parser.add_argument("--live", metavar="FIXTURE", help="recorded live session, JSONL (default: the run's "
                        "recorded fixtures/live/runs/RUN_ID/clean.jsonl, else the SSOT's recon.live_fixture)")
    parser.add_argument("--ssot", metavar="PATH", help="SSOT file holding the recon tolerances (default: spec/ssot.json)")
    parser.add_argument("--strict", action="store_true", help="exit 2 on any mismatch, even below the halt threshold")
    parser.add_argument("--run", metavar="RUN_ID", dest="only_run", help="history: only the recons of this run")
    parser.add_argument("--last", metavar="N", type=int, default=None, help="history: only the last N recons")
    parser.add_argument("--overwrite", action="store_true", help="record: replace sessions that differ")
    parser.set_defaults(handler=handle)


def summary_text(outcome: ReconOutcome, ws: Workspace) -> str:
    report = outcome.report
    verdict = {"clean": "CLEAN", "mismatches": f"{report['mismatched_orders']} MISMATCHED ORDER(S)",
               "halted": f"HALTED ({report['mismatched_orders']} mismatched orders > "
                         f"{report['halt']['threshold']})"}[report["status"]]
    run, live = report["run"], report["live"]
    lines = [
        f"treasure recon: {verdict}",
        f"  recon id      {outcome.recon_id}" + (f" (#{outcome.seq} in reports/recon/history.jsonl)"
                                                 if outcome.seq is not None else ""),
        f"  run id        {report['run_id']} (adapter {run['adapter']}, {run['orders']} orders, {run['fills']} fills)",
        f"  live          {live['path']} ({live['messages']} messages, {live['orders']} orders, sha {live['sha256'][:12]}…)",
        f"  matched       {report['matched']} / {report['orders_compared']} orders",
        "  mismatches    " + "   ".join(f"{code} {report['summary'][code]}" for code in CODES),
    ]
    for mismatch in report["mismatches"][:SHOWN_MISMATCHES]:
        lines.append(f"    {mismatch['order_id']}  {mismatch['code']:<18} {mismatch['detail']}")
    if len(report["mismatches"]) > SHOWN_MISMATCHES:
        lines.append(f"    ... and {len(report['mismatches']) - SHOWN_MISMATCHES} more (see the report)")
    raised = outcome.escalation
    if raised.alert_id:
        lines.append(f"  alert         {raised.alert_id} pending until `treasure ack {raised.alert_id}`")
    if raised.flag_set:
        lines.append("  HALT          emergency flag set (data/emergency.flag): runs halt until `treasure resume`; "
                     "escalate to the trading desk")
    lines += [
        f"  evidence      {ws.relative(outcome.report_path)}",
        f"                {ws.relative(outcome.event_log)}",
        f"                {ws.relative(outcome.latest_report_path)} (latest)",
    ]
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words[0] == "history" and len(words) == 1:
        return handle_history(args)
    if words[0] == "record":
        if len(words) != 2:
            raise RunError("CLI_USAGE", "usage: treasure recon record RUN_ID", field="RUN_ID",
                           hint="name one run: `treasure recon record RUN_ID` (runs: `treasure status`)")
        return handle_record(args, words[1])
    if len(words) != 1:
        raise RunError("CLI_USAGE", f"unexpected argument(s) {' '.join(words[1:])!r}", field="RUN_ID",
                       hint="`treasure recon RUN_ID`, `treasure recon history` or `treasure recon record RUN_ID`")
    ws = Workspace.at(args.workspace)
    outcome = run_recon(
        ws, words[0],
        live_path=ws.resolve_cli(args.live, field="--live") if args.live else None,
        ssot_path=ws.resolve_cli(args.ssot, field="--ssot") if args.ssot else None,
    )
    code = outcome.exit_code
    if args.strict and code == 0 and outcome.report["mismatches"]:
        code = EXIT_BAD_INPUT
    emit(args, summary_text(outcome, ws), {"exit_code": code, "recon_id": outcome.recon_id, "seq": outcome.seq,
                                           "report": outcome.report,
                                           "report_path": ws.relative(outcome.report_path),
                                           "event_log": ws.relative(outcome.event_log),
                                           "escalation": outcome.escalation.to_dict()})
    return code


# history ----------------------------------------------------------------------------------------
def _rate(value: Any) -> str:
    return f"{value * 100:.2f}%" if isinstance(value, (int, float)) else "-"


def history_text(entries: list[dict[str, Any]], summary: dict[str, Any], problems: list[str]) -> str:
    if not entries:
        lines = ["treasure recon history: no reconciliations yet (`treasure recon RUN_ID`)"]
    else:
        lines = [f"treasure recon history: {summary['recons']} reconciliation(s), mean match rate "
                 f"{_rate(summary['mean_match_rate'])}, worst {_rate(summary['min_match_rate'])}, "
                 f"{summary['halted']} halted",
                 f"  {'#':>4}  {'time':<20} {'status':<10} {'matched':>11} {'rate':>8}  "
                 + " ".join(f"{ABBREV[c]:>5}" for c in CODES) + "  recon id / run id"]
        for e in entries:
            matched = f"{e['matched']}/{e['orders_compared']}"
            lines.append(f"  {e['seq']:>4}  {str(e.get('time', '?')):<20} {e['status']:<10} {matched:>11} "
                         f"{_rate(e['match_rate']):>8}  "
                         + " ".join(f"{int(e['summary'].get(c, 0)):>5}" for c in CODES)
                         + f"  {e['recon_id']}" + (f"  [alert {e['alert_id']}]" if e.get("alert_id") else ""))
        lines.append("  totals      " + "   ".join(f"{c} {summary['summary'][c]}" for c in CODES))
    lines += [f"  warning: {p}" for p in problems]
    return "\n".join(lines)


def handle_history(args: argparse.Namespace) -> int:
    from treasure.recon.history import history_path, read_history, summarize

    ws = Workspace.at(args.workspace)
    history = read_history(ws)
    entries = [e for e in history.entries if args.only_run is None or e["run_id"] == args.only_run]
    if args.last is not None:
        if args.last < 1:
            raise RunError("CLI_VALUE", f"--last {args.last}: give a positive number of recons", field="--last",
                           hint="e.g. `treasure recon history --last 20`")
        entries = entries[-args.last:]
    for entry in entries:  # a report moved by archiving or deleted by hand: say so, keep the line
        entry["report_present"] = (ws.root / entry["report"]).is_file()
    summary = summarize(entries)
    emit(args, history_text(entries, summary, history.problems),
         {"history": ws.relative(history_path(ws)), "entries": entries, "summary": summary,
          "problems": history.problems})
    return EXIT_OK


# record -----------------------------------------------------------------------------------------
def handle_record(args: argparse.Namespace, run_id: str) -> int:
    from treasure.recon.record import record_sessions

    ws = Workspace.at(args.workspace)
    done = record_sessions(ws, run_id, overwrite=args.overwrite,
                           ssot_path=ws.resolve_cli(args.ssot, field="--ssot") if args.ssot else None)
    sessions = done.manifest["sessions"]
    lines = [f"treasure recon record: {len(sessions)} session(s) of run {done.run_id} in {ws.relative(done.folder)}"
             + ("" if done.written else " (unchanged)")]
    for entry in sessions:
        codes = sorted({m["code"] for m in entry["mismatches"]})
        lines.append(f"  {entry['file']:<24} {len(entry['mismatches']):>3} mismatch(es)"
                     + (f" {', '.join(codes)}" if codes else "") + ("  -> halt" if entry["halt"] else ""))
    lines.append(f"  next: treasure recon {done.run_id}    (reconciles against its clean.jsonl); "
                 "treasure verify dryrun-live")
    emit(args, "\n".join(lines), {"run_id": done.run_id, "folder": ws.relative(done.folder),
                                  "files": list(done.files), "written": list(done.written),
                                  "manifest": done.manifest})
    return EXIT_OK
