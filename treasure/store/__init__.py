"""The run database: SQLite evidence next to the JSONL log, written idempotently, checkable.

- :class:`StoreWriter` / :class:`StoreSink`: idempotent writes (natural keys, byte comparison,
  ``STORE_CONFLICT`` instead of overwrites); the sink plugs into the engine's event bus.
- :func:`ingest_log`: verify and load an event log (and its reports), all or nothing.
- :class:`StoreReader`: runs, exact log lines, reports, a canonical dump of the whole DB.
- :func:`check_store`: integrity, schema version, every run's chain, derived rows and reports.
- :func:`backup_db` / :func:`restore_db`: online backup API; restore checks the source first.
- :func:`run_stored` (in :mod:`treasure.store.run_sink`): ``treasure run --db``.

See docs/persistence.md for the operator's view.
"""

from treasure.store.backup import backup_db, restore_db
from treasure.store.check import CheckReport, Finding, check_store
from treasure.store.connection import open_db, open_readonly
from treasure.store.errors import StoreError
from treasure.store.ingest import IngestResult, ingest_log, log_parts
from treasure.store.reader import RunRow, StoreReader
from treasure.store.schema import MIGRATIONS, Migration, latest_version
from treasure.store.writer import RecordResult, StoreSink, StoreWriter

__all__ = [
    "CheckReport",
    "Finding",
    "IngestResult",
    "MIGRATIONS",
    "Migration",
    "RecordResult",
    "RunRow",
    "StoreError",
    "open_readonly",
    "StoreReader",
    "StoreSink",
    "StoreWriter",
    "backup_db",
    "check_store",
    "ingest_log",
    "latest_version",
    "log_parts",
    "open_db",
    "restore_db",
]
