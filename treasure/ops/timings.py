"""Wall-clock durations, kept out of the canonical evidence: the runbook's "find slow operations".

The runbook asks ``jq 'select(.payload.duration_ms > 1000)'`` of the event log, but event logs are
canonical and byte-identical between runs of the same inputs, so no event may carry a duration.
Durations live beside them instead, in a non-canonical stream per run:

    logs/timings/run_<run_id>.jsonl    one JSON object a line, appended by ``treasure run``

Each line is ``{"schema_version": 1, "run_id", "phase", "duration_ms", "started_at", "source": "run"}``
with the phases the CLI can see around the engine: ``run`` (the whole ``treasure run``: prepare,
simulate, reports and the DB commit), ``simulate`` (the bar loop, as the engine measured it for the
court report's volatile ``timing`` field), ``prepare+reports+db`` (the rest). Running the same run id
again appends new lines: the stream is a history, never rewritten. Gate durations come from the gate
history (``evidence/gates_history.jsonl``, written by the gates plugin) and are shown alongside.

The wall clock is read in exactly one function, :func:`wall_clock`, the marked exception for the
determinism scanner; nothing canonical depends on it.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

from treasure.ops import OpsError
from treasure.workspace import Workspace, check_run_id

SCHEMA_VERSION = 1
GATE_HISTORY = "gates_history.jsonl"


def wall_clock() -> tuple[float, str]:
    """``(monotonic seconds, UTC ISO time)``: the only wall-clock read of the timing stream."""
    now = _dt.datetime.now(_dt.timezone.utc)  # treasure: allow-nondeterminism timing stream (non-canonical)
    return time.perf_counter(), now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # treasure: allow-nondeterminism timing stream


@dataclass(frozen=True)
class Timing:
    source: str          # run | gate
    name: str            # run id (source run) or gate name (source gate)
    phase: str
    duration_ms: float
    started_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def timings_dir(ws: Workspace) -> Path:
    return ws.root / "logs" / "timings"


def timings_path(ws: Workspace, run_id: str) -> Path:
    return timings_dir(ws) / f"run_{check_run_id(run_id)}.jsonl"


class RunTimer:
    """Collects the phases of one ``treasure run``; :meth:`write` appends them (never raises)."""

    def __init__(self) -> None:
        self.start, self.started_at = wall_clock()
        self.phases: list[tuple[str, float, str]] = []

    def elapsed_ms(self) -> float:
        return (wall_clock()[0] - self.start) * 1000.0

    def add(self, phase: str, duration_ms: float, started_at: str | None = None) -> None:
        self.phases.append((phase, max(float(duration_ms), 0.0), started_at or self.started_at))

    def write(self, ws: Workspace, run_id: str) -> Path | None:
        """Append the phases to logs/timings/run_<id>.jsonl (O_APPEND); None if it could not be
        written (timings are diagnostics: losing them must never fail a run)."""
        try:
            path = timings_path(ws, run_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            data = b"".join(orjson.dumps({"schema_version": SCHEMA_VERSION, "run_id": run_id, "phase": phase,
                                          "duration_ms": round(ms, 3), "started_at": at, "source": "run"},
                                         option=orjson.OPT_SORT_KEYS) + b"\n"
                            for phase, ms, at in self.phases)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return path
        except (OSError, ValueError):
            return None


def run_timings(ws: Workspace, run_id: str | None = None) -> Iterator[Timing]:
    """Every recorded phase of one run (or of all runs), in file order; bad lines are skipped."""
    folder = timings_dir(ws)
    if run_id is not None:
        paths = [timings_path(ws, run_id)]
    else:
        paths = sorted(folder.glob("run_*.jsonl")) if folder.is_dir() else []
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        for line in raw.splitlines():
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            ms = doc.get("duration_ms") if isinstance(doc, dict) else None
            if isinstance(ms, (int, float)) and isinstance(doc.get("phase"), str):
                yield Timing("run", str(doc.get("run_id")), doc["phase"], float(ms), doc.get("started_at"))


def gate_timings(ws: Workspace) -> Iterator[Timing]:
    """Gate durations from the gate history (evidence/gates_history.jsonl), if the gates plugin
    wrote one: one timing per gate per session."""
    path = ws.evidence_dir / GATE_HISTORY
    try:
        raw = path.read_bytes()
    except OSError:
        return
    for line in raw.splitlines():
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict):
            continue
        seconds = doc.get("duration_s")
        if isinstance(seconds, (int, float)) and isinstance(doc.get("gate"), str):
            yield Timing("gate", doc["gate"], str(doc.get("outcome", "")), float(seconds) * 1000.0,
                         doc.get("finished_at") if isinstance(doc.get("finished_at"), str) else None)


def query(ws: Workspace, run_id: str | None = None, *, slower_than_ms: float | None = None,
          gates: bool = True) -> list[Timing]:
    """Timings of a run (or every run), plus gate durations unless ``gates`` is False or a run is
    named, filtered to those above ``slower_than_ms``; in recorded order."""
    if slower_than_ms is not None and slower_than_ms < 0:
        raise OpsError("QUERY_INVALID", f"--slower-than must be >= 0 ms (got {slower_than_ms:g})",
                       field="--slower-than", hint="treasure timings [RUN_ID] --slower-than 1000")
    found = list(run_timings(ws, run_id))
    if gates and run_id is None:
        found += list(gate_timings(ws))
    if slower_than_ms is not None:
        found = [t for t in found if t.duration_ms > slower_than_ms]
    return found


__all__ = ["RunTimer", "Timing", "gate_timings", "query", "run_timings", "timings_path", "wall_clock"]
