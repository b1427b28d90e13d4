"""``treasure sweep``: plan, skip points already done, execute, write evidence idempotently, report.

Layout (all under the workspace)::

    sweeps/<sweep_id>/sweep_report.json     canonical; one row per point, sorted by point id
    sweeps/<sweep_id>/sweep_report.html     ranking table and heat map
    sweeps/<sweep_id>/runs/<point_id>/      the point's own workspace evidence:
        spec/ssot.json  logs/events/run_<id>.jsonl  reports/runs/<id>/{court,eqs}_report.json, equity.npy
        point.json                          the point's report row, written last (the "done" mark)

A result whose files already exist with the same content is a no-op (a retried task, a re-run);
different content is refused (SWEEP_CONFLICT) unless ``force``. Content of the court report is
compared without its volatile fields (``timing``), everything else byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from treasure.canonical import canonical_bytes, drop_paths
from treasure.errors import RunError, TreasureError
from treasure.jsonio import atomic_write_bytes
from treasure.sweep.executor import ExecutorOptions, execute
from treasure.sweep.planner import Plan, PointTask, plan_sweep
from treasure.sweep.report import build_report, render_html, report_bytes
from treasure.sweep.spec import load_spec
from treasure.workspace import Workspace

Progress = Callable[[int, int], None]
VOLATILE = {"court_report.json": ["timing"]}


def evidence_sha256(rel: str, data: bytes) -> tuple[str, str]:
    """``(sha256, what was hashed)``: the court report without volatile fields, other files as bytes."""
    volatile = VOLATILE.get(rel.rsplit("/", 1)[-1])
    if volatile:
        try:
            doc = json.loads(data)
        except json.JSONDecodeError:
            pass
        else:
            return hashlib.sha256(canonical_bytes(drop_paths(doc, volatile))).hexdigest(), "jcs-stable"
    return hashlib.sha256(data).hexdigest(), "bytes"


@dataclass
class SweepOutcome:
    plan: Plan
    report: dict[str, Any]
    report_path: Path
    html_path: Path
    ran: int = 0  # points executed now
    reused: int = 0  # points found done in the sweep directory
    written: int = 0  # evidence files written (0 on an idempotent re-run)
    unchanged: int = 0  # evidence files already there with the same content
    stored: list[dict[str, Any]] = field(default_factory=list)


class SweepDir:
    def __init__(self, ws: Workspace, sweep_id: str, *, force: bool) -> None:
        self.ws = ws
        self.root = ws.root / "sweeps" / sweep_id
        self.force = force
        self.written = 0
        self.unchanged = 0

    def point_dir(self, point_id: str) -> Path:
        return self.root / "runs" / point_id

    def put(self, target: Path, data: bytes, rel: str) -> str:
        """Write ``data`` at ``target`` unless the same content is there; return its evidence hash."""
        sha, _ = evidence_sha256(rel, data)
        if target.is_file():
            existing, _ = evidence_sha256(rel, target.read_bytes())
            if existing == sha:
                self.unchanged += 1
                return sha
            if not self.force:
                raise RunError("SWEEP_CONFLICT", f"{self.ws.relative(target)} already holds different content",
                               path=self.ws.relative(target))
        atomic_write_bytes(target, data)
        self.written += 1
        return sha

    def done_row(self, task: PointTask) -> dict[str, Any] | None:
        """The point's row if it finished before and its evidence is intact, else ``None``."""
        marker = self.point_dir(task.point_id) / "point.json"
        if self.force or not marker.is_file():
            return None
        try:
            row = json.loads(marker.read_bytes())
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(row, dict) or row.get("point_id") != task.point_id:
            return None
        for item in row.get("evidence", []):
            path = self.ws.root / item["path"]
            if not path.is_file() or evidence_sha256(item["path"], path.read_bytes())[0] != item["sha256"]:
                return None
        return row

    def record(self, task: PointTask, result: dict[str, Any]) -> dict[str, Any]:
        if "fatal" in result:
            fatal = result["fatal"]
            raise RunError(fatal["code"], fatal["message"])
        base = self.point_dir(task.point_id)
        evidence = []
        for rel, data in result["files"].items():
            target = base / rel
            sha = self.put(target, data, rel)
            evidence.append({"path": self.ws.relative(target), "sha256": sha,
                             "hashed": evidence_sha256(rel, data)[1]})
        row = {**task.row_key(), "run_id": result["run_id"], "status": result["status"],
               "reason": result["reason"], "exit_code": result["exit_code"], "error": result["error"],
               "metrics": result["metrics"], "evidence": sorted(evidence, key=lambda e: e["path"])}
        self.put(base / "point.json", canonical_bytes(row) + b"\n", "point.json")
        return row


def run_sweep(ws: Workspace, spec_path: str | Path, options: ExecutorOptions, *, db: Path | str | None = None,
              force: bool = False, progress: Progress | None = None) -> SweepOutcome:
    spec = load_spec(ws, spec_path)
    plan = plan_sweep(ws, spec)
    sweep = SweepDir(ws, plan.sweep_id, force=force)
    ws.check_output_dirs()
    rows: dict[str, dict[str, Any]] = {}
    todo: list[PointTask] = []
    for task in plan.points:
        row = sweep.done_row(task)
        if row is None:
            todo.append(task)
        else:
            rows[task.point_id] = row
    reused = len(rows)
    total = len(plan.points)
    by_id = {t.point_id: t for t in plan.points}
    stored: list[dict[str, Any]] = []
    contracts = None
    if db is not None:
        from treasure.contracts import Contracts

        contracts = Contracts(ws.truth_dir)
    if progress is not None:
        progress(len(rows), total)

    def on_result(result: dict[str, Any]) -> None:
        task = by_id[result["point_id"]]
        row = sweep.record(task, result)
        rows[task.point_id] = row
        if db is not None and row["run_id"] is not None:
            stored.append(_store(ws, db, row, contracts))
        if progress is not None:
            progress(len(rows), total)

    execute(todo, plan.inputs, on_result, options)
    if db is not None:  # points reused from an earlier run are stored too (idempotent: no duplicates)
        for pid in sorted(rows):
            if rows[pid]["run_id"] is not None and by_id[pid] not in todo:
                stored.append(_store(ws, db, rows[pid], contracts))
    report = build_report(sweep_id=plan.sweep_id, name=spec.name, source=spec.source,
                          spec_sha256=hashlib.sha256(canonical_bytes(spec.document)).hexdigest(),
                          ssot_sha256=plan.ssot_sha256, metric=spec.rank_metric, order=spec.rank_order,
                          rows=list(rows.values()))
    _validate(ws, report)
    report_path = sweep.root / "sweep_report.json"
    data = report_bytes(report)  # derived from the rows: rewritten only when it changes
    if not report_path.is_file() or report_path.read_bytes() != data:
        atomic_write_bytes(report_path, data)
    html_path = sweep.root / "sweep_report.html"
    page = render_html(report, spec.heatmap).encode()
    if not html_path.is_file() or html_path.read_bytes() != page:
        atomic_write_bytes(html_path, page)
    return SweepOutcome(plan, report, report_path, html_path, ran=len(todo), reused=reused,
                        written=sweep.written, unchanged=sweep.unchanged, stored=stored)


def _store(ws: Workspace, db: Path | str, row: dict[str, Any], contracts: Any) -> dict[str, Any]:
    from treasure.store.ingest import ingest_log

    log = next(ws.root / e["path"] for e in row["evidence"] if "/logs/events/" in e["path"])
    court = next(ws.root / e["path"] for e in row["evidence"] if e["path"].endswith("court_report.json"))
    result = ingest_log(db, [log], contracts=contracts, reports_dir=court.parent)
    return {"point_id": row["point_id"], **result.to_dict()}


def _validate(ws: Workspace, report: dict[str, Any]) -> None:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    from treasure.contracts import error_field, first_error
    from treasure.errors import InternalError
    from treasure.workspace import bundle_dir

    path = ws.truth_dir / "sweep_report.schema.json"
    if not path.is_file():
        path = bundle_dir() / "truth" / "sweep_report.schema.json"
    found = first_error(Draft202012Validator(json.loads(path.read_text())), report)
    if found is not None:
        raise InternalError("REPORT_INVALID", f"sweep report: {found.message}", field=error_field(found))


__all__ = ["SweepOutcome", "run_sweep", "evidence_sha256", "TreasureError"]
