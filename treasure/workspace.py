"""The workspace: one folder holding a deployment's spec, contracts, data and evidence.

Every path the engine reads or writes is derived here, so that nothing can escape the workspace
(path traversal, symlinks pointing out) unless an operator passed it explicitly as an absolute CLI
argument. The packaged defaults (spec, truth, fixtures) ship inside the wheel as real files, so
``treasure init`` works from an installed package anywhere.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from treasure.errors import RunError, TreasureIOError, WorkspaceError

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_INIT_PARTS = ("spec", "truth", "fixtures")


def bundle_dir() -> Path:
    """Folder of the packaged defaults (spec/, truth/, fixtures/): real files inside the package,
    found with importlib.resources (``treasure/defaults/``). The repository's root workspace is
    kept equal to them (:mod:`treasure.packaged`); the gates ship as ``pytest_treasure.gates``."""
    from importlib.resources import files

    return Path(str(files("treasure") / "defaults"))


def is_inside(root: Path, path: str | os.PathLike[str]) -> bool:
    """True when ``path`` (symlinks resolved) is ``root`` or under it: the one containment test.

    ``root`` should itself be resolved (a :class:`Workspace` root is). A path holding NUL is
    never inside anything.
    """
    text = os.fspath(path)
    if "\x00" in str(text):
        return False
    resolved = Path(text).resolve()
    root = Path(root)
    return resolved == root or root in resolved.parents


def check_run_id(run_id: str) -> str:
    """Refuse run ids that could name a path outside the workspace or confuse tools."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
        raise RunError("RUN_ID_INVALID", f"invalid run id {run_id!r}", field="run_id")
    return run_id


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace; construction does no I/O."""

    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str] | None = None, *, must_exist: bool = True) -> "Workspace":
        root = Path(path if path is not None else os.getcwd()).resolve()
        if must_exist and not (root / "spec").is_dir():
            raise WorkspaceError(
                "WORKSPACE_MISSING", f"{root} is not a Treasure workspace (no spec/ folder)", path=str(root)
            )
        return cls(root)

    # fixed layout -----------------------------------------------------------------------------
    @property
    def spec_dir(self) -> Path:
        return self.root / "spec"

    @property
    def truth_dir(self) -> Path:
        return self.root / "truth"

    @property
    def fixtures_dir(self) -> Path:
        return self.root / "fixtures"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs" / "events"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def evidence_dir(self) -> Path:
        return self.root / "evidence"

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    @property
    def ssot_path(self) -> Path:
        return self.spec_dir / "ssot.json"

    @property
    def config_schema_path(self) -> Path:
        return self.spec_dir / "config.schema.json"

    @property
    def emergency_flag(self) -> Path:
        return self.data_dir / "emergency.flag"

    def event_log(self, run_id: str) -> Path:
        return self.logs_dir / f"run_{check_run_id(run_id)}.jsonl"

    def log_parts(self, run_id: str) -> list[Path]:
        """Every file of a run's log in logs/events/ in chain order: rotated parts
        ``run_<id>.jsonl.<N>`` (N = 1, 2, ..., oldest first) then the live ``run_<id>.jsonl``.
        The layout, strays and archives are :mod:`treasure.logfiles`' rules; this asks it."""
        from treasure.logfiles import log_parts

        return log_parts(self, run_id)

    def run_ids(self) -> list[str]:
        """Run ids with an event log (live file or rotated parts) in logs/events/, sorted."""
        from treasure.logfiles import local_run_ids

        return local_run_ids(self.logs_dir)

    def run_reports(self, run_id: str) -> Path:
        return self.reports_dir / "runs" / check_run_id(run_id)

    def relative(self, path: Path) -> str:
        """Workspace-relative POSIX path for evidence (absolute only if outside)."""
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return Path(path).resolve().as_posix()

    def resolve_inside(self, path: str | os.PathLike[str], *, field: str | None = None,
                       source: str | None = None) -> Path:
        """Resolve a workspace-relative path, refusing anything that lands outside (symlinks too)."""
        candidate = _checked_path(path, field=field, source=source)
        if candidate.is_absolute():
            raise WorkspaceError(
                "PATH_ESCAPE", f"{path} is absolute; paths in workspace files must be relative",
                path=source, field=field,
            )
        resolved = (self.root / candidate).resolve()
        if not is_inside(self.root, resolved):
            raise WorkspaceError(
                "PATH_ESCAPE", f"{path} resolves outside the workspace ({resolved})",
                path=source, field=field,
            )
        return resolved

    def resolve_cli(self, path: str | os.PathLike[str], *, field: str | None = None) -> Path:
        """A path given on the command line: relative to the current directory and kept inside the
        workspace; an absolute path is the operator's explicit choice and is taken as is."""
        candidate = _checked_path(path, field=field, source=None)
        if candidate.is_absolute():
            return candidate
        resolved = (Path.cwd() / candidate).resolve()
        if not is_inside(self.root, resolved):
            raise WorkspaceError(
                "PATH_ESCAPE", f"{path} resolves outside the workspace ({resolved})", field=field,
                hint="pass an absolute path to use a file outside the workspace on purpose",
            )
        return resolved

    def check_output_dirs(self) -> None:
        """Refuse to write evidence through an output folder that is (or is under) a symlink
        pointing out of the workspace, or that is a file: reports, logs and data must land inside
        it, in folders (``WORKSPACE_LAYOUT`` for ``logs`` or ``reports`` replaced by a file)."""
        for folder in (self.logs_dir, self.reports_dir, self.data_dir, self.evidence_dir, self.archive_dir):
            resolved = folder.resolve()
            if not is_inside(self.root, resolved):
                raise WorkspaceError("PATH_ESCAPE", f"{folder.relative_to(self.root).as_posix()}"
                                     f" resolves outside the workspace ({resolved})", path=str(folder),
                                     hint="replace the symlink with a folder inside the workspace")
            check_layout(self.root, folder)

    def check_input_dirs(self) -> None:
        """spec/ and truth/ must be folders (``WORKSPACE_LAYOUT``) inside the workspace
        (``PATH_ESCAPE``): what a run reads is what the approval lock pinned."""
        for folder in (self.spec_dir, self.truth_dir):
            resolved = folder.resolve()
            if not is_inside(self.root, resolved):
                raise WorkspaceError("PATH_ESCAPE", f"{folder.name}/ resolves outside the workspace "
                                     f"({resolved})", path=str(folder),
                                     hint=f"replace the symlink {folder.name}/ with the real folder inside the "
                                     "workspace")
            check_layout(self.root, folder)

    def check_spec_tree(self) -> None:
        """What a run, the lock and the checklists read from spec/ and truth/ stays in the
        workspace: both folders real folders inside it, and no entry under them (any name, not
        only ``*.json``) a symlink resolving out of its folder or a device/FIFO (``PATH_ESCAPE``,
        ``WORKSPACE_LAYOUT``). A symlink between two files of the same folder is left to the
        approval lock (which refuses to approve it)."""
        self.check_input_dirs()
        for folder in (self.spec_dir, self.truth_dir):
            if not folder.is_dir():
                continue
            base = folder.resolve()
            for top, dirs, files in sorted(os.walk(folder)):
                for name in sorted([*dirs, *files]):
                    path = Path(top, name)
                    rel = path.relative_to(self.root).as_posix()
                    if path.is_symlink() and not is_inside(base, path):
                        raise WorkspaceError("PATH_ESCAPE", f"{rel} is a symlink resolving outside {folder.name}/ "
                                             f"({Path(path).resolve()})", path=str(path),
                                             hint=f"replace {rel} with the real file (spec/ and truth/ must "
                                             "hold what the approval lock pins)")
                    try:
                        mode = path.stat().st_mode
                    except OSError:
                        continue  # a dangling link inside the folder: the readers name it when they need it
                    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                        raise WorkspaceError("WORKSPACE_LAYOUT", f"{rel} is not a regular file (a device, FIFO "
                                             "or socket)", path=str(path),
                                             hint=f"remove {rel}; spec/ and truth/ hold JSON files only")

    def ensure_dirs(self) -> None:
        """Create the output folders; a file in their place, a read-only or full disk is coded."""
        for folder in (self.logs_dir, self.reports_dir, self.data_dir, self.evidence_dir):
            check_layout(self.root, folder)
            make_dirs(folder)


def pin_dataset(workspace: Workspace, data: bytes, rel_path: str, *, interval_ms: int | None = None) -> Path:
    """Write ``data`` as the workspace's dataset at ``rel_path`` and pin it in the SSOT.

    What an operator does by hand after re-fetching data (copy the file, update
    ``dataset.path`` and ``dataset.sha256``), done in one place for tools, tests and benchmarks.
    The rest of the SSOT is left as it is; the SSOT is replaced atomically.
    """
    import hashlib
    import json

    from treasure.jsonio import atomic_write_bytes

    target = workspace.resolve_inside(rel_path, field="dataset.path")
    atomic_write_bytes(target, data)
    ssot = json.loads(workspace.ssot_path.read_text())
    ssot["dataset"].update(path=rel_path, sha256=hashlib.sha256(data).hexdigest())
    if interval_ms is not None:
        ssot["dataset"]["interval_ms"] = interval_ms
    atomic_write_bytes(workspace.ssot_path, (json.dumps(ssot, indent=2) + "\n").encode())
    return target


def check_layout(root: Path, folder: Path) -> None:
    """``folder`` and each of its parents up to ``root`` is a folder or absent, never a file
    (``WORKSPACE_LAYOUT``): writing evidence "into" a file is refused before anything is written."""
    current = Path(folder)
    chain = [current, *current.parents]
    for part in chain:
        if part == root or root not in part.parents:
            break
        if part.exists() and not part.is_dir():
            rel = part.relative_to(root).as_posix()
            raise WorkspaceError("WORKSPACE_LAYOUT", f"{rel} is a file, not a folder", path=str(part),
                                 hint=f"move {rel} aside (mv {rel} {rel}.bak); Treasure recreates the folder "
                                 "(spec/ and truth/: `treasure init --force`)")


def make_dirs(folder: Path) -> None:
    """``mkdir -p`` with the OSError (read-only file system, full disk, permission) coded
    ``IO_ERROR`` (exit 2) naming the folder, never a traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise io_error(exc, folder, "create the folder") from exc


def io_error(exc: OSError, path: Path, action: str) -> TreasureIOError:
    """An OSError met writing workspace evidence, as a coded ``IO_ERROR`` naming what failed."""
    import errno

    why = exc.strerror or str(exc)
    hint = None
    if exc.errno == errno.EROFS:
        hint = "the workspace is on a read-only file system: remount it read-write, or work on a copy (cp -a)"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        hint = "check the permissions of the workspace's folders (ls -ld), then re-run"
    elif exc.errno == errno.ENOSPC:
        hint = "the disk is full: free space, then re-run"
    return TreasureIOError("IO_ERROR", f"cannot {action} {path}: {why}", path=str(path), hint=hint)


def _checked_path(path: str | os.PathLike[str], *, field: str | None, source: str | None) -> Path:
    text = os.fspath(path)
    if not text or "\x00" in str(text):
        raise WorkspaceError("PATH_INVALID", f"invalid path {text!r}", path=source, field=field,
                             hint="paths must be non-empty and free of NUL characters")
    return Path(text)


def init_workspace(dest: str | os.PathLike[str], *, force: bool = False) -> Workspace:
    """Create a workspace with the packaged default spec, contracts and dataset."""
    root = Path(_checked_path(dest, field="dir", source=None)).resolve()
    if root.exists() and not root.is_dir():
        raise WorkspaceError("WORKSPACE_LAYOUT", f"{root} exists and is not a folder", path=str(root),
                             hint="choose a new or empty folder for the workspace")
    if root.exists() and any(root.iterdir()) and not force:
        if (root / "spec").exists():
            raise WorkspaceError("WORKSPACE_EXISTS", f"{root} already holds a workspace", path=str(root),
                                 hint="use it as is, or pass --force to refresh its defaults")
    make_dirs(root)
    workspace = Workspace(root)
    for part in _INIT_PARTS:
        check_layout(root, root / part)
    for part in _INIT_PARTS:
        source = bundle_dir() / part
        if source.is_dir():
            try:
                shutil.copytree(source, root / part, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            except (OSError, shutil.Error) as exc:
                error = exc if isinstance(exc, OSError) else OSError(str(exc))
                raise io_error(error, root / part, "copy the packaged defaults into") from exc
    workspace.ensure_dirs()
    from treasure.migrate import write_format

    write_format(workspace)  # spec/workspace.version: this release's format
    return workspace
