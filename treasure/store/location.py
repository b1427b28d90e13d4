"""Where the run database lives: ``--db PATH|URL`` or the SSOT's ``persistence.db_path``.

A ``postgresql://`` (or ``postgres://``) URL names a PostgreSQL store (:mod:`treasure.store.pg`)
and is passed on as a string; anything else is a file inside the workspace.

The ``db`` commands must work during disaster recovery, when the SSOT itself may be broken, so
the SSOT is only read leniently here (a readable ``persistence.db_path`` string, else the schema
default). ``treasure run`` decides whether to store at all from the validated SSOT instead
(:func:`treasure.store.run_sink.default_db_path`).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from treasure.store.backend import is_pg_url, redact
from treasure.workspace import Workspace

DEFAULT_DB_PATH = "data/treasure.db"


def configured_db_path(ws: Workspace) -> Path | str:
    """The SSOT's ``persistence.db_path`` resolved inside the workspace (lenient read)."""
    rel = DEFAULT_DB_PATH
    try:
        doc = orjson.loads(ws.ssot_path.read_bytes())
        candidate = doc.get("persistence", {}).get("db_path")
        if isinstance(candidate, str) and candidate:
            rel = candidate
    except (OSError, orjson.JSONDecodeError, AttributeError):
        pass
    if is_pg_url(rel):
        return rel
    return ws.resolve_inside(rel, field="persistence.db_path", source=ws.relative(ws.ssot_path))


def resolve_db(ws: Workspace, arg: str | Path | None) -> Path | str:
    """``--db`` as given on the command line (a path or a ``postgresql://`` URL), else the configured
    location."""
    if is_pg_url(arg):
        return str(arg)
    return ws.resolve_cli(arg, field="--db") if arg else configured_db_path(ws)


def db_label(ws: Workspace, db: Path | str) -> str:
    """How to print a store's location: workspace-relative path, or the URL without its password."""
    return redact(db) if is_pg_url(db) else ws.relative(Path(db))
