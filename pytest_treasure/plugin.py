"""pytest11 entry point of the Treasure plugin: options, markers, fixtures, gate selection and the
end-of-session gate report.

Installed, this module is loaded into EVERY pytest session of the environment, so it is a good
citizen: importing it imports nothing but pytest (no numpy, jsonschema, engine, hypothesis, nor any
other Treasure module), and a session that selects no gate, sets no Treasure option and uses no
Treasure fixture is unchanged by it: no hypothesis profile is registered or loaded, no gate
registry is built, nothing is written. The work lives elsewhere and is imported on first use:

* :mod:`pytest_treasure.registry`: which gates exist (pluggy "treasure" hooks)
* :mod:`pytest_treasure.session`: results per test, the xdist merge
* :mod:`pytest_treasure.gate_report`: the session's verdict, recorded in the workspace's gate history
  (:mod:`treasure.gate_history`: ``evidence/gates_history.jsonl`` and ``evidence/gates.json``)
* :mod:`pytest_treasure.profiles`: Treasure's hypothesis profiles (``treasure-ci`` ...), only in
  a session that uses Treasure
* :mod:`pytest_treasure.fixtures`, :mod:`pytest_treasure.assertions`: what the fixtures declared
  here do

A session "uses Treasure" when it selects gates (``--gate NAME``, ``-m gate``) or sets a Treasure
option or ini value (``--treasure-workspace``, ``--treasure-profile``, ``--treasure-update-goldens``,
``treasure_workspace``, ``treasure_profile``). Gate results are recorded whenever a gate test ran,
but only into a Treasure workspace (one with ``spec/ssot.json``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from treasure.config import Config
    from treasure.contracts import Contracts
    from treasure.engine import RunResult
    from treasure.workspace import Workspace

    from pytest_treasure.assertions import Canonical
    from pytest_treasure.invariants import InvariantChecker
    from pytest_treasure.fresh_runs import RunCache
    from pytest_treasure.session import GateSession

MARKER = "gate"
INVARIANTS_MARKER = "treasure_invariants"
REPORT_NAME = "gates.json"

#: The session's gate state (:class:`pytest_treasure.session.GateSession`), created on first use.
STATE_KEY = pytest.StashKey["GateSession"]()
#: Key of the gate records an xdist worker sends to the controller.
WIRE_KEY = "treasure_gates"
#: ``user_properties`` key of a ``gate_note``.
NOTE_KEY = "treasure_note"
_PROFILES_KEY = pytest.StashKey[bool]()


# ------------------------------------------------------------------------------------------
# options and configuration
# ------------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("treasure", "Treasure operator gates")
    group.addoption("--gate", action="append", default=None, metavar="NAME", dest="treasure_gates",
                    help="run only this gate (repeatable); also deselects tests that are not gates. "
                         "`pytest -m gate` runs every gate")
    group.addoption("--treasure-workspace", default=None, metavar="PATH", dest="treasure_workspace",
                    help="workspace the gates check (spec/, truth/, fixtures/, reports/, logs/) and where "
                         "their results are recorded (evidence/gates_history.jsonl, evidence/gates.json); "
                         "default: the treasure_workspace ini value, else the rootdir")
    group.addoption("--treasure-update-goldens", action="store_true", default=False,
                    dest="treasure_update_goldens",
                    help="rewrite goldens under fixtures/golden/ that differ, instead of failing "
                         "(the summary lists the files rewritten)")
    group.addoption("--treasure-profile", default=None, metavar="NAME", dest="treasure_profile",
                    help="hypothesis profile: treasure-ci (fast, derandomized, no database), treasure-dev "
                         "(default) or treasure-hunt (2000 examples, example database under .hypothesis/); "
                         "gates use treasure-ci unless this is given")
    parser.addini("treasure_workspace", "workspace the gates check, relative to the ini file "
                  "(default: the rootdir)", default="")
    parser.addini("treasure_profile", "hypothesis profile (treasure-ci, treasure-dev, treasure-hunt) for a "
                  "session when neither --treasure-profile, gate selection nor HYPOTHESIS_PROFILE chooses one",
                  default="")


def gate_session(markexpr: str, gates: list[str] | None) -> bool:
    """True when the session selects gates: ``--gate`` given, or ``-m`` naming ``gate``
    other than as ``not gate``."""
    if gates:
        return True
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", markexpr or "")
    return any(w == "gate" and (i == 0 or words[i - 1] != "not") for i, w in enumerate(words))


def uses_treasure(config: pytest.Config) -> bool:
    """Whether the session selects gates or sets a Treasure option or ini value."""
    option = config.getoption
    if gate_session(option("markexpr", default="") or "", option("treasure_gates", default=None)):
        return True
    if option("treasure_workspace", default=None) or option("treasure_profile", default=None) \
            or option("treasure_update_goldens", default=False):
        return True
    return bool(config.getini("treasure_workspace") or config.getini("treasure_profile"))


def _wants_profiles(config: pytest.Config) -> bool:
    """Treasure's profiles are registered only in a session that uses Treasure, or that names one
    of them (``--hypothesis-profile treasure-hunt``, ``HYPOTHESIS_PROFILE=treasure-hunt``)."""
    if uses_treasure(config):
        return True
    import os

    named = (config.getoption("--hypothesis-profile", default=None) or "", os.environ.get("HYPOTHESIS_PROFILE", ""))
    return any(name.startswith("treasure-") for name in named)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Markers always (cheap); everything else only in a session that uses Treasure. Runs first
    so that ``--hypothesis-profile treasure-hunt`` finds the profile registered."""
    config.addinivalue_line("markers", f"{MARKER}(name): an operator gate (see `pytest --fixtures` for the "
                            "treasure_* fixtures); select all with `-m gate`, some with `--gate NAME`")
    config.addinivalue_line("markers", f"{INVARIANTS_MARKER}(only=None, skip=None): restrict the invariants the "
                            "treasure_invariants fixture checks in this test (names: "
                            "pytest_treasure.invariants.INVARIANTS)")
    if _wants_profiles(config):
        import pytest_treasure.profiles as profiles

        profiles.configure(config)
        config.stash[_PROFILES_KEY] = True
    if config.getoption("treasure_gates", default=None):
        import pytest_treasure.registry as registry
        from pytest_treasure.session import get_state

        state = get_state(config)
        known = registry.known_gates(config)
        unknown = [name for name in state.selected or () if name not in known]
        if unknown:
            raise pytest.UsageError(f"unknown gate(s): {', '.join(unknown)}. Known gates:\n"
                                    f"{registry.describe_known(config)}")


def pytest_report_header(config: pytest.Config) -> str | None:
    if not config.stash.get(_PROFILES_KEY, False):
        return None
    import pytest_treasure.profiles as profiles

    return profiles.header(config)


def pytest_plugin_registered(plugin: Any, manager: pytest.PytestPluginManager) -> None:
    """Pick up ``treasure_*`` hooks from any pytest plugin or conftest module: remembered here
    (no import), registered with the Treasure plugin manager when gates are first needed."""
    if plugin is None or plugin is _THIS:
        return
    try:
        names = dir(plugin)
    except Exception:  # pragma: no cover - an exotic plugin object
        return
    if any(name.startswith("treasure_") for name in names):
        config = manager.get_plugin("pytestconfig")
        if config is not None:
            import pytest_treasure.registry as registry

            registry.note_plugin(config, plugin)


# ------------------------------------------------------------------------------------------
# gates: selection, results, report
# ------------------------------------------------------------------------------------------
def _gate_name(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker(MARKER)
    name = marker.args[0] if marker.args else marker.kwargs.get("name")  # type: ignore[union-attr]
    return name if isinstance(name, str) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gates = {item.nodeid: _gate_name(item) for item in items if item.get_closest_marker(MARKER) is not None}
    selected = config.getoption("treasure_gates", default=None)
    if not gates and not selected:
        return  # no gate in this session: no state, nothing recorded
    from pytest_treasure.session import get_state

    state = get_state(config)
    state.item_gates.update(gates)
    if state.selected is None:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        gate = state.item_gates.get(item.nodeid)
        (keep if gate in state.selected else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _state(config: pytest.Config) -> "GateSession | None":
    return config.stash.get(STATE_KEY, None)


def pytest_runtest_setup(item: pytest.Item) -> None:
    state = _state(item.config)
    if state is None or item.nodeid not in state.item_gates:
        return
    gate = state.item_gates[item.nodeid]
    if gate is None:
        pytest.fail("@pytest.mark.gate needs the gate's name, e.g. @pytest.mark.gate('e2')", pytrace=False)
    import pytest_treasure.registry as registry

    known = registry.known_gates(item.config)
    if gate not in known:
        pytest.fail(f"unknown gate {gate!r} in @pytest.mark.gate; declare it with a treasure_gates hook "
                    f"or use one of:\n{registry.describe_known(item.config)}", pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Outermost wrapper, so the report is final (xfail applied). Recorded in the process that
    # runs the test: an xdist worker ships its records to the controller at the end.
    report = yield
    state = _state(item.config)
    if state is not None and item.nodeid in state.item_gates:
        state.record(report, state.item_gates[item.nodeid] or "(unnamed)")
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    wire = getattr(node, "workeroutput", {}).get(WIRE_KEY)
    if wire:
        from pytest_treasure.session import get_state

        get_state(node.config).merge(wire)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = _state(config)
    if state is None:
        return
    if hasattr(config, "workerinput"):  # an xdist worker: hand results to the controller
        config.workeroutput[WIRE_KEY] = state.to_wire()  # type: ignore[attr-defined]
        return
    if not state.has_results():
        return
    import pytest_treasure.registry as registry
    from pytest_treasure.gate_report import build_report, record

    state.report = build_report(state, registry.known_gates(config))
    record(state)
    if state.report["totals"]["missing"] and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if state is None or (state.report is None and not state.goldens_updated):
        return
    from pytest_treasure.gate_report import summary_lines

    terminalreporter.write_sep("=", "treasure gates")
    for text, markup in summary_lines(state):
        terminalreporter.write_line(text, **markup)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.stash.get(_PROFILES_KEY, False):
        import pytest_treasure.profiles as profiles

        profiles.collection_finish(session.config)


# ------------------------------------------------------------------------------------------
# the treasure_invariants marker
# ------------------------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    marker = item.get_closest_marker(INVARIANTS_MARKER)
    if marker is None:
        return (yield)
    import pytest_treasure.invariants as invariants

    only = marker.kwargs.get("only", marker.args or None)
    try:
        names = invariants.selected(only, marker.kwargs.get("skip"))
    except ValueError as exc:
        pytest.fail(f"@pytest.mark.{INVARIANTS_MARKER}: {exc}", pytrace=False)
    with invariants.restrict(names):
        return (yield)


# ------------------------------------------------------------------------------------------
# fixtures: declared here, implemented in pytest_treasure.fixtures (imported on first use)
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def treasure_workspace(pytestconfig: pytest.Config) -> "Workspace":
    """The Treasure workspace under test (``treasure.workspace.Workspace``): ``--treasure-workspace``,
    else the ``treasure_workspace`` ini value, else the rootdir. Gates read it, never write it
    (except ``evidence/``). A test using it errors with WORKSPACE_MISSING outside a workspace.
    Example:
        def test_has_ssot(treasure_workspace):
            assert treasure_workspace.ssot_path.is_file()
    """
    import pytest_treasure.fixtures as fixtures

    return fixtures.workspace(pytestconfig)


@pytest.fixture(scope="session")
def ssot(treasure_workspace: "Workspace") -> "Config":
    """The workspace's validated SSOT (``treasure.config.Config`` of spec/ssot.json); a test
    using it errors with the SSOT's coded problem (file and field) when it does not validate.
    Example:
        def test_limit(ssot):
            assert ssot.section("risk")["max_position_size_usd"] > 0
    """
    import pytest_treasure.fixtures as fixtures

    return fixtures.ssot(treasure_workspace)


@pytest.fixture(scope="session")
def schema_validator(pytestconfig: pytest.Config) -> "Contracts":
    """The workspace's contracts (``treasure.contracts.Contracts`` over truth/; outside a
    workspace, the contracts packaged with Treasure): ``.validate(name, doc)``,
    ``.errors(name, doc)``, ``.check_event(event)``, ``.volatile_paths(name)``.
    Example:
        def test_report(schema_validator, treasure_run):
            assert schema_validator.errors("court_report", treasure_run.court) == []
    """
    import pytest_treasure.fixtures as fixtures

    return fixtures.contracts(pytestconfig)


@pytest.fixture(scope="session")
def _treasure_run_cache() -> "RunCache":
    from pytest_treasure.fresh_runs import RunCache

    return RunCache()


@pytest.fixture
def treasure_run(request: pytest.FixtureRequest, treasure_workspace: "Workspace",
                 tmp_path_factory: pytest.TempPathFactory, _treasure_run_cache: "RunCache") -> "RunResult":
    """A fresh engine run (``treasure.engine.RunResult``) in a temporary copy of the workspace,
    shared by every test of the session asking for the same parameters (runs are deterministic).
    Parametrize indirectly with keys seed, strategy, dataset, run_id, adapter:
    Example:
        @pytest.mark.parametrize("treasure_run", [{"seed": 7, "strategy": "mean_reversion"}], indirect=True)
        def test_completes(treasure_run): assert treasure_run.status == "complete"
    """
    import pytest_treasure.fixtures as fixtures

    return fixtures.run(request, treasure_workspace, tmp_path_factory, _treasure_run_cache)


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
    import pytest_treasure.fixtures as fixtures

    return fixtures.run_factory(treasure_workspace, tmp_path_factory)


@pytest.fixture
def event_log(treasure_run: "RunResult", _treasure_run_cache: "RunCache") -> list[dict[str, Any]]:
    """The events of ``treasure_run`` as dicts, in order, after full verification (schema per
    event_type, seq, time order, hash chain, run_id). Shared across tests: do not mutate.
    Example:
        def test_starts(event_log):
            assert event_log[0]["event_type"] == "run_start"
    """
    import pytest_treasure.fixtures as fixtures

    return fixtures.event_log(treasure_run, _treasure_run_cache)


@pytest.fixture
def canonical(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> "Canonical":
    """Canonical (RFC 8785) comparison of JSON documents and event logs, volatile fields dropped;
    on mismatch the test fails with a short diff and writes the full one to
    ``evidence/diffs/<test id>.txt`` (outside a workspace: under pytest's temporary folder).
    Also ``assert_golden(name, doc)`` against a workspace's fixtures/golden/. Needs no workspace.
    Example:
        def test_same(canonical, treasure_run):
            canonical.assert_equal(treasure_run.court, treasure_run.court, schema="court_report")
    """
    import pytest_treasure.fixtures as fixtures

    return fixtures.canonical(request, tmp_path_factory)


@pytest.fixture
def gate_note(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Attach a note to this test's gate result: shown under the gate in the terminal summary
    and stored in the gate history (e.g. what a gate checked instead of the usual input).
    Example:
        def test_reports(gate_note):
            gate_note("no reports yet; checked a fresh run's reports instead")
    """

    def note(text: str) -> None:
        request.node.user_properties.append((NOTE_KEY, str(text)))

    return note


@pytest.fixture(scope="session")
def treasure_invariants(pytestconfig: pytest.Config) -> Iterator["InvariantChecker"]:
    """Run generated cases through the engine and check every Treasure run invariant.
    Session-scoped (safe inside ``@given``); cases run in a scratch workspace in a temporary
    folder (on tmpfs where there is one), removed at the end of the session. Narrow it per test
    with ``@pytest.mark.treasure_invariants(skip=["determinism"])``. Needs no workspace.
    Example:
        @given(case=pytest_treasure.strategies.cases(strategy="my_pkg.strats:Breakout"))
        def test_breakout_keeps_invariants(treasure_invariants, case): treasure_invariants.run(case)
    """
    import pytest_treasure.fixtures as fixtures

    checker, close = fixtures.invariants(pytestconfig)
    yield checker
    close()


import sys as _sys  # noqa: E402  (the module object, to skip it in pytest_plugin_registered)

_THIS = _sys.modules[__name__]
