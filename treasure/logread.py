"""Reading event-log files safely: regular files only, inside the workspace, bounded lines.

Every reader of an event log (``status``, ``diagnose``, ``events``, ``recon``, ``db ingest``,
``replay``, the events gate) opens it here, so each of them inherits the same limits:

* **Regular files only.** A log replaced by a symlink to ``/dev/zero`` or ``/dev/urandom``, a FIFO
  or a socket is refused with ``EVENTS_NOT_REGULAR`` before a byte is read (the file is opened
  non-blocking, so even a FIFO with no writer cannot hang the reader).
* **Inside the workspace.** Given the workspace root, a path that resolves outside it (a symlink
  pointing out) is refused with ``PATH_ESCAPE``.
* **Bounded lines.** No event line may exceed :data:`MAX_LINE_BYTES` (16 MiB, newline included):
  a longer one is ``EVENTS_LINE_TOO_LONG``, found after reading at most that many bytes of it, so
  memory stays bounded whatever the file holds. Real events are a few hundred bytes.
* **The last line in linear time.** :func:`read_last_line` reads backwards in blocks and joins
  them once, so a 64 MB last line costs one pass (it used to cost one pass per block).
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import stat
import tarfile
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Iterable, Iterator

from treasure.errors import EventLogError

if TYPE_CHECKING:
    from treasure.logfiles import Segment
    from treasure.workspace import Workspace

#: The longest event line any reader accepts, newline included (documented in docs/operations.md).
MAX_LINE_BYTES = 16 << 20
#: Buffer of the streaming readers: lines come one at a time from it, memory stays flat.
READ_BUFFER = 1 << 20

__all__ = ["MAX_LINE_BYTES", "READ_BUFFER", "bounded_lines", "line_too_long", "open_log", "open_segment", "read_regular",
           "read_first_line", "read_last_line"]


def line_too_long(source: str, number: int | None) -> EventLogError:
    which = f"line {number}" if number is not None else "the last line"
    return EventLogError("EVENTS_LINE_TOO_LONG", f"{which} is longer than {MAX_LINE_BYTES} bytes "
                         "(treasure.logread.MAX_LINE_BYTES); no event is that long", path=source, line=number)


def open_log(path: str | os.PathLike[str], *, root: Path | None = None) -> BinaryIO:
    """Open an event-log file for buffered binary reading, or raise a coded :class:`EventLogError`.

    Refuses what is not a regular file (``EVENTS_NOT_REGULAR``), and with ``root`` a path that
    resolves outside that folder (``PATH_ESCAPE``). A missing file is ``RUN_UNKNOWN``.
    """
    source = os.fspath(path)
    if root is not None:
        from treasure.workspace import is_inside

        resolved = Path(source).resolve()
        if not is_inside(root, resolved):
            raise EventLogError("PATH_ESCAPE", f"{source} resolves outside the workspace ({resolved})",
                                path=source, hint="event logs must be files inside the workspace; "
                                "replace the symlink with the log itself")
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise EventLogError("RUN_UNKNOWN", f"no event log at {source}", path=source) from exc
    except IsADirectoryError as exc:
        raise EventLogError("EVENTS_JSON", f"{source} is a directory, not an event log", path=source) from exc
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise EventLogError("EVENTS_IO", f"cannot read the event log: {reason}", path=source) from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise EventLogError("EVENTS_JSON", f"{source} is a directory, not an event log", path=source)
        if not stat.S_ISREG(mode):
            raise EventLogError("EVENTS_NOT_REGULAR", f"{source} is not a regular file (a device, FIFO or "
                                "socket, perhaps through a symlink); it is not read", path=source)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb", buffering=READ_BUFFER)
    except BaseException:
        os.close(fd)
        raise


def _capped(handle: IO[bytes], source: str, limit: int) -> Iterator[bytes]:
    number = 0
    for raw in iter(partial(handle.readline, limit + 1), b""):
        number += 1
        if len(raw) > limit:
            raise line_too_long(source, number)
        yield raw


def bounded_lines(handle: IO[bytes], source: str, size: int | None = None, *,
                  limit: int | None = None) -> Iterable[bytes]:
    """The lines of ``handle`` (newline kept), none longer than ``limit`` (:data:`MAX_LINE_BYTES`).

    ``size`` is what the stream holds (for a file, taken from ``fstat`` when not given): when it
    is within the limit no line can exceed it, and the handle itself is returned, so small logs
    pay nothing; otherwise lines are read with a cap and an over-long one is refused.
    """
    limit = MAX_LINE_BYTES if limit is None else limit
    if size is None:
        try:
            size = os.fstat(handle.fileno()).st_size
        except (OSError, AttributeError, io.UnsupportedOperation):
            size = None
    if size is not None and size <= limit:
        return handle
    return _capped(handle, source, limit)


def read_first_line(path: Path, limit: int = 1 << 20, *, root: Path | None = None) -> bytes:
    """The first line of a file (without newline, at most ``limit`` bytes); empty for an empty file."""
    with open_log(path, root=root) as handle:
        return handle.readline(limit).rstrip(b"\r\n")


def read_last_line(path: Path, block: int = 1 << 16, *, root: Path | None = None,
                   limit: int | None = None) -> bytes:
    """The last complete line of a file without reading all of it (a torn tail is skipped).

    Linear in the length of that line: blocks are read backwards until a newline before the line
    is found, then joined once. A line longer than ``limit`` (:data:`MAX_LINE_BYTES`) is refused
    with ``EVENTS_LINE_TOO_LONG`` after reading at most that much.
    """
    limit = MAX_LINE_BYTES if limit is None else limit
    source = os.fspath(path)
    with open_log(path, root=root) as handle:
        fd = handle.fileno()  # positioned reads on the descriptor: no buffer refilled per block
        pos = os.fstat(fd).st_size
        newline: int | None = None  # offset of the newline ending the line looked at
        while pos > 0:
            step = min(block, pos)
            pos -= step
            chunk = os.pread(fd, step, pos)
            upto = len(chunk)
            while True:
                if newline is None:
                    at = chunk.rfind(b"\n", 0, upto)
                    if at < 0:
                        break
                    newline = pos + at
                    upto = at
                before = chunk.rfind(b"\n", 0, upto)
                if before < 0:
                    break
                start = pos + before + 1
                if newline - start > limit:
                    raise line_too_long(source, None)
                line = os.pread(fd, newline - start, start).rstrip(b"\r")
                if line:
                    return line
                newline, upto = pos + before, before  # an empty line: look at the one before
            if newline is not None and newline - pos > limit:
                raise line_too_long(source, None)
        if newline is None:
            return b""  # no newline at all: only a torn line
        if newline > limit:
            raise line_too_long(source, None)
        return os.pread(fd, newline, 0).rstrip(b"\r")


@contextmanager
def open_segment(segment: "Segment", ws: "Workspace | None" = None) -> Iterator[IO[bytes]]:
    """A binary, buffered, streaming reader of one segment: a local file (through :func:`open_log`,
    kept inside ``ws`` when given) or an archive member (decompressed lazily)."""
    if segment.archive is None:
        assert segment.path is not None
        try:
            handle = open_log(segment.path, root=ws.root if ws is not None else None)
        except EventLogError as exc:
            if exc.code == "RUN_UNKNOWN":
                raise EventLogError("RUN_UNKNOWN", f"{segment.name} disappeared while reading",
                                    path=str(segment.path)) from exc
            raise
        with handle:
            yield handle
        return
    try:
        tar = tarfile.open(segment.archive, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise EventLogError("ARCHIVE_INVALID", f"cannot open archive: {exc}", path=str(segment.archive)) from exc
    with tar:
        try:
            member = tar.extractfile(segment.name)
        except KeyError as exc:
            raise EventLogError("ARCHIVE_INVALID", f"archive has no member {segment.name} although its "
                                "manifest lists it", path=str(segment.archive)) from exc
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise EventLogError("ARCHIVE_INVALID", f"archive is damaged: {exc}", path=str(segment.archive)) from exc
        if member is None:
            raise EventLogError("ARCHIVE_INVALID", f"member {segment.name} is not a regular file",
                                path=str(segment.archive))
        raw: Any = member.raw  # type: ignore[attr-defined]
        with io.BufferedReader(raw, buffer_size=READ_BUFFER) as buffered:  # tarfile's 8 kB is slow
            yield buffered


def read_regular(path: str | os.PathLike[str], *, limit: int | None = None) -> bytes:
    """The bytes of a regular file, for readers of whole small files (e.g. a recorded live session).

    Raises ``OSError`` (as ``open`` would) for a missing file, a folder, and also for a device,
    FIFO or socket (``EINVAL``, "not a regular file") or a file over ``limit`` bytes (``EFBIG``),
    so a caller's existing ``except OSError`` turns them into its own coded error.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", os.fspath(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a device, FIFO or socket)", os.fspath(path))
        if limit is not None and st.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", os.fspath(path))
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)
