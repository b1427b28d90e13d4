"""The plugin's fixtures: runs in temporary copies, caching, events, canonical diffs and goldens."""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis  # noqa: F401  preloaded: pytester's in-process runs then reuse it
import pytest

# Preloaded: pytester's in-process runs drop the modules they import, and a module-level registry
# (treasure.plugins, execution adapters) kept across runs would then meet a second copy of a class.
import treasure.engine  # noqa: F401
import treasure.execution.dryrun  # noqa: F401
import treasure.execution.replay_live  # noqa: F401
import treasure.execution.sim  # noqa: F401
import treasure.plugins  # noqa: F401
from treasure.workspace import Workspace, init_workspace

pytest_plugins = ["pytester"]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def run(pytester: pytest.Pytester, ws: Workspace, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              f"--treasure-workspace={ws.root}", *args)


def test_treasure_run_is_cached_per_parameter_set_and_never_touches_the_workspace(pytester, ws):
    pytester.makepyfile('''
        import pytest
        from pytest_treasure import workspace_of

        SEEN = {}

        @pytest.mark.parametrize("treasure_run", [{}, {"seed": 7}, {"seed": 7}, {"seed": 7, "strategy": "buy_and_hold"}],
                                 indirect=True)
        def test_run(treasure_run, event_log, treasure_workspace):
            assert treasure_run.status == "complete"
            assert event_log[0]["event_type"] == "run_start" and event_log[-1]["event_type"] == "run_end"
            assert workspace_of(treasure_run).root != treasure_workspace.root
            SEEN.setdefault((event_log[0]["payload"]["seed"], event_log[0]["payload"]["strategy"]["name"]),
                            set()).add(treasure_run.report_dir)

        def test_cached():
            assert sorted(SEEN) == [(7, "buy_and_hold"), (7, "sma_crossover"), (42, "sma_crossover")]
            assert all(len(dirs) == 1 for dirs in SEEN.values())

        def test_bad_params(request):
            pass

        @pytest.mark.parametrize("treasure_run", [{"sede": 1}], indirect=True)
        def test_typo(treasure_run):
            pass
    ''')
    result = run(pytester, ws)
    result.assert_outcomes(passed=6, errors=1)
    result.stdout.fnmatch_lines(["*treasure_run parameters must be a dict with keys among seed, strategy, dataset*"])
    assert not (ws.root / "logs").exists() or not list(ws.logs_dir.iterdir())
    assert not list(ws.reports_dir.iterdir())


def test_factory_gives_fresh_runs_and_broken_inputs_raise_coded_errors(pytester, ws):
    pytester.makepyfile('''
        import pytest
        from treasure.errors import TreasureError

        def test_factory(treasure_run_factory, ssot):
            a, b = treasure_run_factory(run_id="a"), treasure_run_factory(run_id="a")
            assert a.report_dir != b.report_dir and a.court["metrics"] == b.court["metrics"]
            broken = ssot.as_dict()
            broken["risk"]["max_position_size_usd"] = -1
            with pytest.raises(TreasureError) as info:
                treasure_run_factory(ssot=broken)
            assert info.value.code == "SSOT_SCHEMA" and info.value.field == "risk.max_position_size_usd"

        def test_edit(treasure_run_factory):
            def flag(ws):
                ws.data_dir.mkdir(parents=True, exist_ok=True)
                ws.emergency_flag.write_text('{"reason": "drill"}')
            assert treasure_run_factory(edit=flag).status == "halted"
    ''')
    run(pytester, ws).assert_outcomes(passed=2)


def test_ssot_fixture_errors_with_the_coded_problem(pytester, ws):
    doc = json.loads(ws.ssot_path.read_text())
    doc["run"]["seed"] = "x"
    ws.ssot_path.write_text(json.dumps(doc))
    pytester.makepyfile("def test_ssot(ssot):\n    pass\n")
    result = run(pytester, ws)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the SSOT does not load:*", "*error?SSOT_SCHEMA?*field run.seed*"])


def test_workspace_option_pointing_nowhere_is_explained(pytester, tmp_path):
    pytester.makepyfile("def test_ws(treasure_workspace):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", f"--treasure-workspace={tmp_path / 'nope'}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no Treasure workspace*", "*error?WORKSPACE_MISSING?*"])


def test_ini_option_sets_the_workspace_relative_to_the_ini_file(pytester, tmp_path):
    init_workspace(pytester.path / "deploy")
    pytester.makeini("[pytest]\ntreasure_workspace = deploy\n")
    pytester.makepyfile('''
        def test_ws(treasure_workspace, request):
            assert treasure_workspace.root == request.config.rootpath / "deploy"
    ''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


CANONICAL = '''
import copy
import pytest

BASE = {"status": "complete", "metrics": {"fees_usd": 12.5, "trades": 3}, "timing": {"wall_ms": 1.0}}

def test_volatile_fields_are_ignored(canonical):
    other = copy.deepcopy(BASE)
    other["timing"]["wall_ms"] = 999.0
    canonical.assert_equal(BASE, other, schema="court_report")

def test_mismatch(canonical):
    other = copy.deepcopy(BASE)
    other["metrics"]["fees_usd"] = 13.0
    canonical.assert_equal(BASE, other, schema="court_report")

def test_drop(canonical):
    other = dict(BASE, status="halted")
    canonical.assert_equal(BASE, other, drop=["status"])

def test_events(canonical):
    a = [{"seq": 0, "event_type": "run_start", "payload": {"seed": 1}}]
    b = [{"seq": 0, "event_type": "run_start", "payload": {"seed": 2}}]
    canonical.assert_events_equal(a, b, name="events_diff")

def test_golden(canonical):
    canonical.assert_golden("demo/report", BASE, schema="court_report")
'''


def test_canonical_fails_with_a_short_diff_and_writes_the_full_one(pytester, ws):
    pytester.makepyfile(test_canon=CANONICAL)
    result = run(pytester, ws, "-k", "not golden")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*documents differ:",
        "['metrics']['fees_usd']: 12.5 -> 13.0",
        "full diff: evidence/diffs/test_canon.py_test_mismatch.txt",
    ])
    result.stdout.fnmatch_lines(["*event logs differ:*", "*seed*1 -> 2*", "full diff: evidence/diffs/events_diff.txt"])
    full = (ws.evidence_dir / "diffs" / "test_canon.py_test_mismatch.txt").read_text()
    assert "fees_usd" in full and "# expected (canonical)" in full
    assert (ws.evidence_dir / "diffs" / "events_diff.txt").is_file()


def test_goldens_fail_when_missing_or_changed_and_are_rewritten_on_request(pytester, ws):
    pytester.makepyfile(test_canon=CANONICAL)
    golden = ws.fixtures_dir / "golden" / "demo" / "report.json"
    missing = run(pytester, ws, "-k", "golden")
    missing.assert_outcomes(failed=1, deselected=4)
    missing.stdout.fnmatch_lines(["*no golden fixtures/golden/demo/report.json: record it with "
                                  "`pytest --treasure-update-goldens`*"])
    assert not golden.exists()

    update = run(pytester, ws, "-k", "golden", "--treasure-update-goldens")
    update.assert_outcomes(passed=1, deselected=4)
    update.stdout.fnmatch_lines(["golden updated: fixtures/golden/demo/report.json"])
    stored = json.loads(golden.read_text())
    assert "timing" not in stored and stored["metrics"]["fees_usd"] == 12.5

    run(pytester, ws, "-k", "golden").assert_outcomes(passed=1, deselected=4)
    stored["metrics"]["trades"] = 4
    golden.write_text(json.dumps(stored))
    changed = run(pytester, ws, "-k", "golden")
    changed.assert_outcomes(failed=1, deselected=4)
    changed.stdout.fnmatch_lines(["*differs from the golden fixtures/golden/demo/report.json*",
                                  "['metrics']['trades']: 4 -> 3"])
    again = run(pytester, ws, "-k", "golden", "--treasure-update-goldens")
    again.stdout.fnmatch_lines(["golden updated: fixtures/golden/demo/report.json"])
    assert json.loads(golden.read_text())["metrics"]["trades"] == 3


def test_treasure_run_copies_the_files_the_ssot_names_and_takes_a_dataset(pytester, ws):
    """A strategy file and a dataset outside spec/truth/fixtures reach the temporary copy at the
    same relative place, so the run works and its evidence keeps workspace-relative paths."""
    (ws.root / "strategies").mkdir()
    (ws.root / "strategies" / "idle.py").write_text(
        "from treasure import Strategy\n\nclass Idle(Strategy):\n    name = 'idle'\n\n"
        "    def on_bar(self, ctx, bar):\n        return None\n")
    (ws.root / "data").mkdir(exist_ok=True)
    (ws.root / "data" / "copy.csv").write_bytes((ws.fixtures_dir / "data" / "default_bars.csv").read_bytes())
    doc = json.loads(ws.ssot_path.read_text())
    doc["strategy"] = {"name": "strategies/idle.py:Idle", "params": {}}
    ws.ssot_path.write_text(json.dumps(doc))
    pytester.makepyfile('''
        import pytest

        def test_file_strategy(treasure_run):
            assert treasure_run.status == "complete", treasure_run.error
            assert treasure_run.court["inputs"]["strategy"]["ref"] == "strategies/idle.py:Idle"
            assert treasure_run.court["metrics"]["orders"] == 0

        @pytest.mark.parametrize("treasure_run", [{"dataset": "data/copy.csv", "strategy": "buy_and_hold"}],
                                 indirect=True)
        def test_dataset(treasure_run):
            inputs = treasure_run.court["inputs"]
            assert inputs["dataset_path"] == "data/copy.csv" and inputs["dataset_override"] is True
    ''')
    run(pytester, ws).assert_outcomes(passed=2)
