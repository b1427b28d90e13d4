"""The run end to end through the library: evidence, halts, refusals and determinism."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from treasure.contracts import Contracts
from treasure.data import bars_to_csv, generate_bars
from treasure.engine import RunRequest, quantize, run
from treasure.errors import DataError, RunError, TreasureError
from treasure.eventlog import verify_log


def _run(workspace, **kw):
    return run(RunRequest(workspace=workspace, **kw))


def _events(result):
    collected = []
    verify_log(result.event_log, Contracts(result.event_log.parents[2] / "truth"), collect=collected)
    return collected


def _use_dataset(workspace, edit_ssot, csv: bytes, name="custom.csv", **dataset):
    path = workspace.root / "data" / name
    path.write_bytes(csv)
    edit_ssot(lambda s: s["dataset"].update(path=f"data/{name}", sha256=hashlib.sha256(csv).hexdigest(), **dataset))


def test_default_run_is_complete_with_valid_evidence(workspace):
    result = _run(workspace)
    assert result.status == "complete" and result.exit_code == 0
    court = result.court
    assert court["metrics"]["trades"] > 24  # "dozens of trades"
    assert court["metrics"]["bars"] > 5000
    events = _events(result)
    types = [e["event_type"] for e in events]
    assert types[0] == "run_start" and types[1] == "dataset_loaded" and types[-1] == "run_end"
    assert types.count("data_gap_detected") == 3 and types.count("duplicate_timestamp") == 1
    assert court["events"]["total"] == len(events) and court["events"]["last_hash"] == events[-1]["hash"]
    for name in ("court_report.json", "eqs_report.json", "equity.npy"):
        assert (result.report_dir / name).is_file()
    latest = json.loads((workspace.reports_dir / "court_report.json").read_text())
    assert latest == json.loads((result.report_dir / "court_report.json").read_text())
    codes = {f["code"] for f in court["findings"]}
    assert {"DATA_GAP", "DUPLICATE_TIMESTAMP"} <= codes


def test_equity_is_cash_plus_marked_position_at_every_bar(workspace):
    result = _run(workspace)
    curve = np.load(result.report_dir / "equity.npy")
    assert np.array_equal(curve["equity"], curve["cash"] + curve["qty"] * curve["close"])
    # reconstruct independently from position_updated events
    updates = [e["payload"] for e in _events(result) if e["event_type"] == "position_updated"]
    last_at_bar = {u["bar_idx"]: u for u in updates}
    for row in curve[np.isin(curve["bar_idx"], list(last_at_bar))]:
        u = last_at_bar[int(row["bar_idx"])]
        assert math.isclose(row["qty"], u["qty"], abs_tol=1e-9)
        assert math.isclose(row["cash"], u["cash"], abs_tol=1e-6)
    assert math.isclose(result.court["metrics"]["final_equity_usd"], float(curve["equity"][-1]), abs_tol=1e-6)


def test_same_inputs_give_byte_identical_evidence(tmp_path):
    from treasure.workspace import init_workspace

    a = _run(init_workspace(tmp_path / "a"), run_id="same")
    b = _run(init_workspace(tmp_path / "b"), run_id="same")
    assert a.event_log.read_bytes() == b.event_log.read_bytes()
    assert (a.report_dir / "equity.npy").read_bytes() == (b.report_dir / "equity.npy").read_bytes()
    strip = lambda c: {k: v for k, v in c.items() if k != "timing"}  # noqa: E731
    assert strip(a.court) == strip(b.court) and a.eqs == b.eqs


def test_default_run_id_is_derived_from_inputs_and_refused_when_it_exists(workspace):
    first = _run(workspace)
    assert first.run_id.startswith("sma_crossover-")
    with pytest.raises(RunError) as info:
        _run(workspace)
    assert info.value.code == "RUN_EXISTS"
    again = _run(workspace, overwrite=True)
    assert again.run_id == first.run_id
    other_seed = _run(workspace, seed=first.court["inputs"]["seed"] + 1)
    assert other_seed.run_id != first.run_id


@pytest.mark.parametrize("bad", ["", "..", "a/b", "../x", "-lead", "x" * 65, "a b", "ü"])
def test_bad_run_ids_are_refused(workspace, bad):
    with pytest.raises(RunError) as info:
        _run(workspace, run_id=bad)
    assert info.value.code == "RUN_ID_INVALID"
    assert not any(workspace.logs_dir.iterdir())


def test_emergency_flag_halts_before_trading(workspace):
    workspace.emergency_flag.write_text('{"status":"EMERGENCY_HALT","reason":"drill"}')
    result = _run(workspace)
    assert result.status == "halted" and result.exit_code == 3
    events = _events(result)
    halt = [e for e in events if e["event_type"] == "halt"]
    assert halt and halt[0]["level"] == "CRITICAL" and halt[0]["payload"]["reason"] == "emergency_flag"
    assert halt[0]["payload"]["detail"] == "drill"
    assert not [e for e in events if e["event_type"] == "order_placed"]
    assert result.court["status"] == "halted"


def test_emergency_flag_set_mid_run_halts_at_the_next_bar_and_cancels_orders(workspace):
    strategy = workspace.root / "flagger.py"
    strategy.write_text(
        "from treasure import Strategy, Intent\n"
        "class Flagger(Strategy):\n"
        "    name = 'flagger'\n"
        "    def on_bar(self, ctx, bar):\n"
        "        if bar.idx == 100:\n"
        "            open(FLAG, 'w').write('{}')\n"
        "            return [Intent('buy', 1.0, 'just before the flag')]\n"
        "        return None\n".replace("FLAG", repr(str(workspace.emergency_flag))))
    result = _run(workspace, strategy="flagger.py:Flagger")
    assert result.status == "halted"
    events = _events(result)
    halt = next(e for e in events if e["event_type"] == "halt")
    # every order is checked against the flag before it is submitted: this one never is
    assert halt["payload"]["bar_idx"] == 100 and halt["payload"]["cancelled_orders"] == 0
    assert not [e for e in events if e["event_type"] in ("order_placed", "order_filled")]


def test_daily_loss_limit_emits_then_halts(workspace, edit_ssot):
    edit_ssot(lambda s: (s["risk"].update(daily_loss_limit_usd=20, max_position_size_usd=50000),
                         s["strategy"]["params"].update(order_usd=40000)))
    result = _run(workspace)
    assert result.status == "halted" and result.exit_code == 3
    types = [e["event_type"] for e in _events(result)]
    i = types.index("daily_loss_limit")
    assert types[i + 1] == "halt" and types[-1] == "run_end"
    assert result.court["reason"] == "daily_loss_limit"
    assert "order_placed" not in types[i:]


def test_no_fill_exceeds_max_position(workspace, edit_ssot):
    edit_ssot(lambda s: (s["risk"].update(max_position_size_usd=5000),
                         s["strategy"]["params"].update(order_usd=9000)))
    result = _run(workspace)
    events = _events(result)
    limit_events = [e for e in events if e["event_type"] == "limit_exceeded"]
    assert limit_events, "orders above the limit must be cut and reported"
    for e in events:
        if e["event_type"] == "position_updated":
            assert abs(e["payload"]["position_usd"]) <= 5000 * (1 + 1e-9)


def test_pinned_sha_mismatch_is_refused_without_evidence(workspace):
    dataset = workspace.root / "fixtures" / "data" / "default_bars.csv"
    data = dataset.read_bytes()
    dataset.write_bytes(data[:-3] + (b"9" if data[-3:-2] != b"9" else b"8") + data[-2:])
    with pytest.raises(DataError) as info:
        _run(workspace)
    assert info.value.code == "DATA_SHA_MISMATCH" and info.value.field == "dataset.sha256"
    assert not any(workspace.logs_dir.iterdir()) and not any(workspace.reports_dir.iterdir())


def test_explicit_dataset_override_is_a_finding(workspace):
    csv = bars_to_csv(generate_bars(n_bars=400, seed=3))
    path = workspace.root / "data" / "other.csv"
    path.write_bytes(csv)
    result = _run(workspace, dataset_path=path)
    assert result.status == "complete"
    assert result.court["inputs"]["dataset_override"] is True
    assert "DATASET_OVERRIDE" in {f["code"] for f in result.court["findings"]}


def test_gap_and_duplicate_policies_can_be_fatal(workspace, edit_ssot):
    edit_ssot(lambda s: s["dataset"].update(on_gap="error"))
    with pytest.raises(DataError) as info:
        _run(workspace)
    assert info.value.code == "DATA_GAP" and info.value.line is not None
    edit_ssot(lambda s: s["dataset"].update(on_gap="warn", on_duplicate="error"))
    with pytest.raises(DataError) as info:
        _run(workspace)
    assert info.value.code == "DATA_DUPLICATE"


def test_a_raising_strategy_ends_in_error_with_evidence(workspace):
    (workspace.root / "boom.py").write_text(
        "from treasure import Strategy\n"
        "class Boom(Strategy):\n"
        "    def on_bar(self, ctx, bar):\n"
        "        if bar.idx == 50:\n"
        "            raise ZeroDivisionError('bad math')\n")
    result = _run(workspace, strategy="boom.py:Boom")
    assert result.status == "error" and result.exit_code == 2
    assert result.error is not None and result.error.code == "STRATEGY_FAILED"
    events = _events(result)
    assert events[-2]["event_type"] == "run_error" and "bad math" in events[-2]["payload"]["message"]
    assert events[-1]["payload"]["status"] == "error"
    assert result.court["status"] == "error"


@pytest.mark.parametrize("intent", ["[Intent('hold', 1.0)]", "[Intent('buy', float('nan'))]", "[Intent('buy', -1)]",
                                    "42", "['buy']"])
def test_malformed_intents_are_coded_errors(workspace, intent):
    (workspace.root / "bad.py").write_text(
        "from treasure import Strategy, Intent\n"
        "class Bad(Strategy):\n"
        f"    def on_bar(self, ctx, bar):\n        return {intent} if bar.idx == 40 else None\n")
    result = _run(workspace, strategy="bad.py:Bad")
    assert result.status == "error" and result.error.code == "INTENT_INVALID"


@pytest.mark.parametrize("ref, code", [("nope", "STRATEGY_UNKNOWN"), ("missing.py:X", "STRATEGY_UNKNOWN"),
                                       ("treasure.errors:TreasureError", "STRATEGY_INVALID"),
                                       ("json:NoSuchClass", "STRATEGY_UNKNOWN")])
def test_unknown_strategies_are_refused(workspace, ref, code):
    with pytest.raises(TreasureError) as info:
        _run(workspace, strategy=ref)
    assert info.value.code == code


def test_bad_strategy_params_are_refused(workspace, edit_ssot):
    edit_ssot(lambda s: s["strategy"]["params"].update(fast="ten"))
    with pytest.raises(RunError) as info:
        _run(workspace)
    assert info.value.code == "STRATEGY_PARAMS" and "fast" in info.value.field


@pytest.mark.parametrize("name", ["mean_reversion", "buy_and_hold"])
def test_builtin_strategies_run(workspace, name):
    result = _run(workspace, strategy=name)
    assert result.status == "complete" and result.court["metrics"]["fills"] > 0


def test_partial_fills_come_from_the_seeded_rng(workspace, edit_ssot):
    edit_ssot(lambda s: s["execution"].update(partial_fill_prob=0.9))
    result = _run(workspace)
    statuses = [e["payload"]["status"] for e in _events(result) if e["event_type"] == "order_filled"]
    assert "partially_filled" in statuses
    assert result.eqs["fill_latency_bars"]["max"] >= 2
    placed = {e["payload"]["order_id"] for e in _events(result) if e["event_type"] == "order_placed"}
    terminal = {e["payload"]["order_id"] for e in _events(result)
                if e["event_type"] in ("order_cancelled", "order_rejected")
                or (e["event_type"] == "order_filled" and e["payload"]["status"] == "filled")}
    assert placed <= terminal


@pytest.mark.parametrize("qty, step, expected", [(66.812205, 1e-6, 66.812205), (1.0000004, 1e-6, 1.0),
                                                 (2.9999999999, 1.0, 3.0), (2.5, 1.0, 2.0)])
def test_quantize_rounds_down_without_float_dust(qty, step, expected):
    assert quantize(qty, step) == pytest.approx(expected, abs=1e-12)


def test_a_third_party_adapter_that_raises_is_adapter_failed_with_evidence(workspace, monkeypatch):
    from treasure.execution import base

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    (workspace.root / "venue.py").write_text(
        "from treasure.execution.sim import SimAdapter\n"
        "class Flaky(SimAdapter):\n"
        "    def submit(self, order):\n"
        "        raise ConnectionError('venue unreachable')\n")
    import importlib.util
    spec = importlib.util.spec_from_file_location("venue_under_test", workspace.root / "venue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base.register_adapter("flaky", module.Flaky)
    result = _run(workspace, adapter="flaky")
    assert result.status == "error" and result.exit_code == 2
    assert result.error.code == "ADAPTER_FAILED" and "venue unreachable" in result.error.message
    assert _events(result)[-1]["payload"]["status"] == "error"


def test_a_killed_run_shows_it_started(workspace):
    """run_start and dataset_loaded reach the file before the first bar, not with the first batch."""
    from treasure.eventlog import read_events

    def stop_at_first_bar(point):
        if point == "bar":
            raise KeyboardInterrupt  # stands in for SIGKILL: nothing after this point runs

    with pytest.raises(KeyboardInterrupt):
        _run(workspace, run_id="k", faults=stop_at_first_bar)
    assert [e["event_type"] for e in read_events(workspace.event_log("k"))] == ["run_start", "dataset_loaded"]
