"""Property: any sequence of ingests and re-ingests (whole logs, logs without reports, prefixes
left by a crash) of any set of runs leaves the DB holding exactly what ingesting each run's most
complete version once would: writes are idempotent and order does not matter."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers.store_support import Sealed, sealed_run

from treasure.store import StoreReader, check_store, ingest_log

RANK = {"prefix": 1, "events": 2, "full": 3}


@st.composite
def scenarios(draw):
    """Runs drawn by size, then a sequence of ingest operations over them."""
    n_runs = draw(st.integers(1, 3))
    runs = [sealed_run(f"run{i}", orders=draw(st.integers(0, 4)), seed=draw(st.integers(0, 2)),
                       status=draw(st.sampled_from(["complete", "halted", "error"]))) for i in range(n_runs)]
    ops = draw(st.lists(st.tuples(st.integers(0, n_runs - 1), st.sampled_from(sorted(RANK)), st.integers(1, 15)),
                        min_size=1, max_size=8))
    return runs, ops


def _files(folder: Path, run: Sealed, kind: str, k: int) -> tuple[Path, Path | None]:
    lines = run.lines if kind != "prefix" else run.lines[: min(k, len(run.lines))]
    log = folder / f"{run.run_id}_{kind}_{len(lines)}.jsonl"
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    if kind != "full":
        return log, None
    reports = folder / f"{run.run_id}_reports"
    reports.mkdir(exist_ok=True)
    (reports / "court_report.json").write_text(json.dumps(run.court))
    (reports / "eqs_report.json").write_text(json.dumps(run.eqs))
    return log, reports


def _apply(db: Path, folder: Path, run: Sealed, kind: str, k: int) -> None:
    log, reports = _files(folder, run, kind, k)
    ingest_log(db, [log], contracts=None, reports_dir=reports)


def _most_complete(ops: list[tuple[int, str, int]], runs: list[Sealed]) -> dict[int, tuple[str, int]]:
    best: dict[int, tuple[str, int]] = {}
    for index, kind, k in ops:
        size = len(runs[index].lines) if kind != "prefix" else min(k, len(runs[index].lines))
        if kind == "prefix" and size == len(runs[index].lines):
            kind = "events"  # a prefix as long as the log is the whole log
        candidate = (kind, size)
        if index not in best or (RANK[candidate[0]], candidate[1]) > (RANK[best[index][0]], best[index][1]):
            best[index] = candidate
    return best


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_ingest_sequence_equals_one_ingest_of_the_most_complete_version(scenario) -> None:
    runs, ops = scenario
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db, expected_db = folder / "t.db", folder / "expected.db"
        for index, kind, k in ops:
            _apply(db, folder, runs[index], kind, k)
        for index, (kind, size) in sorted(_most_complete(ops, runs).items()):
            _apply(expected_db, folder, runs[index], kind, size)
        with StoreReader(db) as actual, StoreReader(expected_db) as expected:
            assert actual.dump() == expected.dump()
        assert check_store(db).ok
