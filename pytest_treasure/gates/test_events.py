"""Gate events: every event log in logs/events/ is intact and valid, line by line.

For each log (``run_<id>.jsonl`` and its rotated parts ``run_<id>.jsonl.<N>``, one chain):
every line is JSON; its envelope validates against truth/event.schema.json and its payload
against truth/events/<event_type>.schema.json; ``seq`` runs 0, 1, 2, ... without gaps or repeats;
``ts_ms`` never goes backwards; ``prev``/``hash`` chain every line to the one before (so an edited,
deleted or reordered line is caught); ``run_id`` is the one in the file name. A torn last line
(a writer killed mid-line) is reported as "truncated at line N". Each log is then tied to its run's
own court report (``events.total``, ``events.last_hash``, counts): a log re-chained after an edit
verifies on its own but no longer ends at the head hash its run recorded. A *stray* (a file named
like a log, e.g. ``run_<id>.jsonl.0``, that is in no chain; see :mod:`treasure.logfiles`) fails
the gate: it is neither read as evidence nor silently ignored.

A workspace with no logs yet (a fresh clone) has the log of a fresh run verified instead, so the
gate never passes on nothing. Third-party ``treasure_check_event`` hooks see every valid event.
The verdict of every log goes to evidence/events_report.json (schema in truth/).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.gate("events")

REPORT = "events_report.json"


def _event_hook(config: pytest.Config, workspace: Any) -> Callable[[dict[str, Any]], list[str]] | None:
    """The ``treasure_check_event`` hook, if the plugin defines it and someone implements it."""
    try:
        from pytest_treasure import check_event, manager
    except ImportError:  # pragma: no cover - an older plugin without the hook
        return None
    hook = getattr(manager(config).hook, "treasure_check_event", None)
    if hook is None or not hook.get_hookimpls():
        return None
    return lambda event: check_event(config, event, workspace)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def _court(ws: Any, run_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The run's own court report (reports/runs/<id>/court_report.json), or why there is none."""
    import orjson

    path = ws.run_reports(run_id) / "court_report.json"
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None, None
    except (OSError, orjson.JSONDecodeError) as exc:
        return None, f"{ws.relative(path)}: unreadable ({exc})"
    if not isinstance(doc, dict):
        return None, f"{ws.relative(path)}: not a JSON object"
    return doc, None


def _verify(log: Any, contracts: Any, ws: Any, hook: Callable[[dict[str, Any]], list[str]] | None) -> dict[str, Any]:
    from treasure.errors import EventLogError
    from treasure.eventlog import court_mismatches, summary_counts, verify_run

    problems: list[str] = []

    def on_event(event: dict[str, Any], source: str, line: int) -> None:
        problems.extend(f"{ws.relative(Path(source))}:{line}: {problem}" for problem in hook(event))  # type: ignore[misc]

    entry: dict[str, Any] = {"run_id": log.run_id, "status": "passed", "events": 0, "bytes": 0, "files": [],
                             "error": None, "problems": problems}
    try:
        summary = verify_run(log, contracts, ws=ws, on_event=on_event if hook is not None else None)
    except EventLogError as exc:
        error = exc.to_dict()
        if error["path"]:
            error["path"] = ws.relative(Path(error["path"]))
        entry.update(status="failed", error=error)
        reached = exc.path is None or exc.code == "EVENTS_PART_MISSING"  # then nothing was verified
        for path in log.paths:  # the events verified before the first error, part by part
            size = path.stat().st_size if path.is_file() else 0
            if reached:
                events = 0
            elif exc.path is not None and Path(exc.path) == path:
                events, reached = max((exc.line or 1) - 1, 0), True
            else:
                events = _count_lines(path)
            entry["files"].append({"path": ws.relative(path), "events": events, "bytes": size})
            entry["bytes"] += size
            entry["events"] += events
        return entry
    entry.update(events=summary.events, bytes=summary.bytes, first_ts_ms=summary.first_ts_ms,
                 last_ts_ms=summary.last_ts_ms, last_hash=summary.last_hash,
                 files=[{"path": ws.relative(Path(p.path)), "events": p.events, "bytes": p.bytes}
                        for p in summary.parts], **summary_counts(summary))
    # A log re-chained after an edit verifies on its own: tie it to its run's court report (head
    # hash, totals, counts). A run with no court report (crashed, or an auxiliary log) is not tied.
    court, unreadable = _court(ws, log.run_id)
    if unreadable is not None:
        problems.append(unreadable)
    elif court is not None:
        problems.extend(court_mismatches(summary, court, shown=ws.relative(ws.run_reports(log.run_id)
                                                                          / "court_report.json")))
    if problems:
        entry["status"] = "failed"
    return entry


def _describe(entry: dict[str, Any]) -> str:
    error = entry["error"]
    if error is None:
        listing = "\n    ".join(entry["problems"][:10])
        more = f"\n    ... and {len(entry['problems']) - 10} more" if len(entry["problems"]) > 10 else ""
        court = any("court_report.json" in problem for problem in entry["problems"])
        source = "against its court report" if court else "from treasure_check_event"
        return f"run {entry['run_id']}: {len(entry['problems'])} problem(s) {source}:\n    {listing}{more}"
    where = error["path"] or f"run {entry['run_id']}"
    if error["line"] is not None:
        where += f":{error['line']}"
    if error["field"]:
        where += f" field {error['field']}"
    text = f"{where}: [{error['code']}] {error['message']}"
    return text + (f"\n    hint: {error['hint']}" if error["hint"] else "")


def test_every_event_log_verifies(treasure_workspace, schema_validator, request, gate_note):
    from treasure.jsonio import atomic_write_json
    from treasure.logfiles import discover

    ws = treasure_workspace
    found = discover(ws.logs_dir)
    logs, ignored, strays = found.logs, sorted(found.ignored + found.strays), found.strays
    log_ws, source = ws, "workspace"
    if not logs and not strays:
        from pytest_treasure import workspace_of

        run = request.getfixturevalue("treasure_run")
        log_ws, source = workspace_of(run), "fresh_run"
        logs = discover(log_ws.logs_dir).logs
        message = (f"no event logs in {ws.relative(ws.logs_dir)}/ yet (fresh workspace): verified the log of a "
                   f"fresh run ({run.run_id}) instead")
        print(message)
        gate_note(message)
    hook = _event_hook(request.config, log_ws)
    started = time.perf_counter()
    entries = [_verify(log, schema_validator, log_ws, hook) for log in logs]
    wall_s = time.perf_counter() - started
    failed = [entry for entry in entries if entry["status"] == "failed"]
    total_bytes = sum(entry["bytes"] for entry in entries)
    report = {
        "schema_version": 1,
        "status": "failed" if failed or strays or not entries else "passed",
        "source": source,
        "logs_dir": ws.relative(ws.logs_dir),
        "logs": entries,
        "ignored": [ws.relative(path) for path in ignored],
        "totals": {"logs": len(entries), "passed": len(entries) - len(failed), "failed": len(failed),
                   "events": sum(entry["events"] for entry in entries), "bytes": total_bytes},
        "timing": {"wall_ms": round(wall_s * 1000.0, 3),
                   "mb_per_s": round(total_bytes / 1e6 / wall_s, 1) if wall_s > 0 else 0.0},
    }
    if schema_validator.schema_path("events_report").is_file():
        schema_validator.validate("events_report", report, source=REPORT)
    path = ws.evidence_dir / REPORT
    atomic_write_json(path, report)
    if ignored:
        gate_note(f"not event logs, ignored: {', '.join(report['ignored'])}")
    if strays:
        names = ", ".join(ws.relative(path) for path in strays)
        pytest.fail(f"events: {len(strays)} stray file(s) named like a log but in no log's chain: {names}\n"
                    "  rotated parts are run_<id>.jsonl.1, .2, ...; rename a true part into its chain, or move "
                    f"the file out of {ws.relative(ws.logs_dir)}/ (see treasure.logfiles)", pytrace=False)
    if not entries:
        pytest.fail(f"events: no event log to verify in {ws.relative(log_ws.logs_dir)}", pytrace=False)
    if failed:
        first = _describe(failed[0])
        rest = "".join(f"\n  {_describe(entry)}" for entry in failed[1:])
        pytest.fail(f"events: {len(failed)} of {len(entries)} log(s) failed: {first}{rest}\n"
                    f"  report: {ws.relative(path)}", pytrace=False)
    print(f"{len(entries)} log(s), {report['totals']['events']} events, {total_bytes / 1e6:.1f} MB verified "
          f"({report['timing']['mb_per_s']} MB/s); report: {ws.relative(path)}")
