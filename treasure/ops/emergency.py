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
    (the engine halts on any flag file, so the tools must agree). ``source`` says who set it
    (``operator`` for ``treasure halt``, ``recon``, ...; ``hand-written`` for the runbook's
    ``echo '{"status":"EMERGENCY_HALT"}' > data/emergency.flag``). A flag without a reason or time
    borrows them from data/emergency.log (the runbook's ``Reason: ...`` lines or our JSON lines)
    and from the file's modification time, each marked as such."""

    halted: bool
    reason: str | None = None
    time: str | None = None
    problem: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"halted": self.halted, "reason": self.reason, "time": self.time, "problem": self.problem,
                "source": self.source}

    def describe(self) -> str:
        """``since TIME: REASON`` with whatever is known (never ``since ?: None``)."""
        since = f"since {self.time}" if self.time else "since an unknown time"
        what = self.reason or self.problem or "no reason recorded (add one to data/emergency.log)"
        by = f" [set by {self.source}]" if self.source and self.source != "operator" else ""
        return f"{since}: {what}{by}"


def read_flag(ws: Workspace) -> FlagState:
    doc, problem = read_json_doc(ws.emergency_flag)
    if problem == "absent":
        return FlagState(False)
    if problem is not None:
        return _fill(ws, FlagState(True, problem=f"flag file is {problem} (still halts runs)", source="hand-written"))
    if not isinstance(doc, dict):
        return _fill(ws, FlagState(True, problem="flag file is not a JSON object (still halts runs)",
                                   source="hand-written"))
    source = _text(doc.get("source")) or ("operator" if doc.get("reason") and doc.get("time") else "hand-written")
    return _fill(ws, FlagState(True, reason=_text(doc.get("reason")), time=_text(doc.get("time")), source=source))


def _fill(ws: Workspace, state: FlagState) -> FlagState:
    """Reason and time of a flag that lacks them, from data/emergency.log and the file's mtime."""
    reason, when = state.reason, state.time
    if reason is None:
        reason = _logged_reason(ws)
        if reason is not None:
            reason = f"{reason} (from data/emergency.log)"
    if when is None:
        try:
            mtime = ws.emergency_flag.stat().st_mtime
        except OSError:
            mtime = None
        if mtime is not None:
            stamp = _dt.datetime.fromtimestamp(mtime, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            when = f"{stamp} (file time)"
    return FlagState(state.halted, reason, when, state.problem, state.source)


def _logged_reason(ws: Workspace) -> str | None:
    """The last halt reason in data/emergency.log: a runbook line ``Reason: ...`` or a JSON halt."""
    try:
        lines = (ws.data_dir / "emergency.log").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        text = line.strip()
        if text.lower().startswith("reason:"):
            return text[len("reason:"):].strip() or None
        if text.startswith("{"):
            try:
                entry = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            if isinstance(entry, dict) and entry.get("action") == "resume":
                return None  # the last logged halt was resumed: its reason is not this flag's
            if isinstance(entry, dict) and entry.get("action") == "halt" and entry.get("reason"):
                return str(entry["reason"])
    return None


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


def set_flag(ws: Workspace, reason: str, source: str) -> tuple[FlagState, bool]:
    """Set the emergency flag with a reason, on behalf of ``source`` (``operator`` for
    ``treasure halt``; ``recon`` above ``max_mismatches``; any producer). Returns ``(state, created)``;
    an existing flag is kept and the new reason logged. A flag set by a producer other than the
    operator also raises a CRITICAL alert (code EMERGENCY_HALT), pending until ``treasure ack``."""
    reason = (reason or "").strip()
    if not reason:
        raise OpsError("HALT_REASON", "a halt needs a reason", field="--reason")
    source = (source or "").strip() or "operator"
    when = _now()
    current = read_flag(ws)
    if current.halted:
        append_log(ws, {"action": "halt", "reason": reason, "time": when, "source": source,
                        "note": "already halted"})
        return current, False
    atomic_write_json(ws.emergency_flag, {"status": FLAG_STATUS, "reason": reason, "time": when, "source": source})
    append_log(ws, {"action": "halt", "reason": reason, "time": when, "source": source})
    if source != "operator":
        from treasure.ops.alerts import raise_alert

        raise_alert(ws, "EMERGENCY_HALT", "CRITICAL", "emergency", reason, None,
                    key={"flag": when, "source": source, "reason": reason},
                    title=f"emergency halt set by {source}: {reason}",
                    action="trading is stopped: notify the trading desk, fix the cause, `treasure resume`, "
                    "then `treasure ack`")
    return read_flag(ws), True


def halt(ws: Workspace, reason: str) -> tuple[FlagState, bool]:
    """``treasure halt``: :func:`set_flag` on behalf of the operator."""
    return set_flag(ws, reason, "operator")


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
