"""Concurrent sweeps into ONE PostgreSQL store (issue 16, "Done when"): four `treasure sweep`
processes at once -- two different specs that share points, and one spec run twice (same sweep
directory, same runs) -- write into one database; `treasure db check` passes, every point's run is in
the store, and the store equals a serial SQLite ingest of the distinct runs, dump for dump (nothing
lost, nothing duplicated). A password in the URL never reaches the output.

Runs against a real server (tests/helpers/pg_server.py): it never skips in CI.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from helpers.pg_server import create_database, server_or_fail

from treasure.contracts import Contracts
from treasure.store import StoreReader, check_store, ingest_log
from treasure.workspace import Workspace, init_workspace

REPO = Path(__file__).resolve().parents[2]
BARS = 300


@pytest.fixture(scope="module")
def pg_server_url() -> Iterator[str]:
    yield from server_or_fail()


def _spec(name: str, data_sha: str, fast: list[int], seeds: list[int]) -> dict[str, Any]:
    return {"version": 1, "name": name,
            "strategies": [{"name": "sma_crossover", "params": {"fast": fast, "slow": [20, 30]}}],
            "datasets": [{"path": "data/small.csv", "sha256": data_sha}], "seeds": seeds}


def _workspace(root: Path) -> tuple[Workspace, dict[str, Path]]:
    ws = init_workspace(root)
    lines = (ws.root / "fixtures/data/default_bars.csv").read_bytes().splitlines(keepends=True)[:BARS + 1]
    data = b"".join(lines)
    (ws.root / "data").mkdir(exist_ok=True)
    (ws.root / "data/small.csv").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    specs = {  # A and B share (fast=10, seed=1); C shares (fast=5, seed=1) with A
        "a": _spec("a", sha, [5, 10], [1]),
        "b": _spec("b", sha, [10, 15], [1]),
        "c": _spec("c", sha, [5], [1, 2]),
    }
    paths = {}
    for key, doc in specs.items():
        paths[key] = ws.root / "spec" / f"sweep.{key}.json"
        paths[key].write_text(json.dumps(doc, indent=2))
    return ws, paths


def test_four_concurrent_sweeps_into_one_postgres_store(pg_server_url: str, tmp_path: Path,
                                                        cli: Callable[..., tuple[int, str, str]]) -> None:
    url = create_database(pg_server_url)
    ws, specs = _workspace(tmp_path / "ws")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "treasure", "sweep", str(specs[key]), "--serial", "--json",
                               "--db", url, "-w", str(ws.root)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for key in ("a", "b", "c", "c")]
    outputs = []
    for proc in procs:
        raw_out, raw_err = proc.communicate(timeout=600)
        assert proc.returncode == 0, raw_err.decode()[-3000:]
        outputs.append(json.loads(raw_out))
    assert all(o["db"] == url and o["stored"] == o["points"] for o in outputs)  # no password here to hide
    reports = [json.loads((ws.root / o["report"]).read_bytes()) for o in outputs]
    assert reports[2] == reports[3]  # the identical pair shares one sweep directory and report
    rows = {r["run_id"]: r for rep in reports for r in rep["runs"]}
    assert all(r["status"] == "complete" for r in rows.values())
    assert len(rows) == 8  # 4 (a) + 2 new in b + 2 new in c: shared points are one run

    code, out, err = cli("db", "check", "--db", url, "-w", ws.root)
    assert code == 0 and "db check: OK" in out, out + err
    report = check_store(url)
    assert report.ok, report.render()

    serial = tmp_path / "serial.db"  # the distinct runs ingested once each, one at a time
    contracts = Contracts(ws.truth_dir)
    for run_id in sorted(rows):
        ev = rows[run_id]["evidence"]
        log = next(ws.root / e["path"] for e in ev if "/logs/events/" in e["path"])
        court = next(ws.root / e["path"] for e in ev if e["path"].endswith("court_report.json"))
        ingest_log(serial, [log], contracts=contracts, reports_dir=court.parent)
    with StoreReader(url) as pg, StoreReader(serial) as lite:
        stored = [r.run_id for r in pg.runs()]
        assert stored == sorted(rows)  # nothing lost
        # nothing duplicated, same rows; the court report's timing is volatile (the first writer's is kept)
        volatile = {name: contracts.volatile_paths(name) for name in ("court_report", "eqs_report")}
        assert volatile["court_report"]
        assert pg.dump(volatile=volatile) == lite.dump(volatile=volatile)
        counts = pg.conn.execute("SELECT run_id, count(*), count(DISTINCT seq) FROM events GROUP BY run_id "
                                 "ORDER BY run_id").fetchall()
        assert [(r, n) for r, n, _ in counts] == [(r.run_id, r.events) for r in lite.runs()]
        assert all(n == d for _, n, d in counts)


def test_sweep_json_never_shows_the_password(pg_server_url: str, tmp_path: Path,
                                             cli: Callable[..., tuple[int, str, str]]) -> None:
    import psycopg

    url = create_database(pg_server_url)
    dbname = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else url.rsplit("/", 1)[1].split("?", 1)[0]
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS sweeper")
        conn.execute("CREATE ROLE sweeper LOGIN SUPERUSER PASSWORD 'hunter2secret'")
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    host = params.get("host", "")
    secret_url = (f"postgresql://sweeper:hunter2secret@/{dbname}?host={host}" if str(host).startswith("/")
                  else f"postgresql://sweeper:hunter2secret@{host}:{params.get('port', 5432)}/{dbname}")
    ws, specs = _workspace(tmp_path / "ws")
    for extra in (["--json"], []):
        code, out, err = cli("sweep", specs["c"], "--serial", "--db", secret_url, "-w", ws.root, *extra)
        assert code == 0, out + err
        assert "hunter2secret" not in out + err
        assert "sweeper:***@" in out
    code, out, err = cli("db", "check", "--json", "--db", secret_url, "-w", ws.root)
    assert code == 0 and "hunter2secret" not in out + err, out + err
