"""``treasure gates history``: every gate's results over time, from evidence/gates_history.jsonl.

The runbook's escalation rule (">5 consecutive gate failures") and its monthly review of gate
execution times both read this: per gate, how many runs passed and failed, the last result and
its age, how many failures in a row, and the mean and max duration. Read-only; exit 0 whenever
the workspace can be read (``treasure checklist pre`` is the command that gates on it).
"""

from __future__ import annotations

import argparse
from typing import Any

from treasure.cli.output import emit
from treasure.cli.types import positive_count


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "gates", parents=[common], help="gate history: each gate's results, trends and durations",
        description="Gate results recorded by every gate session (treasure verify, resume, checklist "
        "--run-gates, pytest) in evidence/gates_history.jsonl; evidence/gates.json holds each gate's "
        "latest result.")
    actions = parser.add_subparsers(dest="gates_action", metavar="ACTION")
    actions.required = True
    history = actions.add_parser(
        "history", parents=[common], help="per gate: pass/fail counts, last result and age, consecutive "
        "failures, mean/max duration",
        description="Trends per gate from evidence/gates_history.jsonl. A gate failing more than "
        "5 times in a row is marked ESCALATE (runbook: '>5 consecutive gate failures'). Corrupt "
        "history lines are skipped and reported as warning[GATE_HISTORY_CORRUPT].")
    history.add_argument("--gate", metavar="NAME", default=None, help="only this gate (with its recent results)")
    history.add_argument("--last", type=positive_count, metavar="N", default=None,
                         help="only each gate's last N results")
    history.set_defaults(handler=handle_history)


def _document(ws_root: Any, gate: str | None, last: int | None) -> tuple[dict[str, Any], list[str]]:
    from treasure import gate_history as gh

    history = gh.read(ws_root)
    trends = gh.trends(history, gate=gate, last=last)
    doc: dict[str, Any] = {
        "history": f"evidence/{gh.HISTORY_NAME}",
        "records": len(history.records),
        "escalate_after": gh.ESCALATE_AFTER,
        "stale_after_s": gh.STALE_AFTER_S,
        "gates": [dict(t.to_dict(), escalate=t.consecutive_failures > gh.ESCALATE_AFTER,
                       stale=t.last_age_s is None or t.last_age_s > gh.STALE_AFTER_S) for t in trends],
        "warnings": [{"code": w.code, "line": w.line, "message": w.message} for w in history.warnings],
    }
    if gate is not None:
        records = history.of(gate)
        if last is not None:
            records = records[-last:]
        doc["results"] = [{"finished_at": r["finished_at"], "outcome": r["outcome"], "duration_s": r["duration_s"],
                           "run_by": r.get("run_by"), "reason": r.get("reason")} for r in records]
    return doc, [w.render() for w in history.warnings]


def _render(doc: dict[str, Any]) -> str:
    from treasure import gate_history as gh

    if not doc["gates"]:
        which = " for that gate" if "results" in doc else ""
        return f"no gate results recorded yet{which} ({doc['history']}): run `treasure verify`"
    lines = [f"{'gate':<14} {'runs':>4} {'pass':>4} {'fail':>4} {'skip':>4}  {'last':<8} {'age':>5} "
             f"{'by':<9} {'streak':>6} {'mean s':>8} {'max s':>8}"]
    for g in doc["gates"]:
        o = g["outcomes"]
        skipped = o["skipped"] + o["missing"]
        flag = "  ESCALATE (>5 consecutive failures: runbook escalation)" if g["escalate"] else \
            ("  stale" if g["stale"] else "")
        lines.append(f"{g['gate']:<14} {g['runs']:>4} {o['passed']:>4} {o['failed']:>4} {skipped:>4}  "
                     f"{g['last']['outcome']:<8} {gh.format_age(g['last']['age_s']):>5} {g['last']['run_by']:<9} "
                     f"{g['consecutive_failures']:>6} {g['duration_s']['mean']:>8.2f} {g['duration_s']['max']:>8.2f}{flag}")
    for r in doc.get("results", []):
        reason = f"  {r['reason']}" if r.get("reason") else ""
        lines.append(f"  {r['finished_at']}  {r['outcome']:<8} {r['duration_s']:>8.2f}s  {r.get('run_by') or '?':<9}"
                     f"{reason}")
    lines.append(f"{doc['records']} record(s) in {doc['history']}")
    return "\n".join(lines)


def handle_history(args: argparse.Namespace) -> int:
    import sys

    from treasure.workspace import Workspace

    ws = Workspace.at(args.workspace)
    doc, warnings = _document(ws.root, args.gate, args.last)
    for warning in warnings:
        print(warning, file=sys.stderr)
    emit(args, _render(doc), doc)
    return 0
