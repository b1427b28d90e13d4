"""Operator commands on a large event log: throughput (MB/s) and peak memory. Not run in CI.

    .venv/bin/python bench/ops_bench.py [--mb 100]

Builds a hash-chained log of about ``--mb`` MB in a temporary workspace (payloads cycled from a
real default run, so line sizes and the event mix are realistic), then times each operation next
to the floor of merely parsing every line with orjson. Each operation runs in a forked child;
"peak RSS" is that child's maximum resident set, next to a child that does nothing (the baseline):
flat memory means it stays near the baseline however large the log.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import multiprocessing
import resource
from pathlib import Path
from typing import Any, Callable

import orjson

from treasure.engine import RunRequest, run
from treasure.events import EventBus, JsonlSink
from treasure.workspace import Workspace, init_workspace


def build(ws: Workspace, run_id: str, target_bytes: int) -> Path:
    base = run(RunRequest(workspace=ws, run_id="seed", progress=None))
    template = [orjson.loads(line) for line in base.event_log.read_bytes().splitlines()]
    body = [e for e in template if e["event_type"] not in ("run_start", "run_end")]
    path = ws.event_log(run_id)
    bus = EventBus(run_id, [JsonlSink(path)])
    bus.emit(template[0]["ts_ms"], "SYS", "run_start", "INFO", template[0]["payload"])
    ts, size, i = template[0]["ts_ms"], 0, 0
    while size < target_bytes:
        event = body[i % len(body)]
        ts += 1000
        bus.emit(ts, event["category"], event["event_type"], event["level"], event["payload"])
        size += 520  # about one line; checked against the file below
        i += 1
        if i % 200_000 == 0:
            bus.flush(durable=False)
            size = path.stat().st_size
    bus.emit(ts, "SYS", "run_end", "INFO", template[-1]["payload"])
    bus.flush(durable=True)
    bus.close()
    return path


def _child(fn: Callable[[], Any], conn: Any) -> None:
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    conn.send((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, repr(result)))
    conn.close()


def measure(label: str, mb: float, fn: Callable[[], Any]) -> tuple[str, float, float, float, Any]:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(fn, child))
    process.start()
    seconds, rss_mb, result = parent.recv()
    process.join()
    return label, seconds, mb / seconds if seconds else float("inf"), rss_mb, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0)
    args = parser.parse_args(argv)
    from treasure.ops import archive, diagnose, query, rotate

    with tempfile.TemporaryDirectory() as tmp:
        ws = init_workspace(Path(tmp) / "ws")
        log = build(ws, "big", int(args.mb * 1024 * 1024))
        mb = log.stat().st_size / 1024 / 1024
        lines = sum(1 for _ in open(log, "rb"))
        print(f"log: {mb:.1f} MB, {lines:,} events\n")

        def floor() -> int:
            n = 0
            with open(log, "rb", buffering=1 << 20) as handle:
                for raw in handle:
                    orjson.loads(raw)
                    n += 1
            return n

        def scan(flt: query.EventFilter) -> Callable[[], int]:
            return lambda: sum(1 for _ in query.iter_events(ws, "big", flt))

        rows = [
            measure("(baseline: a child that does nothing)", mb, lambda: None),
            measure("orjson parse of every line (floor)", mb, floor),
            measure("events (no filter: every event parsed)", mb, scan(query.EventFilter())),
            measure("events --level ERROR,CRITICAL", mb, scan(query.EventFilter(levels=("ERROR", "CRITICAL")))),
            measure("events --type order_filled", mb, scan(query.EventFilter(types=("order_filled",)))),
            measure("events --where payload.position_usd>7000", mb,
                    scan(query.EventFilter(where=(query.parse_where("payload.position_usd>7000"),)))),
            measure("events --tail 50", mb, lambda: len(list(query.select(query.iter_events(ws, "big"), tail=50)))),
            measure("diagnose (triage pass + chain verification)", mb,
                    lambda: diagnose.diagnose(ws, "big")["verdict"]),
            measure("rotate --max-mb 10", mb, lambda: len(rotate.rotate_run(ws, "big", 10 * 1024 * 1024).parts)),
            measure("archive (describe, tar.gz, read back)", mb, lambda: archive.pack(ws, ["big"]).members),
            measure("events --level ERROR on the archive", mb, scan(query.EventFilter(levels=("ERROR",)))),
        ]
    width = max(len(r[0]) for r in rows)
    floor_s = rows[1][1]
    print(f"{'operation':<{width}}  {'seconds':>8}  {'MB/s':>7}  {'x floor':>7}  {'peak RSS MB':>11}  result")
    for label, seconds, rate, rss, result in rows:
        ratio = seconds / floor_s if floor_s else 0.0
        print(f"{label:<{width}}  {seconds:8.2f}  {rate:7.0f}  {ratio:7.2f}  {rss:11.0f}  {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
