"""Look-ahead check: the leaking example is caught with the first changed bar named; built-ins pass."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pytest_treasure.gates import GATES_DIR

import treasure.engine  # noqa: F401  preloaded for pytester's in-process run
from treasure.invariants import InvariantViolation
from treasure.lookahead import check_lookahead, check_lookahead_invariant, sample_cuts
from treasure.workspace import Workspace, bundle_dir, init_workspace

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
LEAKY = REPO / "examples" / "leaky_strategy.py"
GATE = GATES_DIR / "test_lookahead.py"


def use_strategy(ws: Workspace, name: str, params: dict | None = None) -> None:
    doc = json.loads(ws.ssot_path.read_text())
    doc["strategy"] = {"name": name, "params": params or {}}
    ws.ssot_path.write_text(json.dumps(doc, indent=2))


def leaky(ws: Workspace) -> None:
    shutil.copy(LEAKY, ws.root / "leaky_strategy.py")
    use_strategy(ws, "leaky_strategy.py:LeakyZScore")


def test_cuts_are_a_deterministic_sample_from_the_seed() -> None:
    a = sample_cuts(8000, 42)
    assert a == sample_cuts(8000, 42) and len(a) == 8 and len(set(a)) == 8
    assert all(2 <= c < 8000 for c in a) and list(a) == sorted(a)
    assert sample_cuts(8000, 43) != a
    assert sample_cuts(5, 1, 10) == (2, 3, 4) and sample_cuts(2, 1) == ()


@pytest.mark.parametrize("name", ["sma_crossover", "mean_reversion", "buy_and_hold"])
def test_built_in_strategies_pass(workspace: Workspace, name: str) -> None:
    use_strategy(workspace, name)
    result = check_lookahead(workspace)
    assert result.ok, result.finding and result.finding.message()
    assert result.intents > 0 and len(result.cuts) == 8
    assert not list(workspace.logs_dir.glob("*.jsonl")), "the check writes no evidence"


def test_the_leaking_example_is_caught_naming_the_first_changed_bar_and_the_cut(workspace: Workspace) -> None:
    leaky(workspace)
    result = check_lookahead(workspace)
    finding = result.finding
    assert finding is not None
    assert finding.cut in result.cuts and finding.bar_idx < finding.cut
    message = finding.message()
    assert f"bar {finding.bar_idx}" in message and f"cut at bar {finding.cut}" in message
    # the bar named is the first whose decision differs: everything before it agrees
    assert finding.full != finding.cut_run


def test_a_strategy_that_peeks_at_the_next_bar_is_caught(workspace: Workspace) -> None:
    (workspace.root / "peek.py").write_text(
        "from treasure.strategy import Intent, Strategy\n"
        "class Peek(Strategy):\n"
        "    name = 'peek'\n"
        "    def on_start(self, ctx, bars):\n"
        "        self.c = bars.close.tolist()\n"
        "    def on_bar(self, ctx, bar):\n"
        "        up = bar.idx + 1 < len(self.c) and self.c[bar.idx + 1] > bar.close\n"
        "        held = ctx.position + ctx.open_order_qty\n"
        "        if up and held <= 0:\n"
        "            return [Intent('buy', 1.0, 'next_up')]\n"
        "        if not up and held > 0:\n"
        "            return [Intent('sell', held, 'next_down')]\n"
        "        return None\n")
    use_strategy(workspace, "peek.py:Peek")
    result = check_lookahead(workspace)
    assert result.finding is not None
    assert result.finding.bar_idx == result.finding.cut - 1  # only the last bar before a cut can tell


def test_hunt_invariant_form(workspace: Workspace) -> None:
    check_lookahead_invariant(workspace)  # default workspace: passes
    leaky(workspace)
    with pytest.raises(InvariantViolation) as exc:
        check_lookahead_invariant(workspace)
    assert exc.value.invariant == "lookahead" and "changed when the data was cut at bar" in exc.value.message


def _run_gate(pytester: pytest.Pytester, ws: Workspace) -> pytest.RunResult:
    pytester.makepyfile(gate_lookahead_under_test=GATE.read_text())
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              f"--treasure-workspace={ws.root}", "gate_lookahead_under_test.py")


def test_gate_passes_on_the_default_workspace_and_fails_on_the_leak(pytester: pytest.Pytester,
                                                                    tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    _run_gate(pytester, ws).assert_outcomes(passed=1)
    leaky(ws)
    result = _run_gate(pytester, ws)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*lookahead: the decision at bar * changed when the data was cut at bar *"])
