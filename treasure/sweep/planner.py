"""Expand a sweep file into points with stable ids, and gather the inputs they need by content hash.

A point is (strategy, parameters, dataset, seed) over the base SSOT; its id is a digest of exactly
those inputs, so the same point has the same id in every sweep, on every machine, in any order.
Workers get inputs as bytes keyed by SHA-256 (:class:`Inputs`), never paths of the client.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treasure.canonical import canonical_bytes
from treasure.errors import ConfigError
from treasure.sweep.spec import DatasetRef, SweepSpec
from treasure.workspace import Workspace


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs besides the content-addressed inputs (small, picklable)."""

    point_id: str
    strategy: str
    params: dict[str, Any]  # the effective parameters (the SSOT's, overridden by the grid's)
    dataset: DatasetRef
    seed: int
    ssot: bytes  # the point's spec/ssot.json
    bundle_sha256: str  # spec/truth files: Inputs.bundles[bundle_sha256]
    #: the client's Treasure source (:func:`code_sha256`): a worker running other code refuses the task
    #: (its evidence would differ); not part of the point id or the report
    code_sha256: str = ""

    def row_key(self) -> dict[str, Any]:
        return {"point_id": self.point_id, "strategy": self.strategy, "params": self.params,
                "dataset": {"path": self.dataset.path, "sha256": self.dataset.sha256}, "seed": self.seed}


@dataclass(frozen=True)
class Inputs:
    """Content-addressed inputs: bundle sha -> {workspace-relative path: bytes}, dataset sha -> bytes."""

    bundles: dict[str, dict[str, bytes]]
    datasets: dict[str, bytes]


@dataclass(frozen=True)
class Plan:
    sweep_id: str
    spec: SweepSpec
    points: tuple[PointTask, ...]  # sorted by point id
    inputs: Inputs
    ssot_sha256: str


def bundle_files(ws: Workspace, strategy_refs: list[str]) -> dict[str, bytes]:
    """The parent's contracts (truth/), config schema and any workspace strategy files, as bytes."""
    files: dict[str, bytes] = {}
    schema = ws.config_schema_path
    files[ws.relative(schema)] = schema.read_bytes()
    for path in sorted(ws.truth_dir.rglob("*.json")):
        if path.is_file():
            files[ws.relative(path)] = path.read_bytes()
    for ref in strategy_refs:
        target, sep, _ = ref.rpartition(":")
        if sep and target.endswith(".py"):
            path = ws.resolve_inside(target, field="strategies.name")
            if not path.is_file():
                raise ConfigError("SWEEP_SPEC_INVALID", f"strategy file {target} does not exist",
                                  field="strategies.name")
            files[ws.relative(path)] = path.read_bytes()
    return dict(sorted(files.items()))


def manifest_sha256(files: dict[str, bytes]) -> str:
    return sha256(canonical_bytes({path: sha256(data) for path, data in files.items()}))


def plan_sweep(ws: Workspace, spec: SweepSpec) -> Plan:
    ssot_path = ws.resolve_inside(spec.ssot, field="ssot", source=spec.source)
    ssot_bytes = ssot_path.read_bytes()
    try:
        base = json.loads(ssot_bytes)
    except json.JSONDecodeError as exc:
        raise ConfigError("SWEEP_SPEC_INVALID", f"the base SSOT {spec.ssot} is not valid JSON: {exc}",
                          path=spec.source, field="ssot") from None
    files = bundle_files(ws, [name for name, _ in spec.strategies])
    bundle_sha = manifest_sha256(files)
    ssot_sha = sha256(canonical_bytes(base))
    base_strategy = base.get("strategy", {})
    points: dict[str, PointTask] = {}
    for name, grid in spec.strategies:
        defaults = dict(base_strategy.get("params", {})) if name == base_strategy.get("name") else {}
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            params = {**defaults, **dict(zip(keys, combo))}
            for dataset in spec.datasets:
                for seed in spec.seeds:
                    task = _point(base, ssot_sha, bundle_sha, name, params, dataset, seed)
                    points.setdefault(task.point_id, task)
                    if len(points) > spec.max_points:
                        raise ConfigError("SWEEP_TOO_LARGE", f"the sweep expands to more than {spec.max_points} "
                                          "points", path=spec.source, field="max_points")
    datasets = {d.sha256: ws.resolve_inside(d.path).read_bytes() for d in spec.datasets}
    for d in spec.datasets:
        if sha256(datasets[d.sha256]) != d.sha256:  # changed since the spec was checked
            raise ConfigError("SWEEP_DATASET_SHA", f"dataset {d.path} changed while the sweep was planned",
                              path=spec.source, field="datasets")
    sweep_id = f"{spec.name}-" + sha256(canonical_bytes({
        "spec": spec.document, "ssot": ssot_sha, "bundle": bundle_sha}))[:12]
    ordered = tuple(points[k] for k in sorted(points))
    return Plan(sweep_id, spec, ordered, Inputs({bundle_sha: files}, datasets), ssot_sha)


def _point(base: dict[str, Any], ssot_sha: str, bundle_sha: str, strategy: str, params: dict[str, Any],
           dataset: DatasetRef, seed: int) -> PointTask:
    params = dict(sorted(params.items()))
    point_id = sha256(canonical_bytes({
        "ssot": ssot_sha, "bundle": bundle_sha, "strategy": strategy, "params": params,
        "dataset": dataset.sha256, "interval_ms": dataset.interval_ms, "calendar": dataset.calendar,
        "seed": seed}))[:16]
    doc = json.loads(json.dumps(base))  # a deep copy keeping the SSOT's key order
    section = doc.setdefault("dataset", {})
    section.update(path=dataset.path, sha256=dataset.sha256)
    if dataset.interval_ms is not None:
        section["interval_ms"] = dataset.interval_ms
    if dataset.calendar is not None:
        section["calendar"] = dataset.calendar
    doc["strategy"] = {"name": strategy, "params": params}
    doc.setdefault("run", {})["seed"] = seed
    ssot = (json.dumps(doc, indent=2) + "\n").encode()
    return PointTask(point_id, strategy, params, dataset, seed, ssot, bundle_sha, code_sha256())


_CODE_SHA: list[str] = []


def code_sha256() -> str:
    """SHA-256 over this process's ``treasure`` package sources (path and bytes of every ``.py``),
    computed once per process: two processes that loaded different code disagree."""
    if not _CODE_SHA:
        import treasure

        root = Path(treasure.__file__).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        _CODE_SHA.append(digest.hexdigest())
    return _CODE_SHA[0]
