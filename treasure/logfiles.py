"""Where a run's event log lives: the one home of the event-log layout.

Every module that needs a run's log files asks here (the workspace, the events gate, ``db
ingest``, replay, rotate, archive, status, diagnose, events, e2); nothing else parses log names.

**Names.** In ``logs/events/`` a run's log is a chain of segments:

* rotated parts ``run_<id>.jsonl.<N>``, N = 1, 2, 3 ... written in canonical decimal (no sign,
  no leading zero), oldest first, then
* the live file ``run_<id>.jsonl`` (last in the chain).

The hash chain and ``seq`` run on across segments, so readers take them as one stream.

**Strays.** Any other file named ``run_<id>.jsonl.<suffix>`` (``.0``, ``.01``, ``.bak``,
``.1.orig`` ...) is a *stray*: it is never part of a chain, whichever command reads the log
(before, replay and ``db ingest`` took ``.0`` as the first part while the events gate and the
operations commands ignored it, so the same workspace verified one way and replayed another).
Strays are not silently ignored either: :func:`discover` reports them and the events gate fails
on them, naming the file, because a file that looks like evidence but is outside every chain is
either a mistake or a hiding place. Rename it into the chain (if it truly is a rotated part) or
move it out of ``logs/events/``.

**Missing parts.** Part numbers must run 1..N without a hole; a hole is reported by
:func:`discover`/:func:`locate` (``missing_parts``) and verification refuses such a log
(``EVENTS_PART_MISSING``) before reading it.

**Archives.** ``treasure archive`` moves whole finished logs into ``archive/events-*.tar.gz``
with a manifest (``<name>.manifest.json`` next to it, and ``MANIFEST.json`` inside). Resolution
is simple on purpose: if the run has any file in ``logs/events/``, those files are its log (a
run re-made after its old log was archived starts again at seq 0 there); otherwise the log is
the run's members in the newest archive holding it (highest ``sequence``). Archives never hold
part of a run, so the two are never stitched together. :func:`locate` answers "where is run X's
log" with ``location`` = ``logs`` | ``archive`` | ``none``.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from treasure.errors import EventLogError, RunError
from treasure.workspace import RUN_ID_PATTERN, Workspace, check_run_id

#: Chain position of the live file: after every rotated part.
LIVE_ORDER = 1 << 62
LOG_PREFIX = "run_"
LOG_SUFFIX = ".jsonl"
MANIFEST_MEMBER = "MANIFEST.json"
SIDECAR_SUFFIX = ".manifest.json"
ARCHIVE_PREFIX = "events-"

__all__ = [
    "ARCHIVE_PREFIX", "LIVE_ORDER", "MANIFEST_MEMBER", "SIDECAR_SUFFIX", "ArchiveEntry", "Discovery",
    "LogName", "MemberInfo", "RunLog", "Segment", "archived_run_ids", "archived_segments", "chain_of", "discover",
    "live_name", "load_archives", "local_run_ids", "local_segments", "locate", "log_parts", "parse_name",
    "part_name", "require_segments", "restore_hint", "run_segments", "segment_order",
]


# --------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------
def live_name(run_id: str) -> str:
    return f"{LOG_PREFIX}{run_id}{LOG_SUFFIX}"


def part_name(run_id: str, number: int) -> str:
    if number < 1:
        raise ValueError(f"rotated parts are numbered from 1, not {number}")
    return f"{live_name(run_id)}.{number}"


@dataclass(frozen=True)
class LogName:
    """What a file name in logs/events/ is: a segment of ``run_id``'s log (``order``, the live
    file being :data:`LIVE_ORDER`), or a stray of it (``order`` None)."""

    run_id: str
    order: int | None

    @property
    def stray(self) -> bool:
        return self.order is None


def _valid_id(run_id: str) -> bool:
    return bool(RUN_ID_PATTERN.fullmatch(run_id)) and ".." not in run_id


def _canonical_part(suffix: str) -> int | None:
    if suffix.isascii() and suffix.isdigit() and suffix[0] != "0":
        return int(suffix)
    return None


def parse_name(name: str) -> LogName | None:
    """Classify a file name: a segment, a stray, or None (not a log file name at all).

    ``run_<id>.jsonl`` is live; ``run_<id>.jsonl.<N>`` (N canonical, >= 1) a rotated part;
    ``run_<id>.jsonl.<anything else>`` a stray of ``<id>`` (the id is what precedes the last
    ``.jsonl.`` of the name that still leaves a valid run id). Hidden files never match.
    """
    if not name.startswith(LOG_PREFIX):
        return None
    body = name[len(LOG_PREFIX):]
    if body.endswith(LOG_SUFFIX) and _valid_id(body[: -len(LOG_SUFFIX)]):
        return LogName(body[: -len(LOG_SUFFIX)], LIVE_ORDER)
    head, dot, suffix = body.rpartition(".")
    if dot and head.endswith(LOG_SUFFIX) and _valid_id(head[: -len(LOG_SUFFIX)]):
        number = _canonical_part(suffix)
        if number is not None:
            return LogName(head[: -len(LOG_SUFFIX)], number)
    at = body.rfind(LOG_SUFFIX + ".")
    while at > 0:
        if _valid_id(body[:at]):
            return LogName(body[:at], None)
        at = body.rfind(LOG_SUFFIX + ".", 0, at)
    return None


def segment_order(name: str, run_id: str) -> int | None:
    """Chain position of a file name of ``run_id``'s log, or None if the name is not a segment of it."""
    parsed = parse_name(name)
    if parsed is None or parsed.run_id != run_id:
        return None
    return parsed.order


# --------------------------------------------------------------------------------------------
# segments
# --------------------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class RunLog:
    """A run's log as found: its segments in chain order and where they are.

    ``location`` is ``logs`` (files in logs/events/), ``archive`` (members of ``archive``) or
    ``none``. ``missing_parts`` are rotated part numbers absent from logs/events/ (a hole in
    1..N); ``strays`` are files named like the run's log that are not in its chain.
    """

    run_id: str
    segments: tuple[Segment, ...]
    location: str
    missing_parts: tuple[int, ...] = ()
    strays: tuple[Path, ...] = ()

    @property
    def paths(self) -> tuple[Path, ...]:
        """The local files in chain order (empty when archived)."""
        return tuple(s.path for s in self.segments if s.path is not None)

    @property
    def archive(self) -> Path | None:
        return self.segments[0].archive if self.location == "archive" and self.segments else None

    @property
    def has_live(self) -> bool:
        return bool(self.segments) and self.segments[-1].order == LIVE_ORDER


def _scan(logs_dir: Path) -> list[tuple[LogName, Path, int]]:
    """Every log-named entry of ``logs_dir``: name, path, size (-1 for a folder); sorted by name."""
    found: list[tuple[LogName, Path, int]] = []
    try:
        entries = sorted(os.scandir(logs_dir), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        parsed = parse_name(entry.name)
        if parsed is None:
            continue
        try:
            if entry.is_dir():
                size = -1  # a folder named like a log: not a log
            else:
                size = entry.stat().st_size  # a device or FIFO too: its reader refuses it, naming it
        except OSError:
            size = 0  # a dangling symlink: its reader says the file is missing
        found.append((parsed, Path(entry.path), size))
    return found


def _group(run_id: str, files: list[tuple[LogName, Path, int]]) -> RunLog:
    parts: dict[int, Segment] = {}
    strays: list[Path] = []
    for parsed, path, size in files:
        if size < 0:
            continue
        if parsed.order is None:
            strays.append(path)
        else:
            parts[parsed.order] = Segment(run_id, path.name, parsed.order, max(size, 0), path=path)
    ordered = tuple(parts[n] for n in sorted(parts))
    rotated = [n for n in parts if n != LIVE_ORDER]
    missing = tuple(n for n in range(1, max(rotated, default=0) + 1) if n not in parts)
    return RunLog(run_id, ordered, "logs" if ordered else "none", missing, tuple(strays))


def local_segments(ws: Workspace, run_id: str) -> list[Segment]:
    """The run's files in logs/events/ in chain order (empty when it has none; strays excluded)."""
    return list(_local(ws, run_id).segments)


def _local(ws: Workspace, run_id: str) -> RunLog:
    check_run_id(run_id)
    prefix = live_name(run_id)
    files = [f for f in _scan(ws.logs_dir) if f[1].name.startswith(prefix) and f[0].run_id == run_id]
    return _group(run_id, files)


def log_parts(ws: Workspace, run_id: str) -> list[Path]:
    """The run's local files in chain order (see :meth:`Workspace.log_parts`)."""
    return [s.path for s in local_segments(ws, run_id) if s.path is not None]


def chain_of(path: str | os.PathLike[str]) -> list[Path]:
    """The chain a log file given by path belongs to, in order: for ``run_<id>.jsonl`` its rotated
    parts beside it then itself (strays excluded); any other file alone (an explicit file the
    operator named, e.g. an export)."""
    path = Path(path)
    parsed = parse_name(path.name)
    if parsed is None or parsed.order != LIVE_ORDER:
        return [path]
    files = [f for f in _scan(path.parent) if f[1].name.startswith(path.name) and f[0].run_id == parsed.run_id]
    log = _group(parsed.run_id, files)
    paths = [s.path for s in log.segments if s.path is not None and s.order != LIVE_ORDER]
    return paths + [path]


def local_run_ids(logs_dir: Path) -> list[str]:
    """Run ids with a segment (live file or rotated part) in ``logs_dir``, sorted."""
    return sorted({parsed.run_id for parsed, _, _ in _scan(logs_dir) if parsed.order is not None})


@dataclass
class Discovery:
    """What logs/events/ holds: the logs (by run id), the strays, and files that are no logs."""

    logs: list[RunLog] = field(default_factory=list)
    strays: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def discover(logs_dir: Path) -> Discovery:
    """Group the files of ``logs_dir`` into logs; list strays and non-log files separately."""
    logs_dir = Path(logs_dir)
    found = Discovery()
    if not logs_dir.is_dir():
        return found
    by_run: dict[str, list[tuple[LogName, Path, int]]] = {}
    named = set()
    for parsed, path, size in _scan(logs_dir):
        named.add(path.name)
        if size < 0:  # a folder or something else named like a log: no log, not read
            found.ignored.append(path)
            continue
        by_run.setdefault(parsed.run_id, []).append((parsed, path, size))
    for run_id in sorted(by_run):
        log = _group(run_id, by_run[run_id])
        found.strays.extend(log.strays)
        if log.segments:
            found.logs.append(RunLog(run_id, log.segments, "logs", log.missing_parts))
    found.ignored.extend(sorted(p for p in logs_dir.iterdir() if p.name not in named))
    found.strays.sort()
    found.ignored.sort()
    return found


def run_segments(ws: Workspace, run_id: str) -> list[Segment]:
    """The run's log, local files first, else its members in the newest archive holding it."""
    return list(locate(ws, run_id).segments)


def locate(ws: Workspace, run_id: str) -> RunLog:
    """Where ``run_id``'s log is: logs/events/, else the newest archive holding it, else nowhere."""
    local = _local(ws, run_id)
    if local.segments:
        return local
    archived = archived_segments(ws, run_id)
    if archived:
        return RunLog(run_id, tuple(archived), "archive", (), local.strays)
    return local


def require_segments(ws: Workspace, run_id: str) -> list[Segment]:
    """Like :func:`run_segments`, but an unknown run is a coded error."""
    segments = run_segments(ws, run_id)
    if not segments:
        raise RunError("RUN_UNKNOWN", f"no event log for run {run_id!r} in logs/events/ or archive/",
                       field="run_id")
    return segments


def restore_hint(run_id: str) -> str:
    """What to tell an operator whose command needs an archived log on disk."""
    return f"the log is archived: `treasure archive --restore {run_id}` copies it back into logs/events/"


# --------------------------------------------------------------------------------------------
# archives (reading their index; writing them is treasure.ops.archive's job)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemberInfo:
    """One archived file of a run's log, as the manifest records it."""

    name: str
    run_id: str
    sha256: str
    bytes: int
    events: int
    first_seq: int | None
    last_seq: int | None
    last_hash: str | None
    last_event_type: str | None
    end_status: str | None  # run_end's payload.status when the member ends with run_end

    @property
    def order(self) -> int:
        return segment_order(self.name, self.run_id) or 0


@dataclass(frozen=True)
class ArchiveEntry:
    """An archive in archive/ and what its manifest says it holds."""

    path: Path
    sequence: int
    tar_sha256: str | None
    members: tuple[MemberInfo, ...]

    @property
    def run_ids(self) -> list[str]:
        return sorted({m.run_id for m in self.members})


def _member_from_dict(doc: Any, source: Path) -> MemberInfo:
    try:
        return MemberInfo(**{k: doc[k] for k in MemberInfo.__dataclass_fields__})
    except (KeyError, TypeError) as exc:
        raise EventLogError("ARCHIVE_INVALID", f"manifest member is malformed ({exc})", path=str(source)) from exc


def _read_sidecar(path: Path) -> ArchiveEntry:
    try:
        doc = orjson.loads(path.read_bytes())
        members = tuple(_member_from_dict(m, path) for m in doc["members"])
        tar_path = path.with_name(doc["archive"])
        return ArchiveEntry(tar_path, int(doc.get("sequence", 0)), doc.get("tar_sha256"), members)
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise EventLogError("ARCHIVE_INVALID", f"unreadable archive manifest: {exc}", path=str(path)) from exc


def _read_inner_manifest(tar_path: Path) -> ArchiveEntry:
    """An archive whose sidecar was lost still describes itself (sequence 0: oldest)."""
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            member = tar.extractfile(MANIFEST_MEMBER)
            doc = orjson.loads(member.read()) if member is not None else None
    except (OSError, tarfile.TarError, KeyError, EOFError, orjson.JSONDecodeError) as exc:
        raise EventLogError("ARCHIVE_INVALID", f"archive has no readable {MANIFEST_MEMBER}: {exc}",
                            path=str(tar_path)) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("members"), list):
        raise EventLogError("ARCHIVE_INVALID", f"{MANIFEST_MEMBER} is malformed", path=str(tar_path))
    return ArchiveEntry(tar_path, 0, None, tuple(_member_from_dict(m, tar_path) for m in doc["members"]))


_INDEX_CACHE: dict[Path, tuple[tuple[Any, ...], list[ArchiveEntry]]] = {}


def load_archives(ws: Workspace) -> list[ArchiveEntry]:
    """Every archive in archive/, oldest first (by sequence, then name).

    Cached on the folder listing (name, size, mtime of each archive and manifest), so status over
    many runs reads the manifests once, and any new, replaced or edited file is seen.
    """
    folder = ws.archive_dir
    try:
        listing = tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder)
                               if e.name.startswith(ARCHIVE_PREFIX) and e.is_file()))
    except (FileNotFoundError, NotADirectoryError):
        return []
    cached = _INDEX_CACHE.get(folder)
    if cached is not None and cached[0] == listing:
        return list(cached[1])
    entries = _scan_archives(folder)
    _INDEX_CACHE[folder] = (listing, entries)
    return list(entries)


def _scan_archives(folder: Path) -> list[ArchiveEntry]:
    entries: dict[str, ArchiveEntry] = {}
    for sidecar in sorted(folder.glob(f"{ARCHIVE_PREFIX}*{SIDECAR_SUFFIX}")):
        entry = _read_sidecar(sidecar)
        entries[entry.path.name] = entry
    for tar_path in sorted(folder.glob(f"{ARCHIVE_PREFIX}*.tar.gz")):
        if tar_path.name not in entries:
            entries[tar_path.name] = _read_inner_manifest(tar_path)
    return sorted((e for e in entries.values() if e.path.exists()), key=lambda e: (e.sequence, e.path.name))


def archived_segments(ws: Workspace, run_id: str) -> list[Segment]:
    """The run's members in the newest archive holding it (empty if none does)."""
    for entry in reversed(load_archives(ws)):
        members = [m for m in entry.members if m.run_id == run_id]
        if members:
            return [Segment(run_id, m.name, m.order, m.bytes, archive=entry.path)
                    for m in sorted(members, key=lambda m: m.order)]
    return []


def archived_run_ids(ws: Workspace) -> dict[str, MemberInfo]:
    """Run id -> its last member in the newest archive holding it (for status without reading)."""
    found: dict[str, MemberInfo] = {}
    for entry in load_archives(ws):
        runs: dict[str, MemberInfo] = {}
        for member in sorted(entry.members, key=lambda m: (m.run_id, m.order)):
            runs[member.run_id] = member
        found.update(runs)
    return found
