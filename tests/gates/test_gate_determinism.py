"""The determinism gate passes on the default workspace and fails, with a diff or file:line, on a
strategy that reads the wall clock, draws from the global random generator or iterates a set."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis  # noqa: F401  preloaded: pytester's in-process runs then reuse it
import pytest
from pytest_treasure.gates import GATES_DIR

import treasure.engine  # noqa: F401  preloaded, as above
from treasure.workspace import Workspace, bundle_dir, init_workspace

pytest_plugins = ["pytester"]

GATE = GATES_DIR / "test_determinism.py"

SET_ORDER = '''
from treasure.strategy import Intent, Strategy


class SetOrder(Strategy):
    """Buys now and then, giving as reason its tags in set order: a PYTHONHASHSEED dependence."""

    name = "set_order"

    def on_bar(self, ctx, bar):
        if bar.idx % 40 == 0:
            tags = {"momentum", "carry", "value", "quality", "size", "low-vol"}
            return [Intent("buy" if bar.idx % 80 == 0 else "sell", 1.0, reason=",".join(tags))]
        return None
'''

GLOBAL_RANDOM = '''
import random

from treasure.strategy import Intent, Strategy


class Coin(Strategy):
    name = "coin"

    def on_bar(self, ctx, bar):
        if random.random() < 0.05:
            return [Intent("buy" if random.random() < 0.5 else "sell", 1.0, reason="coin")]
        return None
'''

WALL_CLOCK = '''
import time

from treasure.strategy import Intent, Strategy


class Clocked(Strategy):
    name = "clocked"

    def on_bar(self, ctx, bar):
        started = time.time()
        if bar.idx % 50 == 0:
            return [Intent("buy", 1.0, reason=f"at {started}")]
        return None
'''


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def use_strategy(ws: Workspace, filename: str, source: str, cls: str) -> None:
    path = ws.root / "strategies" / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    ssot = json.loads(ws.ssot_path.read_text())
    ssot["strategy"] = {"name": f"strategies/{filename}:{cls}", "params": {}}
    ws.ssot_path.write_text(json.dumps(ssot, indent=2))


def run_gate(pytester: pytest.Pytester, ws: Workspace, *args: str) -> pytest.RunResult:
    pytester.makepyfile(gate_determinism_under_test=GATE.read_text())
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              f"--treasure-workspace={ws.root}", "gate_determinism_under_test.py", *args)


def test_passes_on_the_default_workspace(pytester, ws):
    result = run_gate(pytester, ws)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*treasure gates*", "determinism * passed *"])
    # the runbook reads the diff: after a pass it exists and is empty (the proof of no difference)
    assert (ws.evidence_dir / "diffs" / "determinism_diff.txt").read_text() == ""
    assert not list(ws.logs_dir.glob("*")), "the gate's runs must happen in temporary copies"


def test_fails_on_a_strategy_iterating_a_set(pytester, ws):
    use_strategy(ws, "set_order.py", SET_ORDER, "SetOrder")
    result = run_gate(pytester, ws, "-k", "processes or unjustified")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "determinism: two runs of the same inputs differ: event log (PYTHONHASHSEED=0 -> PYTHONHASHSEED=4242)" \
        in out
    assert "(intent_emitted)['payload']['reason']: '" in out  # the cause, not the hashes echoing it
    assert "full diff: evidence/diffs/determinism_diff.txt" in out
    diff = (ws.evidence_dir / "diffs" / "determinism_diff.txt").read_text()
    assert "## event log" in diff and "payload" in diff
    assert "strategies/set_order.py:13:88: TD301 join() of a set" in out


def test_fails_on_a_strategy_using_the_global_random_generator(pytester, ws):
    use_strategy(ws, "coin.py", GLOBAL_RANDOM, "Coin")
    result = run_gate(pytester, ws)
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    assert "strategies/coin.py:11:11: TD201 random.random uses the process-global random generator" in out
    assert "two runs of the same inputs differ" in out
    assert "two in-process runs differ" in out


def test_fails_on_an_injected_wall_clock_read(pytester, ws):
    use_strategy(ws, "clocked.py", WALL_CLOCK, "Clocked")
    result = run_gate(pytester, ws, "-k", "unjustified")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines([
        "*determinism: 1 nondeterministic construct(s) in treasure/, strategies/clocked.py: "
        "strategies/clocked.py:11:18: TD101 time.time reads the wall clock*",
        "determinism * FAILED *"])


def test_a_justified_wall_clock_read_passes_and_an_unjustified_allow_does_not(pytester, ws):
    allowed = WALL_CLOCK.replace("started = time.time()",
                                 "started = time.time()  # treasure: allow-nondeterminism demo of a volatile value")
    use_strategy(ws, "clocked.py", allowed, "Clocked")
    result = run_gate(pytester, ws, "-k", "unjustified")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*justified case(s) allowed*"])
    bare = WALL_CLOCK.replace("started = time.time()", "started = time.time()  # treasure: allow-nondeterminism")
    use_strategy(ws, "clocked.py", bare, "Clocked")
    result = run_gate(pytester, ws, "-k", "unjustified")
    result.assert_outcomes(failed=1, deselected=2)
    assert "TD900 '# treasure: allow-nondeterminism' needs a reason" in result.stdout.str()
