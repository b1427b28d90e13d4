"""``treasure archive``: pack finished event logs into archive/ as deterministic tar.gz files.

The runbook's end-of-day step ("tar.gz and move to archive/"), made verifiable:

- Each archive holds whole runs (every rotated part and the live file), never part of a run, so a
  run's log is either wholly in logs/events/ or wholly in one archive.
- It is deterministic: members sorted by (run id, chain position) after a ``MANIFEST.json``,
  mtime 0, uid/gid 0, no user names, gzip header without name or time. The same logs always give
  the same bytes, and the archive is named after its manifest's digest
  (``events-<sha256[:16]>.tar.gz``), so archiving twice is a no-op.
- The manifest lists every member's SHA-256, size, event count and first/last seq and hash; a copy
  sits next to the archive (``<name>.manifest.json``, with the archive's own SHA-256 and a
  ``sequence`` number: a later archive of the same run id wins) so readers need not decompress.
- Originals are deleted only after the written archive was re-read and every member matched.
- Packing holds the log folder's lock and each packed run's lock (:mod:`treasure.file_locks`): a log
  a run is still writing is never packed, even with ``--include-open`` (it is skipped, naming the
  writer's pid), and no rotation renames files under an archive in progress.
- Reading archives (which run is where) is :mod:`treasure.logfiles`' job; this module writes them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import orjson

from treasure.canonical import canonical_bytes
from treasure.errors import EventLogError, RunError, TreasureIOError
from treasure.jsonio import atomic_write_json, create_temp, fsync_dir
from treasure.ops import OpsError
from treasure.digest import file_sha256, stream_sha256
from treasure.file_locks import LockBusy, run_lock, workspace_log_lock
from treasure.logfiles import (
    ARCHIVE_PREFIX,
    LIVE_ORDER,
    MANIFEST_MEMBER,
    SIDECAR_SUFFIX,
    ArchiveEntry,
    MemberInfo,
    Segment,
    archived_run_ids,
    archived_segments,
    live_name,
    load_archives,
    local_segments,
)
from treasure.logread import bounded_lines, open_segment, read_first_line, read_last_line
from treasure.ops.segments import line_object
from treasure.workspace import Workspace

_CHUNK = 1 << 20


@dataclass
class ArchiveResult:
    """What ``treasure archive`` did (or, with ``dry_run``, would do)."""

    archive: str | None = None
    created: bool = False
    runs: list[str] = field(default_factory=list)
    members: int = 0
    bytes: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # run id -> why it was left alone
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------
# describing logs
# ------------------------------------------------------------------------------------------
def describe(handle: Iterable[bytes], name: str, run_id: str) -> MemberInfo:
    """Hash and summarise one log file in a single streaming pass."""
    digest = hashlib.sha256()
    size = events = 0
    first = last = b""
    for raw in handle:
        digest.update(raw)
        size += len(raw)
        if raw.strip():
            events += 1
            if not first:
                first = raw
            last = raw
    first_doc, last_doc = line_object(first), line_object(last)
    end_status = None
    if last_doc.get("event_type") == "run_end" and isinstance(last_doc.get("payload"), dict):
        end_status = last_doc["payload"].get("status")
    return MemberInfo(name=name, run_id=run_id, sha256=digest.hexdigest(), bytes=size, events=events,
                      first_seq=first_doc.get("seq"), last_seq=last_doc.get("seq"),
                      last_hash=last_doc.get("hash"), last_event_type=last_doc.get("event_type"),
                      end_status=end_status)


def log_state(segments: list[Segment], ws: Workspace | None = None) -> str:
    """``finished`` (ends with run_end), ``aux`` (not an engine run: no run_start at seq 0, e.g. a
    recon log written in one go) or ``open`` (running, or crashed before run_end)."""
    first_path = segments[0].path if segments else None
    last_path = segments[-1].path if segments else None
    if first_path is None or last_path is None:
        return "finished"  # already archived (a run's segments are all local or all archived)
    root = ws.root if ws is not None else None
    first = line_object(read_first_line(first_path, root=root))
    last = line_object(read_last_line(last_path, root=root))
    if last.get("event_type") == "run_end":
        return "finished"
    if first.get("seq") == 0 and first.get("event_type") != "run_start":
        return "aux"
    return "open"


# ------------------------------------------------------------------------------------------
# reading archives
# ------------------------------------------------------------------------------------------
def verify_archives(ws: Workspace) -> list[str]:
    """Re-hash every member of every archive against its manifest; returns the problems found."""
    problems: list[str] = []
    for entry in load_archives(ws):
        if entry.tar_sha256 is not None and file_sha256(entry.path) != entry.tar_sha256:
            problems.append(f"{ws.relative(entry.path)}: archive SHA-256 differs from its manifest")
            continue
        for member in entry.members:
            segment = Segment(member.run_id, member.name, member.order, member.bytes, archive=entry.path)
            try:
                with open_segment(segment) as handle:
                    got = describe(bounded_lines(handle, segment.display(ws), member.bytes), member.name,
                                   member.run_id)
            except EventLogError as exc:
                problems.append(f"{ws.relative(entry.path)}:{member.name}: {exc.message}")
                continue
            if got.sha256 != member.sha256:
                problems.append(f"{ws.relative(entry.path)}:{member.name}: SHA-256 differs from the manifest")
    return problems




# ------------------------------------------------------------------------------------------
# writing archives
# ------------------------------------------------------------------------------------------
def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def write_tar(dest: Path, manifest: dict[str, Any], files: list[tuple[str, Path]]) -> None:
    """Write a deterministic tar.gz (streaming: one chunk of one file in memory)."""
    manifest_bytes = canonical_bytes(manifest) + b"\n"
    with open(dest, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.addfile(_tarinfo(MANIFEST_MEMBER, len(manifest_bytes)), io.BytesIO(manifest_bytes))
                for name, path in files:
                    with open(path, "rb") as handle:
                        tar.addfile(_tarinfo(name, path.stat().st_size), handle)
        raw.flush()
        os.fsync(raw.fileno())


def select_runs(ws: Workspace, run_ids: Iterable[str] | None, *, include_open: bool) -> tuple[
        dict[str, list[Segment]], dict[str, str]]:
    """Runs to pack: finished (or auxiliary) logs in logs/events/; why the others are left."""
    wanted = sorted(set(run_ids)) if run_ids else ws.run_ids()
    chosen: dict[str, list[Segment]] = {}
    skipped: dict[str, str] = {}
    for run_id in wanted:
        segments = local_segments(ws, run_id)
        if not segments:
            if run_ids:
                raise RunError("RUN_UNKNOWN", f"run {run_id!r} has no event log in logs/events/", field="run_id")
            continue
        if segments[-1].order != LIVE_ORDER:
            skipped[run_id] = "rotated parts without a live file: incomplete log"
            continue
        state = log_state(segments, ws)
        if state == "open" and not include_open:
            skipped[run_id] = "open: no run_end yet (running, or crashed: pass --include-open)"
            continue
        chosen[run_id] = segments
    return chosen, skipped


def pack(ws: Workspace, run_ids: Iterable[str] | None = None, *, keep: bool = False,
         include_open: bool = False, dry_run: bool = False) -> ArchiveResult:
    """Archive finished runs' logs; delete the originals once the archive is verified."""
    run_ids = list(run_ids) if run_ids else None
    with ExitStack() as held:
        if not dry_run:
            held.enter_context(workspace_log_lock(ws))
        chosen, skipped = select_runs(ws, run_ids, include_open=include_open)
        for run_id in sorted(chosen):  # a run being written keeps its log (its lock is held)
            try:
                held.enter_context(run_lock(ws, run_id))
            except LockBusy as exc:
                del chosen[run_id]
                skipped[run_id] = f"in progress: {exc.message}"
        return _pack_locked(ws, chosen, skipped, keep=keep, dry_run=dry_run)


def _pack_locked(ws: Workspace, chosen: dict[str, list[Segment]], skipped: dict[str, str], *, keep: bool,
                 dry_run: bool) -> ArchiveResult:
    result = ArchiveResult(skipped=skipped, dry_run=dry_run, runs=sorted(chosen))
    if not chosen:
        return result
    files: list[tuple[str, Path]] = []
    members: list[dict[str, Any]] = []
    for run_id in sorted(chosen):
        for segment in chosen[run_id]:
            assert segment.path is not None
            with open_segment(segment, ws) as handle:
                info = describe(bounded_lines(handle, segment.display(ws), segment.size), segment.name, run_id)
            members.append(asdict(info))
            files.append((segment.name, segment.path))
    manifest = {"schema_version": 1, "members": members}
    name = f"{ARCHIVE_PREFIX}{hashlib.sha256(canonical_bytes(manifest)).hexdigest()[:16]}.tar.gz"
    result.archive = f"archive/{name}"
    result.members = len(members)
    result.bytes = sum(m["bytes"] for m in members)
    if dry_run:
        return result
    ws.check_output_dirs()  # never write an archive through a symlink pointing out of the workspace
    folder = ws.archive_dir
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / name
    if not dest.exists():
        fd, tmp_name = create_temp(folder, name)  # evidence mode: 0666 & ~umask
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            write_tar(tmp, manifest, files)
            _check_written(tmp, members)
            os.replace(tmp, dest)
        except OSError as exc:
            raise TreasureIOError("IO_ERROR", f"could not write the archive: {exc.strerror or exc}",
                                  path=str(dest)) from exc
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(folder)
        result.created = True
    else:
        _check_written(dest, members)
    sequence = 1 + max((e.sequence for e in load_archives(ws)), default=0)
    atomic_write_json(folder / (name[: -len(".tar.gz")] + SIDECAR_SUFFIX), {
        "schema_version": 1, "archive": name, "sequence": sequence, "tar_sha256": file_sha256(dest),
        "tar_bytes": dest.stat().st_size, "members": members})
    if not keep:
        for _, path in files:
            path.unlink(missing_ok=True)
            result.removed.append(ws.relative(path))
        fsync_dir(ws.logs_dir)
    return result


def _check_written(tar_path: Path, members: list[dict[str, Any]]) -> None:
    """Re-read an archive and compare every member with the manifest before trusting it."""
    expected = {m["name"]: m["sha256"] for m in members}
    seen: dict[str, str] = {}
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            for info in tar:
                if info.name == MANIFEST_MEMBER:
                    continue
                handle = tar.extractfile(info)
                if handle is None:
                    continue
                seen[info.name] = stream_sha256(handle)
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise OpsError("ARCHIVE_INVALID", f"the archive just written cannot be read back: {exc}",
                       path=str(tar_path)) from exc
    for name, sha in expected.items():
        if seen.get(name) != sha:
            raise OpsError("ARCHIVE_INVALID", f"member {name} differs from the file it was packed from "
                           "(was it written to meanwhile?); originals kept", path=str(tar_path))


def restore(ws: Workspace, run_id: str) -> list[str]:
    """Copy a run's archived log back into logs/events/ (for tools that read only there)."""
    with workspace_log_lock(ws), run_lock(ws, run_id):
        return _restore_locked(ws, run_id)


def _restore_locked(ws: Workspace, run_id: str) -> list[str]:
    if local_segments(ws, run_id):
        raise RunError("RUN_EXISTS", f"run {run_id} already has an event log in logs/events/", field="run_id",
                       hint="restore only runs whose log is archived; see `treasure status`")
    segments = archived_segments(ws, run_id)
    if not segments:
        raise RunError("RUN_UNKNOWN", f"run {run_id!r} is in no archive", field="run_id")
    ws.logs_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for segment in segments:
        target = ws.logs_dir / segment.name
        fd, tmp_name = create_temp(ws.logs_dir, segment.name)
        try:
            with os.fdopen(fd, "wb") as out, open_segment(segment) as handle:
                for chunk in iter(lambda: handle.read(_CHUNK), b""):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, target)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        written.append(ws.relative(target))
    fsync_dir(ws.logs_dir)
    return written


__all__ = ["ArchiveEntry", "ArchiveResult", "MemberInfo", "archived_run_ids", "archived_segments",
           "describe", "live_name", "load_archives", "log_state", "pack", "restore", "verify_archives"]
