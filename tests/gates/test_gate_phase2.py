"""The phase2 gate passes on the default run and fails, naming the evidence, when it is tampered.

Broken evidence is built by overriding the ``treasure_run`` fixture in the pytester project's
conftest: a real run (via ``treasure_run_factory``) whose equity curve, report or event log is then
edited. Edited event logs are re-sealed (seq and hash chain rebuilt), so the log still verifies and
only the phase2 invariant under test is broken.
"""

from __future__ import annotations

from pathlib import Path

import hypothesis  # noqa: F401  preloaded: pytester's in-process runs then reuse it
import numpy  # noqa: F401
import pytest
from pytest_treasure.gates import GATES_DIR

import treasure.engine  # noqa: F401
from treasure.workspace import Workspace, bundle_dir, init_workspace

pytest_plugins = ["pytester"]

GATE = GATES_DIR / "test_phase2.py"

CONFTEST = '''
import json
import numpy as np
import pytest
import orjson
from pytest_treasure import workspace_of
from treasure.events import GENESIS_HASH, seal

_RUN = {}


def reseal(path, events):
    prev, lines = GENESIS_HASH, []
    for seq, event in enumerate(events):
        event = {k: v for k, v in event.items() if k != "hash"}
        event["seq"], event["prev"] = seq, prev
        prev, line = seal(event)
        lines.append(line)
    path.write_bytes(b"\\n".join(lines) + b"\\n")


def tamper(run):
    ws = workspace_of(run)
TAMPER


@pytest.fixture
def treasure_run(treasure_run_factory):
    if "run" not in _RUN:
        _RUN["run"] = treasure_run_factory()
        tamper(_RUN["run"])
    return _RUN["run"]
'''

TAMPER_CURVE = '''
    path = run.report_dir / "equity.npy"
    curve = np.load(path)
    curve["equity"][100] += 5.0
    np.save(path, curve, allow_pickle=False)
'''

TAMPER_METRIC = '''
    path = run.report_dir / "court_report.json"
    report = json.loads(path.read_text())
    report["metrics"]["fees_usd"] += 0.01
    path.write_text(json.dumps(report))
'''

TAMPER_ORDER = '''
    events = [orjson.loads(line) for line in run.event_log.read_bytes().splitlines()]
    last = [e for e in events if e["event_type"] == "order_filled" and e["payload"]["status"] == "filled"][-1]
    last["payload"]["status"] = "partially_filled"
    last["payload"]["remaining_qty"] = 0.5
    reseal(run.event_log, events)
'''


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def run_gate(pytester: pytest.Pytester, ws: Workspace, tamper: str | None = None, *args: str) -> pytest.RunResult:
    pytester.makepyfile(gate_phase2_under_test=GATE.read_text())
    if tamper is not None:
        pytester.makeconftest(CONFTEST.replace("TAMPER", tamper.strip("\n")))
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              f"--treasure-workspace={ws.root}", "gate_phase2_under_test.py", *args)


def test_passes_on_the_default_run(pytester, ws):
    result = run_gate(pytester, ws)
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(["phase2 * passed * 9 tests *"])
    assert not list(ws.logs_dir.glob("*.jsonl")), "the run must happen in a temporary copy"


def test_fails_on_a_tampered_equity_curve(pytester, ws):
    result = run_gate(pytester, ws, TAMPER_CURVE, "-k", "equity_is_cash")
    result.assert_outcomes(failed=1, deselected=8)
    result.stdout.fnmatch_lines([
        "phase2: equity = cash + marked position: equity.npy hashes to *, but court_report.json field "
        "evidence.equity_curve_sha256 says * (and 1 more problem(s))",
        "*equity.npy row 100 (bar 100): equity * but cash * + qty * x close * = * (from position_updated events "
        "and the dataset)*",
    ])


def test_fails_on_a_tampered_report_metric(pytester, ws):
    result = run_gate(pytester, ws, TAMPER_METRIC, "-k", "fees_and_pnl or recomputed")
    result.assert_outcomes(failed=2, deselected=7)
    result.stdout.fnmatch_lines([
        "phase2: fees and PnL: court_report.json field metrics.fees_usd: *, but fsum of * order_filled fees gives *",
        "phase2: court metrics: court_report.json field metrics.fees_usd: *, recomputed from the events *",
    ], consecutive=False)


def test_fails_on_an_order_with_no_terminal_state(pytester, ws):
    result = run_gate(pytester, ws, TAMPER_ORDER, "-k", "test_every_order_ends_in_exactly_one_terminal_state")
    result.assert_outcomes(failed=1, deselected=8)
    result.stdout.fnmatch_lines(["phase2: order states: order o* (order_placed seq *, bar *): no terminal state "
                                 "(no filled, cancelled or rejected event); * of * filled"])
    result.stdout.fnmatch_lines(["phase2 * FAILED * 1/1 failed *order states: order o*no terminal state*"])


OTHER_RUNS = '''
import pytest

@pytest.fixture(scope="session", params=[{"strategy": "mean_reversion", "seed": 7}, {"strategy": "buy_and_hold", "seed": 3}],
                ids=["mean_reversion", "buy_and_hold"])
def _other_run(request, tmp_path_factory, treasure_workspace):
    from pytest_treasure.fresh_runs import start_run
    return start_run(treasure_workspace, tmp_path_factory.mktemp("other") / "ws", **request.param)

@pytest.fixture
def treasure_run(_other_run):
    return _other_run
'''


def test_invariants_hold_for_other_strategies_and_seeds(pytester, ws):
    """The invariants are the engine's, not one run's: they hold for other strategies (flips,
    partial fills) too; only the goldens, recorded for the default inputs, are skipped."""
    pytester.makeconftest(OTHER_RUNS)
    result = run_gate(pytester, ws)
    result.assert_outcomes(passed=13, skipped=4)
    result.stdout.fnmatch_lines(["phase2 * passed * 17 tests *"])
