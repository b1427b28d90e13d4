"""The run as a service: sinks, the loop, and writing the evidence (the engine's only file I/O
besides the event sinks themselves)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from treasure import faults
from treasure.engine.evidence import build_reports
from treasure.engine.loop import BarLoop
from treasure.engine.request import PreparedRun, RunRequest, RunResult, contracts_for, prepare_run
from treasure.errors import EXIT_DEGRADED, EXIT_HALTED, EXIT_OK, InternalError, RunError, TreasureError, TreasureIOError
from treasure.events import EventBus, JsonlSink, MemorySink
from treasure.jsonio import atomic_write_bytes, atomic_write_json, dumps_pretty
from treasure.workspace import Workspace


def run(request: RunRequest) -> RunResult:
    """Prepare and execute a run; the library entry point behind ``treasure run``."""
    with faults.active(request.faults):
        return execute_run(prepare_run(request))


def _clean_previous(ws: Workspace, run_id: str) -> None:
    for stale in ws.log_parts(run_id):
        stale.unlink()
    shutil.rmtree(ws.run_reports(run_id), ignore_errors=True)


def execute_run(prep: PreparedRun) -> RunResult:
    """Run the bar loop and write the evidence. Never leaves a run without run_end and reports."""
    with faults.active(prep.request.faults):
        return _execute(prep)


def _execute(prep: PreparedRun) -> RunResult:
    ws, req = prep.workspace, prep.request
    in_memory = req.evidence == "memory"
    if not in_memory:
        ws.check_output_dirs()
        ws.ensure_dirs()
        if req.overwrite:
            _clean_previous(ws, prep.run_id)
    contracts = contracts_for(ws.truth_dir)
    log_path = ws.event_log(prep.run_id)
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
    if memory is not None:
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
        atomic_write_bytes(report_dir / "equity.npy", equity)
        for name, doc in (("eqs_report.json", eqs), ("court_report.json", court)):
            atomic_write_json(report_dir / name, doc)
        for name, doc in (("eqs_report.json", eqs), ("court_report.json", court)):
            atomic_write_json(ws.reports_dir / name, doc)
    except TreasureError as exc:
        error = error or exc
        status = "error"
    return _result(prep, status, error, court, eqs, log_path, report_dir)


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
