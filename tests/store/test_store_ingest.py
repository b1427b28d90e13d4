"""``treasure db ingest``: verified, idempotent, all or nothing; and the export round trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers.store_support import copy_run, reference_runs

from treasure.contracts import Contracts
from treasure.errors import EventLogError
from treasure.store import StoreReader, StoreWriter, check_store, ingest_log, log_parts
from treasure.store.errors import StoreError


@pytest.fixture
def runs(tmp_path_factory):
    return reference_runs(tmp_path_factory)


@pytest.fixture
def contracts(runs):
    return Contracts(runs.ws.truth_dir)


def test_ingest_then_reingest_is_a_no_op_that_says_so(runs, contracts, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    first = ingest_log(db, [runs.log("r1")], contracts=contracts, reports_dir=runs.reports("r1"))
    total = runs.results["r1"].court["events"]["total"]
    assert total > 2048  # more than one batch
    assert (first.inserted, first.unchanged, first.status, first.reports) == (total, 0, "complete", "stored")
    assert not first.nothing_to_do
    with StoreReader(db) as reader:
        before = reader.dump()
    again = ingest_log(db, [runs.log("r1")], contracts=contracts, reports_dir=runs.reports("r1"))
    assert (again.inserted, again.unchanged, again.reports, again.nothing_to_do) == (0, total, "unchanged", True)
    with StoreReader(db) as reader:
        assert reader.dump() == before
    assert check_store(db).ok


def test_export_rebuilds_the_log_byte_for_byte(runs, contracts, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    ingest_log(db, [runs.log("r2")], contracts=contracts, reports_dir=runs.reports("r2"))
    with StoreReader(db) as reader:
        count = reader.export("r2", tmp_path / "out.jsonl")
    assert (tmp_path / "out.jsonl").read_bytes() == runs.log("r2").read_bytes()
    assert count == runs.results["r2"].court["events"]["total"]


def test_a_broken_chain_is_refused_and_nothing_is_stored(runs, contracts, tmp_path: Path, monkeypatch) -> None:
    from treasure.store import ingest

    monkeypatch.setattr(ingest, "BATCH", 500)  # so earlier batches are written before the break
    db = tmp_path / "t.db"
    log, reports = copy_run(runs, "r1", tmp_path / "copy")
    lines = log.read_bytes().splitlines(keepends=True)
    del lines[1800]
    log.write_bytes(b"".join(lines))
    with pytest.raises(EventLogError) as info:
        ingest_log(db, [log], contracts=contracts, reports_dir=reports)
    assert info.value.code in ("EVENTS_SEQ", "EVENTS_CHAIN") and info.value.line == 1801
    with StoreReader(db) as reader:
        assert reader.runs() == []


def test_a_truncated_log_is_refused(runs, contracts, tmp_path: Path) -> None:
    log, _ = copy_run(runs, "r1", tmp_path / "copy")
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 40])
    with pytest.raises(EventLogError) as info:
        ingest_log(tmp_path / "t.db", [log], contracts=contracts)
    assert info.value.code == "EVENTS_TRUNCATED"


def test_reports_of_another_run_are_refused_before_anything_is_committed(runs, contracts, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with pytest.raises(StoreError) as info:
        ingest_log(db, [runs.log("r1")], contracts=contracts, reports_dir=runs.reports("r2"))
    assert info.value.code == "STORE_REPORT_MISMATCH"
    with StoreReader(db) as reader:
        assert reader.runs() == []


def test_ingest_completes_a_prefix_left_by_a_crash(runs, contracts, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    lines = runs.log("r3").read_bytes().splitlines(keepends=True)
    prefix = tmp_path / "prefix.jsonl"
    prefix.write_bytes(b"".join(lines[:2048]))
    partial = ingest_log(db, [prefix], contracts=contracts)
    assert (partial.status, partial.reports, partial.inserted) == ("running", "missing", 2048)
    done = ingest_log(db, [runs.log("r3")], contracts=contracts, reports_dir=runs.reports("r3"))
    assert (done.inserted, done.unchanged, done.status) == (len(lines) - 2048, 2048, "complete")
    assert check_store(db).ok
    # and a prefix ingested after the full run is a no-op
    assert ingest_log(db, [prefix], contracts=contracts).nothing_to_do


def test_rotated_parts_are_ingested_as_one_log(runs, contracts, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    data = runs.log("r1").read_bytes().splitlines(keepends=True)
    live = folder / "run_r1.jsonl"
    (folder / "run_r1.jsonl.1").write_bytes(b"".join(data[:1000]))
    (folder / "run_r1.jsonl.2").write_bytes(b"".join(data[1000:2500]))
    live.write_bytes(b"".join(data[2500:]))
    assert log_parts(live) == [folder / "run_r1.jsonl.1", folder / "run_r1.jsonl.2", live]
    result = ingest_log(tmp_path / "t.db", log_parts(live), contracts=contracts, reports_dir=runs.reports("r1"))
    assert (result.inserted, result.status) == (len(data), "complete")


def test_cli_ingest_messages_and_codes(runs, tmp_path: Path, cli) -> None:
    db = tmp_path / "t.db"
    ws = runs.ws.root
    code, out, _ = cli("db", "ingest", "--workspace", ws, "--db", db, "--run", "r1", "--run", "r2")
    assert code == 0
    assert "run r1: ingested" in out and "status complete" in out
    code, out, _ = cli("db", "ingest", "--workspace", ws, "--db", db, runs.log("r1"))
    total = runs.results["r1"].court["events"]["total"]
    assert code == 0 and f"run r1: already ingested ({total} events), nothing to do" in out
    broken = tmp_path / "run_r1.jsonl"
    shutil.copy2(runs.log("r1"), broken)
    text = broken.read_bytes().replace(b'"seq":5,', b'"seq":6,', 1)
    broken.write_bytes(text)
    code, out, err = cli("db", "ingest", "--workspace", ws, "--db", db, "--no-reports", broken)
    assert code == 2 and "error[EVENTS_" in err and "Traceback" not in err
    code, _, err = cli("db", "ingest", "--workspace", ws, "--db", db)
    assert code == 2 and "error[STORE_NOTHING]" in err


def test_a_log_of_a_different_run_under_a_stored_id_is_a_conflict(runs, contracts, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    ingest_log(db, [runs.log("r1")], contracts=contracts)
    log = tmp_path / "run_r1.jsonl"
    # r2's events relabelled as r1 and re-sealed: a different run under the same id
    from treasure.eventlog import read_events
    from treasure.events import EventBus

    from treasure.events import MemorySink

    sink = MemorySink()
    bus = EventBus("r1", [sink])
    for event in read_events(runs.log("r2")):
        bus.emit(event["ts_ms"], event["category"], event["event_type"], event["level"], event["payload"])
    bus.flush(durable=True)
    log.write_bytes(b"".join(line + b"\n" for line in sink.lines))
    with pytest.raises(StoreError) as info:
        ingest_log(db, [log], contracts=contracts)
    assert info.value.code == "STORE_CONFLICT" and "run r1 seq 0" in info.value.message
    writer = StoreWriter.open(db)
    try:
        assert writer.state("r1").events == runs.results["r1"].court["events"]["total"]
    finally:
        writer.close()
