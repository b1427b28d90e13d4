"""Run health (issue 13, findings 5 and 6): a dead venue feed ends ``degraded`` (exit 4), not COMPLETE;
a broken truth/ schema is refused before bar 0; an unapproved SSOT is a court finding."""

from __future__ import annotations

import json

import pytest

from treasure.engine import RunRequest, run
from treasure.errors import EXIT_DEGRADED, TreasureError
from treasure.execution import base
from treasure.execution.messages import ExecReport
from treasure.execution.sim import SimAdapter
from treasure.approval import approve


class _DeadFeed(SimAdapter):
    """A venue that answers every order with garbage: one adapter_error per order, no fills."""

    name = "deadfeed"
    simulated = False

    def submit(self, order):  # type: ignore[no-untyped-def]
        return [ExecReport("error", order.order_id, reason="unparseable venue message", code="VENUE_GARBAGE")]

    def on_bar(self, bar):  # type: ignore[no-untyped-def]
        return []


@pytest.fixture(autouse=True)
def _dead_feed(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", {**base._REGISTRY, "deadfeed": _DeadFeed})


def test_a_dead_venue_feed_ends_degraded_with_exit_4(workspace, cli):
    code, out, err = cli("run", "--workspace", workspace.root, "--adapter", "deadfeed", "--run-id", "dead")
    court = json.loads((workspace.run_reports("dead") / "court_report.json").read_text())
    assert code == EXIT_DEGRADED == 4, (out, err)
    assert court["status"] == "degraded" and court["reason"] == "error_rate"
    finding = next(f for f in court["findings"] if f["code"] == "ERROR_RATE")
    assert finding["level"] == "ERROR" and finding["count"] == court["events"]["by_level"]["ERROR"]
    run_end = json.loads(workspace.event_log("dead").read_text().splitlines()[-1])
    assert run_end["event_type"] == "run_end" and run_end["payload"]["status"] == "degraded"


def test_the_error_rate_threshold_comes_from_the_ssot(workspace, edit_ssot):
    edit_ssot(lambda s: s.setdefault("health", {}).update(max_error_rate=0.9))
    result = run(RunRequest(workspace, run_id="tolerant", adapter="deadfeed"))
    assert result.status == "complete" and result.exit_code == 0


def test_a_healthy_run_is_complete(workspace):
    assert run(RunRequest(workspace, run_id="ok")).status == "complete"


def test_a_broken_truth_schema_is_refused_before_bar_0(workspace):
    (workspace.truth_dir / "events" / "halt.schema.json").write_text('{"type": "object", "properties": ')
    with pytest.raises(TreasureError) as info:
        run(RunRequest(workspace, run_id="broken"))
    assert info.value.code == "SCHEMA_INVALID" and "halt.schema.json" in (info.value.path or "")
    assert not workspace.event_log("broken").exists()


def test_an_unapproved_ssot_is_a_court_finding(workspace, edit_ssot):
    approve(workspace)
    clean = run(RunRequest(workspace, run_id="approved"))
    assert not [f for f in clean.court["findings"] if f["code"] == "SSOT_UNAPPROVED"]
    edit_ssot(lambda s: s["risk"].update(daily_loss_limit_usd=1400))
    result = run(RunRequest(workspace, run_id="edited"))
    (finding,) = [f for f in result.court["findings"] if f["code"] == "SSOT_UNAPPROVED"]
    assert finding["level"] == "WARN" and "spec/ssot.json" in finding["message"]
