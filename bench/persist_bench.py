"""Benchmark of the run DB: ingest rate in events/s for a large run, next to the raw sqlite3 floor.

One large run is made once (a generated dataset, ``sma_crossover`` with 2/5 windows, so almost
every bar trades: about 0.9 events per bar). Then, each on a fresh DB on the same disk, best of
``--repeat``:

- ``raw executemany floor``: the same rows (events + orders + fills + positions, tuples built
  beforehand) inserted with ``executemany`` into the same schema in one transaction, with the same
  pragmas: what SQLite itself costs, with no reading, parsing or checking;
- ``store sink (live run)``: :class:`treasure.store.StoreWriter` fed the run's events in the bus's
  2048-event batches with a commit after each, as ``treasure run --db`` does (events already in
  memory);
- ``verify_log only``: the log verification ingest starts with (schema, seq, chain);
- ``db ingest``: :func:`treasure.store.ingest_log` end to end: read, verify, parse, write, commit,
  reports;
- ``db ingest again``: the idempotent no-op (every row compared, nothing written);
- ``db check``, ``db export``, ``db backup``.

Usage::

    python bench/persist_bench.py                   # ~230k events; the table in docs/persistence.md
    python bench/persist_bench.py --bars 50000 --repeat 1 --keep /tmp/pb
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from treasure.contracts import Contracts
from treasure.data import bars_to_csv, generate_bars
from treasure.data import synth
from treasure.engine import RunRequest, run
from treasure.eventlog import read_events, verify_log
from treasure.store import StoreReader, StoreWriter, backup_db, check_store, ingest_log
from treasure.store import rows, schema
from treasure.store.writer import CACHE_KIB
from treasure.workspace import Workspace, init_workspace, pin_dataset

RUN_ID = "bench"
_INGEST = """
import sys
from pathlib import Path
from treasure.contracts import Contracts
from treasure.store import ingest_log
db, truth, log, reports = sys.argv[1:]
ingest_log(db, [Path(log)], contracts=Contracts(Path(truth)), reports_dir=Path(reports))
"""


def make_run(root: Path, n_bars: int) -> Workspace:
    ws = init_workspace(root / "ws")
    pin_dataset(ws, bars_to_csv(generate_bars(n_bars=n_bars, seed=7)), "fixtures/data/bench.csv",
                interval_ms=synth.DEFAULT_INTERVAL_MS)
    ssot = json.loads(ws.ssot_path.read_text())
    ssot["strategy"] = {"name": "sma_crossover", "params": {"fast": 2, "slow": 5, "order_usd": 500}}
    ssot["risk"]["daily_loss_limit_usd"] = 1e9  # never halt: the whole dataset is one run
    ws.ssot_path.write_text(json.dumps(ssot, indent=2))
    result = run(RunRequest(workspace=ws, run_id=RUN_ID, validate_events=False))
    if result.status != "complete":
        sys.exit(f"the benchmark run did not complete: {result.status} {result.court['reason']}")
    return ws


def best_of(repeat: int, fn: Callable[[int], Any]) -> float:
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return min(times)


def fresh(folder: Path, name: str) -> Path:
    path = folder / name
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=250_000, help="bars in the generated dataset (default 250000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N per measurement (default 3)")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir, removed)")
    parser.add_argument("--pg", action="store_true", help="add PostgreSQL rows: a throwaway server (tests/pg_server.py, "
                        "fsync on) unless --pg-url")
    parser.add_argument("--pg-url", metavar="URL", help="PostgreSQL server to use for the pg rows (a fresh database "
                        "is created on it per measurement)")
    args = parser.parse_args(argv)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="persist-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        ws = make_run(root, args.bars)
        made = time.perf_counter() - t0
        log = ws.event_log(RUN_ID)
        contracts = Contracts(ws.truth_dir)
        events = list(read_events(log))
        lines = log.read_bytes().splitlines()
        n = len(events)
        db_dir = root / "dbs"
        db_dir.mkdir(exist_ok=True)
        print(f"run: {args.bars} bars -> {n} events, log {log.stat().st_size / 1e6:.1f} MB (made in {made:.1f} s)")

        event_rows = [rows.event_row(e, line) for e, line in zip(events, lines)]
        derived = rows.derive(events)

        def raw(i: int) -> None:
            path = fresh(db_dir, "raw.db")
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            conn.execute("PRAGMA foreign_keys = ON")
            for migration in schema.MIGRATIONS:
                schema.apply(conn, migration)
            conn.execute("BEGIN")
            start = events[0]
            conn.execute("INSERT INTO runs (run_id, status, start_hash, inputs, ssot_sha256, dataset_sha256, "
                         "strategy_source_sha256, started_ts_ms, events, last_hash, last_ts_ms) VALUES "
                         "(?, 'running', ?, '{}', '', '', '', 0, 1, '', 0)", (RUN_ID, start["hash"]))
            conn.executemany(rows.insert_sql("events"), event_rows)
            for table in ("orders", "fills", "positions"):
                conn.executemany(rows.insert_sql(table), derived[table])
            conn.execute("COMMIT")
            conn.close()

        def sink(i: int) -> None:
            writer = StoreWriter.open(fresh(db_dir, "sink.db"))
            for k in range(0, n, 2048):
                writer.write(events[k:k + 2048], lines[k:k + 2048])
                writer.commit(durable=False)
            writer.close()

        def verify(i: int) -> None:
            verify_log([log], contracts)

        def ingest(i: int) -> None:
            ingest_log(fresh(db_dir, "ingest.db"), [log], contracts=contracts, reports_dir=ws.run_reports(RUN_ID))

        rows_total = n + sum(len(v) for v in derived.values())
        results: list[tuple[str, float, str]] = []
        results.append(("raw executemany floor", best_of(args.repeat, raw), f"{rows_total} rows, 1 transaction"))
        results.append(("store sink (live run)", best_of(args.repeat, sink), f"{-(-n // 2048)} commits"))
        results.append(("verify_log only", best_of(args.repeat, verify), "schema + chain, no DB"))
        results.append(("db ingest", best_of(args.repeat, ingest), "verify + write + reports"))
        db = db_dir / "ingest.db"
        results.append(("db ingest again (no-op)", best_of(args.repeat, lambda i: ingest_log(
            db, [log], contracts=contracts, reports_dir=ws.run_reports(RUN_ID))), "every row compared"))
        results.append(("db check", best_of(args.repeat, lambda i: check_store(db)), "integrity + chain + rows"))
        results.append(("db export", best_of(args.repeat, lambda i: StoreReader(db).export(
            RUN_ID, db_dir / "export.jsonl")), "byte-identical log"))
        results.append(("db backup", best_of(args.repeat, lambda i: backup_db(
            db, fresh(db_dir, "backup.db"))), "online copy + check"))
        assert (db_dir / "export.jsonl").read_bytes() == log.read_bytes()

        result2 = run(RunRequest(workspace=ws, run_id=RUN_ID + "2", seed=2, validate_events=False))
        log2 = ws.event_log(result2.run_id)

        def concurrent(target: Callable[[int], str], jobs: list[Path]) -> Callable[[int], None]:
            def go(i: int) -> None:
                db = target(i)
                procs = [subprocess.Popen([sys.executable, "-c", _INGEST, str(db), str(ws.truth_dir), str(job),
                                           str(ws.run_reports(job.name[4:-6]))]) for job in jobs]
                if not all(p.wait() == 0 for p in procs):  # SQLite: one writer; a long ingest can outlast
                    raise RuntimeError("a writer failed (STORE_LOCKED?)")  # the 10 s busy timeout
                assert check_store(db).ok
            return go

        try:
            results.append(("2 writers, 2 runs", best_of(args.repeat, concurrent(
                lambda i: str(fresh(db_dir, "two.db")), [log, log2])), "2 processes; events/s counts both runs"))
        except RuntimeError:
            results.append(("2 writers, 2 runs", float("nan"), "FAILED: one writer got STORE_LOCKED (busy timeout)"))
        server = None
        if args.pg or args.pg_url:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from pg_server import PgServer, create_database

            if args.pg_url:
                admin = args.pg_url
            else:
                server = PgServer(fsync=True).start()
                admin = server.url

            def pg_sink(i: int) -> None:
                writer = StoreWriter.open(create_database(admin))
                for k in range(0, n, 2048):
                    writer.write(events[k:k + 2048], lines[k:k + 2048])
                    writer.commit(durable=False)
                writer.close()

            pg_db = create_database(admin)
            results.append(("pg: store sink (live run)", best_of(args.repeat, pg_sink), "COPY per batch, 2048/commit"))
            results.append(("pg: db ingest", best_of(args.repeat, lambda i: ingest_log(
                pg_db if i == 0 else create_database(admin), [log], contracts=contracts,
                reports_dir=ws.run_reports(RUN_ID))), "verify + COPY + reports, 1 transaction"))
            results.append(("pg: db ingest again (no-op)", best_of(args.repeat, lambda i: ingest_log(
                pg_db, [log], contracts=contracts, reports_dir=ws.run_reports(RUN_ID))), "every row compared"))
            results.append(("pg: db check", best_of(args.repeat, lambda i: check_store(pg_db)),
                            "snapshot + chain + rows + orphans"))
            results.append(("pg: db backup (to SQLite)", best_of(args.repeat, lambda i: backup_db(
                pg_db, fresh(db_dir, "pg-backup.db"))), "snapshot copy + check"))
            results.append(("pg: 2 writers, 2 runs", best_of(args.repeat, concurrent(
                lambda i: create_database(admin), [log, log2])), "2 processes; events/s counts both runs"))
            results.append(("pg: 2 writers, same run", best_of(args.repeat, concurrent(
                lambda i: create_database(admin), [log, log])), "serialised by the run lock; 2nd compares"))
        if server is not None:
            server.stop()

        print(f"\npython {platform.python_version()}, sqlite {sqlite3.sqlite_version}, {platform.machine()}, "
              f"{os.cpu_count()} cpu; best of {args.repeat}; DB size {db.stat().st_size / 1e6:.1f} MB\n")
        print(f"| {'step':<26} | {'seconds':>8} | {'events/s':>10} | note")
        print(f"|{'-' * 28}|{'-' * 10}|{'-' * 12}|{'-' * 28}")
        for name, seconds, note in results:
            count = 2 * n if "2 runs" in name else n
            print(f"| {name:<26} | {seconds:>8.2f} | {count / seconds:>10,.0f} | {note}")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
