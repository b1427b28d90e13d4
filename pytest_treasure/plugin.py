"""pytest11 entry point of the Treasure plugin: options, the ``gate`` marker, selection, and the
end-of-session gate report. Thin wiring only: the work lives in :mod:`pytest_treasure.registry`
(which gates exist), :mod:`~pytest_treasure.session` (results, xdist merge),
:mod:`~pytest_treasure.report` (gates.json, summary), :mod:`~pytest_treasure.fixtures` and
:mod:`~pytest_treasure.assertions`.

A session that uses no gate is unchanged: nothing heavy is imported at load time, no gate
registry is built unless ``--gate`` is given or a gate test is collected, and no summary or file
is written unless a gate test ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_treasure import registry
from pytest_treasure.session import STATE_KEY, WIRE_KEY, GateSession, get_state

pytest_plugins = ["pytest_treasure.profiles", "pytest_treasure.fixtures", "pytest_treasure.invariants"]

MARKER = "gate"
REPORT_NAME = "gates.json"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("treasure", "Treasure operator gates")
    group.addoption("--gate", action="append", default=None, metavar="NAME", dest="treasure_gates",
                    help="run only this gate (repeatable); also deselects tests that are not gates. "
                         "`pytest -m gate` runs every gate")
    group.addoption("--treasure-workspace", default=None, metavar="PATH", dest="treasure_workspace",
                    help="workspace the gates check (spec/, truth/, fixtures/, reports/, logs/); "
                         "default: the treasure_workspace ini value, else the rootdir")
    group.addoption("--treasure-update-goldens", action="store_true", default=False,
                    dest="treasure_update_goldens",
                    help="rewrite goldens under fixtures/golden/ that differ, instead of failing "
                         "(the summary lists the files rewritten)")
    parser.addini("treasure_workspace", "workspace the gates check, relative to the ini file "
                  "(default: the rootdir)", default="")


def _workspace_root(config: pytest.Config) -> Path:
    option = config.getoption("treasure_workspace")
    if option:
        return (config.invocation_params.dir / Path(option).expanduser()).resolve()
    ini = config.getini("treasure_workspace")
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / Path(str(ini)).expanduser()).resolve()
    return config.rootpath.resolve()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(name): an operator gate (see `pytest --fixtures` for the "
                            "treasure_* fixtures); select all with `-m gate`, some with `--gate NAME`")
    selected = config.getoption("treasure_gates")
    state = GateSession(_workspace_root(config), tuple(sorted(set(selected))) if selected else None,
                        update_goldens=bool(config.getoption("treasure_update_goldens")))
    config.stash[STATE_KEY] = state
    if state.selected:
        known = registry.known_gates(config)
        unknown = [name for name in state.selected if name not in known]
        if unknown:
            raise pytest.UsageError(f"unknown gate(s): {', '.join(unknown)}. Known gates:\n"
                                    f"{registry.describe_known(config)}")


def pytest_plugin_registered(plugin: Any, manager: pytest.PytestPluginManager) -> None:
    """Pick up ``treasure_*`` hooks from any pytest plugin or conftest module."""
    if registry.defines_treasure_hooks(plugin):
        config = manager.get_plugin("pytestconfig")
        if config is not None:
            registry.register_plugin(config, plugin)


def _gate_name(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker(MARKER)
    name = marker.args[0] if marker.args else marker.kwargs.get("name")  # type: ignore[union-attr]
    return name if isinstance(name, str) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = get_state(config)
    for item in items:
        if item.get_closest_marker(MARKER) is not None:
            state.item_gates[item.nodeid] = _gate_name(item)
    if state.selected is None:
        return
    keep, drop = [], []
    for item in items:
        gate = state.item_gates.get(item.nodeid)
        (keep if gate in state.selected else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_setup(item: pytest.Item) -> None:
    state = get_state(item.config)
    if item.nodeid not in state.item_gates:
        return
    gate = state.item_gates[item.nodeid]
    if gate is None:
        pytest.fail("@pytest.mark.gate needs the gate's name, e.g. @pytest.mark.gate('e2')", pytrace=False)
    known = registry.known_gates(item.config)
    if gate not in known:
        pytest.fail(f"unknown gate {gate!r} in @pytest.mark.gate; declare it with a treasure_gates hook "
                    f"or use one of:\n{registry.describe_known(item.config)}", pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Outermost wrapper, so the report is final (xfail applied). Recorded in the process that
    # runs the test: an xdist worker ships its records to the controller at the end.
    report = yield
    state = get_state(item.config)
    if item.nodeid in state.item_gates:
        state.record(report, state.item_gates[item.nodeid] or "(unnamed)")
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    wire = getattr(node, "workeroutput", {}).get(WIRE_KEY)
    if wire:
        get_state(node.config).merge(wire)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = get_state(config)
    if hasattr(config, "workerinput"):  # an xdist worker: hand results to the controller
        config.workeroutput[WIRE_KEY] = state.to_wire()  # type: ignore[attr-defined]
        return
    if not state.has_results():
        return
    from pytest_treasure.report import build_report, write_report

    gates = registry.known_gates(config)
    state.report = build_report(state, gates)
    path = state.workspace_root / "evidence" / REPORT_NAME
    try:
        write_report(path, state.report)
        state.report_path = path
    except Exception as exc:  # a read-only workspace must not hide the gate results themselves
        state.write_error = f"{path}: {exc}"
    if state.report["totals"]["missing"] and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or (state.report is None and not state.goldens_updated):
        return
    from pytest_treasure.report import summary_lines

    terminalreporter.write_sep("=", "treasure gates")
    for text, markup in summary_lines(state):
        terminalreporter.write_line(text, **markup)
