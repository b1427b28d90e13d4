"""The writer: idempotent batches, refusals with codes, commits, reports last, the sink."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest
from helpers.store_support import sealed_run

from treasure.store import StoreReader, StoreSink, StoreWriter, check_store
from treasure.store.errors import StoreError


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


def store(db: Path, sealed, *, reports: bool = True) -> None:
    writer = StoreWriter.open(db)
    try:
        writer.write(sealed.events, sealed.lines)
        writer.commit(durable=True)
        if reports:
            writer.record_reports(sealed.run_id, sealed.court, sealed.eqs)
    finally:
        writer.close()


def test_a_run_is_stored_with_its_derived_rows_and_status(db: Path) -> None:
    sealed = sealed_run("a", orders=3)
    store(db, sealed)
    with StoreReader(db) as reader:
        row = reader.run("a")
        assert (row.status, row.events, row.last_hash) == ("complete", len(sealed.events), sealed.events[-1]["hash"])
        assert [line for _, line in reader.iter_lines("a")] == sealed.lines
        assert reader.conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 3
        fills = reader.conn.execute("SELECT order_id, qty, price FROM fills ORDER BY order_id").fetchall()
        assert fills[0] == ("o000001", 1.5, sealed.events[2]["payload"]["price"])
        assert reader.conn.execute("SELECT count(*) FROM positions").fetchone()[0] == 3
        assert reader.reports("a")["court_report"] == sealed.court
    assert check_store(db).ok


def test_rewriting_identical_content_is_a_no_op(db: Path) -> None:
    sealed = sealed_run("a", orders=4)
    store(db, sealed)
    with StoreReader(db) as reader:
        before = reader.dump()
    writer = StoreWriter.open(db)
    try:
        stats = writer.write(sealed.events, sealed.lines)
        assert (stats.inserted, stats.unchanged) == (0, len(sealed.events))
        stats = writer.write(sealed.events[3:7], sealed.lines[3:7])  # an inner slice, too
        assert (stats.inserted, stats.unchanged) == (0, 4)
        writer.commit()
        assert writer.record_reports("a", sealed.court, sealed.eqs).inserted == 0
    finally:
        writer.close()
    with StoreReader(db) as reader:
        assert reader.dump() == before


def test_different_content_under_a_stored_key_is_refused_naming_run_and_seq(db: Path) -> None:
    sealed = sealed_run("a", orders=2)
    store(db, sealed)
    other = sealed_run("a", orders=2, seed=9)  # same run id, different events
    writer = StoreWriter.open(db)
    try:
        with pytest.raises(StoreError) as info:
            writer.write(other.events, other.lines)
    finally:
        writer.close()
    assert info.value.code == "STORE_CONFLICT"
    assert "run a seq 0" in info.value.message
    with StoreReader(db) as reader:
        assert [line for _, line in reader.iter_lines("a")] == sealed.lines


def test_appending_to_a_finished_run_is_refused(db: Path) -> None:
    longer = sealed_run("a", orders=3, after_end=2)  # the stored run, then two more events
    store(db, sealed_run("a", orders=3))
    writer = StoreWriter.open(db)
    try:
        with pytest.raises(StoreError) as info:
            writer.write(longer.events, longer.lines)
    finally:
        writer.close()
    assert info.value.code == "STORE_CONFLICT" and "stored as complete" in info.value.message


def test_gaps_and_broken_chains_are_refused(db: Path) -> None:
    sealed = sealed_run("a", orders=3)
    writer = StoreWriter.open(db)
    try:
        with pytest.raises(StoreError) as info:
            writer.write(sealed.events[2:], sealed.lines[2:])
        assert info.value.code == "STORE_GAP" and "holds no events" in info.value.message
        writer.write(sealed.events[:3], sealed.lines[:3])
        writer.commit()
        with pytest.raises(StoreError) as info:
            writer.write(sealed.events[5:], sealed.lines[5:])
        assert info.value.code == "STORE_GAP"
        skipped = sealed.events[:3] + sealed.events[4:6]
        renumbered = [dict(e, seq=i) for i, e in enumerate(skipped)]
        with pytest.raises(StoreError) as info:
            writer.write(renumbered, sealed.lines[:3] + sealed.lines[4:6])
        assert info.value.code == "STORE_CHAIN"
    finally:
        writer.close()
    with StoreReader(db) as reader:
        assert reader.run("a").events == 3


def test_uncommitted_writes_vanish_on_close(db: Path) -> None:
    sealed = sealed_run("a", orders=3)
    writer = StoreWriter.open(db)
    writer.write(sealed.events[:4], sealed.lines[:4])
    writer.commit()
    writer.write(sealed.events[4:], sealed.lines[4:])
    writer.close()  # like a crash before the commit
    with StoreReader(db) as reader:
        assert reader.run("a").events == 4
    report = check_store(db)
    assert report.ok and [f.code for f in report.findings] == ["STORE_RUN_INCOMPLETE"]


def test_reports_that_do_not_match_the_stored_events_leave_the_run_running(db: Path) -> None:
    sealed = sealed_run("a", orders=3)
    store(db, sealed, reports=False)
    writer = StoreWriter.open(db)
    try:
        wrong = dict(sealed.court, events=dict(sealed.court["events"], total=99))
        with pytest.raises(StoreError) as info:
            writer.record_reports("a", wrong, sealed.eqs)
        assert info.value.code == "STORE_INCOMPLETE"
        with pytest.raises(StoreError) as info:
            writer.record_reports("a", dict(sealed.court, status="halted"), sealed.eqs)
        assert info.value.code == "STORE_INCOMPLETE"  # run_end says complete
        with pytest.raises(StoreError) as info:
            writer.record_reports("a", sealed.court, dict(sealed.eqs, run_id="b"))
        assert info.value.code == "STORE_REPORT_INVALID"
        with pytest.raises(StoreError) as info:
            writer.record_reports("zzz", dict(sealed.court, run_id="zzz"), dict(sealed.eqs, run_id="zzz"))
        assert info.value.code == "STORE_RUN_UNKNOWN"
    finally:
        writer.close()
    with StoreReader(db) as reader:
        assert reader.run("a").status == "running"
        assert reader.reports("a") == {}


def test_an_error_run_without_run_end_can_be_finished(db: Path) -> None:
    sealed = sealed_run("a", orders=2, status="error")
    store(db, sealed)
    with StoreReader(db) as reader:
        assert reader.run("a").status == "error"
    assert check_store(db).ok


def test_a_different_report_is_a_conflict_but_volatile_fields_are_not(db: Path) -> None:
    from treasure.contracts import Contracts
    from treasure.workspace import bundle_dir

    sealed = sealed_run("a", orders=1)
    store(db, sealed)
    contracts = Contracts(bundle_dir() / "truth")
    writer = StoreWriter.open(db)
    try:
        changed_timing = dict(sealed.court, timing={"wall_ms": 999.0})
        assert writer._put_report("a", "court_report", changed_timing, contracts) is False
        with pytest.raises(StoreError) as info:
            writer.record_reports("a", sealed.court, dict(sealed.eqs, fills=7))
        assert info.value.code == "STORE_CONFLICT" and "eqs_report" in info.value.message
    finally:
        writer.close()


def test_delete_run_removes_every_row_of_that_run_only(db: Path) -> None:
    store(db, sealed_run("a", orders=2))
    store(db, sealed_run("b", orders=2, seed=1))
    writer = StoreWriter.open(db)
    try:
        assert writer.delete_run("a") == len(sealed_run("a", orders=2).events)
        assert writer.delete_run("a") == 0
    finally:
        writer.close()
    conn = sqlite3.connect(db)
    for table in ("runs", "events", "orders", "fills", "positions", "reports"):
        assert conn.execute(f"SELECT DISTINCT run_id FROM {table}").fetchall() == [("b",)], table
    conn.close()
    assert check_store(db).ok


def test_the_sink_goes_quiet_after_a_failure(db: Path) -> None:
    sealed = sealed_run("a", orders=2)
    store(db, sealed_run("a", orders=2, seed=5))  # a different run "a" is already there
    sink = StoreSink(StoreWriter.open(db), "a")
    with pytest.raises(StoreError):
        sink.write(sealed.events, sealed.lines)
    sink.write(sealed.events, sealed.lines)  # no second error
    sink.checkpoint(durable=True)
    sink.close()
    assert sink.failed is not None and sink.failed.code == "STORE_CONFLICT"


def test_a_fault_at_commit_becomes_a_coded_error_and_rolls_back(db: Path) -> None:
    sealed = sealed_run("a", orders=2)

    def disk_full(point: str) -> None:
        if point == "db_commit":
            raise OSError(28, "No space left on device")

    writer = StoreWriter.open(db, fault=disk_full)
    try:
        writer.write(sealed.events, sealed.lines)
        with pytest.raises(StoreError) as info:
            writer.commit(durable=True)
        assert info.value.code == "STORE_IO"
    finally:
        writer.close()
    with StoreReader(db) as reader:
        assert reader.runs() == []


def test_run_row_keeps_the_inputs_a_replay_needs(db: Path) -> None:
    sealed = sealed_run("a", orders=1)
    store(db, sealed)
    with StoreReader(db) as reader:
        row = reader.run("a")
        inputs = orjson.loads(reader.conn.execute("SELECT inputs FROM runs").fetchone()[0])
    assert inputs == sealed.events[0]["payload"]
    assert (row.ssot_sha256, row.dataset_sha256, row.strategy_source_sha256) == ("a" * 64, "b" * 64, "c" * 64)
