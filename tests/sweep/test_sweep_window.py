"""The Dask executor's bounded window: at most ``max_in_flight`` point tasks are on the scheduler
at once, one more as each finishes, and the report stays byte-identical to the serial one, also
with a worker killed mid-sweep."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from test_sweep import _make

from treasure.sweep import ExecutorOptions, run_sweep


def _point_tasks(dask_scheduler: Any) -> int:
    """Point tasks the scheduler holds that have not finished (waiting, queued or processing)."""
    return sum(1 for key, ts in dask_scheduler.tasks.items()
               if str(key).startswith("treasure-point-") and ts.state not in ("memory", "released", "forgotten"))


def test_window_bounds_tasks_in_flight_and_keeps_bytes(tmp_path: Path) -> None:
    ws, spec = _make(tmp_path / "serial")
    serial = run_sweep(ws, spec, ExecutorOptions(serial=True)).report_path.read_bytes()
    ws2, spec2 = _make(tmp_path / "dask")
    seen: list[int] = []
    killed: list[str] = []

    def chaos(client: Any, done: int) -> None:
        seen.append(client.run_on_scheduler(_point_tasks))
        if done == 3 and not killed:
            busy = client.processing()
            victim = sorted(w for w, keys in busy.items() if keys)[0] if any(busy.values()) else sorted(busy)[0]
            killed.append(victim)
            os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)

    options = ExecutorOptions(n_workers=2, max_in_flight=2, chaos=chaos)
    outcome = run_sweep(ws2, spec2, options)
    assert outcome.ran == 8 and len(seen) == 8
    assert max(seen) <= 2 and seen[0] >= 1  # never more than the window; never all 8 at once
    assert killed and killed[0] in options.lost_workers
    assert outcome.report_path.read_bytes() == serial


def test_a_worker_running_other_code_refuses_the_point(tmp_path: Path) -> None:
    from dataclasses import replace

    from treasure.errors import TreasureError
    from treasure.sweep.planner import code_sha256, plan_sweep
    from treasure.sweep.service import SweepDir
    from treasure.sweep.spec import load_spec
    from treasure.sweep.worker import run_point

    ws, spec = _make(tmp_path / "ws")
    plan = plan_sweep(ws, load_spec(ws, spec))
    task = plan.points[0]
    assert task.code_sha256 == code_sha256() and len(task.code_sha256) == 64
    bundle, data = plan.inputs.bundles[task.bundle_sha256], plan.inputs.datasets[task.dataset.sha256]
    result = run_point(replace(task, code_sha256="0" * 64), bundle, data)
    assert result["fatal"]["code"] == "SWEEP_INPUT_MISMATCH" and "other Treasure code" in result["fatal"]["message"]
    import pytest

    with pytest.raises(TreasureError) as err:
        SweepDir(ws, plan.sweep_id, force=False).record(task, result)
    assert err.value.code == "SWEEP_INPUT_MISMATCH"
    assert not (ws.root / "sweeps").exists()  # nothing written for a refused point
    assert run_point(task, bundle, data)["status"] == "complete"
