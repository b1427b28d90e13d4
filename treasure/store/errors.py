"""The store's coded errors, and the one place raw driver failures (sqlite3, psycopg) become them.

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


def _translate_pg(exc: BaseException, where: str, *, doing: str) -> StoreError:
    """psycopg errors by SQLSTATE class (https://www.postgresql.org/docs/current/errcodes-appendix.html)."""
    state = str(getattr(exc, "sqlstate", None) or "")
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if state.startswith("08") or (not state and type(exc).__name__ == "OperationalError"):
        return StoreError("STORE_UNAVAILABLE", f"the PostgreSQL store {where} is unreachable while {doing}: {text}",
                          path=where)
    if state.startswith("23"):
        return StoreError("STORE_CONFLICT", f"a constraint refused the write while {doing}: {text}", path=where)
    if state in ("40001", "40P01", "55P03", "57014"):
        return StoreError("STORE_LOCKED", f"the store was busy while {doing} ({text})", path=where)
    if state.startswith("53"):
        return StoreError("STORE_IO", f"the PostgreSQL server ran out of resources while {doing}: {text}", path=where)
    if state == "42501" or state == "25006":
        return StoreError("STORE_IO", f"not allowed while {doing}: {text}", path=where)
    if state.startswith("XX"):
        return StoreError("STORE_CORRUPT", f"the database reports damage while {doing}: {text}", path=where)
    return StoreError("STORE_ERROR", f"database error while {doing}: {text}", path=where)


def translate(exc: BaseException, path: Path | str, *, doing: str) -> StoreError:
    """Turn a driver exception (sqlite3 or psycopg) raised while ``doing`` something with ``path``
    into a coded error."""
    if type(exc).__module__.startswith("psycopg"):
        return _translate_pg(exc, str(path), doing=doing)
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
