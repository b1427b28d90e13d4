"""Where points run: in this process (``serial``) or on Dask distributed (a LocalCluster started here,
or a running scheduler at ``tcp://HOST:PORT``).

Inputs reach workers by content hash: each bundle and dataset is scattered once under the key
``treasure-input-<sha256>`` (replicated to every worker, so losing one loses no input), and each
task names its inputs by those keys. Tasks are keyed ``treasure-point-<point_id>`` and are pure, so
the scheduler may re-run one whose worker died; results come back to the client as they finish,
in any order (the report is sorted, so the order never shows). At most ``max_in_flight`` tasks
(default 4 per worker) are submitted at a time, one more as each finishes, so a sweep of any size
holds a bounded number of futures on the client and the scheduler.
"""

from __future__ import annotations

import logging
import os
import signal
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
    #: tasks in flight at once (a bounded window: the client and scheduler hold at most this many
    #: futures); ``None``: 4 per worker the scheduler knows at the start (at least 4)
    max_in_flight: int | None = None
    #: test hook: called after each result with (client, results so far), e.g. to kill a worker
    chaos: Callable[[Any, int], None] | None = field(default=None, repr=False)
    #: filled in after a Dask run: workers the scheduler saw leave (killed or lost)
    lost_workers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PureTask:
    """One pure task for :func:`run_pure`: ``fn(*args, *(shared[sha] for sha in inputs))``.

    ``key`` is its Dask key (unique in the batch, stable across re-runs); ``args`` are small and
    picklable; ``inputs`` name shared, content-addressed inputs by SHA-256."""

    key: str
    args: tuple[Any, ...]
    inputs: tuple[str, ...] = ()


def execute(tasks: Sequence[PointTask], inputs: Inputs, on_result: OnResult, options: ExecutorOptions) -> None:
    shared: dict[str, Any] = {**inputs.bundles, **inputs.datasets}
    run_pure(run_point, [PureTask(f"treasure-point-{t.point_id}", (t,), (t.bundle_sha256, t.dataset.sha256))
                         for t in tasks], shared, on_result, options)


def run_pure(fn: Callable[..., dict[str, Any]], tasks: Sequence[PureTask], shared: dict[str, Any],
             on_result: OnResult, options: ExecutorOptions) -> None:
    """Run pure tasks in this process (``options.serial``), on a LocalCluster, or on
    ``options.scheduler``; ``on_result`` gets each result as it finishes (in any order). Shared inputs
    are scattered once, replicated, under ``treasure-input-<sha256>``. Used by ``treasure sweep``
    and ``treasure hunt --sweep``."""
    if options.serial or not tasks:
        for task in tasks:
            on_result(fn(*task.args, *(shared[s] for s in task.inputs)))
        return
    _execute_dask(fn, tasks, shared, on_result, options)


def input_key(sha: str) -> str:
    return f"treasure-input-{sha}"


def _execute_dask(fn: Callable[..., dict[str, Any]], tasks: Sequence[PureTask], shared: dict[str, Any],
                  on_result: OnResult, options: ExecutorOptions) -> None:
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
        _run_on(client, fn, tasks, shared, on_result, options, as_completed)
    finally:
        _close(client, cluster)


#: Seconds a client or local cluster gets to shut down before its worker processes are killed.
CLOSE_TIMEOUT_S = 30


def _close(client: Any, cluster: Any) -> None:
    """Shut the client and the local cluster down, bounded in time: a nanny that stops answering
    (seen once in ~20 suite runs) must not hang the sweep after its results are all written. The
    results do not depend on how the workers end, so killing a stuck one loses nothing."""
    try:
        client.close(timeout=CLOSE_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - closing is best effort; the work is done
        pass
    if cluster is None:
        return
    pids = [getattr(getattr(nanny, "process", None), "pid", None) for nanny in list(cluster.workers.values())]
    try:
        cluster.close(timeout=CLOSE_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - a stuck shutdown: end the worker processes ourselves
        for pid in pids:
            if isinstance(pid, int):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def _run_on(client: Any, fn: Callable[..., dict[str, Any]], tasks: Sequence[PureTask], shared: dict[str, Any],
            on_result: OnResult, options: ExecutorOptions, as_completed: Any) -> None:
    needed = sorted({sha for t in tasks for sha in t.inputs})
    payload: dict[str, Any] = {input_key(s): shared[s] for s in needed}
    scattered = client.scatter(payload, broadcast=True, hash=False) if payload else {}
    workers_before = set(client.scheduler_info()["workers"])
    window = options.max_in_flight or max(4, 4 * len(workers_before))
    pending = iter(tasks)
    live: set[Any] = set()

    def submit_next() -> Any:
        task = next(pending, None)
        if task is None:
            return None
        future = client.submit(fn, *task.args, *(scattered[input_key(s)] for s in task.inputs), key=task.key,
                               retries=options.retries, pure=False)
        live.add(future)
        return future

    first = [f for f in (submit_next() for _ in range(min(window, len(tasks)))) if f is not None]
    done = 0
    try:
        queue = as_completed(first)
        for future in queue:  # one finished: one more goes in, so at most ``window`` are in flight
            try:
                result = future.result()
            except Exception as exc:  # the task raised on every retry, or its workers kept dying
                raise RunError("SWEEP_TASK_FAILED", f"task {future.key} failed: {type(exc).__name__}: {exc}") from exc
            live.discard(future)
            future.release()
            following = submit_next()
            if following is not None:
                queue.add(following)
            on_result(result)
            done += 1
            if options.chaos is not None:
                options.chaos(client, done)
    finally:
        for future in list(live):  # treasure: allow-nondeterminism releasing futures; order has no effect
            future.release()
    workers_after = set(client.scheduler_info()["workers"])
    options.lost_workers = sorted(workers_before - workers_after)
