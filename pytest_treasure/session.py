"""Per-session gate results: recorded where tests run, shipped from xdist workers, merged once.

Each process that runs tests records one :class:`TestRecord` per gate test from its reports. An
xdist worker sends its records to the controller through ``config.workeroutput`` when it finishes;
the controller merges them in ``pytest_testnodedown`` and alone records the session (into the
workspace's gate history, :mod:`treasure.gate_history`). Records are keyed by node id, so the
merged result does not depend on which worker ran what.

The state is created on first use (:func:`get_state`): a session that never meets a gate, a
Treasure option or a Treasure fixture never builds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_treasure.plugin import NOTE_KEY, STATE_KEY, WIRE_KEY

__all__ = ["GateSession", "TestRecord", "get_state", "workspace_root", "NOTE_KEY", "STATE_KEY", "WIRE_KEY"]
_RANK = {"passed": 0, "skipped": 1, "failed": 2}


@dataclass
class TestRecord:
    """What one gate test did: its worst phase outcome, why, and how long it took (volatile)."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    nodeid: str
    gate: str
    outcome: str = "passed"
    message: str | None = None
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class GateSession:
    """State of one pytest session, kept in ``config.stash``."""

    workspace_root: Path
    selected: tuple[str, ...] | None
    update_goldens: bool = False
    item_gates: dict[str, str | None] = field(default_factory=dict)
    records: dict[str, TestRecord] = field(default_factory=dict)
    goldens_updated: set[str] = field(default_factory=set)
    report: dict[str, Any] | None = None       # this session's gate entries (see report.build_report)
    report_path: Path | None = None            # gates.json, once the session is recorded
    history_path: Path | None = None           # gates_history.jsonl, once the session is recorded
    write_error: str | None = None             # why the session could not be recorded
    not_recorded: str | None = None            # why the session was deliberately not recorded

    def record(self, report: pytest.TestReport, gate: str) -> None:
        rec = self.records.get(report.nodeid)
        if rec is None:
            rec = self.records[report.nodeid] = TestRecord(report.nodeid, gate)
        rec.duration_s += float(report.duration or 0.0)
        rec.notes = [str(value) for key, value in report.user_properties if key == NOTE_KEY]
        outcome, message = _outcome(report)
        if outcome is None:
            return
        if _RANK[outcome] > _RANK[rec.outcome] or (outcome == rec.outcome and rec.message is None):
            rec.outcome, rec.message = outcome, message

    def has_results(self) -> bool:
        """Whether a gate report is due: a gate test ran, or gates were asked for by name."""
        return bool(self.records) or self.selected is not None

    def to_wire(self) -> dict[str, Any]:
        return {"records": [asdict(r) for r in self.records.values()],
                "goldens": sorted(self.goldens_updated)}

    def merge(self, wire: dict[str, Any]) -> None:
        for raw in wire.get("records", ()):
            rec = TestRecord(**raw)
            self.records[rec.nodeid] = rec
        self.goldens_updated.update(wire.get("goldens", ()))


def _outcome(report: pytest.TestReport) -> tuple[str | None, str | None]:
    if report.passed:
        return ("passed", None) if report.when == "call" else (None, None)
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return "skipped", f"xfail: {report.wasxfail}" if report.wasxfail else "xfail"
        return "skipped", _skip_reason(report.longrepr)
    where = "" if report.when == "call" else f"error in {report.when}: "
    return "failed", where + _failure_message(report.longrepr)


def _skip_reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason


def _failure_message(longrepr: Any) -> str:
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr)
    text = text.strip()
    if text.startswith("Failed: "):
        text = text[len("Failed: "):]
    return text[:4000]


def workspace_root(config: pytest.Config) -> Path:
    """The workspace the session's gates check: ``--treasure-workspace``, else the
    ``treasure_workspace`` ini value (relative to the ini file), else the rootdir."""
    option = config.getoption("treasure_workspace", default=None)
    if option:
        return (config.invocation_params.dir / Path(option).expanduser()).resolve()
    ini = config.getini("treasure_workspace")
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / Path(str(ini)).expanduser()).resolve()
    return config.rootpath.resolve()


def get_state(config: pytest.Config) -> GateSession:
    """The session's gate state, created on first use."""
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        selected = config.getoption("treasure_gates", default=None)
        state = GateSession(workspace_root(config), tuple(sorted(set(selected))) if selected else None,
                            update_goldens=bool(config.getoption("treasure_update_goldens", default=False)))
        config.stash[STATE_KEY] = state
    return state  # type: ignore[no-any-return]
