"""``treasure run``: one full simulation, its evidence, and a short verdict."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from treasure.cli.output import Progress, emit, pct
from treasure.cli.types import seed
from treasure.engine import RunRequest, RunResult, run
from treasure.strategy import BUILTIN
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "run", parents=[common], help="run a simulation on the SSOT's dataset and write its evidence",
        description="Run a simulation. Exit 0 complete, 2 bad input, 3 halted. Built-in strategies: "
        + ", ".join(sorted(BUILTIN)))
    parser.add_argument("--ssot", metavar="PATH", help="SSOT file (default: spec/ssot.json)")
    parser.add_argument("--dataset", metavar="PATH",
                        help="run on this CSV instead of the pinned one (recorded as a finding)")
    parser.add_argument("--seed", type=seed, metavar="N", help="override run.seed (an integer in [0, 2**53))")
    parser.add_argument("--run-id", metavar="ID", help="run id (default: derived from the inputs)")
    parser.add_argument("--strategy", metavar="NAME|module:Class|file.py:Class", help="override strategy.name")
    parser.add_argument("--adapter", metavar="NAME", help="override execution.adapter")
    parser.add_argument("--live", metavar="FIXTURE",
                        help="recorded venue session for --adapter replay-live (default: recon.live_fixture)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run with the same id")
    db = parser.add_mutually_exclusive_group()
    db.add_argument("--db", metavar="PATH", nargs="?", const="",
                    help="also store the run in this SQLite DB as it goes; --db alone: the SSOT's "
                    "persistence.db_path (used by default when persistence.enabled)")
    db.add_argument("--no-db", action="store_true", help="do not store the run in a DB, whatever the SSOT says")
    parser.set_defaults(handler=handle)


def cli_strategy(ref: str, ws: Workspace) -> str:
    """A ``file.py:Class`` typed on the command line is relative to the current directory; record
    it workspace-relative (portable evidence), or absolute when the operator gave it so."""
    target, sep, class_name = ref.rpartition(":")
    if not sep or not target.endswith(".py") or Path(target).is_absolute():
        return ref
    return f"{ws.relative(ws.resolve_cli(target, field='--strategy'))}:{class_name}"


def request_from_args(args: argparse.Namespace, ws: Workspace, **extra) -> RunRequest:
    return RunRequest(
        workspace=ws,
        ssot_path=ws.resolve_cli(args.ssot, field="--ssot") if args.ssot else None,
        dataset_path=ws.resolve_cli(args.dataset, field="--dataset") if args.dataset else None,
        seed=args.seed,
        run_id=args.run_id,
        strategy=cli_strategy(args.strategy, ws) if args.strategy else None,
        adapter_options={"live_fixture": str(ws.resolve_cli(args.live, field="--live"))} if args.live else {},
        adapter=args.adapter,
        overwrite=args.overwrite,
        progress=Progress("run", enabled=not args.quiet and not args.json),
        **extra,
    )


def verdict(result: RunResult, ws: Workspace) -> str:
    m = result.court["metrics"]
    lines = [
        f"treasure run: {result.status.upper()}" + (f" ({result.court['reason']})" if result.court["reason"] else ""),
        f"  run id        {result.run_id}",
        f"  bars          {m['bars']}   orders {m['orders']}   fills {m['fills']}   trades {m['trades']}"
        f"   win rate {m['win_rate'] * 100:.1f}%",
        f"  return        {pct(m['total_return'])}   max drawdown {m['max_drawdown'] * 100:.2f}%"
        f"   sharpe {m['sharpe']:.2f}   fees {m['fees_usd']:.2f} USD",
        f"  final equity  {m['final_equity_usd']:,.2f} USD (from {m['starting_cash_usd']:,.2f})",
    ]
    for finding in result.court["findings"]:
        lines.append(f"  {finding['level'].lower():<13} {finding['code']}: {finding['message']}")
    lines += [
        f"  evidence      {ws.relative(result.event_log)}",
        f"                {ws.relative(result.report_dir / 'court_report.json')}",
        f"                {ws.relative(result.report_dir / 'eqs_report.json')}",
    ]
    if result.error is not None:
        lines.append(result.error.render())
    return "\n".join(lines)


def refuse_overwrite_while_halted(args: argparse.Namespace, ws: Workspace) -> None:
    """A run started while the emergency flag is set halts before its first bar: with --overwrite it
    would replace a complete run's evidence with an empty halted one. Refuse before touching anything."""
    flag = ws.emergency_flag
    if args.overwrite and (flag.exists() or flag.is_symlink()):
        from treasure.errors import RunError

        raise RunError("RUN_HALTED", "refusing --overwrite while the emergency halt is in force: the run "
                       "would halt before its first bar and replace the existing evidence",
                       path=ws.relative(flag), field="--overwrite")


def handle(args: argparse.Namespace) -> int:
    ws = Workspace.at(args.workspace)
    refuse_overwrite_while_halted(args, ws)
    request = request_from_args(args, ws)
    from treasure.approval import approval_state
    from treasure.ops.timings import RunTimer

    approved, unapproved = approval_state(ws)  # the run proceeds; the operator is told, plainly
    if not approved and not args.json:
        print(f"WARN unapproved SSOT: {', '.join(unapproved)} changed since `treasure ssot approve` "
              "(see `treasure ssot diff`)", file=sys.stderr)
    timer = RunTimer()
    stored = None
    if getattr(args, "no_db", False):
        result = run(request)
    else:
        from treasure.store.run_sink import run_stored

        from treasure.store.location import db_label, resolve_db

        db_arg = getattr(args, "db", None)
        result, stored = run_stored(request, None if db_arg is None else resolve_db(ws, db_arg or None))
    total_ms = timer.elapsed_ms()
    simulate_ms = ((result.court or {}).get("timing") or {}).get("wall_ms")
    timer.add("run", total_ms)
    if isinstance(simulate_ms, (int, float)):
        timer.add("simulate", simulate_ms)
        timer.add("prepare+reports+db", total_ms - simulate_ms)
    timer.write(ws, result.run_id)
    text = verdict(result, ws)
    if not approved:
        text += f"\n  warn          SSOT not approved: {', '.join(unapproved)} (treasure ssot diff; treasure ssot approve)"
    exit_code = result.exit_code
    if stored is not None:
        text += f"\n  db            {db_label(ws, stored.db_path)} ({stored.status})"
        if stored.error is not None:
            text += "\n" + stored.error.render()
            exit_code = exit_code or stored.error.exit_code
    if args.quiet and exit_code == 0 and not args.json:
        return exit_code  # -q: silent on success; any failure still prints its verdict
    emit(args, text, {"run_id": result.run_id, "status": result.status,
                      "exit_code": exit_code, "court_report": result.court,
                      "event_log": ws.relative(result.event_log),
                      "error": result.error.to_dict() if result.error else None,
                      "db": stored.to_dict() if stored is not None else None,
                      "ssot_approved": approved, "ssot_unapproved": unapproved})
    return exit_code
