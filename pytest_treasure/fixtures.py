"""The fixtures a gate uses. Heavy imports (the engine, numpy) happen inside them, on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, NoReturn

import pytest

from pytest_treasure.runs import RUN_PARAMS, RunCache, detached, param_key, start_run, workspace_of
from pytest_treasure.session import NOTE_KEY, get_state

if TYPE_CHECKING:  # pragma: no cover
    from treasure.config import Config
    from treasure.contracts import Contracts
    from treasure.engine import RunResult
    from treasure.workspace import Workspace

    from pytest_treasure.assertions import Canonical


def _fail(exc: Any, what: str) -> NoReturn:
    """Fail (outside any ``except`` block, so no chained traceback) with the coded message."""
    render = getattr(exc, "render", None)
    pytest.fail(f"{what}:\n{render() if render else exc}", pytrace=False)


@pytest.fixture(scope="session")
def treasure_workspace(pytestconfig: pytest.Config) -> "Workspace":
    """The Treasure workspace under test (``treasure.workspace.Workspace``): ``--treasure-workspace``,
    else the ``treasure_workspace`` ini value, else the rootdir. Gates read it, never write it
    (except ``evidence/``).
    Example:
        def test_has_ssot(treasure_workspace):
            assert treasure_workspace.ssot_path.is_file()
    """
    from treasure.errors import TreasureError
    from treasure.workspace import Workspace

    try:
        return Workspace.at(get_state(pytestconfig).workspace_root)
    except TreasureError as exc:
        error = exc
    _fail(error, "no Treasure workspace (set --treasure-workspace or the treasure_workspace ini option)")


@pytest.fixture(scope="session")
def ssot(treasure_workspace: "Workspace") -> "Config":
    """The workspace's validated SSOT (``treasure.config.Config`` of spec/ssot.json); a test
    using it errors with the SSOT's coded problem (file and field) when it does not validate.
    Example:
        def test_limit(ssot):
            assert ssot.section("risk")["max_position_size_usd"] > 0
    """
    from treasure.config import load_config
    from treasure.errors import TreasureError

    try:
        return load_config(treasure_workspace.ssot_path, treasure_workspace.config_schema_path,
                           display_path=treasure_workspace.relative(treasure_workspace.ssot_path))
    except TreasureError as exc:
        error = exc
    _fail(error, "the SSOT does not load")


@pytest.fixture(scope="session")
def schema_validator(treasure_workspace: "Workspace") -> "Contracts":
    """The workspace's contracts (``treasure.contracts.Contracts`` over truth/): ``.validate(name,
    doc)``, ``.errors(name, doc)``, ``.check_event(event)``, ``.volatile_paths(name)``.
    Example:
        def test_report(schema_validator, treasure_run):
            assert schema_validator.errors("court_report", treasure_run.court) == []
    """
    from treasure.contracts import Contracts

    return Contracts(treasure_workspace.truth_dir)


@pytest.fixture(scope="session")
def _treasure_run_cache() -> RunCache:
    return RunCache()


@pytest.fixture
def treasure_run(request: pytest.FixtureRequest, treasure_workspace: "Workspace",
                 tmp_path_factory: pytest.TempPathFactory, _treasure_run_cache: RunCache) -> "RunResult":
    """A fresh engine run (``treasure.engine.RunResult``) in a temporary copy of the workspace,
    shared by every test of the session asking for the same parameters (runs are deterministic).
    Parametrize indirectly with keys seed, strategy, dataset, run_id, adapter:
    Example:
        @pytest.mark.parametrize("treasure_run", [{"seed": 7, "strategy": "mean_reversion"}], indirect=True)
        def test_completes(treasure_run): assert treasure_run.status == "complete"
    """
    params = getattr(request, "param", None) or {}
    if not isinstance(params, Mapping) or set(params) - set(RUN_PARAMS):
        pytest.fail(f"treasure_run parameters must be a dict with keys among {', '.join(RUN_PARAMS)}; "
                    f"got {params!r}", pytrace=False)
    key = param_key(params)
    cache = _treasure_run_cache
    if key not in cache.runs and key not in cache.failures:
        from treasure.errors import TreasureError

        dest = tmp_path_factory.mktemp("treasure_run", numbered=True) / "ws"
        try:
            cache.runs[key] = start_run(treasure_workspace, dest, **params)
        except TreasureError as exc:
            cache.failures[key] = exc
    if key in cache.failures:
        _fail(cache.failures[key], f"treasure_run {dict(params)} could not start")
    return detached(cache.runs[key])


@pytest.fixture
def treasure_run_factory(treasure_workspace: "Workspace",
                         tmp_path_factory: pytest.TempPathFactory) -> Callable[..., "RunResult"]:
    """A function running the engine in a new temporary copy of the workspace at each call, for
    gates that need several runs or broken inputs. Keywords: seed, strategy, dataset, run_id,
    adapter, ssot (a whole SSOT document), edit (``callable(workspace)`` changing the copy first),
    and any other ``RunRequest`` field. A ``TreasureError`` from a refused input propagates.
    Example:
        def test_seeds_differ(treasure_run_factory):
            assert treasure_run_factory(seed=1).court != treasure_run_factory(seed=2).court
    """

    def factory(**overrides: Any) -> "RunResult":
        dest = tmp_path_factory.mktemp("treasure_run_factory", numbered=True) / "ws"
        return start_run(treasure_workspace, dest, **overrides)

    return factory


@pytest.fixture
def event_log(treasure_run: "RunResult", _treasure_run_cache: RunCache) -> list[dict[str, Any]]:
    """The events of ``treasure_run`` as dicts, in order, after full verification (schema per
    event_type, seq, time order, hash chain, run_id). Shared across tests: do not mutate.
    Example:
        def test_starts(event_log):
            assert event_log[0]["event_type"] == "run_start"
    """
    key = str(treasure_run.event_log)
    if key not in _treasure_run_cache.events:
        from treasure.contracts import Contracts
        from treasure.errors import TreasureError
        from treasure.eventlog import verify_log

        ws = workspace_of(treasure_run)
        events: list[dict[str, Any]] = []
        error: TreasureError | None = None
        try:
            verify_log(ws.log_parts(treasure_run.run_id), Contracts(ws.truth_dir), collect=events)
        except TreasureError as exc:
            error = exc
        if error is not None:
            _fail(error, f"the event log of run {treasure_run.run_id} does not verify")
        _treasure_run_cache.events[key] = events
    return _treasure_run_cache.events[key]


@pytest.fixture
def canonical(request: pytest.FixtureRequest, treasure_workspace: "Workspace",
              schema_validator: "Contracts") -> "Canonical":
    """Canonical (RFC 8785) comparison of JSON documents and event logs, volatile fields dropped;
    on mismatch the test fails with a short diff and writes the full one to
    ``evidence/diffs/<test id>.txt``. Also ``assert_golden(name, doc)`` against fixtures/golden/.
    Example:
        def test_same(canonical, treasure_run):
            canonical.assert_equal(treasure_run.court, treasure_run.court, schema="court_report")
    """
    from pytest_treasure.assertions import Canonical

    return Canonical(treasure_workspace, schema_validator, request.node.nodeid, get_state(request.config))


@pytest.fixture
def gate_note(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Attach a note to this test's gate result: shown under the gate in the terminal summary
    and stored in evidence/gates.json (e.g. what a gate checked instead of the usual input).
    Example:
        def test_reports(gate_note):
            gate_note("no reports yet; checked a fresh run's reports instead")
    """

    def note(text: str) -> None:
        request.node.user_properties.append((NOTE_KEY, str(text)))

    return note
