"""The run as a service: sinks, the loop, and writing the evidence (the engine's only file I/O
besides the event sinks themselves).

A file-evidence run's life (issue 17 items 2, 4b, 6):

1. it loads the operator's signing key (:func:`treasure.keys.load_signing_key`) *before* any
   evidence exists: a key that is configured but missing, unreadable or inside the workspace
   refuses the run with its coded error (``KEY_*``, exit 2) and writes nothing. No key configured
   means "ledger only" (the manifest is still recorded in ``evidence/anchors.jsonl``);
2. it takes :func:`treasure.file_locks.run_lock` on its run id before its log is opened and holds it
   until its evidence is committed: a second writer of the same id gets ``RUN_IN_PROGRESS``
   naming the holder's pid. In-memory runs (``evidence="memory"``) write nothing and take no lock;
3. ``--overwrite`` of an existing run writes the new log and reports *aside*
   (``logs/.aside/run_<id>.jsonl``, ``reports/.aside/<id>/``) and swaps them in at the commit
   point, so a kill before the swap leaves the previous complete run (log, reports, latest
   copies) untouched; leftovers of a killed overwrite are removed by the next run of that id;
4. the commit point: reports written, swapped in, then anchored
   (:func:`treasure.anchor.anchor_run`: manifest, signature, ledger line), then the latest copies
   ``reports/{eqs,court}_report.json``. A failure to anchor ends the run ``error`` (its coded
   error and exit code) although its court report, written just before, says how the simulation
   ended: the anchor gate then reports the run's missing manifest.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from treasure import faults
from treasure.anchor import anchor_run
from treasure.engine.evidence import build_reports
from treasure.engine.loop import BarLoop
from treasure.engine.request import PreparedRun, RunRequest, RunResult, contracts_for, prepare_run
from treasure.errors import EXIT_DEGRADED, EXIT_HALTED, EXIT_OK, InternalError, RunError, TreasureError, TreasureIOError
from treasure.events import EventBus, JsonlSink, MemorySink
from treasure.jsonio import atomic_write_bytes, atomic_write_json, dumps_pretty, fsync_dir
from treasure.keys import SigningKey, load_signing_key
from treasure.file_locks import run_lock
from treasure.workspace import Workspace

#: Where an ``--overwrite`` writes the new run until its commit point (outside logs/events/ and
#: reports/runs/, so no log reader, gate or archive sees a half-written run).
ASIDE_LOGS = ("logs", ".aside")
ASIDE_REPORTS = ("reports", ".aside")


def run(request: RunRequest) -> RunResult:
    """Prepare and execute a run; the library entry point behind ``treasure run``."""
    with faults.active(request.faults):
        return execute_run(prepare_run(request))


class _Paths:
    """Where this run writes its log and reports, and where they end up at commit."""

    def __init__(self, ws: Workspace, run_id: str, aside: bool) -> None:
        self.ws, self.run_id, self.aside = ws, run_id, aside
        self.final_log = ws.event_log(run_id)
        self.final_reports = ws.run_reports(run_id)
        self.aside_log = ws.root.joinpath(*ASIDE_LOGS) / self.final_log.name
        self.aside_reports = ws.root.joinpath(*ASIDE_REPORTS) / run_id
        self.trash_reports = ws.root.joinpath(*ASIDE_REPORTS) / f"{run_id}.old"
        self.log = self.aside_log if aside else self.final_log
        self.reports = self.aside_reports if aside else self.final_reports

    def clean_leftovers(self) -> None:
        """Remove what a killed overwrite of this id left aside (called under the run lock)."""
        if self.aside_log.is_file():
            self.aside_log.unlink()
        for leftover in (self.aside_reports, self.trash_reports):
            shutil.rmtree(leftover, ignore_errors=True)

    def swap_in(self) -> None:
        """Replace the previous run's reports and log by this run's (the overwrite's commit)."""
        old_parts = [p for p in self.ws.log_parts(self.run_id) if p != self.final_log]
        if self.final_reports.exists():
            os.replace(self.final_reports, self.trash_reports)
        # a previous run killed before its reports left no reports/runs/ folder to swap into
        self.final_reports.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.aside_reports, self.final_reports)
        os.replace(self.aside_log, self.final_log)
        for part in old_parts:  # rotated parts of the previous run's chain
            part.unlink()
        for folder in (self.final_reports.parent, self.final_log.parent):
            fsync_dir(folder)
        shutil.rmtree(self.trash_reports, ignore_errors=True)
        for folder in (self.aside_log.parent, self.aside_reports.parent):
            try:
                folder.rmdir()  # only when empty: another run id may be writing aside too
            except OSError:
                pass


def execute_run(prep: PreparedRun) -> RunResult:
    """Run the bar loop and write the evidence. Never leaves a run without run_end and reports."""
    with faults.active(prep.request.faults):
        return _execute(prep)


def _execute(prep: PreparedRun) -> RunResult:
    ws, req = prep.workspace, prep.request
    if req.evidence == "memory":
        return _run_and_commit(prep, None, None)
    ws.check_output_dirs()
    key = load_signing_key(workspace=ws.root)  # a broken configured key refuses before any evidence
    ws.ensure_dirs()
    with run_lock(ws, prep.run_id):
        final = _Paths(ws, prep.run_id, aside=False)
        previous = bool(ws.log_parts(prep.run_id)) or final.final_reports.exists()
        paths = _Paths(ws, prep.run_id, aside=req.overwrite and previous)
        paths.clean_leftovers()
        if paths.aside:
            paths.aside_log.parent.mkdir(parents=True, exist_ok=True)
            paths.aside_reports.parent.mkdir(parents=True, exist_ok=True)
        return _run_and_commit(prep, paths, key)


def _run_and_commit(prep: PreparedRun, paths: _Paths | None, key: SigningKey | None) -> RunResult:
    ws, req = prep.workspace, prep.request
    in_memory = paths is None
    contracts = contracts_for(ws.truth_dir)
    log_path = ws.event_log(prep.run_id) if paths is None else paths.log
    bus = EventBus(prep.run_id, [], check=contracts.check_emitted if req.validate_events else None)
    loop = BarLoop(prep, bus)  # builds the adapter first: if that refuses, no evidence exists yet
    memory: MemorySink | None = None
    if in_memory:
        memory = MemorySink(keep_events=False)
        bus.sinks.append(memory)
    else:
        try:
            bus.sinks.append(JsonlSink(log_path, fault_points=True))
        except FileExistsError:
            raise RunError("RUN_EXISTS", f"run {prep.run_id} already exists", field="run_id") from None
    bus.sinks.extend(factory(prep) for factory in req.extra_sinks)
    wall_start = time.perf_counter()  # treasure: allow-nondeterminism duration goes to a volatile field
    error: TreasureError | None = None
    try:
        try:
            status, reason = loop.run()
        except TreasureError:
            raise
        except Exception as exc:  # converted: user strategy bug (exit 2) or our own bug (exit 1)
            raise loop.classify(exc) from exc
    except TreasureError as exc:
        error = exc
        status, reason = "error", exc.code
        loop.record_error(exc)
    wall_ms = (time.perf_counter() - wall_start) * 1000.0  # treasure: allow-nondeterminism volatile
    try:
        bus.flush(durable=True)
    except TreasureError as exc:
        error = error or exc
        status, reason = "error", exc.code
    finally:
        bus.close()
    try:
        court, eqs, equity = build_reports(loop, status=status, reason=reason, bus=bus, wall_ms=wall_ms,
                                           contracts=contracts)
    except TreasureError as exc:  # a report that breaks its own schema is a bug in Treasure
        raise InternalError("INTERNAL", f"the run's reports do not match their schemas: {exc}",
                            path=ws.relative(log_path)) from exc
    report_dir = ws.run_reports(prep.run_id)
    if paths is None:
        assert memory is not None
        return _result(prep, status, error, court, eqs, log_path, report_dir, log_lines=tuple(memory.lines),
                       report_bytes={name: dumps_pretty(doc) for name, doc in
                                     (("eqs_report.json", eqs), ("court_report.json", court))},
                       equity_bytes=equity)
    try:
        try:
            faults.fire("report_write")
        except OSError as exc:
            raise TreasureIOError("IO_ERROR", f"could not write the reports: {exc.strerror or exc}",
                                  path=ws.relative(report_dir)) from exc
        atomic_write_bytes(paths.reports / "equity.npy", equity)
        for name, doc in (("eqs_report.json", eqs), ("court_report.json", court)):
            atomic_write_json(paths.reports / name, doc)
        if paths.aside:
            try:
                paths.swap_in()
            except OSError as exc:
                raise TreasureIOError("IO_ERROR", f"could not swap the new run in: {exc.strerror or exc}",
                                      path=ws.relative(report_dir)) from exc
        try:
            anchor_run(ws.root, prep.run_id, key)
        except OSError as exc:
            raise TreasureIOError("IO_ERROR", f"could not anchor the run: {exc.strerror or exc}",
                                  path=ws.relative(report_dir)) from exc
        for name, doc in (("eqs_report.json", eqs), ("court_report.json", court)):
            atomic_write_json(ws.reports_dir / name, doc)
    except TreasureError as exc:
        error = error or exc
        status = "error"
    return _result(prep, status, error, court, eqs, paths.final_log, report_dir)


def _result(prep: PreparedRun, status: str, error: TreasureError | None, court: dict[str, Any],
            eqs: dict[str, Any], log_path: Path, report_dir: Path, **memory: Any) -> RunResult:
    if error is not None:
        exit_code = error.exit_code
    elif status == "halted":
        exit_code = EXIT_HALTED
    elif status == "degraded":
        exit_code = EXIT_DEGRADED
    else:
        exit_code = EXIT_OK
    return RunResult(prep.run_id, status, exit_code, court, eqs, log_path, report_dir, error, **memory)
