"""One point, run on a worker: a pure function of its inputs (safe to retry after a worker dies).

The worker builds a throw-away workspace from the content-addressed inputs (checked against their
SHA-256), runs the engine through its public API, and returns the evidence as bytes. It never
touches the client's paths; the client writes the evidence into the sweep directory.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from treasure.sweep.planner import PointTask, manifest_sha256

#: evidence of a run, relative to its workspace: the point's SSOT, the event log, the run's reports
EVIDENCE_DIRS = ("logs/events", "reports/runs")


def run_point(task: PointTask, bundle: dict[str, bytes], dataset: bytes) -> dict[str, Any]:
    """Run ``task``; return its outcome and evidence (``files``: relative path -> bytes).

    A run that the engine refuses or that fails is a result (status ``error`` with its code), not
    an exception: the same inputs give the same row. Inputs that do not match their hashes give
    ``{"fatal": ...}`` (a broken cluster, not a property of the point).
    """
    if hashlib.sha256(dataset).hexdigest() != task.dataset.sha256 or manifest_sha256(bundle) != task.bundle_sha256:
        return {"point_id": task.point_id, "fatal": {
            "code": "SWEEP_INPUT_MISMATCH",
            "message": f"point {task.point_id}: the worker's inputs do not match their SHA-256"}}
    from treasure.sweep.planner import code_sha256

    if task.code_sha256 and task.code_sha256 != code_sha256():
        return {"point_id": task.point_id, "fatal": {
            "code": "SWEEP_INPUT_MISMATCH",
            "message": f"point {task.point_id}: the worker runs other Treasure code than the client (source "
                       f"SHA-256 {code_sha256()[:12]} here, {task.code_sha256[:12]} on the client)"}}
    from treasure.engine import RunRequest, run
    from treasure.errors import TreasureError
    from treasure.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="treasure-sweep-") as tmp:
        root = Path(tmp)
        for rel, data in bundle.items():
            _write(root / rel, data)
        _write(root / task.dataset.path, dataset)
        _write(root / "spec" / "ssot.json", task.ssot)
        ws = Workspace(root.resolve())
        outcome: dict[str, Any] = {"point_id": task.point_id}
        try:
            result = run(RunRequest(workspace=ws))
        except TreasureError as exc:  # refused before anything was written
            outcome.update(run_id=None, status="error", reason=exc.code, exit_code=exc.exit_code,
                           error={"code": exc.code, "message": exc.message, "field": exc.field},
                           metrics=None, files={"spec/ssot.json": task.ssot})
            return outcome
        err = result.error
        outcome.update(run_id=result.run_id, status=result.status, reason=(result.court or {}).get("reason"),
                       exit_code=result.exit_code,
                       error=None if err is None else {"code": err.code, "message": err.message, "field": err.field},
                       metrics=(result.court or {}).get("metrics"))
        files = {"spec/ssot.json": task.ssot}
        for folder in EVIDENCE_DIRS:
            base = root / folder
            if base.is_dir():
                for path in sorted(base.rglob("*")):
                    if path.is_file():
                        files[path.relative_to(root).as_posix()] = path.read_bytes()
        outcome["files"] = dict(sorted(files.items()))
        return outcome


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
