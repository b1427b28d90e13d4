"""Gate persist: the SQLite run DB holds exactly each run's events and reports, idempotently,
survives a SIGKILL at any commit, and a run replays from it exactly.

On the workspace under test:

* its run DB (``persistence.db_path``), if there is one, passes ``treasure db check`` (SQLite
  integrity, schema, every run's events gap-free and hash-chained, orders/fills/positions equal to
  their events, reports matching), and every stored run whose log is in logs/events/ holds that
  log byte for byte (and its reports, volatile fields aside).

Drills, in a temporary copy of the workspace (its spec, truth and dataset; the strategy replaced
by the built-in ``sma_crossover`` with short windows so that a run spans several DB commits):

* ``treasure run --db`` stores a run; ``treasure db ingest`` of its log then says "already
  ingested" and leaves the DB byte-for-byte as it was (canonical dump);
* ``treasure db export`` rebuilds the log byte-identically from the DB;
* ``treasure replay --from db`` and ``--from events`` both report "replay identical";
* crash: a child ``python -m treasure faultrun run --db`` is SIGKILLed at seeded points: before
  DB commits (mid-run batches, and always the last one, the reports transaction) and between
  commits (before a bar), counted by a probe of the uninterrupted run (``treasure.faults``); seed
  ``TREASURE_PERSIST_SEED``, default 4. After each kill ``db check`` passes, the killed run is not
  marked finished, another run in the same DB is untouched, and ``run --overwrite --db``
  completes with a log, reports and DB rows equal to the uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.gate("persist")

RUN_ID = "persist-drill"
BASE_RUN_ID = "persist-base"
KILL_POINTS = 4
SEED = int(os.environ.get("TREASURE_PERSIST_SEED", "4"))
DRILL_STRATEGY = {"name": "sma_crossover", "params": {"fast": 2, "slow": 5, "order_usd": 8000}}
SHOWN = 8


def _fail(title: str, problems: list[str]) -> None:
    if problems:
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        listing = "\n".join(f"  {p}" for p in problems[:SHOWN])
        pytest.fail(f"persist: {title}: {len(problems)} problem(s):\n{listing}{more}", pytrace=False)


def cli(*args: Any) -> tuple[int, str]:
    """Run ``treasure`` in this process; return (exit code, stdout + stderr)."""
    from treasure.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main([str(a) for a in args])
    return code, out.getvalue()


# --- the workspace's own DB ----------------------------------------------------------------------
def stored_vs_evidence(ws: Any, db: Path) -> list[str]:
    """Problems between each stored run and the workspace's log/reports of the same id."""
    from treasure.canonical import canonical_bytes, drop_paths
    from treasure.contracts import Contracts
    from treasure.jsonio import read_json
    from treasure.store import StoreReader

    contracts = Contracts(ws.truth_dir)
    problems: list[str] = []
    with StoreReader(db) as reader:
        for row in reader.runs():
            parts = ws.log_parts(row.run_id)
            if not parts:
                continue
            logged = (line.rstrip(b"\n") for part in parts for line in open(part, "rb"))
            stored = (line for _, line in reader.iter_lines(row.run_id))
            for seq, (a, b) in enumerate(zip(stored, logged)):
                if a != b:
                    problems.append(f"run {row.run_id} seq {seq}: the DB's event differs from "
                                    f"{ws.relative(parts[-1])} (re-ingest with `treasure db ingest --run "
                                    f"{row.run_id}` after checking which is right)")
                    break
            total = sum(1 for part in parts for _ in open(part, "rb"))
            if row.status != "running" and total != row.events:
                problems.append(f"run {row.run_id}: the DB holds {row.events} events, the log {total}")
            folder = ws.run_reports(row.run_id)
            for name, doc in reader.reports(row.run_id).items():
                path = folder / f"{name}.json"
                if path.is_file():
                    volatile = contracts.volatile_paths(name)
                    if canonical_bytes(drop_paths(read_json(path), volatile)) != \
                            canonical_bytes(drop_paths(doc, volatile)):
                        problems.append(f"run {row.run_id}: the DB's {name} differs from {ws.relative(path)}")
    return problems


def test_workspace_db_holds_its_runs(treasure_workspace, gate_note):
    from treasure.store import check_store
    from treasure.store.errors import StoreError
    from treasure.store.location import configured_db_path

    ws = treasure_workspace
    db = configured_db_path(ws)
    if not db.exists():
        gate_note(f"no run DB at {ws.relative(db)} yet; the drills check a fresh one")
        return
    try:
        report = check_store(db)
    except StoreError as exc:
        pytest.fail(f"persist: {ws.relative(db)} cannot be checked:\n{exc.render()}", pytrace=False)
    _fail(f"`treasure db check` fails on {ws.relative(db)}", [f.render() for f in report.errors])
    _fail(f"{ws.relative(db)} disagrees with the workspace's evidence", stored_vs_evidence(ws, db))


# --- drills on a temporary copy ------------------------------------------------------------------
@dataclass
class Drill:
    """The reference: an uninterrupted stored run, its evidence, and the probe's fault-point counts."""

    ws: Any
    db: Path
    base_db: Path
    log: bytes
    reports: dict[str, dict[str, Any]]
    run_dump: bytes
    base_dump: bytes
    calls: dict[str, int]
    volatile: dict[str, list[str]]


def _drill_copy(source: Any, dest: Path) -> Any:
    from pytest_treasure.fresh_runs import copy_workspace
    from treasure.jsonio import atomic_write_bytes, dumps_pretty

    ws = copy_workspace(source, dest)
    ssot = json.loads(ws.ssot_path.read_bytes())
    ssot["strategy"] = DRILL_STRATEGY
    ssot.setdefault("persistence", {})["enabled"] = False
    atomic_write_bytes(ws.ssot_path, dumps_pretty(ssot), durable=False)
    return ws


def _dump(db: Path, run_id: str, volatile: dict[str, list[str]]) -> bytes:
    from treasure.store import StoreReader

    with StoreReader(db) as reader:
        return reader.dump(volatile=volatile, run_ids=[run_id])


def _pg_database(url: str, tag: str) -> str:
    """A fresh database on the server of ``url`` (TREASURE_TEST_PG_URL, a postgresql:// URL)."""
    import os as _os
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"treasure_persist_{tag}_{_os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}".encode())
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'".encode())
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, "")).replace(":/" + name, ":///" + name) \
        if not parts.netloc else urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


# the drills run on SQLite, and on PostgreSQL too when TREASURE_TEST_PG_URL names a server
_BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TREASURE_TEST_PG_URL") else [])


@pytest.fixture(scope="module", params=_BACKENDS)
def drill(treasure_workspace, tmp_path_factory, request) -> Drill:
    from treasure.contracts import Contracts
    from treasure.faults import FaultPlan, injected
    from treasure.jsonio import read_json
    from treasure.store import backup_db

    ws = _drill_copy(treasure_workspace, tmp_path_factory.mktemp("persist") / "ws")
    db: Any = ws.data_dir / "drill.db"
    if request.param == "postgresql":
        db = _pg_database(os.environ["TREASURE_TEST_PG_URL"], "drill")
    code, out = cli("run", "--workspace", ws.root, "--run-id", BASE_RUN_ID, "--db", db, "-q")
    if code != 0:
        pytest.fail(f"persist: `treasure run --db` of the drill failed (exit {code}):\n{out}", pytrace=False)
    base_db = ws.root / "base.db"
    backup_db(db, base_db)
    probe = FaultPlan()
    with injected(probe):
        code, out = cli("run", "--workspace", ws.root, "--run-id", RUN_ID, "--db", db, "-q")
    if code != 0:
        pytest.fail(f"persist: `treasure run --db` of the drill failed (exit {code}):\n{out}", pytrace=False)
    contracts = Contracts(ws.truth_dir)
    volatile = {name: contracts.volatile_paths(name) for name in ("court_report", "eqs_report")}
    reports = {name: read_json(ws.run_reports(RUN_ID) / f"{name}.json") for name in volatile}
    return Drill(ws, db, base_db, ws.event_log(RUN_ID).read_bytes(), reports, _dump(db, RUN_ID, volatile),
                 _dump(base_db, BASE_RUN_ID, volatile), dict(probe.calls), volatile)


def test_run_is_stored_and_reingest_is_a_no_op(drill):
    from treasure.store import StoreReader, check_store

    report = check_store(drill.db)
    _fail("`db check` fails right after `run --db`", [f.render() for f in report.errors])
    with StoreReader(drill.db) as reader:
        row = reader.run(RUN_ID)
        before = reader.dump()
    logged = drill.log.count(b"\n")
    if row.status != "complete" or row.events != logged:
        pytest.fail(f"persist: run {RUN_ID} is stored as {row.status} with {row.events} events; the log has "
                    f"{logged} and the run completed", pytrace=False)
    code, out = cli("db", "ingest", "--workspace", drill.ws.root, "--db", drill.db, "--run", RUN_ID)
    assert code == 0, out
    assert f"already ingested ({row.events} events), nothing to do" in out, out
    with StoreReader(drill.db) as reader:
        after = reader.dump()
    assert after == before, "re-ingesting the same log changed the DB content"


def test_db_round_trip_rebuilds_the_log_byte_for_byte(drill, tmp_path):
    out_path = tmp_path / "exported.jsonl"
    code, out = cli("db", "export", RUN_ID, "--workspace", drill.ws.root, "--db", drill.db, "--out", out_path)
    assert code == 0, out
    exported = out_path.read_bytes()
    if exported != drill.log:
        a, b = exported.splitlines(), drill.log.splitlines()
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        pytest.fail(f"persist: the log exported from the DB differs from the original at seq {first} "
                    f"({len(a)} vs {len(b)} lines)", pytrace=False)


@pytest.mark.parametrize("source", ["db", "events"])
def test_replay_is_identical(drill, source):
    code, out = cli("replay", RUN_ID, "--from", source, "--workspace", drill.ws.root, "--db", drill.db)
    if code != 0 or "replay identical" not in out:
        pytest.fail(f"persist: `treasure replay {RUN_ID} --from {source}` (exit {code}):\n{out}", pytrace=False)


def _kill_points(calls: dict[str, int]) -> list[str]:
    """Seeded SIGKILL points: DB commits (mid-run batches, the last one being the reports
    transaction, which is always included) and one bar (a kill between commits)."""
    import random

    rng = random.Random(f"treasure-persist-{SEED}")
    commits, bars = calls.get("db_commit", 0), calls.get("bar", 0)
    chosen = sorted(rng.sample(range(1, commits), min(KILL_POINTS - 2, max(commits - 1, 0)))) if commits > 1 else []
    points = [f"kill@db_commit:{n}" for n in [*chosen, commits] if n >= 1]
    if bars:
        points.append(f"kill@bar:{rng.randint(1, bars)}")
    return points


def test_crash_at_seeded_points_leaves_a_consistent_db(drill, tmp_path_factory):
    from treasure.compare import compare_documents
    from treasure.jsonio import read_json
    from treasure.store import StoreReader, check_store

    points = _kill_points(drill.calls)
    assert len(points) >= 3, f"too few kill points from the probe {drill.calls}"
    problems: list[str] = []
    for spec in points:
        ws = _drill_copy(drill.ws, tmp_path_factory.mktemp("persist-crash") / "ws")
        db = ws.data_dir / "drill.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        db.write_bytes(drill.base_db.read_bytes())
        child = subprocess.run(
            [sys.executable, "-m", "treasure", "faultrun", "--faults", spec, "run", "--workspace", str(ws.root),
             "--run-id", RUN_ID, "--db", str(db), "-q"],
            cwd=ws.root, capture_output=True, text=True, timeout=120)
        if child.returncode != -9:
            problems.append(f"{spec}: the child was not killed (exit {child.returncode}): {child.stderr[-300:]}")
            continue
        try:
            report = check_store(db)
        except Exception as exc:  # a coded StoreError here is exactly what the gate must catch
            problems.append(f"{spec}: db check cannot read the DB after the kill: {exc}")
            continue
        problems += [f"{spec}: db check after the kill: {f.render()}" for f in report.errors]
        with StoreReader(db) as reader:
            row = reader.find(RUN_ID)
        if row is not None and row.status != "running":
            problems.append(f"{spec}: the killed run is marked {row.status}")
        if _dump(db, BASE_RUN_ID, drill.volatile) != drill.base_dump:
            problems.append(f"{spec}: the other run in the DB ({BASE_RUN_ID}) changed")
        code, out = cli("run", "--workspace", ws.root, "--run-id", RUN_ID, "--db", db, "--overwrite", "-q")
        if code != 0:
            problems.append(f"{spec}: the re-run with --overwrite failed (exit {code}): {out.strip()[-300:]}")
            continue
        if ws.event_log(RUN_ID).read_bytes() != drill.log:
            problems.append(f"{spec}: the re-run's event log differs from the uninterrupted run's")
        if _dump(db, RUN_ID, drill.volatile) != drill.run_dump:
            problems.append(f"{spec}: the re-run's DB rows differ from the uninterrupted run's")
        for name, doc in drill.reports.items():
            same = compare_documents(doc, read_json(ws.run_reports(RUN_ID) / f"{name}.json"),
                                     volatile=drill.volatile[name])
            if not same:
                problems.append(f"{spec}: the re-run's {name} differs from the uninterrupted run's: {same.summary}")
    _fail(f"SIGKILL drill at {', '.join(points)}", problems)
