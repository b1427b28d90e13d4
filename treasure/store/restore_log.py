"""``treasure db restore-log RUN_ID``: put a run's event log back into logs/events/ from the DB.

The DB keeps every event's canonical line byte for byte (``events.line``), so a run's log can be
rebuilt exactly. This is the runbook's "restore it from the DB" for a log that is missing or was
damaged (diagnose's LOG_BROKEN); ``db export -o`` never writes under logs/ (OUT_PROTECTED).

The command only ever *adds* evidence:

* It acts only when the workspace's log of the run is missing from logs/events/ (and from every
  archive) or does not verify (schema, seq, hash chain, a missing rotated part, or a head hash /
  counts that disagree with the run's court report). A log that verifies is left alone
  (``restored: false``); an archived log that verifies is pointed to ``treasure archive --restore``.
* Before anything is written, the DB's lines are verified as a log (truth/ schemas, seq, hash
  chain), every event's hash is compared with the DB's ``events.hash`` column, the total and the
  head hash with the DB's ``runs`` row, and the whole log with the run's court report (the
  workspace's ``reports/runs/<id>/court_report.json`` and the DB's stored copy: both when both
  exist, at least one is required). Any disagreement is ``STORE_RESTORE_MISMATCH``; nothing moves.
* The damaged files (the live log and its rotated parts) are moved, never deleted, into
  ``logs/broken/run_<id>.<n>/`` under their own names: ``n`` is the first unused number from 1,
  so the name is deterministic and carries no wall-clock time. The folder is outside
  logs/events/, so no log reader, gate, rotation or archive takes the damaged copy for evidence;
  it stays for the post-mortem until the operator removes it.
* The restored bytes are written to a temporary file in logs/events/, fsynced, read back and
  compared, then renamed atomically to ``run_<id>.jsonl``; the folder is fsynced. The whole step
  holds the logs/events/ rename lock and the run's own lock (:mod:`treasure.file_locks`), so no
  ``treasure run``, ``rotate`` or ``archive`` of that run interleaves with it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import orjson

from treasure.contracts import Contracts
from treasure.errors import TreasureError
from treasure.jsonio import fsync_dir
from treasure.store.errors import StoreError
from treasure.store.reader import StoreReader
from treasure.workspace import Workspace, check_run_id

#: logs/<BROKEN_DIR>/run_<id>.<n>/ (beside logs/events/): where damaged logs are moved aside.
BROKEN_DIR = "broken"

__all__ = ["BROKEN_DIR", "RestoreLogResult", "restore_log"]


@dataclass
class RestoreLogResult:
    """What ``restore-log`` found and did (``--json`` prints :meth:`to_dict`)."""

    run_id: str
    restored: bool
    workspace_log: str  # missing | broken | ok | archived | archived-broken
    problem: str | None = None  # why the workspace's log did not verify
    events: int = 0
    bytes: int = 0
    last_hash: str | None = None
    path: str | None = None  # the restored log (workspace-relative)
    moved_aside: list[str] = field(default_factory=list)
    checked_against: list[str] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _court_file(ws: Workspace, run_id: str) -> tuple[Mapping[str, Any] | None, str]:
    shown = f"reports/runs/{run_id}/court_report.json"
    path = ws.run_reports(run_id) / "court_report.json"
    if not path.is_file():
        return None, shown
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise StoreError("STORE_RESTORE_MISMATCH", f"{shown} cannot be read ({exc}), so the DB's copy of run "
                         f"{run_id} cannot be tied to it", path=shown,
                         hint="repair or remove the court report first (`treasure db export` can still write "
                         "the stored log to a scratch file)") from exc
    return (doc if isinstance(doc, dict) else None), shown


def _workspace_state(ws: Workspace, run_id: str, contracts: Contracts,
                     court: Mapping[str, Any] | None, shown: str) -> tuple[str, str | None, list[Path]]:
    """``(state, problem, local files)``: state is missing | broken (local files) | ok | archived |
    archived-broken (no local file; the newest archive's copy does not verify: restored beside it)."""
    from treasure.eventlog import court_mismatches, verify_run
    from treasure.logfiles import locate

    found = locate(ws, run_id)
    local = list(found.paths) if found.location == "logs" else []
    if not found.segments:
        return "missing", None, []
    try:
        summary = verify_run(found, contracts, ws=ws)
    except TreasureError as exc:
        where = exc.path or ""
        if where and Path(where).is_absolute():
            where = ws.relative(Path(where))
        at = f"{where}:{exc.line}" if where and exc.line is not None else where
        problem = f"[{exc.code}] {exc.message}" + (f" ({at})" if at else "")
        return ("broken" if local else "archived-broken"), problem, local
    mismatches = court_mismatches(summary, court, shown=shown) if court is not None else []
    if mismatches:
        return ("broken" if local else "archived-broken"), mismatches[0], local
    return ("ok" if local else "archived"), None, local


def _verify_stored(reader: StoreReader, run_id: str, contracts: Contracts,
                   courts: list[tuple[str, Mapping[str, Any]]]) -> tuple[bytes, Any]:
    """The DB's log of the run as bytes, verified as a log, against the DB's hash columns and
    against every court report given; ``STORE_RESTORE_MISMATCH`` otherwise."""
    from treasure.eventlog import court_mismatches, verify_log_bytes

    row = reader.run(run_id)
    hashes: dict[Any, str] = dict(reader.iter_hashes(run_id))
    data = b"".join(line + b"\n" for _, line in reader.iter_lines(run_id))
    source = f"{reader.label}:run {run_id}"
    column_problems: list[str] = []

    def against_columns(event: dict[str, Any], _source: str, number: int) -> None:
        if not column_problems and hashes.get(event.get("seq")) != event.get("hash"):
            column_problems.append(f"line {number} (seq {event.get('seq')}) hashes to {event.get('hash')} but the "
                                   f"DB's events.hash holds {hashes.get(event.get('seq'))}")

    try:
        summary = verify_log_bytes(data, contracts, run_id=run_id, source=source, on_event=against_columns)
    except TreasureError as exc:
        raise StoreError("STORE_RESTORE_MISMATCH", f"the DB's copy of run {run_id} does not verify as a log: "
                         f"[{exc.code}] {exc.message}" + (f" at line {exc.line}" if exc.line else ""),
                         path=reader.label, field="events") from exc
    problems = list(column_problems)
    if summary.events != row.events or len(hashes) != row.events:
        problems.append(f"the DB's runs row counts {row.events} events, its events table {len(hashes)}, the "
                        f"rebuilt log {summary.events}")
    if summary.last_hash != row.last_hash:
        problems.append(f"the DB's runs.last_hash is {row.last_hash} but the rebuilt log's head is "
                        f"{summary.last_hash}")
    for shown, court in courts:
        problems += court_mismatches(summary, court, shown=shown)
    if problems:
        raise StoreError("STORE_RESTORE_MISMATCH", f"the DB's copy of run {run_id} is not the run's log: "
                         f"{problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                         path=reader.label, field="events")
    return data, summary


def _aside_folder(ws: Workspace, run_id: str) -> Path:
    base = ws.logs_dir.parent / BROKEN_DIR
    number = 1
    while (base / f"run_{run_id}.{number}").exists():
        number += 1
    return base / f"run_{run_id}.{number}"


def _write_checked(target: Path, data: bytes) -> None:
    """Write ``data`` next to ``target``, fsync, read back, compare, then rename atomically."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".restore.tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if Path(tmp_name).read_bytes() != data:
            raise StoreError("STORE_IO", f"the restored log read back differently from what was written "
                             f"({tmp_name}): the disk is failing", path=str(target))
        os.replace(tmp_name, target)
    except OSError as exc:
        raise StoreError("STORE_IO", f"cannot write {target.name}: {exc.strerror or exc}", path=str(target)) from exc
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    fsync_dir(target.parent)


def restore_log(ws: Workspace, db: Path | str, run_id: str, *, contracts: Contracts) -> RestoreLogResult:
    """Restore ``run_id``'s event log into logs/events/ from the DB ``db`` when the workspace's
    log is missing or does not verify (see the module's docstring for every guarantee)."""
    from treasure.file_locks import run_lock, workspace_log_lock

    check_run_id(run_id)
    with workspace_log_lock(ws), run_lock(ws, run_id):
        return _restore_locked(ws, db, run_id, contracts)


def _restore_locked(ws: Workspace, db: Path | str, run_id: str, contracts: Contracts) -> RestoreLogResult:
    from treasure.logfiles import live_name

    court, shown = _court_file(ws, run_id)
    state, problem, local = _workspace_state(ws, run_id, contracts, court, shown)
    result = RestoreLogResult(run_id, restored=False, workspace_log=state, problem=problem)
    if state == "ok":
        result.note = "the workspace's log verifies: nothing to restore"
        result.path = ws.relative(local[-1])
        return result
    if state == "archived":
        result.note = (f"the log is archived and verifies: nothing to restore from the DB; "
                       f"`treasure archive --restore {run_id}` copies it back into logs/events/")
        return result
    with StoreReader(db) as reader:
        courts: list[tuple[str, Mapping[str, Any]]] = []
        if court is not None:
            courts.append((shown, court))
        reader.run(run_id)  # STORE_RUN_UNKNOWN, naming the DB
        stored_court = reader.reports(run_id).get("court_report")
        if isinstance(stored_court, dict):
            courts.append((f"{reader.label}: court_report of run {run_id}", stored_court))
        if not courts:
            raise StoreError("STORE_RESTORE_MISMATCH", f"run {run_id} has no court report, neither in {shown} nor "
                             f"in {reader.label}, so its stored log cannot be tied to a finished run",
                             path=reader.label, field="reports",
                             hint=f"`treasure db export {run_id} -o FILE` still writes the stored lines to a "
                             "scratch file for inspection")
        data, summary = _verify_stored(reader, run_id, contracts, courts)
    result.checked_against = ["truth/ schemas and hash chain", "DB events.hash and runs.last_hash"] + \
        [name for name, _ in courts]
    target = ws.logs_dir / live_name(run_id)
    if local:
        aside = _aside_folder(ws, run_id)
        try:
            aside.mkdir(parents=True, exist_ok=False)
            for path in local:
                os.replace(path, aside / path.name)
                result.moved_aside.append(ws.relative(aside / path.name))
        except OSError as exc:
            raise StoreError("STORE_IO", f"cannot move the broken log of run {run_id} aside to "
                             f"{ws.relative(aside)}: {exc.strerror or exc}", path=ws.relative(aside)) from exc
        for folder in (aside, aside.parent, ws.logs_dir):
            fsync_dir(folder)
    ws.logs_dir.mkdir(parents=True, exist_ok=True)
    _write_checked(target, data)
    result.restored = True
    result.events = summary.events
    result.bytes = len(data)
    result.last_hash = summary.last_hash
    result.path = ws.relative(target)
    return result
