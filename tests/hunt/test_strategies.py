"""The public hypothesis strategies: valid by construction (proved with the engine's own loader,
schema and verifier), each corruption answered with the promised code and line, arguments
refused eagerly, and failures shrinking to a handful of bars."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from jsonschema import Draft202012Validator

from pytest_treasure import strategies as ts
from treasure.contracts import Contracts
from treasure.data import load_dataset
from treasure.errors import TreasureError
from treasure.eventlog import verify_log
from treasure.strategy import Intent
from treasure.workspace import bundle_dir

pytest_plugins = ["pytester"]
SCHEMA = Draft202012Validator(json.loads((bundle_dir() / "spec" / "config.schema.json").read_text()))
CONTRACTS = Contracts(bundle_dir() / "truth")
#: per-kind tests run a fifth of the profile's examples each (ci: 5), the rest the full count
FEW = settings(max_examples=max(3, settings().max_examples // 5),
               suppress_health_check=[HealthCheck.function_scoped_fixture])
FIND = settings(database=None, max_examples=2000, derandomize=True)  # the same minimal example every run


def _on_grid(values: np.ndarray, decimals: int) -> bool:
    return all(float(f"{x:.{decimals}f}") == x for x in values.tolist())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ds=ts.datasets(max_bars=40, gaps=3, duplicates=2, outliers=2, regimes=True))
def test_datasets_load_back_exactly_with_the_injected_gaps_and_duplicates(tmp_path: Path, ds) -> None:
    loaded = load_dataset(ds.write(tmp_path / "d.csv"), interval_ms=ds.interval_ms)
    assert loaded.bars == ds.bars
    assert loaded.sha256 == ds.sha256
    assert tuple(g.bar_idx for g in loaded.gaps) == ds.gaps
    assert tuple(d.bar_idx for d in loaded.duplicates) == ds.duplicates
    assert len(ds.gaps) <= 3 and len(ds.duplicates) <= 2 and len(ds.outliers) <= 2
    assert 1 <= len(ds) <= 40


@given(bars=ts.bars(max_bars=30, regimes=True))
def test_bars_are_valid_regular_and_on_the_csv_grid(bars) -> None:
    assert (bars.low > 0).all() and (bars.volume >= 0).all()
    assert (bars.high >= np.maximum(bars.open, bars.close)).all()
    assert (bars.low <= np.minimum(bars.open, bars.close)).all()
    assert len(set(np.diff(bars.t_ms).tolist())) <= 1, "bars() has no gap and no duplicate"
    assert (bars.open[1:] == bars.close[:-1]).all(), "each bar opens where the last closed"
    for name in ("open", "high", "low", "close"):
        assert _on_grid(getattr(bars, name), 4)
    assert _on_grid(bars.volume, 2)
    assert float(bars.high.max()) <= 1e10


@given(case=ts.cases(max_bars=20))
def test_cases_hold_schema_valid_ssots_pinned_to_their_dataset(case) -> None:
    doc = case.ssot
    assert not list(SCHEMA.iter_errors(doc)), "generated SSOT must validate against spec/config.schema.json"
    assert doc["dataset"]["sha256"] == case.dataset.sha256
    assert doc["dataset"]["interval_ms"] == case.dataset.interval_ms
    cash = doc["run"]["starting_cash_usd"]
    risk = doc["risk"]
    assert 0.01 * cash <= risk["max_position_size_usd"] <= 2 * cash
    assert 0.001 * cash <= risk["daily_loss_limit_usd"] <= 0.2 * cash
    step = doc["instrument"]["qty_step"]
    assert step * float(case.dataset.bars.high.max()) * 100 <= risk["max_position_size_usd"] or step == 1e-08
    params = doc["strategy"]["params"]
    assert params["fast"] < params["slow"]
    assert 0.5 * risk["max_position_size_usd"] <= params["order_usd"] <= 3 * risk["max_position_size_usd"]


@given(doc=ts.ssot_configs(strategy="my_pkg.strats:Breakout", params={"window": 5}))
def test_ssot_configs_for_a_user_strategy_take_its_params_as_given(doc) -> None:
    assert not list(SCHEMA.iter_errors(doc))
    assert doc["strategy"] == {"name": "my_pkg.strats:Breakout", "params": {"window": 5}}


@pytest.mark.parametrize("name", ["sma_crossover", "mean_reversion", "buy_and_hold"])
def test_builtin_params_drawn_are_accepted_by_the_strategy_loader(name: str) -> None:
    from treasure.strategy import load_strategy

    @FEW
    @given(doc=ts.ssot_configs(strategy=name))
    def check(doc) -> None:
        loaded = load_strategy(name, doc["strategy"]["params"])
        assert loaded.name == name

    check()


def test_expected_refusal_follows_the_data_policy() -> None:
    ds = find(ts.datasets(gaps=1, duplicates=1, max_bars=4), lambda d: d.gaps and d.duplicates, settings=FIND)
    doc = json.loads((bundle_dir() / "spec" / "ssot.json").read_text())
    both = ts.Case(ds, {**doc, "dataset": {**doc["dataset"], "on_gap": "error", "on_duplicate": "error"}})
    assert both.expected_refusal() == ("DATA_GAP", ds.gaps[0] + 2)
    dup_only = ts.Case(ds, {**doc, "dataset": {**doc["dataset"], "on_duplicate": "error"}})
    assert dup_only.expected_refusal() == ("DATA_DUPLICATE", ds.duplicates[0] + 2)
    assert ts.Case(ds, doc).expected_refusal() is None


@given(intent=ts.intents(max_qty=1000))
def test_intents_are_what_the_engine_accepts(intent) -> None:
    assert isinstance(intent, Intent)
    assert intent.side in ("buy", "sell")
    assert math.isfinite(intent.qty) and 0 < intent.qty <= 1000
    assert isinstance(intent.reason, str)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=ts.event_streams(max_events=40))
def test_event_streams_verify_against_truth(tmp_path: Path, stream) -> None:
    summary = verify_log([stream.write(tmp_path / "run_x.jsonl")], CONTRACTS)
    assert summary.events == len(stream.events) == len(stream.lines)
    assert stream.events[0]["event_type"] == "run_start" and stream.events[-1]["event_type"] == "run_end"
    assert summary.last_hash == stream.events[-1]["hash"]


@pytest.mark.parametrize("kind", sorted(ts.BROKEN_EVENT_KINDS))
def test_each_event_log_corruption_gets_its_code_and_line(tmp_path: Path, kind: str) -> None:
    @FEW
    @given(broken=ts.broken_event_streams(kinds=[kind]))
    def check(broken) -> None:
        path = broken.write(tmp_path / "run_x.jsonl")
        with pytest.raises(TreasureError) as caught:
            verify_log([path], CONTRACTS)
        assert (caught.value.code, caught.value.line) == (broken.code, broken.line), str(caught.value)
        assert broken.code == ts.BROKEN_EVENT_KINDS[kind]

    check()


@pytest.mark.parametrize("kind", sorted(ts.BROKEN_DATASET_KINDS))
def test_each_dataset_corruption_gets_its_code_line_and_field(tmp_path: Path, kind: str) -> None:
    @FEW
    @given(broken=ts.broken_datasets(kinds=[kind], max_bars=20))
    def check(broken) -> None:
        path = broken.write(tmp_path / "bad.csv")
        with pytest.raises(TreasureError) as caught:
            load_dataset(path)
        got = (caught.value.code, caught.value.line, caught.value.field)
        assert got == (broken.code, broken.line, broken.field), str(caught.value)

    check()


# --------------------------------------------------------------------------------------------
# shrinking: a failure shrinks to a handful of plain bars


def test_a_dataset_with_a_gap_shrinks_to_two_flat_bars() -> None:
    ds = find(ts.datasets(max_bars=20, gaps=3, duplicates=2, outliers=2, regimes=True), lambda d: d.gaps,
              settings=FIND)
    assert len(ds) == 2 and ds.gaps == (1,) and not ds.duplicates and not ds.outliers
    assert ds.csv.decode().splitlines()[1:] == ["1767225600000,100.0000,100.0000,100.0000,100.0000,1000.00",
                                                "1767225720000,100.0000,100.0000,100.0000,100.0000,1000.00"]


def test_a_big_move_shrinks_to_a_few_bars() -> None:
    ds = find(ts.datasets(max_bars=12, regimes=True),
              lambda d: bool((abs(d.bars.close / d.bars.open - 1) > 0.02).any()), settings=FIND)
    assert len(ds) <= 4  # bars shrink from the end: the move may sit a few flat bars in


def test_an_ssot_shrinks_to_the_defaults_but_what_matters() -> None:
    doc = find(ts.ssot_configs(), lambda d: d["risk"]["max_position_size_usd"] < 5000, settings=FIND)
    assert doc["risk"]["max_position_size_usd"] < 5000  # what matters (via cash or the limit's share)
    assert doc["run"]["seed"] == 0 and doc["instrument"]["symbol"] == "SYNTH-USD"
    assert doc["dataset"]["on_gap"] == doc["dataset"]["on_duplicate"] == "warn"
    assert doc["execution"]["fees"] == {"taker_bps": 5, "min_fee_usd": 0.01}
    assert doc["execution"]["slippage"]["bps"] == 2 and doc["execution"]["partial_fill_prob"] == 0.1


def test_a_broken_dataset_shrinks_to_the_first_line() -> None:
    broken = find(ts.broken_datasets(kinds=["nan"], max_bars=5), lambda b: True, settings=FIND)
    assert broken.line == 2 and len(broken.original) == 2


# --------------------------------------------------------------------------------------------
# arguments are refused when the strategy is built, naming the argument


@pytest.mark.parametrize("build, message", [
    (lambda: ts.datasets(min_bars=0), "min_bars=0 must be >= 1"),
    (lambda: ts.datasets(min_bars=5, max_bars=4), "min_bars=5 must be <= max_bars=4"),
    (lambda: ts.datasets(max_bars=2.5), "max_bars=2.5 must be an int"),
    (lambda: ts.datasets(gaps=-1), "gaps=-1 must be >= 0"),
    (lambda: ts.datasets(duplicates="2"), "duplicates='2' must be an int"),
    (lambda: ts.datasets(regimes="yes"), "regimes='yes' must be a bool"),
    (lambda: ts.datasets(interval_ms=0), "interval_ms=0 must be >= 1"),
    (lambda: ts.bars(max_bars=0), "max_bars=0 must be >= 1"),
    (lambda: ts.ssot_configs(strategy=""), "strategy='' must be a non-empty string"),
    (lambda: ts.ssot_configs(params=[1]), "params=[1] must be a dict"),
    (lambda: ts.ssot_configs(policies=("maybe",)), "policies=('maybe',)"),
    (lambda: ts.ssot_configs(dataset_path="/abs.csv"), "workspace-relative"),
    (lambda: ts.ssot_configs(dataset="x"), "must be a GeneratedDataset"),
    (lambda: ts.ssot_configs(seeds=5), "seeds=5 must be a strategy"),
    (lambda: ts.cases(max_bars=1), "min_bars=2 must be <= max_bars=1"),
    (lambda: ts.intents(max_qty=0), "max_qty=0 must be a finite number > 0"),
    (lambda: ts.intents(min_qty=5, max_qty=1), "min_qty=5 must be <= max_qty=1"),
    (lambda: ts.intents(sides=("hold",)), "sides=('hold',)"),
    (lambda: ts.event_streams(min_events=1), "min_events=1 must be >= 2"),
    (lambda: ts.event_streams(run_id="../x"), "run_id='../x'"),
    (lambda: ts.broken_event_streams(kinds=["melt"]), "choose from edit"),
    (lambda: ts.broken_datasets(kinds=[]), "choose from nan"),
])
def test_bad_arguments_are_refused_eagerly(build, message: str) -> None:
    with pytest.raises(InvalidArgument, match=None) as caught:
        build()  # no draw: the error comes when the strategy is built
    assert message in str(caught.value)


def test_strategies_compose_with_hypothesis() -> None:
    pair = st.tuples(ts.datasets(max_bars=3), ts.intents())
    ds, intent = find(pair, lambda p: True, settings=FIND)
    assert len(ds) == 1 and intent.qty > 0


# The hypothesis profiles are tested with the plugin: tests/plugin/test_plugin_profiles.py
