"""The sweep file: load, validate against truth/sweep_spec.schema.json, and check what the schema
cannot (ranges, dataset hashes). Every refusal is a coded :class:`TreasureError` naming the field."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from treasure.contracts import error_field, first_error
from treasure.errors import ConfigError
from treasure.workspace import Workspace

SCHEMA = "sweep_spec.schema.json"
DEFAULT_MAX_POINTS = 100_000
DEFAULT_RANK = {"metric": "sharpe", "order": "desc"}


@dataclass(frozen=True)
class DatasetRef:
    path: str  # workspace-relative, as in the sweep file
    sha256: str
    interval_ms: int | None
    calendar: str | None


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep file. ``grids`` maps each strategy to ``{param: [values...]}``."""

    document: dict[str, Any]
    source: str  # workspace-relative path of the sweep file
    name: str
    ssot: str
    strategies: tuple[tuple[str, dict[str, list[Any]]], ...]
    datasets: tuple[DatasetRef, ...]
    seeds: tuple[int, ...]
    rank_metric: str
    rank_order: str
    heatmap: dict[str, str] | None
    max_points: int


def load_spec(ws: Workspace, path: str | Path) -> SweepSpec:
    """Read and check the sweep file at ``path`` (relative to the current directory, or absolute)."""
    target = ws.resolve_cli(path, field="SPEC")
    source = ws.relative(target)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        raise ConfigError("SWEEP_SPEC_INVALID", f"sweep file {source} does not exist", path=source,
                          hint="pass a sweep file such as spec/sweep.example.json") from None
    except OSError as exc:
        raise ConfigError("SWEEP_SPEC_INVALID", f"cannot read the sweep file: {exc.strerror or exc}",
                          path=source) from exc
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise ConfigError("SWEEP_SPEC_INVALID", f"the sweep file is not valid JSON: {exc}", path=source,
                          line=line) from None
    return check_spec(ws, document, source=source)


def schema_validator(ws: Workspace) -> Draft202012Validator:
    schema_path = ws.truth_dir / SCHEMA
    if not schema_path.is_file():  # workspaces made before sweeps existed: the packaged schema
        from treasure.workspace import bundle_dir

        schema_path = bundle_dir() / "truth" / SCHEMA
    return Draft202012Validator(json.loads(schema_path.read_text()))


def check_spec(ws: Workspace, document: Any, *, source: str) -> SweepSpec:
    found = first_error(schema_validator(ws), document)
    if found is not None:
        raise ConfigError("SWEEP_SPEC_INVALID", f"sweep file: {found.message}", path=source,
                          field=error_field(found))
    grids: list[tuple[str, dict[str, list[Any]]]] = []
    for i, strategy in enumerate(document["strategies"]):
        params = {}
        for key in sorted(strategy.get("params", {})):
            params[key] = expand_values(strategy["params"][key], field=f"strategies.{i}.params.{key}",
                                        source=source)
        grids.append((strategy["name"], params))
    seeds_doc = document["seeds"]
    seeds = expand_values(seeds_doc, field="seeds", source=source)
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ConfigError("SWEEP_SPEC_INVALID", "seeds must be non-negative integers", path=source, field="seeds")
    datasets = []
    for i, entry in enumerate(document["datasets"]):
        path = ws.resolve_inside(entry["path"], field=f"datasets.{i}.path", source=source)
        if not path.is_file():
            raise ConfigError("SWEEP_SPEC_INVALID", f"dataset {entry['path']} does not exist", path=source,
                              field=f"datasets.{i}.path", hint="paths are workspace-relative")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != entry["sha256"]:
            raise ConfigError("SWEEP_DATASET_SHA", f"dataset {entry['path']} has SHA-256 {actual[:12]}…, the sweep "
                              f"file pins {entry['sha256'][:12]}…", path=source, field=f"datasets.{i}.sha256")
        datasets.append(DatasetRef(ws.relative(path), actual, entry.get("interval_ms"), entry.get("calendar")))
    ssot = document.get("ssot", "spec/ssot.json")
    ssot_path = ws.resolve_inside(ssot, field="ssot", source=source)
    if not ssot_path.is_file():
        raise ConfigError("SWEEP_SPEC_INVALID", f"base SSOT {ssot} does not exist", path=source, field="ssot")
    rank = {**DEFAULT_RANK, **document.get("rank_by", {})}
    return SweepSpec(document=document, source=source, name=document["name"], ssot=ws.relative(ssot_path),
                     strategies=tuple(grids), datasets=tuple(datasets), seeds=tuple(seeds),
                     rank_metric=rank["metric"], rank_order=rank["order"], heatmap=document.get("heatmap"),
                     max_points=int(document.get("max_points", DEFAULT_MAX_POINTS)))


def expand_values(value: Any, *, field: str, source: str) -> list[Any]:
    """A grid (list, kept in order without duplicates), a range (stop inclusive) or a constant."""
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if not any(type(item) is type(o) and item == o for o in out):
                out.append(item)
        return out
    if isinstance(value, dict):
        return expand_range(value, field=field, source=source)
    return [value]


def expand_range(rng: dict[str, Any], *, field: str, source: str, limit: int = 1_000_000) -> list[Any]:
    """``start, start+step, ...`` up to and including ``stop``, in exact decimal arithmetic (no float
    drift: 0.1 steps give 0.1, 0.2, 0.3). Integers stay integers when all three are integers."""
    start, stop, step = rng["start"], rng["stop"], rng["step"]
    if step <= 0 or start > stop:
        raise ConfigError("SWEEP_RANGE", f"range start={start} stop={stop} step={step} is empty or endless",
                          path=source, field=field)
    integral = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop, step))
    d_start, d_stop, d_step = (Decimal(repr(v)) for v in (start, stop, step))
    count = int((d_stop - d_start) / d_step) + 1
    if count > limit:
        raise ConfigError("SWEEP_TOO_LARGE", f"range expands to {count} values (limit {limit})", path=source,
                          field=field)
    values: list[Any] = []
    for i in range(count):
        d = d_start + d_step * i
        values.append(int(d) if integral else float(d))
    return values
