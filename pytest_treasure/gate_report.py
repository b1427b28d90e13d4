"""A session's gate verdict, built from the merged test records: what it appends to the
workspace's gate history (``evidence/gates_history.jsonl``, from which ``evidence/gates.json`` is
derived; :mod:`treasure.gate_history`) and the "treasure gates" section of the terminal summary.

Everything is sorted (gates by name, tests by node id) so two sessions with the same outcomes
record the same entries; only ``duration_s`` fields differ.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping

from pytest_treasure.registry import GateSpec
from pytest_treasure.session import GateSession, TestRecord

REASON_CHARS = 160


def one_line(text: str | None, limit: int = REASON_CHARS) -> str | None:
    """The first non-empty line, shortened: what fits in a summary row."""
    if not text:
        return None
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _gate_entry(name: str, description: str, records: list[TestRecord]) -> dict[str, Any]:
    records = sorted(records, key=lambda r: r.nodeid)
    counts = {outcome: sum(1 for r in records if r.outcome == outcome) for outcome in ("passed", "failed", "skipped")}
    reason: str | None
    if not records:
        status, reason = "missing", f"no test carries @pytest.mark.gate({name!r}) in this session"
    elif counts["failed"]:
        status = "failed"
        reason = one_line(next(r.message for r in records if r.outcome == "failed"))
    elif counts["passed"]:
        status, reason = "passed", None
    else:
        status = "skipped"
        reason = one_line(next(r.message for r in records if r.outcome == "skipped"))
    return {
        "name": name,
        "description": description,
        "status": status,
        "reason": reason,
        "counts": counts,
        "tests": [{"nodeid": r.nodeid, "outcome": r.outcome, "message": r.message} for r in records],
        "notes": [note for r in records for note in r.notes],
        "duration_s": round(sum(r.duration_s for r in records), 3),
    }


def build_report(state: GateSession, gates: Mapping[str, GateSpec]) -> dict[str, Any]:
    """This session's verdict: every gate that ran, plus every selected gate that did not. Its
    ``gates`` entries are what the session appends to the workspace's gate history."""
    by_gate: dict[str, list[TestRecord]] = defaultdict(list)
    for record in state.records.values():
        by_gate[record.gate].append(record)
    names = set(by_gate) | set(state.selected or ())
    entries = []
    for name in sorted(names):
        spec = gates.get(name)
        entries.append(_gate_entry(name, spec.description if spec else "(not declared by any treasure_gates hook)",
                                   by_gate.get(name, [])))
    totals = {status: sum(1 for e in entries if e["status"] == status)
              for status in ("passed", "failed", "skipped", "missing")}
    if totals["failed"] or totals["missing"]:
        overall = "failed"
    elif totals["skipped"] or not entries:
        overall = "incomplete"
    else:
        overall = "passed"
    return {
        "status": overall,
        "selected": sorted(state.selected) if state.selected is not None else None,
        "totals": totals,
        "gates": entries,
        "goldens_updated": sorted(state.goldens_updated),
        "duration_s": round(sum(e["duration_s"] for e in entries), 3),
    }


def record(state: GateSession) -> None:
    """Append the session's gate results to the workspace's history and refresh gates.json
    (:mod:`treasure.gate_history`). Nothing is written when the session's workspace is not a
    Treasure workspace; a write failure is kept in ``state.write_error`` for the summary, never
    raised (it must not hide the gate results themselves)."""
    from treasure import gate_history

    assert state.report is not None
    root = state.workspace_root
    if not gate_history.is_workspace(root):
        state.not_recorded = (f"{root} is not a Treasure workspace (no spec/ssot.json); "
                              "pass --treasure-workspace to record gate results")
        return
    try:
        path, _ = gate_history.record_session(root, state.report["gates"], selected=state.report["selected"],
                                              goldens_updated=state.report["goldens_updated"])
    except Exception as exc:  # a read-only workspace: say so in the summary
        state.write_error = f"{gate_history.history_path(root)}: {exc}"
        return
    state.report_path = path
    state.history_path = gate_history.history_path(root)


def summary_lines(state: GateSession) -> list[tuple[str, dict[str, bool]]]:
    """Rows of the terminal summary as ``(text, markup)`` pairs."""
    doc = state.report or {"gates": []}
    colour = {"passed": {"green": True}, "failed": {"red": True, "bold": True},
              "skipped": {"yellow": True}, "missing": {"red": True}}
    rows: list[tuple[str, dict[str, bool]]] = []
    for gate in doc["gates"]:
        counts = gate["counts"]
        total = sum(counts.values())
        detail = f"{total} test{'s' if total != 1 else ''}"
        if counts["failed"]:
            detail = f"{counts['failed']}/{total} failed"
        text = f"{gate['name']:<14} {gate['status'].upper() if gate['status'] in ('failed', 'missing') else gate['status']:<8} " \
               f"{detail:<12} {gate['duration_s']:>7.2f}s"
        if gate["reason"]:
            text += f"  {gate['reason']}"
        rows.append((text, colour[gate["status"]]))
        for note in gate["notes"]:
            rows.append((f"{'':<14} note: {one_line(note, 200)}", {}))
    if state.report_path is not None:
        rows.append((f"gate report: {state.report_path} (history: {state.history_path})", {}))
    if state.not_recorded:
        rows.append((f"gate results not recorded: {state.not_recorded}", {}))
    if state.write_error:
        rows.append((f"gate report NOT written: {state.write_error}", {"red": True}))
    for golden in sorted(state.goldens_updated):
        rows.append((f"golden updated: {golden}", {"yellow": True}))
    return rows
