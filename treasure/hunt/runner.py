"""Running a generated case in a scratch workspace and collecting its evidence.

A :class:`Scratch` is one workspace (``treasure.workspace.init_workspace``) reused for every case
of a hunt: the case's dataset is written where its SSOT points, the SSOT next to the workspace's
own, and the engine runs with a fixed run id and ``overwrite``, so evidence never accumulates.
What came out is an :class:`Outcome`: a run (complete, halted or ended in error) with its
:class:`Evidence`, a coded refusal before anything was written, or a crash (an exception that is
not a :class:`~treasure.errors.TreasureError`, with its traceback).

Events are not schema-checked while the run emits them (``validate_events=False``): the
``event_log`` invariant verifies every line of the written log afterwards, envelope and payload,
with validators compiled once per process instead of once per run.
"""

from __future__ import annotations

import io
import os
import traceback
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from treasure.errors import TreasureError
from treasure.hunt.case import Case
from treasure.workspace import Workspace, init_workspace

if TYPE_CHECKING:  # pragma: no cover
    from treasure.engine import RunResult

RUN_ID = "case"
SSOT_NAME = "case.json"


@dataclass(frozen=True, eq=False)
class Evidence:
    """What one run left on disk, read back as bytes and parsed documents (or, for an in-memory
    run, the same bytes as it returned them: ``log_paths`` is then empty)."""

    run_id: str
    truth_dir: Path
    log_paths: tuple[Path, ...]
    log_bytes: bytes
    court: dict[str, Any]
    eqs: dict[str, Any]
    equity_bytes: bytes

    @classmethod
    def load(cls, workspace: Workspace, run_id: str) -> "Evidence":
        parts = tuple(workspace.log_parts(run_id))
        report_dir = workspace.run_reports(run_id)
        return cls(
            run_id=run_id,
            truth_dir=workspace.truth_dir,
            log_paths=parts,
            log_bytes=b"".join(p.read_bytes() for p in parts),
            court=orjson.loads((report_dir / "court_report.json").read_bytes()),
            eqs=orjson.loads((report_dir / "eqs_report.json").read_bytes()),
            equity_bytes=(report_dir / "equity.npy").read_bytes(),
        )

    @classmethod
    def from_result(cls, workspace: Workspace, result: "RunResult") -> "Evidence":
        """The evidence of an in-memory run (``evidence="memory"``): the same bytes and documents
        the files would hold (reports parsed from the bytes that would have been written)."""
        reports = result.report_bytes or {}
        return cls(
            run_id=result.run_id,
            truth_dir=workspace.truth_dir,
            log_paths=(),
            log_bytes=result.log_bytes,
            court=orjson.loads(reports["court_report.json"]),
            eqs=orjson.loads(reports["eqs_report.json"]),
            equity_bytes=result.equity_bytes or b"",
        )

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """Parsed events (no verification: the ``event_log`` invariant does that)."""
        return [orjson.loads(line) for line in self.log_bytes.splitlines() if line.strip()]

    @cached_property
    def equity(self) -> np.ndarray:
        """The per-bar curve (bar_idx, t_ms, close, qty, cash, equity) from equity.npy."""
        return np.load(io.BytesIO(self.equity_bytes), allow_pickle=False)

    def of_type(self, *event_types: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event_type"] in event_types]

    @property
    def status(self) -> str:
        return str(self.court.get("status"))


@dataclass(frozen=True, eq=False)
class Outcome:
    """How a run of a case ended.

    ``status`` is the run's (complete, halted, error), or ``refused`` (a coded error before any
    evidence was written), ``raised`` (a coded error escaped after evidence was started: the
    engine promises never to do that), or ``crashed`` (anything that is not a TreasureError).
    """

    status: str
    error: dict[str, Any] | None = None
    traceback: str | None = None
    evidence: Evidence | None = None
    where: str = field(default="in-process")
    missing: str | None = None  # why a finished run's evidence could not be read back

    @property
    def code(self) -> str | None:
        return None if self.error is None else str(self.error.get("code"))

    def to_wire(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "traceback": self.traceback}


def scratch_parent() -> str | None:
    """tmpfs when there is one: checking cases fsyncs thousands of tiny files then thrown away."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def stage_strategy(ref: str, base_dir: Path | None, workspace: Workspace) -> str:
    """The reference to put in a scratch workspace's SSOT for ``ref``.

    Names and ``module:Class`` pass through. A ``file.py:Class`` file (relative to ``base_dir``,
    or absolute) is copied into the scratch workspace, at the same relative path when it has one,
    since the engine only loads strategy files named in an SSOT from inside its workspace.
    """
    target, sep, cls = ref.rpartition(":")
    if not sep or not target.endswith(".py"):
        return ref
    source = Path(target) if Path(target).is_absolute() else (Path(base_dir or ".") / target)
    relative = Path(target)
    if relative.is_absolute() or ".." in relative.parts:
        relative = Path("_strategies") / relative.name
    dest = workspace.root / relative
    if source.is_file():
        data = source.read_bytes()
        if not dest.is_file() or dest.read_bytes() != data:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    return f"{relative.as_posix()}:{cls}"


def resolve_strategy_ref(ref: str, base_dir: Path | None) -> str:
    """Make a ``file.py:Class`` reference absolute (against ``base_dir``) so it loads from any
    workspace; names and ``module:Class`` references are returned unchanged."""
    target, sep, cls = ref.rpartition(":")
    if not sep or not target.endswith(".py") or base_dir is None or Path(target).is_absolute():
        return ref
    return f"{(Path(base_dir) / target).resolve()}:{cls}"


def run_staged(workspace: Workspace, ssot_path: Path, run_id: str = RUN_ID, *,
               evidence: str = "files") -> Outcome:
    """Run the engine on already-staged inputs; never raises for what the run does.
    ``evidence="memory"``: nothing is written; the evidence is what the run returned."""
    from treasure.engine import RunRequest, execute_run, prepare_run

    request = RunRequest(workspace=workspace, ssot_path=ssot_path, run_id=run_id, overwrite=True,
                         validate_events=False, evidence=evidence)
    try:
        prep = prepare_run(request)
    except TreasureError as exc:
        return Outcome("refused", error=exc.to_dict())
    except Exception:  # noqa: BLE001 - the point is to catch what should not escape
        return Outcome("crashed", traceback=traceback.format_exc())
    try:
        result = execute_run(prep)
    except TreasureError as exc:
        return Outcome("raised", error=exc.to_dict())
    except Exception:  # noqa: BLE001
        return Outcome("crashed", traceback=traceback.format_exc())
    if result.log_lines is not None:
        found: Evidence | None = Evidence.from_result(workspace, result)
        missing = None
    else:
        found, missing = load_evidence(workspace, result.run_id)
    return Outcome(result.status, error=result.error.to_dict() if result.error else None, evidence=found,
                   missing=missing)


def load_evidence(workspace: Workspace, run_id: str) -> tuple[Evidence | None, str | None]:
    """The run's evidence, or ``None`` and what was missing (a finished run must leave it all)."""
    try:
        return Evidence.load(workspace, run_id), None
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


class Scratch:
    """A throwaway workspace for running generated cases, one after another."""

    def __init__(self, root: str | Path, *, evidence: str = "files") -> None:
        root = Path(root)
        self.workspace = Workspace.at(root) if (root / "spec").is_dir() else init_workspace(root)
        self.evidence = evidence

    @property
    def root(self) -> Path:
        return self.workspace.root

    def stage(self, case: Case, *, base_dir: Path | None = None, clear_flag: bool = True) -> Path:
        """Write the case's dataset and SSOT into the workspace; return the SSOT's path.
        ``clear_flag`` removes a leftover emergency flag (a hunt's runs must not inherit one)."""
        ws = self.workspace
        ssot = dict(case.ssot)
        strategy = dict(ssot["strategy"])
        strategy["name"] = stage_strategy(strategy["name"], base_dir, ws)
        ssot["strategy"] = strategy
        data_path = ws.resolve_inside(ssot["dataset"]["path"], field="dataset.path")
        data_path.parent.mkdir(parents=True, exist_ok=True)
        data_path.write_bytes(case.dataset.csv)
        ssot_path = ws.spec_dir / SSOT_NAME
        ssot_path.write_bytes(orjson.dumps(ssot, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        if clear_flag:
            ws.emergency_flag.unlink(missing_ok=True)
        return ssot_path

    def run(self, case: Case, *, base_dir: Path | None = None, run_id: str = RUN_ID) -> Outcome:
        return run_staged(self.workspace, self.stage(case, base_dir=base_dir), run_id, evidence=self.evidence)
