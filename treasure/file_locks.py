"""OS locks on a run's log and on the log folder: who writes, rotates or archives a log, when.

Two advisory ``fcntl.flock`` locks, on files in ``logs/.locks/`` (outside ``logs/events/``, so
no log reader or archive ever sees them):

* :func:`run_lock` -- ``logs/.locks/run_<id>.lock``, exclusive. A run holds it on its own id
  for its whole life (from before its log is opened until its evidence is committed); ``rotate``
  and ``archive`` take it before touching that run's files. So a second ``treasure run`` of the
  same id, or a rotation or archive of a log being written, gets ``RUN_IN_PROGRESS`` naming the
  holder's pid instead of racing it (before, ``rotate --include-open`` during a run renamed the
  file under the writer and events were lost).
* :func:`workspace_log_lock` -- ``logs/.locks/events.lock``, exclusive. ``rotate``, ``archive``
  and ``archive --restore`` take it for the duration of their renames, so two of them never
  interleave (``LOGS_BUSY``, naming the holder's pid).

The kernel drops a flock when its holder dies (even by SIGKILL), so a crashed run never leaves a
stale lock; the lock file itself stays (deleting it would race a second locker) and only carries
the last holder's pid for the error message. Locks are per open file description: a second
``run_lock`` on the same id in the same process is refused too.
"""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from treasure.errors import RunError, TreasureError
from treasure.workspace import Workspace, check_run_id

LOCK_DIR = ("logs", ".locks")
LOG_LOCK_NAME = "events.lock"

__all__ = ["LOCK_DIR", "LockBusy", "lock_dir", "run_lock", "run_lock_holder", "workspace_log_lock"]


class LockBusy(RunError):
    """Another process holds the lock (``RUN_IN_PROGRESS`` or ``LOGS_BUSY``); ``pid`` names it."""

    def __init__(self, code: str, message: str, *, pid: int | None, path: str, hint: str | None = None) -> None:
        super().__init__(code, message, path=path, hint=hint)
        self.pid = pid


def lock_dir(ws: Workspace) -> Path:
    return ws.root.joinpath(*LOCK_DIR)


def _run_lock_path(ws: Workspace, run_id: str) -> Path:
    return lock_dir(ws) / f"run_{check_run_id(run_id)}.lock"


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _open_lock(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                       0o644)
    except OSError as exc:
        raise TreasureError("IO_ERROR", f"cannot open the lock file: {exc.strerror or exc}", path=str(path),
                            hint="logs/.locks/ must be a writable folder of the workspace") from exc


@contextmanager
def _flock(path: Path, make_error: Callable[[int | None], LockBusy], wait: bool) -> Iterator[None]:
    fd = _open_lock(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise make_error(_holder(fd)) from None
            raise TreasureError("IO_ERROR", f"cannot lock {path.name}: {exc.strerror or exc}", path=str(path)) from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is only for messages; the flock is what counts
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the lock file ``path`` (made if missing), waiting for it: how
    the writers of the append-only stores (alerts, recon history, gate history, anchor ledger)
    serialise with one another. Closing the descriptor releases the lock. ``OSError`` propagates:
    each caller decides how to report a read-only or missing folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def run_lock(ws: Workspace, run_id: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the exclusive lock of ``run_id``'s log; raise ``RUN_IN_PROGRESS`` (naming the holder's
    pid) when another process (or another holder in this one) has it, unless ``wait``."""
    path = _run_lock_path(ws, run_id)

    def busy(pid: int | None) -> LockBusy:
        who = f"pid {pid}" if pid is not None else "another process"
        return LockBusy("RUN_IN_PROGRESS", f"run {run_id} is in progress: {who} holds its lock "
                        f"({ws.relative(path)})", pid=pid, path=ws.relative(path),
                        hint=f"wait for {who} to finish (or stop it), then try again; a dead process holds no lock")

    with _flock(path, busy, wait):
        yield


def run_lock_holder(ws: Workspace, run_id: str) -> int | None:
    """The pid holding ``run_id``'s lock, or None when nobody does (a momentary probe)."""
    try:
        with run_lock(ws, run_id):
            return None
    except LockBusy as exc:
        return exc.pid if exc.pid is not None else -1


@contextmanager
def workspace_log_lock(ws: Workspace, *, wait: bool = False) -> Iterator[None]:
    """Hold the lock of logs/events/ renames (rotate, archive, restore); ``LOGS_BUSY`` if taken."""
    path = lock_dir(ws) / LOG_LOCK_NAME

    def busy(pid: int | None) -> LockBusy:
        who = f"pid {pid}" if pid is not None else "another process"
        return LockBusy("LOGS_BUSY", f"{who} is rotating or archiving logs ({ws.relative(path)})", pid=pid,
                        path=ws.relative(path), hint="wait for that `treasure rotate`/`treasure archive` to finish")

    with _flock(path, busy, wait):
        yield
