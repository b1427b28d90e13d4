"""Storing a run while it runs: ``treasure run --db``.

The store joins the engine as one more event sink (``RunRequest.extra_sinks``), so it receives the
very bytes the JSONL log gets, batch by batch, and commits when the bus checkpoints. Two steps
around the engine keep the DB honest:

- before the run: a run id already in the DB is refused (``STORE_RUN_EXISTS``) unless
  ``--overwrite``, which deletes that run's rows first; this happens before any evidence exists;
- after the run: the reports are stored and the final status set in one transaction
  (:meth:`StoreWriter.record_reports`), since the engine writes reports after closing its sinks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from treasure.config import Config
from treasure.contracts import Contracts
from treasure import engine, faults
from treasure.engine import PreparedRun, RunRequest, RunResult
from treasure.store.backend import is_pg_url
from treasure.store.errors import StoreError
from treasure.store.writer import StoreSink, StoreWriter
from treasure.workspace import Workspace


@dataclass(frozen=True)
class StoreOutcome:
    """What ``--db`` did: where, whether the run was replaced, its DB status, any store error."""

    db_path: Path | str  # a file, or a postgresql:// URL
    replaced_events: int
    status: str
    error: StoreError | None = None

    def to_dict(self) -> dict[str, Any]:
        from treasure.store.backend import redact

        return {"db_path": redact(self.db_path), "replaced_events": self.replaced_events, "status": self.status,
                "error": self.error.to_dict() if self.error else None}


def default_db_path(ws: Workspace, config: Config) -> Path | str | None:
    """The SSOT's ``persistence.db_path`` (inside the workspace) if ``persistence.enabled``."""
    section = config.section("persistence")
    if not section.get("enabled", False):
        return None
    configured = section.get("db_path", "data/treasure.db")
    if is_pg_url(configured):
        return str(configured)
    return ws.resolve_inside(configured, field="persistence.db_path", source=config.path)


def _where(db_path: Path | str) -> Path | str:
    return str(db_path) if is_pg_url(db_path) else Path(db_path)


def _preflight(prep: PreparedRun, writer: StoreWriter) -> int:
    state = writer.state(prep.run_id)
    if state is None:
        return 0
    if not prep.request.overwrite:
        raise StoreError("STORE_RUN_EXISTS", f"run {prep.run_id} is already in {writer.label} ({state.status}, "
                         f"{state.events} events)", path=writer.label, field="run_id")
    return writer.delete_run(prep.run_id)


def run_stored(request: RunRequest, db_path: Path | str | None = None, *,
               use_ssot_default: bool = True) -> tuple[RunResult, StoreOutcome | None]:
    """Run like :func:`treasure.engine.run`, storing into ``db_path`` (or the SSOT's DB if enabled).

    Returns the run result and what the store did (``None`` when no DB is in play). A store that
    fails mid-run ends the run as ``error`` with the store's code; the DB keeps the committed,
    chained prefix and the run stays ``running`` there.
    """
    holder: dict[str, Any] = {}

    def factory(prep: PreparedRun) -> StoreSink:
        sink = StoreSink(holder["writer"], prep.run_id, owns_writer=False)
        holder["sink"] = sink
        return sink

    prep = engine.prepare_run(request)
    if db_path is None and use_ssot_default:
        db_path = default_db_path(prep.workspace, prep.config)
    if db_path is None:
        return engine.execute_run(prep), None
    writer = StoreWriter.open(db_path, fault=faults.bound(prep.request.faults))
    try:
        replaced = _preflight(prep, writer)
        holder["writer"] = writer
        prep = replace(prep, request=replace(prep.request, extra_sinks=[*prep.request.extra_sinks, factory]))
        result = engine.execute_run(prep)
        sink: StoreSink | None = holder.get("sink")
        if sink is not None and sink.failed is not None:
            return result, StoreOutcome(_where(db_path), replaced, "running", sink.failed)
        try:
            recorded = writer.record_reports(result.run_id, result.court, result.eqs,
                                             contracts=Contracts(prep.workspace.truth_dir))
        except StoreError as exc:
            return result, StoreOutcome(_where(db_path), replaced, "running", exc)
        return result, StoreOutcome(_where(db_path), replaced, recorded.status)
    finally:
        writer.close()
