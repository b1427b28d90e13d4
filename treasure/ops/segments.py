"""Where a run's event log lives: its files in logs/events/, or its members in an archive.

A run's log is a chain of segments: rotated parts ``run_<id>.jsonl.<N>`` (N = 1, 2, ... oldest
first) then the live ``run_<id>.jsonl`` (see :meth:`Workspace.log_parts`). ``treasure archive``
moves whole finished logs into ``archive/*.tar.gz``; every reader here sees one stream either way.

Resolution, simple on purpose: if the run has any file in logs/events/, those files are the log
(a run re-made after its old log was archived starts again at seq 0 there); otherwise the log is
the run's members in the most recent archive holding it. Archives never hold part of a run, so
the two never need to be stitched together.
"""

from __future__ import annotations

import io
import tarfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

import orjson

from treasure.errors import EventLogError, RunError
from treasure.workspace import Workspace, check_run_id

LIVE_ORDER = 1 << 62  # the live file sorts after every rotated part


def live_name(run_id: str) -> str:
    return f"run_{run_id}.jsonl"


def segment_order(name: str, run_id: str) -> int | None:
    """Chain position of a file name of ``run_id``'s log, or None if the name is not one."""
    live = live_name(run_id)
    if name == live:
        return LIVE_ORDER
    if name.startswith(live + "."):
        suffix = name[len(live) + 1:]
        if suffix.isdigit() and int(suffix) > 0:
            return int(suffix)
    return None


@dataclass(frozen=True)
class Segment:
    """One file of a run's log, local (``path``) or a member of an archive (``archive``)."""

    run_id: str
    name: str
    order: int
    size: int
    path: Path | None = None
    archive: Path | None = None

    @property
    def archived(self) -> bool:
        return self.archive is not None

    def display(self, ws: Workspace) -> str:
        """``logs/events/run_x.jsonl`` or ``archive/events-…tar.gz:run_x.jsonl``, for messages."""
        if self.archive is not None:
            return f"{ws.relative(self.archive)}:{self.name}"
        return ws.relative(self.path) if self.path is not None else self.name


def local_segments(ws: Workspace, run_id: str) -> list[Segment]:
    """The run's files in logs/events/ in chain order (empty when it has none)."""
    segments = []
    for path in ws.log_parts(run_id):
        order = segment_order(path.name, run_id)
        if order is None:  # pragma: no cover - log_parts only returns matching names
            continue
        try:
            size = path.stat().st_size
        except OSError:
            continue
        segments.append(Segment(run_id, path.name, order, size, path=path))
    return segments


def run_segments(ws: Workspace, run_id: str) -> list[Segment]:
    """The run's log, local files first, else its members in the newest archive holding it."""
    check_run_id(run_id)
    local = local_segments(ws, run_id)
    if local:
        return local
    from treasure.ops.archive import archived_segments  # archive imports this module

    return archived_segments(ws, run_id)


def require_segments(ws: Workspace, run_id: str) -> list[Segment]:
    """Like :func:`run_segments`, but an unknown run is a coded error."""
    segments = run_segments(ws, run_id)
    if not segments:
        raise RunError("RUN_UNKNOWN", f"no event log for run {run_id!r} in logs/events/ or archive/",
                       field="run_id")
    return segments


@contextmanager
def open_segment(segment: Segment) -> Iterator[IO[bytes]]:
    """A binary, buffered, streaming reader of one segment (archives are decompressed lazily)."""
    if segment.archive is None:
        assert segment.path is not None
        try:
            handle = open(segment.path, "rb", buffering=1 << 20)
        except FileNotFoundError as exc:
            raise EventLogError("RUN_UNKNOWN", f"{segment.name} disappeared while reading",
                                path=str(segment.path)) from exc
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
        with io.BufferedReader(member.raw, buffer_size=1 << 20) as buffered:  # tarfile's 8 kB is slow
            yield buffered


def line_object(raw: bytes) -> dict[str, Any]:
    """A log line parsed leniently: ``{}`` for an empty, torn or non-object line."""
    try:
        doc = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def read_first_line(path: Path, limit: int = 1 << 20) -> bytes:
    """The first line of a file (without newline); empty for an empty file."""
    with open(path, "rb") as handle:
        return handle.readline(limit).rstrip(b"\r\n")


def read_last_line(path: Path, block: int = 1 << 16) -> bytes:
    """The last complete line of a file without reading it all (a torn tail is skipped)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        end = handle.tell()
        if end == 0:
            return b""
        pos, tail = end, b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            handle.seek(pos)
            tail = handle.read(step) + tail
            body = tail if tail.endswith(b"\n") else tail[: tail.rfind(b"\n") + 1]
            lines = body.rstrip(b"\n").rsplit(b"\n", 1)
            if len(lines) == 2 or (pos == 0 and lines[0]):
                return lines[-1].rstrip(b"\r")
        return b""
