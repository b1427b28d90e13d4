"""The emergency flag: ``treasure halt`` sets it, ``treasure resume`` clears it once gates pass.

The runbook's emergency halt was ``pkill`` plus ``echo ... > data/emergency.flag``. Here no process
needs killing: the engine checks the flag before the first bar and at every bar, and a run that
sees it emits a CRITICAL ``halt`` event, cancels its open orders and ends ``halted`` (exit code 3).
The flag is written atomically (a reader sees no flag or the whole flag), and every halt and
resume is appended to data/emergency.log (one JSON object a line) so the record survives the flag.

Resuming follows the runbook's rollback steps: it refuses unless the e2 and determinism gates pass
(``treasure verify e2 determinism``, run in a child process against this workspace).
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import orjson

from treasure.errors import TreasureIOError
from treasure.jsonio import atomic_write_json, fsync_dir
from treasure.ops import OpsError
from treasure.ops.evidence import read_gates, read_json_doc
from treasure.workspace import Workspace

FLAG_STATUS = "EMERGENCY_HALT"
RESUME_GATES = ("e2", "determinism")
GATE_TIMEOUT_S = 1800


@dataclass(frozen=True)
class FlagState:
    """The flag as found: ``halted`` whenever the file exists, even if it is not valid JSON
    (the engine halts on any flag file, so the tools must agree)."""

    halted: bool
    reason: str | None = None
    time: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"halted": self.halted, "reason": self.reason, "time": self.time, "problem": self.problem}


def read_flag(ws: Workspace) -> FlagState:
    doc, problem = read_json_doc(ws.emergency_flag)
    if problem == "absent":
        return FlagState(False)
    if problem is not None:
        return FlagState(True, problem=f"flag file is {problem} (still halts runs)")
    if not isinstance(doc, dict):
        return FlagState(True, problem="flag file is not a JSON object (still halts runs)")
    return FlagState(True, reason=_text(doc.get("reason")), time=_text(doc.get("time")))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _now() -> str:
    moment = _dt.datetime.now(_dt.timezone.utc)  # treasure: allow-nondeterminism operator metadata (halt time)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def append_log(ws: Workspace, entry: dict[str, Any]) -> None:
    """Append one JSON line to data/emergency.log (O_APPEND, fsynced: the record must survive)."""
    ws.data_dir.mkdir(parents=True, exist_ok=True)
    path = ws.data_dir / "emergency.log"
    line = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) + b"\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise TreasureIOError("IO_ERROR", f"cannot append to emergency.log: {exc.strerror or exc}",
                              path=str(path)) from exc


def halt(ws: Workspace, reason: str) -> tuple[FlagState, bool]:
    """Set the flag (``(state, created)``); an existing flag is kept, the new reason logged."""
    reason = (reason or "").strip()
    if not reason:
        raise OpsError("HALT_REASON", "a halt needs a reason", field="--reason")
    when = _now()
    current = read_flag(ws)
    if current.halted:
        append_log(ws, {"action": "halt", "reason": reason, "time": when, "note": "already halted"})
        return current, False
    atomic_write_json(ws.emergency_flag, {"status": FLAG_STATUS, "reason": reason, "time": when})
    append_log(ws, {"action": "halt", "reason": reason, "time": when})
    return read_flag(ws), True


# ------------------------------------------------------------------------------------------
# resume
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateRun:
    """Outcome of ``treasure verify`` for the resume gates."""

    exit_code: int
    statuses: dict[str, str]
    output_tail: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and all(s in ("passed", "unreported") for s in self.statuses.values())

    def to_dict(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "gates": self.statuses, "passed": self.passed}


def verify_available() -> bool:
    """True when this installation has the ``treasure verify`` command (the gates plugin)."""
    return importlib.util.find_spec("treasure.cli.commands.verify") is not None


def run_gates(ws: Workspace, gates: Sequence[str] = RESUME_GATES) -> GateRun:
    """Run ``treasure verify GATE...`` in a child process against ``ws``."""
    if not verify_available():
        raise OpsError("RESUME_GATES_UNAVAILABLE", "cannot check the gates: `treasure verify` is not available",
                       field="gates")
    command = [sys.executable, "-m", "treasure", "verify", *gates, "--workspace", str(ws.root)]
    before = read_gates(ws).mtime
    try:
        done = subprocess.run(command, cwd=ws.root, capture_output=True, text=True, timeout=GATE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        return GateRun(124, {g: "timeout" for g in gates}, f"timed out after {exc.timeout:.0f} s")
    except OSError as exc:
        raise OpsError("RESUME_GATES_UNAVAILABLE", f"cannot start `treasure verify`: {exc}") from exc
    report = read_gates(ws)
    fresh = report.ran and report.mtime != before  # a report left by an earlier session says nothing
    statuses = {g: (report.status_of(g) if fresh else None) or "unreported" for g in gates}
    output = (done.stdout + done.stderr).strip().splitlines()
    return GateRun(done.returncode, statuses, "\n".join(output[-15:]))


def resume(ws: Workspace, *, gate_runner: Callable[[Workspace], GateRun] | None = None) -> tuple[FlagState, GateRun | None]:
    """Clear the flag if the resume gates pass; ``(flag as it was, gate run)``. No flag: no-op."""
    current = read_flag(ws)
    if not current.halted:
        return current, None
    outcome = (gate_runner or run_gates)(ws)
    if not outcome.passed:
        append_log(ws, {"action": "resume_refused", "time": _now(), "gates": outcome.statuses,
                        "exit_code": outcome.exit_code})
        failing = ", ".join(f"{g} {s}" for g, s in outcome.statuses.items() if s != "passed") or \
            f"verify exited {outcome.exit_code}"
        raise OpsError("RESUME_GATES_FAILED", f"resume refused: gates not passing ({failing})\n"
                       + _indent(outcome.output_tail), field="gates")
    append_log(ws, {"action": "resume", "time": _now(), "gates": outcome.statuses,
                    "cleared_reason": current.reason})
    try:
        os.unlink(ws.emergency_flag)
    except FileNotFoundError:
        pass
    fsync_dir(ws.data_dir)
    return current, outcome


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
