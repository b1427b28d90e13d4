"""The look-ahead check where an operator meets it: ``treasure verify lookahead`` and ``treasure hunt``.

A workspace whose SSOT names examples/leaky_strategy.py fails the lookahead gate (exit 2) with the
first bar whose decision changed named; the hunt's ``lookahead`` invariant catches the same
strategy on generated data and writes a reproducer that fails for the same reason; the built-in
strategies keep it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest

from treasure.hunt.case import Case, GeneratedDataset
from treasure.hunt.runner import Scratch
from treasure.invariants import INVARIANTS, InvariantViolation, check_outcome
from treasure.lookahead import check_lookahead
from treasure.workspace import Workspace

Cli = Callable[..., tuple[int, str, str]]
LEAKY = Path(__file__).resolve().parents[2] / "examples" / "leaky_strategy.py"


def use_leaky(ws: Workspace) -> None:
    shutil.copy(LEAKY, ws.root / "leaky_strategy.py")
    doc = json.loads(ws.ssot_path.read_text())
    doc["strategy"] = {"name": "leaky_strategy.py:LeakyZScore", "params": {}}
    ws.ssot_path.write_text(json.dumps(doc, indent=2))


def test_verify_lookahead_fails_on_the_leaky_strategy_naming_the_first_changed_bar(
        workspace: Workspace, cli: Cli) -> None:
    use_leaky(workspace)
    expected = check_lookahead(workspace).finding
    assert expected is not None
    code, out, err = cli("verify", "lookahead", "-w", workspace.root)
    assert code == 2, out + err
    assert "treasure verify: FAILED: lookahead" in out + err and "Traceback" not in out + err
    # pytest's own output goes straight to the terminal's fd; the verdict, with the message, is here
    report = json.loads((workspace.root / "evidence" / "gates.json").read_text())
    (gate,) = [g for g in report["gates"] if g["name"] == "lookahead"]
    assert gate["status"] == "failed"
    (test,) = gate["tests"]
    message = test["message"]
    assert f"the decision at bar {expected.bar_idx} " in message
    assert "it is the first bar whose decision changed" in message
    assert f"changed when the data was cut at bar {expected.cut}" in message


def test_the_first_changed_bar_is_the_earliest_over_every_cut(workspace: Workspace) -> None:
    """Every sampled cut is tried: no cut reveals a change earlier than the one named."""
    from treasure.lookahead import sample_cuts

    use_leaky(workspace)
    result = check_lookahead(workspace, cuts=16)
    finding = result.finding
    assert finding is not None and len(result.cuts) == 16
    assert result.cuts == sample_cuts(result.bars, 42, 16)
    # a cut before the named bar cannot show it; and some cut showed exactly it
    assert finding.cut in result.cuts and finding.bar_idx < finding.cut
    earlier = check_lookahead(workspace, cuts=16)
    assert earlier.finding == finding  # deterministic


def test_verify_lookahead_passes_on_the_default_workspace(workspace: Workspace, cli: Cli) -> None:
    code, out, err = cli("verify", "lookahead", "-w", workspace.root)
    assert code == 0, out + err
    assert "treasure verify: PASSED (1 gate(s)" in out + err
    report = json.loads((workspace.root / "evidence" / "gates.json").read_text())
    assert [(g["name"], g["status"]) for g in report["gates"]] == [("lookahead", "passed")]


def test_lookahead_is_a_registered_invariant_checked_last() -> None:
    assert "lookahead" in INVARIANTS and INVARIANTS[-1] == "lookahead"


def _case(strategy: str, n: int = 40) -> Case:
    from treasure.data.synth import bars_to_csv, generate_bars
    from treasure.hunt.case import DATASET_PATH
    from treasure.workspace import bundle_dir

    bars = generate_bars(n_bars=n, seed=3, gaps=0, duplicates=0)
    ds = GeneratedDataset(bars=bars, csv=bars_to_csv(bars), interval_ms=300_000)
    ssot = json.loads((bundle_dir() / "spec" / "ssot.json").read_text())
    ssot["dataset"].update(path=DATASET_PATH, sha256=ds.sha256, interval_ms=300_000)
    ssot["strategy"] = {"name": strategy, "params": {}}
    return Case(ds, ssot)


def test_the_invariant_on_one_case_in_process(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path / "scratch", evidence="memory")
    shutil.copy(LEAKY, tmp_path / "leaky_strategy.py")
    leaky = _case("leaky_strategy.py:LeakyZScore", n=120)
    outcome = scratch.run(leaky, base_dir=tmp_path)
    assert outcome.status == "complete"
    with pytest.raises(InvariantViolation) as caught:
        check_outcome(leaky, outcome, only=["lookahead"])
    assert caught.value.invariant == "lookahead"
    assert "it is the first bar whose decision changed" in caught.value.message
    # the same staged workspace, a built-in: passes; and the case's own files are untouched
    good = _case("mean_reversion", n=120)
    outcome = scratch.run(good)
    before = (scratch.root / "spec" / "case.json").read_bytes()
    check_outcome(good, outcome, only=["lookahead"])
    assert (scratch.root / "spec" / "case.json").read_bytes() == before
    assert not list((scratch.root / "spec").glob("lookahead*")), "nothing written into spec/ (lock state)"


def test_hunt_catches_the_leaky_strategy_and_writes_a_reproducer(workspace: Workspace, cli: Cli) -> None:
    shutil.copy(LEAKY, workspace.root / "leaky_strategy.py")
    code, out, err = cli("hunt", "-w", workspace.root, "--strategy", "leaky_strategy.py:LeakyZScore",
                         "--examples", "20", "--max-bars", "30", "--determinism", "off", "--seed", "1")
    assert code == 2, out + err
    assert out.startswith("treasure hunt: FAILED: lookahead   strategy leaky_strategy.py:LeakyZScore")
    assert "it is the first bar whose decision changed" in out
    (folder,) = (workspace.fixtures_dir / "regressions").iterdir()
    assert folder.name.startswith("lookahead-")


@pytest.mark.parametrize("strategy", ["sma_crossover", "mean_reversion", "buy_and_hold"])
def test_hunt_keeps_the_built_ins_clean_under_the_lookahead_invariant(workspace: Workspace, cli: Cli,
                                                                      strategy: str) -> None:
    code, out, err = cli("hunt", "-w", workspace.root, "--strategy", strategy, "--examples", "8",
                         "--max-bars", "40", "--determinism", "off", "--json")
    assert code == 0, out + err
    doc = json.loads(out)
    assert "lookahead" in doc["invariants"] and doc["status"] == "passed"
