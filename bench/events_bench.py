"""Benchmark of the events gate's validator (``treasure.eventlog.verify_log``) on a ~100 MB log.

    .venv/bin/python bench/events_bench.py                # 100 MB, 3 repeats
    .venv/bin/python bench/events_bench.py --mb 20 --repeat 1 --keep /tmp/events.jsonl
    .venv/bin/python bench/events_bench.py --log /tmp/events.jsonl   # reuse a log built before

The log is one long, valid run: the events of a real engine run on the default workspace,
re-emitted through :class:`treasure.events.EventBus` (one run id, seq and sim time continuing,
the hash chain sealed) until the file reaches the size asked for. Each method runs in its own
child process, so its peak RSS (``resource.getrusage``) is its own:

* orjson parse floor: ``orjson.loads`` on every line, nothing else (what any verifier must pay);
* verify_log: the gate's validator (envelope and payload schemas, seq, time order, run_id, chain),
  on its msgspec tier (the default when msgspec is installed) and on its pure path;
* fastjsonschema per line: ``Contracts.check_event`` (fastjsonschema) plus the hash, per line;
* jsonschema per line: ``jsonschema`` validation of envelope and payload per line, on a sample
  (extrapolated, and labelled so).

verify_log is also run on the first tenth of the log: equal peak RSS for 10 MB and 100 MB shows
that memory stays flat. The machine may be shared and busy, so each child alternates its method
with the orjson floor (floor, method, floor, method, ...) over the same lines and reports the
ratio of the best CPU times of the two: load that comes and goes hits both alike. MB/s is of wall
time (best of the repeats). Not a test: nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# the log
# --------------------------------------------------------------------------------------------
def build_log(path: Path, target_bytes: int) -> tuple[int, int]:
    """Write a valid log of at least ``target_bytes``; return (events, bytes)."""
    import orjson

    from treasure.engine import RunRequest, run
    from treasure.events import EventBus, JsonlSink
    from treasure.workspace import init_workspace

    with tempfile.TemporaryDirectory(prefix="treasure-bench-") as tmp:
        ws = init_workspace(Path(tmp) / "ws")
        result = run(RunRequest(workspace=ws, run_id="template"))
        template = [orjson.loads(line) for line in result.event_log.read_bytes().splitlines()]
    head = [e for e in template if e["event_type"] in ("run_start", "dataset_loaded")]
    body = [e for e in template if e["event_type"] not in ("run_start", "dataset_loaded", "run_end")]
    tail = [e for e in template if e["event_type"] == "run_end"]
    span = body[-1]["ts_ms"] - body[0]["ts_ms"] + 300_000
    path.unlink(missing_ok=True)
    bus = EventBus("bench", [JsonlSink(path)], batch_size=8192)
    for event in head:
        bus.emit(event["ts_ms"], event["category"], event["event_type"], event["level"], event["payload"])
    shift = 0
    while path.stat().st_size < target_bytes:
        for event in body:
            bus.emit(event["ts_ms"] + shift, event["category"], event["event_type"], event["level"], event["payload"])
        shift += span
        bus.flush(durable=False)
    for event in tail:
        bus.emit(event["ts_ms"] + shift, event["category"], event["event_type"], event["level"], event["payload"])
    bus.flush(durable=True)
    bus.close()
    return bus.seq, path.stat().st_size


def prefix(source: Path, dest: Path, fraction: float) -> Path:
    """The first ``fraction`` of the log, cut at a line end (still a valid log)."""
    with open(source, "rb") as handle:
        data = handle.read(int(source.stat().st_size * fraction))
    dest.write_bytes(data[: data.rindex(b"\n") + 1])
    return dest


# --------------------------------------------------------------------------------------------
# the methods (each runs in a child process)
# --------------------------------------------------------------------------------------------
def _floor(path: Path, limit: int | None) -> int:
    import orjson

    loads, lines = orjson.loads, 0
    with open(path, "rb", buffering=1 << 20) as handle:
        for raw in handle:
            loads(raw)
            lines += 1
            if limit is not None and lines >= limit:
                break
    return lines


@lru_cache(maxsize=1)
def _contracts() -> Any:
    from treasure.contracts import Contracts

    return Contracts(ROOT / "truth")


def _verify_log(path: Path, limit: int | None) -> int:
    from treasure import eventlog

    eventlog.USE_MSGSPEC = eventlog.HAVE_MSGSPEC
    return eventlog.verify_log(path, _contracts()).events


def _verify_log_pure(path: Path, limit: int | None) -> int:
    from treasure import eventlog

    eventlog.USE_MSGSPEC = False
    return eventlog.verify_log(path, _contracts()).events


def _fastjsonschema(path: Path, limit: int | None) -> int:
    import hashlib

    import orjson

    from treasure.events import hashed_body

    contracts, lines = _contracts(), 0
    with open(path, "rb", buffering=1 << 20) as handle:
        for raw in handle:
            event = orjson.loads(raw)
            contracts.check_event(event)
            body, stated = hashed_body(raw.rstrip(b"\n"))
            assert hashlib.sha256(body).hexdigest() == stated
            lines += 1
            if limit is not None and lines >= limit:
                break
    return lines


def _jsonschema(path: Path, limit: int | None) -> int:
    import orjson
    from jsonschema import Draft202012Validator

    contracts = _contracts()
    envelope = Draft202012Validator(contracts.schema("event"))
    payloads = _JSONSCHEMA_PAYLOADS
    lines = 0
    with open(path, "rb", buffering=1 << 20) as handle:
        for raw in handle:
            event = orjson.loads(raw)
            envelope.validate(event)
            kind = event["event_type"]
            if kind not in payloads:
                payloads[kind] = Draft202012Validator(contracts.schema(f"events/{kind}"))
            payloads[kind].validate(event["payload"])
            lines += 1
            if limit is not None and lines >= limit:
                break
    return lines


_JSONSCHEMA_PAYLOADS: dict[str, Any] = {}
METHODS = {"floor": _floor, "verify_log": _verify_log, "verify_log_pure": _verify_log_pure,
           "fastjsonschema": _fastjsonschema, "jsonschema": _jsonschema}


def measure(method: str, path: Path, repeat: int, limit: int | None) -> dict[str, Any]:
    """Run ``method`` ``repeat`` times in this process, each run after one of the orjson floor over
    the same lines; best wall and CPU time of each, peak RSS."""
    sys.path.insert(0, str(ROOT))
    function = METHODS[method]
    with tempfile.TemporaryDirectory() as tmp:  # warm up: imports, schemas loaded and compiled
        warm = prefix(path, Path(tmp) / "warm.jsonl", min(1.0, 2e6 / path.stat().st_size))
        function(warm, None)
        _floor(warm, None)
    best = {"floor": [float("inf")] * 2, method: [float("inf")] * 2}
    lines = 0
    for _ in range(repeat):
        for name, run in (("floor", _floor), (method, function)):
            wall, cpu = time.perf_counter(), time.process_time()
            counted = run(path, limit)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
            if name == method:
                lines = counted
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"method": method, "lines": lines, "wall_s": best[method][0], "cpu_s": best[method][1],
            "floor_wall_s": best["floor"][0], "floor_cpu_s": best["floor"][1], "peak_rss_mb": peak_kb / 1024}


def in_child(method: str, path: Path, repeat: int, limit: int | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", method, str(path), "--repeat", str(repeat)]
    if limit is not None:
        command += ["--limit", str(limit)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{method} failed:\n{done.stderr}")
    return json.loads(done.stdout)


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="log size in MB (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method, best kept (default 3)")
    parser.add_argument("--sample", type=int, default=20_000, help="lines for jsonschema (default 20000)")
    parser.add_argument("--keep", metavar="PATH", help="write the log here and keep it")
    parser.add_argument("--log", metavar="PATH", help="measure this log (built before with --keep) instead")
    parser.add_argument("--measure", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]), args.repeat, args.limit)))
        return 0

    sys.path.insert(0, str(ROOT))
    from treasure.schemacheck import HAVE_MSGSPEC

    tmp = tempfile.TemporaryDirectory(prefix="treasure-events-bench-")
    started = time.perf_counter()
    if args.log:
        path = Path(args.log)
        size = path.stat().st_size
        with open(path, "rb") as handle:
            events = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
        origin = "given"
    else:
        path = Path(args.keep) if args.keep else Path(tmp.name) / "run_bench.jsonl"
        events, size = build_log(path, int(args.mb * 1e6))
        origin = f"built in {time.perf_counter() - started:.1f} s"
    print(f"log: {path} — {size / 1e6:.1f} MB, {events} events ({size / events:.0f} B/event), {origin}; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), load {os.getloadavg()[0]:.1f}, "
          f"msgspec {'yes' if HAVE_MSGSPEC else 'no'}")
    small = prefix(path, Path(tmp.name) / "run_small.jsonl", 0.1)

    rows = [
        ("verify_log (events gate)" + ("" if HAVE_MSGSPEC else ", no msgspec: pure path"),
         in_child("verify_log", path, args.repeat), size, ""),
        ("verify_log, first 10% of the log", in_child("verify_log", small, args.repeat), small.stat().st_size, ""),
        ("verify_log, pure path (no msgspec)", in_child("verify_log_pure", path, args.repeat), size, ""),
        ("fastjsonschema per line + hash", in_child("fastjsonschema", path, 1, args.sample), None, "sample"),
        ("jsonschema per line", in_child("jsonschema", path, 1, args.sample), None, "sample"),
    ]
    floor = rows[0][1]
    print()
    print("| method | MB/s | CPU s | x floor (CPU) | x floor (wall) | peak RSS MB | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    print(f"| orjson parse floor | {size / 1e6 / floor['floor_wall_s']:,.1f} | {floor['floor_cpu_s']:.2f} | 1.00 | "
          f"1.00 | - | measured alongside each method |")
    for label, result, nbytes, note in rows:
        if nbytes is None:  # a sample: scale by the share of lines it covered
            nbytes = size * result["lines"] / events
            note = f"extrapolated from {result['lines']} lines"
        mbps = nbytes / 1e6 / result["wall_s"]
        cpu_ratio = result["cpu_s"] / result["floor_cpu_s"]
        wall_ratio = result["wall_s"] / result["floor_wall_s"]
        print(f"| {label} | {mbps:,.1f} | {result['cpu_s']:.2f} | {cpu_ratio:.2f} | {wall_ratio:.2f} | "
              f"{result['peak_rss_mb']:.0f} | {note} |")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
