"""``treasure rotate``: split event logs over a size limit into parts, keeping the hash chain.

The runbook rotates logs over 100 MB. A log is one hash chain, so rotation must not touch a
single event: the live file ``run_<id>.jsonl`` is cut at line boundaries into rotated parts
``run_<id>.jsonl.<N>`` (numbered after the existing ones, oldest first, each at most the limit
unless one line alone is larger) and a new live file holding the last chunk. Bytes are copied,
never re-serialised, so ``verify_log(ws.log_parts(run_id))`` passes exactly as before, and the
concatenation of the new files is checked to hash to the original before anything is renamed.

Only finished logs (ending with ``run_end``) and auxiliary logs are rotated by default: renaming a
file a run still appends to would lose its later writes. Rotation holds the run's lock
(:func:`treasure.file_locks.run_lock`, the one a running run holds for its whole life) and the log
folder's lock (:func:`treasure.file_locks.workspace_log_lock`) while it works, so even
``--include-open`` never rotates a log that is being written: such a log is skipped, naming the
pid of its writer. A rotation interrupted between its
renames leaves parts that duplicate the live file's start; the next rotation detects that (the
parts' bytes are a prefix of the live file), removes them and starts over.
"""

from __future__ import annotations

import hashlib
import math
import os
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from treasure.digest import files_sha256
from treasure.errors import TreasureIOError
from treasure.jsonio import create_temp, fsync_dir
from treasure.ops import OpsError
from treasure.file_locks import LockBusy, run_lock, workspace_log_lock
from treasure.logfiles import LIVE_ORDER, Segment, local_segments
from treasure.logread import read_first_line, read_last_line
from treasure.ops.archive import log_state
from treasure.ops.segments import line_object
from treasure.workspace import Workspace

_CHUNK = 1 << 20


@dataclass
class RotateResult:
    run_id: str
    action: str                  # rotated | under_limit | skipped | repaired+rotated
    live_bytes: int
    parts: list[str] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The largest --max-mb accepted (1 TiB): a limit beyond any log, and finite.
MAX_MB = 1 << 20


def max_bytes_from_mb(max_mb: float) -> int:
    """``--max-mb`` as bytes; a coded refusal for <= 0, NaN, inf or more than :data:`MAX_MB`."""
    if not (isinstance(max_mb, (int, float)) and math.isfinite(max_mb) and 0 < max_mb <= MAX_MB):
        raise OpsError("ROTATE_LIMIT_INVALID", f"--max-mb must be a number > 0 and at most {MAX_MB} "
                       f"(got {max_mb})", field="--max-mb",
                       hint="e.g. `treasure rotate --max-mb 100` (the runbook rotates logs over 100 MB)")
    return max(1, int(max_mb * 1024 * 1024))


def _stale_prefix_parts(ws: Workspace, segments: list[Segment]) -> list[Path] | None:
    """Parts left by an interrupted rotation (their bytes are the live file's first bytes), or
    None if the parts and the live file chain normally."""
    parts, live = segments[:-1], segments[-1]
    if not parts or live.path is None:
        return None
    first_live = line_object(read_first_line(live.path))
    last_part = line_object(read_last_line(parts[-1].path)) if parts[-1].path else {}
    if not isinstance(first_live.get("seq"), int) or not isinstance(last_part.get("seq"), int):
        return None
    if first_live["seq"] > last_part["seq"]:
        return None
    paths = [p.path for p in parts if p.path is not None]
    total = sum(p.size for p in parts)
    if live.size >= total:
        with open(live.path, "rb") as handle:
            if _prefix_sha256(handle, total) == files_sha256(paths):
                return paths
    raise OpsError("ROTATE_CONFLICT", f"rotated parts of run {live.run_id} overlap its live log "
                   f"(live starts at seq {first_live['seq']}, last part ends at seq {last_part['seq']})",
                   path=ws.relative(live.path))


def _prefix_sha256(handle: Any, total: int) -> str:
    """Hex SHA-256 of the first ``total`` bytes of ``handle``."""
    digest = hashlib.sha256()
    remaining = total
    while remaining > 0:
        chunk = handle.read(min(_CHUNK, remaining))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
    return digest.hexdigest()


def rotate_run(ws: Workspace, run_id: str, max_bytes: int, *, include_open: bool = False) -> RotateResult:
    """Rotate one run's live log if it is over ``max_bytes``; skipped while a run holds its lock."""
    with ExitStack() as held:
        try:
            held.enter_context(run_lock(ws, run_id))
        except LockBusy as exc:
            size = sum(s.size for s in local_segments(ws, run_id))
            return RotateResult(run_id, "skipped", size, reason=f"in progress: {exc.message}")
        return _rotate_locked(ws, run_id, max_bytes, include_open=include_open)


def _rotate_locked(ws: Workspace, run_id: str, max_bytes: int, *, include_open: bool) -> RotateResult:
    segments = local_segments(ws, run_id)
    if not segments or segments[-1].order != LIVE_ORDER:
        return RotateResult(run_id, "skipped", 0, reason="no live log in logs/events/")
    live = segments[-1]
    assert live.path is not None
    if live.size <= max_bytes:
        return RotateResult(run_id, "under_limit", live.size)
    if not include_open and log_state(segments, ws) == "open":
        return RotateResult(run_id, "skipped", live.size,
                            reason="open: no run_end yet (a run may be writing it; pass --include-open if it crashed)")
    action = "rotated"
    stale = _stale_prefix_parts(ws, segments)
    if stale:
        for path in stale:
            path.unlink()
        fsync_dir(ws.logs_dir)
        segments = local_segments(ws, run_id)
        action = "repaired+rotated"
    next_part = max((s.order for s in segments[:-1]), default=0) + 1
    before = os.stat(live.path)
    chunks = _split(live.path, max_bytes, ws.logs_dir)
    try:
        if len(chunks) < 2:
            return RotateResult(run_id, "skipped", live.size, reason="a single line is larger than the limit")
        # The run lock keeps lock-abiding writers out; this catches any other writer.
        after = os.stat(live.path)
        if (after.st_size, after.st_mtime_ns, after.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino):
            raise OpsError("ROTATE_BUSY", f"the log of run {run_id} changed while it was being rotated",
                           path=ws.relative(live.path))
        names = []
        for offset, tmp in enumerate(chunks[:-1]):
            target = ws.logs_dir / f"{live.name}.{next_part + offset}"
            if target.exists():
                raise OpsError("ROTATE_CONFLICT", f"{target.name} already exists", path=ws.relative(target))
            os.replace(tmp, target)
            names.append(ws.relative(target))
        os.replace(chunks[-1], live.path)
        fsync_dir(ws.logs_dir)
    finally:
        for tmp in chunks:
            tmp.unlink(missing_ok=True)
    return RotateResult(run_id, action, os.stat(live.path).st_size, names)


def _split(path: Path, max_bytes: int, folder: Path) -> list[Path]:
    """Copy ``path`` into temp files of at most ``max_bytes`` each, cut at line boundaries, and
    check their concatenation hashes to the original. Returns the temp files in order."""
    chunks: list[Path] = []
    original = hashlib.sha256()
    out = None
    size = 0

    def start() -> Any:
        fd, name = create_temp(folder, path.name, ".rot")  # the log's mode (umask), not 0600
        chunks.append(Path(name))
        return os.fdopen(fd, "wb", buffering=_CHUNK)

    def finish(handle: Any) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()

    try:
        with open(path, "rb", buffering=_CHUNK) as source:
            for line in source:
                original.update(line)
                if out is None or (size + len(line) > max_bytes and size > 0):
                    if out is not None:
                        finish(out)
                    out, size = start(), 0
                out.write(line)
                size += len(line)
        if out is not None:
            finish(out)
            out = None
    except OSError as exc:
        if out is not None:
            out.close()
        for tmp in chunks:
            tmp.unlink(missing_ok=True)
        raise TreasureIOError("IO_ERROR", f"rotation failed: {exc.strerror or exc}", path=str(path)) from exc
    copied = hashlib.sha256()
    for tmp in chunks:  # read back what was written: only then may the original be replaced
        with open(tmp, "rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK), b""):
                copied.update(block)
    if original.digest() != copied.digest():  # pragma: no cover - a disk that lies
        for tmp in chunks:
            tmp.unlink(missing_ok=True)
        raise TreasureIOError("IO_ERROR", "rotated copy differs from the original", path=str(path))
    return chunks


def rotate(ws: Workspace, max_bytes: int, run_ids: Iterable[str] | None = None, *,
           include_open: bool = False) -> list[RotateResult]:
    """Rotate every (or the given) run's live log over ``max_bytes``."""
    ids = sorted(set(run_ids)) if run_ids else ws.run_ids()
    with workspace_log_lock(ws):
        return [rotate_run(ws, run_id, max_bytes, include_open=include_open) for run_id in ids]
