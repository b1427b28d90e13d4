"""Fresh engine runs for gates, in a temporary copy of the workspace.

A gate never writes into the operator's workspace: the run's inputs (spec/, truth/, fixtures/ and
any file the SSOT points at elsewhere: the dataset, a ``file.py:Class`` strategy) are copied into
a temporary folder, and the run writes its evidence there. Runs are deterministic and their
evidence is not modified afterwards, so :class:`RunCache` shares one run per parameter set across
a session.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from treasure.engine import RunResult
    from treasure.workspace import Workspace

#: Keys a ``treasure_run`` parameter set may hold (``treasure_run_factory`` accepts more).
RUN_PARAMS = ("seed", "strategy", "dataset", "run_id", "adapter")
_COPIED = ("spec", "truth", "fixtures")


def workspace_of(result: "RunResult") -> "Workspace":
    """The (temporary) workspace a run wrote its evidence into: ``<root>/reports/runs/<id>``."""
    from treasure.workspace import Workspace

    return Workspace(Path(result.report_dir).resolve().parents[2])


def _inside(root: Path, relative: str) -> Path | None:
    candidate = Path(relative)
    if candidate.is_absolute():
        return None
    from treasure.workspace import is_inside  # the one containment rule

    resolved = (root / candidate).resolve()
    return resolved if resolved != root and is_inside(root, resolved) else None


def _copy_file(source_root: Path, dest_root: Path, relative: str) -> str | None:
    """Copy ``relative`` (a path inside the source workspace) to the same place in the copy."""
    source = _inside(source_root, relative)
    if source is None or not source.is_file():
        return None
    rel = source.relative_to(source_root)
    target = dest_root / rel
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return rel.as_posix()


def _strategy_file(ref: Any) -> str | None:
    if isinstance(ref, str) and ":" in ref:
        target = ref.rsplit(":", 1)[0]
        return target if target.endswith(".py") else None
    return None


def copy_workspace(source: "Workspace", dest: Path) -> "Workspace":
    """Copy a workspace's run inputs into ``dest`` (which must not exist or be empty)."""
    from treasure.workspace import Workspace

    dest.mkdir(parents=True, exist_ok=True)
    for part in _COPIED:
        folder = source.root / part
        if folder.is_dir():
            shutil.copytree(folder, dest / part, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    try:  # files the SSOT names outside the copied folders; a broken SSOT is the run's to report
        raw = json.loads(source.ssot_path.read_bytes())
        dataset = raw.get("dataset", {}).get("path")
        if isinstance(dataset, str):
            _copy_file(source.root, dest, dataset)
        strategy = _strategy_file(raw.get("strategy", {}).get("name"))
        if strategy:
            _copy_file(source.root, dest, strategy)
    except (OSError, ValueError, AttributeError):
        pass
    return Workspace(dest.resolve())


def start_run(source: "Workspace", dest: Path, *, seed: int | None = None, strategy: str | None = None,
              dataset: str | Path | None = None, run_id: str | None = None, adapter: str | None = None,
              ssot: Mapping[str, Any] | None = None, edit: Callable[["Workspace"], None] | None = None,
              **request: Any) -> "RunResult":
    """Copy ``source`` into ``dest`` and run the engine there; TreasureError propagates.

    ``dataset`` and a ``file.py:Class`` ``strategy`` are relative to the source workspace (copied
    to the same relative place, so evidence keeps workspace-relative paths) or absolute. ``ssot``
    replaces spec/ssot.json in the copy; ``edit(workspace)`` may change anything in the copy
    before the run (to build broken inputs). Other keywords go to :class:`treasure.engine.RunRequest`.
    """
    from treasure.engine import RunRequest, run
    from treasure.jsonio import atomic_write_bytes, dumps_pretty

    ws = copy_workspace(source, dest)
    dataset_path: Path | None = None
    if dataset is not None:
        relative = _copy_file(source.root, ws.root, str(dataset))
        dataset_path = ws.root / relative if relative else Path(dataset).resolve()
    if strategy is not None and _strategy_file(strategy):
        _copy_file(source.root, ws.root, _strategy_file(strategy) or "")
    if ssot is not None:
        atomic_write_bytes(ws.ssot_path, dumps_pretty(dict(ssot)), durable=False)
    if edit is not None:
        edit(ws)
    return run(RunRequest(workspace=ws, seed=seed, strategy=strategy, dataset_path=dataset_path,
                          run_id=run_id, adapter=adapter, **request))


def param_key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, default=str)


def detached(result: "RunResult") -> "RunResult":
    """A copy whose report dicts a test may mutate without affecting the cached run."""
    return replace(result, court=copy.deepcopy(result.court), eqs=copy.deepcopy(result.eqs))


@dataclass
class RunCache:
    """One run per parameter set per session; also caches each run's verified events."""

    runs: dict[str, "RunResult"] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)  # refused inputs: fail fast, once
