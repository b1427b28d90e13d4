"""The store's coded errors, and the one place raw sqlite3 failures become them.

sqlite3 reports a non-database file, a truncated one and a locked one with generic exception
types and English messages; :func:`translate` maps them to stable codes so the CLI never shows a
traceback and automation can match on the code.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from treasure.errors import TreasureError


class StoreError(TreasureError):
    """The run database is missing, not a Treasure DB, corrupted, or refused a conflicting write."""


def translate(exc: sqlite3.Error, path: Path | str, *, doing: str) -> StoreError:
    """Turn a sqlite3 exception raised while ``doing`` something with ``path`` into a coded error."""
    text = str(exc)
    lowered = text.lower()
    if "file is not a database" in lowered or "file is encrypted" in lowered:
        return StoreError("STORE_NOT_SQLITE", f"{path} is not an SQLite database ({doing})", path=str(path))
    if "malformed" in lowered or "corrupt" in lowered or "disk image" in lowered:
        return StoreError("STORE_CORRUPT", f"the database is damaged: {text} ({doing})", path=str(path))
    if "locked" in lowered or "busy" in lowered:
        return StoreError("STORE_LOCKED", f"the database is locked by another process ({doing})", path=str(path))
    if "unable to open" in lowered or "readonly" in lowered or "read-only" in lowered:
        return StoreError("STORE_IO", f"cannot open the database for {doing}: {text}", path=str(path))
    if isinstance(exc, sqlite3.OperationalError) and ("disk" in lowered or "full" in lowered or "i/o" in lowered):
        return StoreError("STORE_IO", f"database I/O failed while {doing}: {text}", path=str(path))
    return StoreError("STORE_ERROR", f"database error while {doing}: {text}", path=str(path))
