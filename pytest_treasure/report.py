"""The gate report: ``evidence/gates.json`` (schema truth/gates_report.schema.json) and the
"treasure gates" section of the terminal summary, both built from the merged test records.

Everything in the report is sorted (gates by name, tests by node id) so two sessions with the same
outcomes write the same canonical document; only ``duration_s`` fields differ, and the schema
marks them volatile.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping

from pytest_treasure.registry import GateSpec
from pytest_treasure.session import GateSession, TestRecord

SCHEMA_VERSION = 1
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
    """The gates.json document: every gate that ran, plus every selected gate that did not."""
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
        "schema_version": SCHEMA_VERSION,
        "status": overall,
        "selected": sorted(state.selected) if state.selected is not None else None,
        "totals": totals,
        "gates": entries,
        "goldens_updated": sorted(state.goldens_updated),
        "duration_s": round(sum(e["duration_s"] for e in entries), 3),
    }


def write_report(path: Path, document: dict[str, Any]) -> None:
    from treasure.jsonio import atomic_write_bytes, dumps_pretty

    atomic_write_bytes(path, dumps_pretty(document), durable=False)


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
        rows.append((f"gate report: {state.report_path}", {}))
    if state.write_error:
        rows.append((f"gate report NOT written: {state.write_error}", {"red": True}))
    for golden in sorted(state.goldens_updated):
        rows.append((f"golden updated: {golden}", {"yellow": True}))
    return rows
