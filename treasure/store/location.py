"""Where the run database lives: ``--db PATH`` or the SSOT's ``persistence.db_path``.

The ``db`` commands must work during disaster recovery, when the SSOT itself may be broken, so
the SSOT is only read leniently here (a readable ``persistence.db_path`` string, else the schema
default). ``treasure run`` decides whether to store at all from the validated SSOT instead
(:func:`treasure.store.live.default_db_path`).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from treasure.workspace import Workspace

DEFAULT_DB_PATH = "data/treasure.db"


def configured_db_path(ws: Workspace) -> Path:
    """The SSOT's ``persistence.db_path`` resolved inside the workspace (lenient read)."""
    rel = DEFAULT_DB_PATH
    try:
        doc = orjson.loads(ws.ssot_path.read_bytes())
        candidate = doc.get("persistence", {}).get("db_path")
        if isinstance(candidate, str) and candidate:
            rel = candidate
    except (OSError, orjson.JSONDecodeError, AttributeError):
        pass
    return ws.resolve_inside(rel, field="persistence.db_path", source=ws.relative(ws.ssot_path))


def resolve_db(ws: Workspace, arg: str | None) -> Path:
    """``--db`` as given on the command line, else the configured path."""
    return ws.resolve_cli(arg, field="--db") if arg else configured_db_path(ws)
