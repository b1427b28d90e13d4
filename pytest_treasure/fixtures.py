"""What the Treasure fixtures do. The fixtures themselves (names, scopes, docstrings shown by
``pytest --fixtures``) are declared in :mod:`pytest_treasure.plugin` as thin wrappers that import
this module on first use, so a session that uses none of them never imports it, nor the engine,
numpy or jsonschema behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, NoReturn

import pytest

from pytest_treasure.fresh_runs import RUN_PARAMS, RunCache, detached, param_key, start_run, workspace_of
from pytest_treasure.session import get_state

if TYPE_CHECKING:  # pragma: no cover
    from treasure.config import Config
    from treasure.contracts import Contracts
    from treasure.engine import RunResult
    from treasure.workspace import Workspace

    from pytest_treasure.assertions import Canonical
    from pytest_treasure.invariants import InvariantChecker


def _fail(exc: Any, what: str) -> NoReturn:
    """Fail (outside any ``except`` block, so no chained traceback) with the coded message."""
    render = getattr(exc, "render", None)
    pytest.fail(f"{what}:\n{render() if render else exc}", pytrace=False)


def optional_workspace(config: pytest.Config) -> "Workspace | None":
    """The session's workspace, or ``None`` when its root is not a Treasure workspace."""
    from treasure.errors import TreasureError
    from treasure.workspace import Workspace

    try:
        return Workspace.at(get_state(config).workspace_root)
    except TreasureError:
        return None


def workspace(config: pytest.Config) -> "Workspace":
    from treasure.errors import TreasureError
    from treasure.workspace import Workspace

    try:
        return Workspace.at(get_state(config).workspace_root)
    except TreasureError as exc:
        error = exc
    _fail(error, "no Treasure workspace (set --treasure-workspace or the treasure_workspace ini option)")


def ssot(ws: "Workspace") -> "Config":
    from treasure.config import load_config
    from treasure.errors import TreasureError

    try:
        return load_config(ws.ssot_path, ws.config_schema_path, display_path=ws.relative(ws.ssot_path))
    except TreasureError as exc:
        error = exc
    _fail(error, "the SSOT does not load")


def packaged_truth() -> Path:
    """The contracts shipped with Treasure (what ``treasure init`` copies into truth/)."""
    from treasure.workspace import bundle_dir

    return bundle_dir() / "truth"


def contracts(config: pytest.Config) -> "Contracts":
    """The workspace's contracts (truth/), or the packaged ones outside a workspace."""
    from treasure.contracts import Contracts

    ws = optional_workspace(config)
    return Contracts(ws.truth_dir if ws is not None else packaged_truth())


def run(request: pytest.FixtureRequest, ws: "Workspace", tmp_path_factory: pytest.TempPathFactory,
        cache: RunCache) -> "RunResult":
    params = getattr(request, "param", None) or {}
    if not isinstance(params, Mapping) or set(params) - set(RUN_PARAMS):
        pytest.fail(f"treasure_run parameters must be a dict with keys among {', '.join(RUN_PARAMS)}; "
                    f"got {params!r}", pytrace=False)
    key = param_key(params)
    if key not in cache.runs and key not in cache.failures:
        from treasure.errors import TreasureError

        dest = tmp_path_factory.mktemp("treasure_run", numbered=True) / "ws"
        try:
            cache.runs[key] = start_run(ws, dest, **params)
        except TreasureError as exc:
            cache.failures[key] = exc
    if key in cache.failures:
        _fail(cache.failures[key], f"treasure_run {dict(params)} could not start")
    return detached(cache.runs[key])


def run_factory(ws: "Workspace", tmp_path_factory: pytest.TempPathFactory) -> Callable[..., "RunResult"]:
    def factory(**overrides: Any) -> "RunResult":
        dest = tmp_path_factory.mktemp("treasure_run_factory", numbered=True) / "ws"
        return start_run(ws, dest, **overrides)

    return factory


def event_log(result: "RunResult", cache: RunCache) -> list[dict[str, Any]]:
    key = str(result.event_log)
    if key not in cache.events:
        from treasure.contracts import Contracts
        from treasure.errors import TreasureError
        from treasure.eventlog import verify_log

        ws = workspace_of(result)
        events: list[dict[str, Any]] = []
        error: TreasureError | None = None
        try:
            verify_log(ws.log_parts(result.run_id), Contracts(ws.truth_dir), collect=events)
        except TreasureError as exc:
            error = exc
        if error is not None:
            _fail(error, f"the event log of run {result.run_id} does not verify")
        cache.events[key] = events
    return cache.events[key]


def canonical(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> "Canonical":
    """Bound to the workspace when there is one; else to the packaged contracts, with diffs
    written under pytest's temporary folder (and no goldens)."""
    from pytest_treasure.assertions import Canonical

    config = request.config
    ws = optional_workspace(config)
    diffs = None if ws is not None else tmp_path_factory.getbasetemp() / "treasure-diffs"
    return Canonical(ws, contracts(config), request.node.nodeid, get_state(config), diffs_dir=diffs)


def invariants(config: pytest.Config) -> "tuple[InvariantChecker, Callable[[], None]]":
    """A checker over a scratch folder, and the function that removes it."""
    import shutil
    import tempfile

    from treasure.hunt.runner import scratch_parent

    from pytest_treasure.invariants import InvariantChecker

    root = Path(tempfile.mkdtemp(prefix="treasure-invariants-", dir=scratch_parent()))
    checker = InvariantChecker(root, base_dir=config.rootpath)

    def close() -> None:
        checker.close()
        shutil.rmtree(root, ignore_errors=True)

    return checker, close
