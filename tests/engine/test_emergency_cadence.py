"""The emergency flag's cadence (issue 14's decision): before the first bar and before every order
always; every bar for live-paced adapters; at least every risk.emergency_check_bars bars otherwise.
Tests place the flag at an exact bar through the fault hooks (a callable at the ``bar`` point)."""

from __future__ import annotations

import json

import pytest

from treasure.engine import RunRequest, run
from treasure.execution.base import ExecutionAdapter
from treasure.execution.dryrun import DryRunAdapter
from treasure.execution.replay_live import ReplayLiveAdapter
from treasure.execution.sim import SimAdapter
from treasure.faults import Fault, FaultPlan


def _flag_at(workspace, bar: int) -> FaultPlan:
    def raise_flag() -> None:
        workspace.emergency_flag.write_text('{"status": "EMERGENCY_HALT", "reason": "drill"}')
    return FaultPlan([Fault(raise_flag, "bar", bar + 1)])  # call n of "bar" comes before bar n-1


def _halt(result) -> dict:
    events = [json.loads(line) for line in result.event_log.read_text().splitlines()]
    return next(e["payload"] for e in events if e["event_type"] == "halt")


@pytest.mark.parametrize("every, seen_at", [(None, 1024), (1, 100), (64, 128), (1000, 1000)])
def test_a_simulated_run_sees_the_flag_within_its_check_interval(workspace, edit_ssot, every, seen_at):
    if every is not None:
        edit_ssot(lambda s: s["risk"].update(emergency_check_bars=every))
    result = run(RunRequest(workspace, run_id="sim", strategy="buy_and_hold", faults=_flag_at(workspace, 100)))
    assert result.status == "halted" and _halt(result)["bar_idx"] == seen_at


def test_a_live_paced_adapter_sees_the_flag_at_the_next_bar(workspace):
    result = run(RunRequest(workspace, run_id="dry", strategy="buy_and_hold", adapter="dryrun",
                            faults=_flag_at(workspace, 100)))
    assert result.status == "halted" and _halt(result)["bar_idx"] == 100


def test_the_flag_is_checked_before_the_first_bar(workspace):
    workspace.emergency_flag.write_text("{}")
    result = run(RunRequest(workspace, run_id="pre"))
    assert result.status == "halted" and _halt(result)["bar_idx"] in (None, 0)


def test_adapters_say_how_they_are_paced():
    assert ExecutionAdapter.simulated and not ExecutionAdapter.live_paced
    assert not SimAdapter.live_paced and DryRunAdapter.live_paced
    assert not ReplayLiveAdapter.simulated
