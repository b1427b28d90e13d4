"""Where points run: in this process (``serial``) or on Dask distributed (a LocalCluster started here,
or a running scheduler at ``tcp://HOST:PORT``).

Inputs reach workers by content hash: each bundle and dataset is scattered once under the key
``treasure-input-<sha256>`` (replicated to every worker, so losing one loses no input), and each
task names its inputs by those keys. Tasks are keyed ``treasure-point-<point_id>`` and are pure, so
the scheduler may re-run one whose worker died; results come back to the client as they finish,
in any order (the report is sorted, so the order never shows).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from treasure.errors import RunError, TreasureError
from treasure.sweep.planner import Inputs, PointTask
from treasure.sweep.worker import run_point

OnResult = Callable[[dict[str, Any]], None]


@dataclass
class ExecutorOptions:
    serial: bool = False
    scheduler: str | None = None  # tcp://HOST:PORT of a running dask scheduler
    n_workers: int = 2
    threads_per_worker: int = 1
    retries: int = 2
    #: test hook: called after each result with (client, results so far), e.g. to kill a worker
    chaos: Callable[[Any, int], None] | None = field(default=None, repr=False)
    #: filled in after a Dask run: workers the scheduler saw leave (killed or lost)
    lost_workers: list[str] = field(default_factory=list)


def execute(tasks: Sequence[PointTask], inputs: Inputs, on_result: OnResult, options: ExecutorOptions) -> None:
    if options.serial or not tasks:
        for task in tasks:
            on_result(run_point(task, inputs.bundles[task.bundle_sha256], inputs.datasets[task.dataset.sha256]))
        return
    _execute_dask(tasks, inputs, on_result, options)


def input_key(sha: str) -> str:
    return f"treasure-input-{sha}"


def _execute_dask(tasks: Sequence[PointTask], inputs: Inputs, on_result: OnResult, options: ExecutorOptions) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise RunError("SWEEP_DASK_MISSING", "dask distributed is not installed", field="--serial") from None
    cluster = None
    try:
        if options.scheduler:
            try:
                client = Client(options.scheduler, timeout="10s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise RunError("SWEEP_SCHEDULER", f"cannot reach the dask scheduler at {options.scheduler}: {exc}",
                               field="--scheduler") from None
        else:
            cluster = LocalCluster(n_workers=options.n_workers, threads_per_worker=options.threads_per_worker,
                                   processes=True, dashboard_address=None, silence_logs=logging.CRITICAL)
            client = Client(cluster)
    except TreasureError:
        raise
    try:
        _run_on(client, tasks, inputs, on_result, options, as_completed)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_on(client: Any, tasks: Sequence[PointTask], inputs: Inputs, on_result: OnResult,
            options: ExecutorOptions, as_completed: Any) -> None:
    needed_bundles = sorted({t.bundle_sha256 for t in tasks})
    needed_data = sorted({t.dataset.sha256 for t in tasks})
    payload: dict[str, Any] = {input_key(s): inputs.bundles[s] for s in needed_bundles}
    payload.update({input_key(s): inputs.datasets[s] for s in needed_data})
    scattered = client.scatter(payload, broadcast=True, hash=False)
    workers_before = set(client.scheduler_info()["workers"])
    futures = [client.submit(run_point, task, scattered[input_key(task.bundle_sha256)],
                             scattered[input_key(task.dataset.sha256)], key=f"treasure-point-{task.point_id}",
                             retries=options.retries, pure=False)
               for task in tasks]
    done = 0
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # the task raised on every retry, or its workers kept dying
                raise RunError("SWEEP_TASK_FAILED", f"task {future.key} failed: {type(exc).__name__}: {exc}") from exc
            on_result(result)
            done += 1
            if options.chaos is not None:
                options.chaos(client, done)
    finally:
        for future in futures:
            future.release()
    workers_after = set(client.scheduler_info()["workers"])
    options.lost_workers = sorted(workers_before - workers_after)
