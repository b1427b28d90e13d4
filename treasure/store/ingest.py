"""Loading an event log (and its reports) into the DB, verified, idempotent, all or nothing.

The log is verified with :func:`treasure.eventlog.verify_log` (JSON, schema, seq, time order,
hash chain) in the same single pass that writes it: each verified event is handed to a collector
that pairs it with its raw line and writes in batches, inside one transaction. A broken log is
refused and the transaction rolled back, so the DB never holds part of a bad log. Ingesting the
same log again compares every row and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from treasure.contracts import Contracts
from treasure.eventlog import LogSummary, iter_lines, verify_log
from treasure.jsonio import read_json
from treasure.logfiles import chain_of
from treasure.store.errors import StoreError
from treasure.store.writer import StoreWriter, WriteStats

BATCH = 4096


@dataclass(frozen=True)
class IngestResult:
    run_id: str
    events: int
    inserted: int
    unchanged: int
    status: str
    reports: str  # "stored", "unchanged", "missing"

    @property
    def nothing_to_do(self) -> bool:
        return self.inserted == 0 and self.reports != "stored"

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "nothing_to_do": self.nothing_to_do}


def log_parts(path: Path) -> list[Path]:
    """A log and its rotated parts (``run_x.jsonl.1``, ``.2``, ... oldest first) in chain order;
    strays such as ``run_x.jsonl.0`` are not part of it (see :mod:`treasure.logfiles`)."""
    return chain_of(path)


class _Collector:
    """The ``collect`` list of verify_log: receives each verified event, pairs it with its raw line
    (read in lockstep from the same files) and writes full batches."""

    def __init__(self, writer: StoreWriter, paths: Sequence[Path], root: Path | None = None) -> None:
        self.writer = writer
        self._raw: Iterator[tuple[str, int, bytes, bool]] = iter_lines(paths, root=root)
        self.events: list[dict[str, Any]] = []
        self.lines: list[bytes] = []
        self.stats = WriteStats()

    def append(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.lines.append(next(self._raw)[2])
        if len(self.events) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.events:
            done = self.writer.write(self.events, self.lines)
            self.stats.inserted += done.inserted
            self.stats.unchanged += done.unchanged
            self.events, self.lines = [], []


def _load_reports(reports_dir: Path | None, summary: LogSummary) -> tuple[dict, dict] | None:
    if reports_dir is None:
        return None
    court_path, eqs_path = reports_dir / "court_report.json", reports_dir / "eqs_report.json"
    if not court_path.is_file() or not eqs_path.is_file():
        return None
    court = read_json(court_path, code="STORE_REPORT_INVALID", error=StoreError)
    eqs = read_json(eqs_path, code="STORE_REPORT_INVALID", error=StoreError)
    if not isinstance(court, dict) or not isinstance(eqs, dict):
        raise StoreError("STORE_REPORT_INVALID", "a report is not a JSON object", path=str(reports_dir))
    counted = counted_raw if isinstance(counted_raw := court.get("events"), dict) else {}
    if court.get("run_id") != summary.run_id or counted.get("total") != summary.events or \
            counted.get("last_hash") != summary.last_hash:
        raise StoreError("STORE_REPORT_MISMATCH", f"{court_path} describes run {court.get('run_id')!r} with "
                         f"{counted.get('total')} events, the log holds run {summary.run_id} with {summary.events} "
                         "events (or a different last hash)", path=str(court_path), field="events",
                         hint="ingest the log with the reports of the same run (--reports DIR), or --no-reports")
    return court, eqs


def ingest_log(db_path: Path | str, paths: Iterable[Path], *, contracts: Contracts | None,
               reports_dir: Path | None = None, root: Path | None = None) -> IngestResult:
    """Verify ``paths`` (one log, in chain order) and store it, with its reports if found.

    ``reports_dir`` holds ``court_report.json`` and ``eqs_report.json``; when present they must
    describe this log (run id, event count, last hash) or the ingest is refused before anything
    is committed. Without them the run is stored as ``running`` (events only). ``contracts``
    validates events and reports against truth/; ``None`` checks only envelope, seq and chain.
    With ``root`` (the workspace root) a log file resolving outside it is refused (``PATH_ESCAPE``).
    """
    paths = [Path(p) for p in paths]
    writer = StoreWriter.open(db_path)
    try:
        collector = _Collector(writer, paths, root)
        try:
            summary = verify_log(paths, contracts, collect=collector, root=root)  # type: ignore[arg-type]
            collector.flush()
            reports = _load_reports(reports_dir, summary)
        except BaseException:
            writer.rollback()
            raise
        writer.commit(durable=True)
        assert summary.run_id is not None
        state = writer.state(summary.run_id)
        status, outcome = state.status if state else "running", "missing"
        if reports is not None:
            recorded = writer.record_reports(summary.run_id, reports[0], reports[1], contracts=contracts)
            status, outcome = recorded.status, "stored" if recorded.inserted else "unchanged"
        return IngestResult(summary.run_id, summary.events, collector.stats.inserted, collector.stats.unchanged,
                            status, outcome)
    finally:
        writer.close()
