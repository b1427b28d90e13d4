"""Unit tests of the small core modules: contracts, compare, workspace, metrics, EQS, jsonio."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from treasure.compare import compare_documents, compare_event_logs, write_diff
from treasure.contracts import Contracts
from treasure.errors import ConfigError, EventLogError, WorkspaceError
from treasure.events import GENESIS_HASH, seal
from treasure.jsonio import atomic_write_json, read_json
from treasure.metrics import max_drawdown, sharpe, summarize
from treasure.reports.eqs import score, slippage_bps
from treasure.workspace import Workspace, check_run_id


def test_volatile_paths_come_from_the_schema(workspace):
    contracts = Contracts(workspace.truth_dir)
    assert contracts.volatile_paths("court_report") == ["timing"]
    assert "order_filled" in contracts.event_types


def _event(event_type, payload):
    event = {"category": "EXEC", "event_type": event_type, "level": "INFO", "payload": payload,
             "prev": GENESIS_HASH, "run_id": "r", "seq": 0, "ts_ms": 0}
    event["hash"] = seal(event)[0]
    return event


def test_check_event_names_the_broken_payload_field(workspace):
    contracts = Contracts(workspace.truth_dir)
    good = {"order_id": "o1", "bar_idx": 1, "side": "buy", "qty": 1.0, "reason": "x"}
    contracts.check_event(_event("order_rejected", good))
    with pytest.raises(EventLogError) as info:
        contracts.check_event(_event("order_rejected", {**good, "side": "hold"}), source="log.jsonl", line=7)
    assert info.value.field == "payload.side" and info.value.line == 7
    with pytest.raises(EventLogError) as info:
        contracts.check_event(_event("no_such_type", {}))
    assert info.value.field == "event_type"


def test_contracts_refuse_a_file_that_is_not_a_schema(workspace):
    (workspace.truth_dir / "court_report.schema.json").write_text('{"type": 5}')
    with pytest.raises(ConfigError) as info:
        Contracts(workspace.truth_dir).schema("court_report")
    assert info.value.code == "SCHEMA_INVALID"


def test_compare_documents_reports_paths_and_writes_a_diff(tmp_path):
    same = compare_documents({"a": 1, "timing": 1}, {"a": 1, "timing": 2}, volatile=["timing"])
    assert same.equal
    diff = compare_documents({"a": 1, "b": [1, 2]}, {"a": 2, "b": [1, 3]})
    assert not diff.equal and "['a']: 1 -> 2" in diff.summary and "['b'][1]: 2 -> 3" in diff.summary
    path = write_diff(tmp_path, "tests/x.py::test y[1]", diff)
    assert path.parent == tmp_path and "deepdiff" in path.read_text()


def test_compare_event_logs_finds_the_first_differing_seq():
    a = [{"seq": i, "event_type": "t", "payload": {"v": i}} for i in range(5)]
    b = [dict(e) for e in a]
    b[3] = {"seq": 3, "event_type": "t", "payload": {"v": 99}}
    result = compare_event_logs(a, b)
    assert not result.equal and "seq=3" in result.summary and "3 -> 99" in result.summary
    assert not compare_event_logs(a, a[:-1]).equal
    assert compare_event_logs(a, [dict(e) for e in a]).equal


def test_resolve_inside_refuses_traversal_and_symlinks(workspace, tmp_path):
    assert workspace.resolve_inside("fixtures/data/default_bars.csv").is_file()
    for bad in ("../x.csv", "/etc/passwd", "data/../../x"):
        with pytest.raises(WorkspaceError) as info:
            workspace.resolve_inside(bad, field="dataset.path")
        assert info.value.code == "PATH_ESCAPE"
    os.symlink(tmp_path, workspace.root / "data" / "out")
    with pytest.raises(WorkspaceError):
        workspace.resolve_inside("data/out/x.csv")


def test_log_parts_are_in_chain_order(workspace):
    live = workspace.event_log("r1")
    live.parent.mkdir(parents=True, exist_ok=True)
    for name in ("run_r1.jsonl.10", "run_r1.jsonl.2", "run_r1.jsonl", "run_r1.jsonl.tmp", "run_r11.jsonl"):
        (live.parent / name).write_text("")
    assert [p.name for p in workspace.log_parts("r1")] == ["run_r1.jsonl.2", "run_r1.jsonl.10", "run_r1.jsonl"]
    assert workspace.run_ids() == ["r1", "r11"]


def test_workspace_requires_spec(tmp_path):
    with pytest.raises(WorkspaceError):
        Workspace.at(tmp_path)
    assert check_run_id("ok-1.2_3") == "ok-1.2_3"


def test_metrics():
    equity = np.array([100.0, 110.0, 99.0, 120.0, 60.0])
    assert math.isclose(max_drawdown(equity), 0.5)
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0
    assert sharpe(np.array([100.0, 100.0, 100.0]), 60_000) == 0.0
    m = summarize(equity=equity, qty=np.array([0, 1, 1, 0, 0.0]), starting_cash=100.0, interval_ms=60_000,
                  trade_pnls=[1.0, -2.0, 3.0], fees=0.5, realized_pnl=2.0, orders=3, fills=3)
    assert m["total_return"] == -0.4 and m["trades"] == 3 and math.isclose(m["win_rate"], 2 / 3, rel_tol=1e-9)
    assert m["exposure"] == 0.4


def test_eqs_score_formula():
    assert score(1.0, 0.0, 0.0, 1.0) == 100.0
    assert score(1.0, 50.0, 0.0, 1.0) == 0.0
    assert score(0.5, -5.0, 0.0, 1.0) == 50.0  # favourable slippage is not rewarded
    assert score(1.0, 0.0, 25.0, 6.0) == 25.0
    assert slippage_bps("buy", 101, 100) == pytest.approx(100) and slippage_bps("sell", 101, 100) == pytest.approx(-100)


def test_atomic_json_round_trip_and_torn_file(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"b": 1, "a": [1.5]})
    assert read_json(path) == {"a": [1.5], "b": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind
    path.write_text('{"a": ')
    with pytest.raises(ConfigError) as info:
        read_json(path, code="X_JSON")
    assert info.value.code == "X_JSON" and info.value.line == 1


def test_pin_dataset_writes_the_file_and_pins_it(workspace):
    import hashlib
    import json

    from treasure.engine import RunRequest, run
    from treasure.workspace import pin_dataset

    data = b"t_ms,open,high,low,close,volume\n1767225600000,1,1,1,1,1\n1767225660000,1,1,1,1,1\n"
    path = pin_dataset(workspace, data, "data/pinned.csv", interval_ms=60_000)
    assert path.read_bytes() == data
    dataset = json.loads(workspace.ssot_path.read_text())["dataset"]
    assert dataset["path"] == "data/pinned.csv" and dataset["interval_ms"] == 60_000
    assert dataset["sha256"] == hashlib.sha256(data).hexdigest() and dataset["on_gap"] == "warn"
    assert run(RunRequest(workspace=workspace, strategy="buy_and_hold")).status == "complete"
    with pytest.raises(WorkspaceError):
        pin_dataset(workspace, data, "../outside.csv")
