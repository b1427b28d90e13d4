"""Reading and writing JSON evidence: atomic replaces, stable formatting, coded errors.

Reports are replaced atomically (temp file in the same directory, fsync, ``os.replace``, fsync of
the directory) so a reader, or a crash, only ever sees the old complete file or the new complete
one. The pretty form is for humans; canonical bytes for hashing live in :mod:`treasure.canonical`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

from treasure import faults as _faults
from treasure.errors import ConfigError, TreasureError, TreasureIOError

_PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def dumps_pretty(document: Any) -> bytes:
    """Stable, human-readable JSON: sorted keys, two-space indent, trailing newline."""
    return orjson.dumps(document, option=_PRETTY)


def fsync_dir(directory: Path) -> None:
    """Persist a rename: without it a crash can forget that the new name exists."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        _faults.fire("fsync", os.path.realpath(directory))
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that no reader ever sees a torn file."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise TreasureIOError(
            "IO_ERROR", f"could not write {target.name}: {exc.strerror or exc}", path=str(target)
        ) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                _faults.fire("fsync", os.path.realpath(tmp_name))
                os.fsync(handle.fileno())
        _faults.fire("replace", str(target))
        os.replace(tmp_name, target)
    except OSError as exc:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise TreasureIOError(
            "IO_ERROR", f"could not write {target.name}: {exc.strerror or exc}", path=str(target)
        ) from exc
    if durable:
        fsync_dir(target.parent)


def atomic_write_json(path: Path | str, document: Any, *, durable: bool = True) -> None:
    atomic_write_bytes(path, dumps_pretty(document), durable=durable)


def read_json(path: Path | str, *, code: str = "JSON_INVALID", error: type[TreasureError] = ConfigError) -> Any:
    """Parse a JSON file, turning every failure into a coded error naming the file and line."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except FileNotFoundError as exc:
        raise error(code, f"{source.name} does not exist", path=str(source),
                    hint="check the path") from exc
    except IsADirectoryError as exc:
        raise error(code, f"{source.name} is a directory, not a JSON file", path=str(source),
                    hint="point at a .json file") from exc
    except OSError as exc:
        raise error(code, f"cannot read {source.name}: {exc.strerror}", path=str(source)) from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        line = raw[: exc.pos].count(b"\n") + 1 if exc.pos is not None else None
        raise error(code, f"invalid JSON: {exc.msg}", path=str(source), line=line) from exc
