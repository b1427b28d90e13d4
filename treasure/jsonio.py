"""Reading and writing JSON evidence: atomic replaces, stable formatting, coded errors.

Reports are replaced atomically (temp file in the same directory, fsync, ``os.replace``, fsync of
the directory) so a reader, or a crash, only ever sees the old complete file or the new complete
one. The pretty form is for humans; canonical bytes for hashing live in :mod:`treasure.canonical`.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import Any

import orjson

from treasure import faults as _faults
from treasure.errors import ConfigError, TreasureError, TreasureIOError

_PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def dumps_pretty(document: Any) -> bytes:
    """Stable, human-readable JSON: sorted keys, two-space indent, trailing newline."""
    return orjson.dumps(document, option=_PRETTY)


#: ``fsync`` of a directory errnos that mean "this file system cannot sync a directory" (some
#: FUSE, network and virtual file systems), not "your data is lost": ignored. Every other error
#: (EIO, ENOSPC, EDQUOT, EROFS, ...) is an ``IO_ERROR``: the rename may not survive a crash.
FSYNC_DIR_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF})
#: Opening a directory for that fsync may be refused on a folder that is writable but not
#: readable (mode 0333): nothing to sync through, ignored. Any other open error is an ``IO_ERROR``.
OPEN_DIR_UNSUPPORTED = frozenset({errno.EACCES, errno.EPERM})

#: Evidence files (reports, manifests, archives, rotated parts) are created like the event log:
#: ``open(..., 0o666)`` filtered by the process umask (0644 under the usual umask 022), never
#: mkstemp's private 0600, so one umask decides the mode of every evidence file.
CREATE_MODE = 0o666


def fsync_dir(directory: Path | str) -> None:
    """Persist a rename: without it a crash can forget that the new name exists.

    Errors are surfaced as ``IO_ERROR`` except the "not supported here" ones listed in
    :data:`FSYNC_DIR_UNSUPPORTED` / :data:`OPEN_DIR_UNSUPPORTED`."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        if exc.errno in OPEN_DIR_UNSUPPORTED:
            return
        raise _io_error(exc, Path(directory), "open the folder for fsync") from exc
    try:
        _faults.fire("fsync", os.path.realpath(directory))
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in FSYNC_DIR_UNSUPPORTED:
            raise _io_error(exc, Path(directory), "fsync the folder") from exc
    finally:
        os.close(fd)


def _io_error(exc: OSError, path: Path, action: str) -> TreasureIOError:
    return TreasureIOError("IO_ERROR", f"could not {action} {path.name or path}: {exc.strerror or exc}",
                           path=str(path))


def create_temp(folder: Path | str, name: str, suffix: str = ".tmp") -> tuple[int, str]:
    """A new file ``.<name>.<8 hex>.<suffix>`` in ``folder`` opened for writing (O_EXCL, never
    through a planted symlink), with the evidence mode :data:`CREATE_MODE` & ~umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        token = secrets.token_hex(4)  # treasure: allow-nondeterminism temp file name, renamed away, never evidence
        path = os.path.join(os.fspath(folder), f".{name}.{token}{suffix}")
        try:
            return os.open(path, flags, CREATE_MODE), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", os.fspath(folder))


def atomic_write_bytes(path: Path | str, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that no reader ever sees a torn file."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = create_temp(target.parent, target.name)
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
