"""Replay: re-run a recorded run from its own evidence and prove the result is the same.

Everything a run depends on is in its run_start event: the SSOT snapshot, the seed, the strategy
(ref, params, source SHA-256), the dataset (path, SHA-256, whether it overrode the SSOT's) and the
adapter. :func:`replay` reads run_start from the DB or from the JSONL log, rebuilds those inputs in
a temporary workspace (so the original evidence is never touched), refuses inputs that changed
since the run (``REPLAY_DATASET_CHANGED``, ``REPLAY_STRATEGY_CHANGED``), runs the engine, and
compares the new event log and reports with the recorded ones canonically.

Only what legitimately differs is dropped before comparing, and the result lists it:
volatile report fields (wall-clock timing) always; the run id and everything derived from it
(hash chain, evidence paths) with ``new_run_id``; the SSOT file hash and the chain when the
exact SSOT file bytes are no longer available and the snapshot had to be re-serialised.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from treasure import __version__
from treasure.reports.court import without_circumstances
from treasure.compare import Comparison, compare_documents, compare_event_logs, write_diff
from treasure.contracts import Contracts
from treasure.engine import RunRequest, RunResult
from treasure.errors import DataError, EventLogError, RunError, TreasureError
from treasure.eventlog import read_events, verify_log
from treasure.jsonio import atomic_write_bytes, dumps_pretty, read_json
from treasure.logfiles import locate
from treasure.logread import open_segment
from treasure.workspace import Workspace, check_run_id
from treasure.digest import file_sha256

Source = Literal["db", "events"]
REPORTS = ("court_report", "eqs_report")


class ReplayError(TreasureError):
    """A run cannot be replayed: unknown, its evidence broken, or its inputs changed since."""


@dataclass
class Recorded:
    """A run's recorded evidence, gathered into one temporary folder."""

    run_id: str
    source: Source
    log: Path
    start: dict[str, Any]
    reports: dict[str, dict[str, Any]]
    events: int


@dataclass
class ReplayResult:
    run_id: str
    replay_run_id: str
    source: Source
    identical: bool
    events: int
    events_equal: bool
    reports_equal: dict[str, bool]
    dropped: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)
    diff_path: Path | None = None
    workspace: Path | None = None
    status: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["diff_path"] = str(self.diff_path) if self.diff_path else None
        out["workspace"] = str(self.workspace) if self.workspace else None
        return out




def _link(src: Path, dest: Path) -> None:
    """Put ``src`` at ``dest`` cheaply: a hard link where possible, else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


# gathering the recorded evidence ---------------------------------------------------------------
def _recorded_from_db(db_path: Path | str, run_id: str, scratch: Path) -> Recorded:
    from treasure.store.reader import StoreReader

    with StoreReader(db_path) as reader:
        row = reader.run(run_id)
        log = scratch / "recorded.jsonl"
        reader.export(run_id, log)
        reports = reader.reports(run_id)
    if row.status == "running":
        reports = {}
    return Recorded(run_id, "db", log, {}, reports, row.events)


def _recorded_from_events(ws: Workspace, run_id: str, scratch: Path) -> Recorded:
    """The run's log wherever :mod:`treasure.logfiles` finds it: its files in logs/events/ (strays
    such as ``run_<id>.jsonl.0`` are no part of it), else its members in the newest archive
    (read from the archive, so an archived run replays without restoring it)."""
    found = locate(ws, run_id)
    if not found.segments:
        raise ReplayError("RUN_UNKNOWN", f"run {run_id} has no event log in {ws.relative(ws.logs_dir)} or "
                          f"{ws.relative(ws.archive_dir)}", field="run_id")
    log = scratch / "recorded.jsonl"
    if len(found.segments) == 1 and found.location == "logs":
        with open_segment(found.segments[0], ws):  # refuses a device or a symlink out of the workspace
            pass
        assert found.segments[0].path is not None
        _link(found.segments[0].path, log)
    else:
        with open(log, "wb") as out:
            for segment in found.segments:
                with open_segment(segment, ws) as handle:
                    shutil.copyfileobj(handle, out)
    reports: dict[str, dict[str, Any]] = {}
    folder = ws.run_reports(run_id)
    if all((folder / f"{name}.json").is_file() for name in REPORTS):
        reports = {name: read_json(folder / f"{name}.json", code="REPORT_INVALID") for name in REPORTS}
    return Recorded(run_id, "events", log, {}, reports, 0)


def load_recorded(ws: Workspace, run_id: str, source: Source, scratch: Path, *,
                  db_path: Path | str | None = None) -> Recorded:
    """Gather the recorded log (verified) and reports of ``run_id`` from the DB or the log files."""
    if source == "db":
        if db_path is None:
            raise ReplayError("REPLAY_NO_DB", "--from db needs a database (--db, or persistence.db_path)")
        recorded = _recorded_from_db(db_path, run_id, scratch)
    elif source == "events":
        recorded = _recorded_from_events(ws, run_id, scratch)
    else:
        raise ReplayError("REPLAY_SOURCE", f"unknown source {source!r}: use db or events", field="--from")
    try:
        summary = verify_log([recorded.log], Contracts(ws.truth_dir))
    except EventLogError as exc:
        raise ReplayError("REPLAY_EVIDENCE_BROKEN", f"the recorded events of run {run_id} ({source}) do not "
                          f"verify: {exc}", hint="check the evidence (`treasure db check`, the events gate) "
                          "before replaying it") from exc
    recorded.events = summary.events
    recorded.start = next(iter(read_events(recorded.log)))
    if recorded.start.get("event_type") != "run_start":
        raise ReplayError("REPLAY_EVIDENCE_BROKEN", f"run {run_id}: the first event is not run_start")
    return recorded


# rebuilding the inputs ---------------------------------------------------------------------------
@dataclass
class _Inputs:
    ssot_path: Path
    ssot_exact: bool
    dataset_path: Path | None
    strategy: str
    seed: int
    adapter: str


def _build_workspace(ws: Workspace, recorded: Recorded, tmp: Path, *, notes: list[str]) -> tuple[Workspace, _Inputs]:
    payload = recorded.start["payload"]
    try:
        snapshot, seed = payload["ssot"], int(payload["seed"])
        strategy, dataset, adapter = payload["strategy"], payload["dataset"], payload["adapter"]
        ssot_sha = payload["ssot_sha256"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplayError("REPLAY_EVIDENCE_BROKEN", f"run {recorded.run_id}: run_start lacks {exc}",
                          field="payload") from exc
    target = Workspace(tmp / "ws")
    for part in ("spec", "truth", "fixtures"):
        source = ws.root / part
        if source.is_dir():
            shutil.copytree(source, target.root / part, copy_function=_copy_or_link,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "ssot*.json"))
            _owner_writable(target.root / part)
    target.ensure_dirs()
    # the SSOT: the exact recorded file if it is still around, else the snapshot re-serialised
    recorded_rel = (recorded.reports.get("court_report", {}).get("inputs", {}) or {}).get("ssot_path")
    candidates = []
    if isinstance(recorded_rel, str) and not os.path.isabs(recorded_rel):
        candidates.append((ws.root / recorded_rel, recorded_rel))
    candidates.append((ws.ssot_path, "spec/ssot.json"))
    ssot_exact = False
    ssot_path = target.ssot_path
    for candidate, rel in candidates:
        if candidate.is_file() and file_sha256(candidate) == ssot_sha:
            ssot_path = target.root / rel
            atomic_write_bytes(ssot_path, candidate.read_bytes(), durable=False)
            ssot_exact = True
            break
    if not ssot_exact:
        atomic_write_bytes(ssot_path, dumps_pretty(snapshot), durable=False)
        notes.append("the SSOT file the run read is gone or changed; replayed from the run_start snapshot "
                     "(same content), so the SSOT file hash and the hash chain are not compared")
    # the dataset: must still be byte-identical to what the run read
    recorded_path, recorded_sha = dataset.get("path"), dataset.get("sha256")
    original = Path(recorded_path) if os.path.isabs(recorded_path) else ws.root / recorded_path
    if not original.is_file():
        raise DataError("REPLAY_DATASET_MISSING", f"the dataset run {recorded.run_id} used is gone: {recorded_path}",
                        path=str(original), field="dataset.path")
    actual_sha = file_sha256(original)
    if actual_sha != recorded_sha:
        raise DataError("REPLAY_DATASET_CHANGED", f"the dataset changed since run {recorded.run_id}: "
                        f"{recorded_path} has SHA-256 {actual_sha[:12]}…, the run used {recorded_sha[:12]}…",
                        path=str(original), field="dataset.sha256")
    if os.path.isabs(recorded_path):
        dataset_path: Path | None = original
    else:
        placed = target.root / recorded_path
        if not placed.exists():
            _link(original, placed)
        dataset_path = placed if dataset.get("override") else None
    # a strategy given as a file relative to the workspace comes along
    ref = strategy["ref"]
    target_file, _, _ = ref.rpartition(":")
    if target_file.endswith(".py") and not os.path.isabs(target_file) and (ws.root / target_file).is_file():
        _link(ws.root / target_file, target.root / target_file)
    if payload.get("package_version") != __version__:
        notes.append(f"the run was recorded by treasure {payload.get('package_version')}, this is {__version__}")
    return target, _Inputs(ssot_path, ssot_exact, dataset_path, ref, seed, adapter)


def _owner_writable(root: Path) -> None:
    """copytree copies folder modes: from a read-only workspace (``chmod -R a-w``) the scratch
    folders would be read-only too, so the replay could not write its SSOT and, as a non-root
    user, nothing could delete them afterwards (the temp folder leaked). Scratch folders are ours."""
    for top, dirs, _files in sorted(os.walk(root)):
        for folder in [top, *(os.path.join(top, d) for d in dirs)]:
            mode = os.stat(folder, follow_symlinks=False).st_mode
            if not os.path.islink(folder) and (mode & 0o700) != 0o700:
                os.chmod(folder, (mode | 0o700) & 0o7777)


def remove_tree(root: Path) -> None:
    """Remove a scratch tree always: a folder we cannot write (copied read-only, see
    :func:`_owner_writable`) is made writable and the removal retried, never silently left."""
    def retry(func: Any, path: str, _exc: Any) -> None:
        parent = os.path.dirname(path)
        try:
            os.chmod(parent, 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
        except OSError:
            pass
        func(path)

    try:
        if sys.version_info >= (3, 12):
            shutil.rmtree(root, onexc=retry)
        else:
            shutil.rmtree(root, onerror=retry)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(root, ignore_errors=True)  # last resort; the replay's own error is what matters


def _copy_or_link(src: str, dest: str) -> str:
    _link(Path(src), Path(dest))
    return dest


# comparing ----------------------------------------------------------------------------------------
def _dropped(contracts: Contracts, *, renamed: bool, ssot_exact: bool) -> dict[str, list[str]]:
    events: list[str] = []
    court = list(contracts.volatile_paths("court_report"))
    eqs = list(contracts.volatile_paths("eqs_report"))
    if renamed:
        events += ["run_id", "prev", "hash"]
        court += ["run_id", "evidence.event_log", "evidence.report_dir", "evidence.equity_curve", "events.last_hash"]
        eqs += ["run_id"]
    if not ssot_exact:
        events += ["prev", "hash", "payload.ssot_sha256"]
        court += ["inputs.ssot_sha256", "inputs.ssot_path", "events.last_hash"]
    return {"events": sorted(set(events)), "court_report": sorted(set(court)), "eqs_report": sorted(set(eqs))}


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as left, open(b, "rb") as right:
        while True:
            x, y = left.read(1 << 20), right.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def replay(ws: Workspace, run_id: str, *, source: Source = "events", db_path: Path | str | None = None,
           new_run_id: str | None = None, keep: bool = False, allow_strategy_change: bool = False) -> ReplayResult:
    """Re-run ``run_id`` from its recorded inputs and compare; see the module docstring.

    Raises a coded error when the run is unknown, its evidence does not verify, or its dataset or
    strategy source changed since. Writes the full diff to ``evidence/diffs/replay_<run_id>.txt``
    of ``ws`` when the replay differs.
    """
    check_run_id(run_id)
    if new_run_id is not None:
        check_run_id(new_run_id)
    tmp = Path(tempfile.mkdtemp(prefix=f"treasure-replay-{run_id[:40]}-"))
    notes: list[str] = []
    try:
        scratch = tmp / "recorded"
        scratch.mkdir()
        recorded = load_recorded(ws, run_id, source, scratch, db_path=db_path)
        target, inputs = _build_workspace(ws, recorded, tmp, notes=notes)
        halt = recorded.reports.get("court_report", {}).get("reason")
        if halt == "emergency_flag":
            notes.append("the run was halted by the emergency flag, an outside input a replay cannot reproduce")
        if not recorded.reports:
            notes.append(f"no recorded reports ({'run not finished in the DB' if source == 'db' else 'none on disk'}); "
                         "comparing events only")
        replay_id = new_run_id or run_id
        request = RunRequest(workspace=target, ssot_path=inputs.ssot_path, dataset_path=inputs.dataset_path,
                             seed=inputs.seed, run_id=replay_id, strategy=inputs.strategy, adapter=inputs.adapter,
                             adapter_options=_adapter_options(recorded.start["payload"], target))
        result = _run_checked(request, recorded, allow_strategy_change, notes)
        contracts = Contracts(ws.truth_dir)
        dropped = _dropped(contracts, renamed=new_run_id is not None and new_run_id != run_id,
                           ssot_exact=inputs.ssot_exact)
        new_log = target.event_log(replay_id)
        if not dropped["events"] and _same_bytes(recorded.log, new_log):
            events_cmp = Comparison(True)
        else:
            events_cmp = compare_event_logs(recorded.log, new_log, drop=dropped["events"])
        report_cmps: dict[str, Comparison] = {}
        for name, doc in sorted(recorded.reports.items()):
            fresh = result.court if name == "court_report" else result.eqs
            if name == "court_report":  # approval state is a circumstance of the run, not an input
                doc, fresh = without_circumstances(doc), without_circumstances(fresh)
            report_cmps[name] = compare_documents(doc, fresh, volatile=dropped[name])
        identical = bool(events_cmp) and all(report_cmps.values())
        outcome = ReplayResult(run_id, replay_id, source, identical, recorded.events, bool(events_cmp),
                               {k: bool(v) for k, v in report_cmps.items()}, dropped, notes,
                               status=result.status, workspace=target.root if keep else None)
        if not identical:
            outcome.diff_path = _write_diff(ws, outcome, events_cmp, report_cmps)
        return outcome
    finally:
        if not keep:
            remove_tree(tmp)


def _adapter_options(start_payload: dict[str, Any], target: Workspace) -> dict[str, Any]:
    """Rebuild the adapter options run_start recorded; a recorded file must still hash the same."""
    options: dict[str, Any] = {}
    for key, value in sorted((start_payload.get("adapter_options") or {}).items()):
        if isinstance(value, dict) and {"path", "sha256"} <= set(value):
            path = target.resolve_inside(value["path"], field=f"adapter_options.{key}")
            if not path.is_file() or file_sha256(path) != value["sha256"]:
                raise DataError("REPLAY_DATASET_CHANGED", f"{value['path']} (adapter option {key}) changed or "
                                "is missing since the run", path=value["path"], field=f"adapter_options.{key}",
                                hint="restore the recorded file (its SHA-256 is in run_start) to replay")
            options[key] = str(path)
        else:
            options[key] = value
    return options


def _run_checked(request: RunRequest, recorded: Recorded, allow_strategy_change: bool,
                 notes: list[str]) -> RunResult:
    from treasure.engine import execute_run, prepare_run

    prep = prepare_run(request)
    wanted = recorded.start["payload"]["strategy"].get("source_sha256")
    if prep.strategy.source_sha256 != wanted:
        message = (f"the source of strategy {prep.strategy.ref} changed since run {recorded.run_id} "
                   f"(SHA-256 {prep.strategy.source_sha256[:12]}…, the run used {str(wanted)[:12]}…)")
        if not allow_strategy_change:
            raise RunError("REPLAY_STRATEGY_CHANGED", message, path=prep.strategy.source_path,
                           field="strategy.source_sha256")
        notes.append(message + "; replayed anyway (--allow-strategy-change)")
    return execute_run(prep)


def _write_diff(ws: Workspace, outcome: ReplayResult, events_cmp: Comparison,
                report_cmps: dict[str, Comparison]) -> Path:
    parts = [f"# replay of run {outcome.run_id} from {outcome.source} as {outcome.replay_run_id}",
             f"# events: {'equal' if events_cmp else 'DIFFER'} ({outcome.events} recorded)"]
    for name, cmp in report_cmps.items():
        parts.append(f"# {name}: {'equal' if cmp else 'DIFFER'}")
    for kind, paths in outcome.dropped.items():
        if paths:
            parts.append(f"# ignored in {kind}: {', '.join(paths)}")
    parts.extend(f"# note: {note}" for note in outcome.notes)
    parts.append("")
    if not events_cmp:
        parts += ["## events", events_cmp.full]
    for name, cmp in report_cmps.items():
        if not cmp:
            parts += [f"## {name}", cmp.full]
    return write_diff(ws.evidence_dir / "diffs", f"replay_{outcome.run_id}", Comparison(False, "", "\n".join(parts)))
