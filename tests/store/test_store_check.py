"""``treasure db check``: a clean DB passes; every kind of damage is named, with a code."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from helpers.store_support import reference_runs

from treasure.contracts import Contracts
from treasure.store import check_store, ingest_log
from treasure.store.errors import StoreError


@pytest.fixture
def clean_db(tmp_path_factory) -> Path:
    """A DB holding r1 (complete) and a 1000-event prefix of r2 (running); made once, copied."""
    runs = reference_runs(tmp_path_factory)
    folder = tmp_path_factory.getbasetemp() / "check_db"
    db = folder / "clean.db"
    if not db.exists():
        folder.mkdir(exist_ok=True)
        contracts = Contracts(runs.ws.truth_dir)
        ingest_log(db, [runs.log("r1")], contracts=contracts, reports_dir=runs.reports("r1"))
        prefix = folder / "prefix.jsonl"
        prefix.write_bytes(b"".join(runs.log("r2").read_bytes().splitlines(keepends=True)[:1000]))
        ingest_log(db, [prefix], contracts=contracts)
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    return db


@pytest.fixture
def db(clean_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "t.db"
    shutil.copy2(clean_db, copy)
    return copy


def tamper(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db)  # foreign keys off, as a hand edit would be
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def codes(db: Path) -> list[str]:
    return [f.code for f in check_store(db).errors]


def test_a_clean_db_passes_and_an_interrupted_run_is_only_a_warning(db: Path) -> None:
    report = check_store(db)
    assert report.ok, report.render()
    assert {r["run_id"]: r["status"] for r in report.runs} == {"r1": "complete", "r2": "running"}
    assert [(f.level, f.code, f.run_id) for f in report.findings] == [("warn", "STORE_RUN_INCOMPLETE", "r2")]
    assert "db check: OK" in report.render()


def test_a_deleted_event_row_is_found(db: Path) -> None:
    tamper(db, "DELETE FROM events WHERE run_id = 'r1' AND seq = 57")
    report = check_store(db)
    assert not report.ok
    missing = [f for f in report.errors if f.code == "STORE_EVENTS_MISSING"]
    assert missing and missing[0].run_id == "r1" and "seq 57 missing" in missing[0].message
    assert "STORE_RUN_ROW" in codes(db) or "STORE_REPORT_COUNTS" in codes(db)


def test_a_changed_fill_is_found_with_old_and_new_values(db: Path) -> None:
    tamper(db, "UPDATE fills SET price = price + 1 WHERE run_id = 'r1' AND rowid = "
               "(SELECT min(rowid) FROM fills WHERE run_id = 'r1')")
    report = check_store(db)
    derived = [f for f in report.errors if f.code == "STORE_DERIVED"]
    assert len(derived) == 1 and derived[0].run_id == "r1"
    assert "fills row" in derived[0].message and "price" in derived[0].message
    assert "in the table" in derived[0].message and "in its event" in derived[0].message


def test_an_edited_event_line_breaks_its_hash(db: Path) -> None:
    tamper(db, "UPDATE events SET line = replace(line, '\"side\":\"buy\"', '\"side\":\"sell\"') "
               "WHERE run_id = 'r1' AND seq = (SELECT min(seq) FROM events WHERE run_id = 'r1' "
               "AND event_type = 'order_placed')")
    assert "STORE_EVENT_HASH" in codes(db)


def test_edited_columns_and_run_rows_are_found(db: Path) -> None:
    tamper(db, "UPDATE events SET level = 'ERROR' WHERE run_id = 'r1' AND seq = 3")
    assert "STORE_EVENT_COLUMNS" in codes(db)


def test_a_run_marked_complete_too_early_is_found(db: Path) -> None:
    tamper(db, "UPDATE runs SET status = 'complete' WHERE run_id = 'r2'")
    report = check_store(db)
    assert any(f.code == "STORE_REPORT_MISSING" and f.run_id == "r2" for f in report.errors)


def test_an_edited_report_is_found(db: Path) -> None:
    tamper(db, "UPDATE reports SET body = replace(body, '\"status\":\"complete\"', '\"status\":\"halted\"') "
               "WHERE run_id = 'r1' AND name = 'court_report'")
    assert "STORE_REPORT_HASH" in codes(db)


def test_a_dropped_table_is_a_schema_finding(db: Path) -> None:
    tamper(db, "CREATE TABLE extra (x)")
    assert "STORE_SCHEMA" in codes(db)


def test_a_non_sqlite_or_truncated_file_is_a_coded_error_without_traceback(db: Path, tmp_path: Path, cli) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"PK\x03\x04 definitely a zip file, not sqlite" * 100)
    with pytest.raises(StoreError) as info:
        check_store(junk)
    assert info.value.code == "STORE_NOT_SQLITE"
    truncated = tmp_path / "truncated.db"
    data = db.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(StoreError) as info:
        check_store(truncated)
    assert info.value.code in ("STORE_CORRUPT", "STORE_NOT_SQLITE")
    for path in (junk, truncated, tmp_path / "absent.db"):
        code, _, err = cli("db", "check", "--db", path)
        assert code == 2 and "error[STORE_" in err and "Traceback" not in err, err


def test_cli_check_exit_codes(db: Path, cli) -> None:
    code, out, _ = cli("db", "check", "--db", db)
    assert code == 0 and "db check: OK" in out
    tamper(db, "DELETE FROM events WHERE run_id = 'r1' AND seq = 10")
    code, out, _ = cli("db", "check", "--db", db)
    assert code == 2 and "db check: FAILED" in out and "STORE_EVENTS_MISSING" in out
    code, out, _ = cli("db", "check", "--db", db, "--json")
    assert code == 2 and '"ok": false' in out
