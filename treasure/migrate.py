"""Workspace format versions and ``treasure migrate``.

A workspace's layout and contracts change between releases (a new payload field in truth/, a new
optional SSOT key, a new lock format). The **format version** says which release's layout a
workspace holds, so that an engine never runs against contracts it does not understand:

* The version lives in ``spec/workspace.version`` (one line: the integer). It sits in spec/ so
  every tool that copies a workspace's spec/ (replays, plugin copies, hunts, backups) carries it;
  it is *not* a ``*.json`` file, so the approval lock (which covers ``spec/**.json`` and
  ``truth/**.json``) does not cover it: it is migrate's bookkeeping, not operator config.
* A workspace without the file is format 1: what the previous release (commit ca58ece) made.
  ``treasure init`` writes :data:`CURRENT_FORMAT`.
* :func:`check_format` refuses a workspace whose format is older (``WORKSPACE_OLD``: run
  ``treasure migrate``), newer (``WORKSPACE_NEWER``: upgrade Treasure) or unreadable
  (``WORKSPACE_VERSION_INVALID``). The CLI calls :func:`cli_guard` before every command: the
  commands that run or verify are refused, the read-only ones print a warning and go on.

``treasure migrate`` (:func:`migrate`) upgrades in place:

1. **plan** (nothing written): every packaged file under spec/, truth/ and fixtures/ (datasets
   and the SSOT excepted) is compared with the workspace's copy. A copy equal to a file the
   previous release shipped (:data:`_V1_PACKAGED`) was not edited: it is replaced. An edited
   truth/ schema or spec/ schema is replaced too, the operator's version kept next to it as
   ``<name>.orig``; an edited fixture (say re-recorded goldens) is kept and reported. Files new in
   this release are added. The SSOT keeps every value; it must validate against the new config
   schema, else ``MIGRATE_SSOT_INVALID`` and nothing changes.
2. **backup**: every file about to change (and the lock, and a snapshot of the run DB when it has
   schema migrations pending) goes into ``archive/migrate-<from>-<to>[.N]/backup.tar.gz`` with a
   ``SHA256SUMS`` manifest, fsynced before anything is touched.
3. **apply**: file writes are atomic; the DB at ``persistence.db_path`` (if it exists) is opened
   with ``open_db(migrate=True)``; the approval lock is rewritten (format 2, with content) with
   the new hashes of *only* the files migrate replaced or added and whose previous content the old
   lock approved (or that the previous release shipped): an SSOT or schema the operator had not
   approved stays unapproved.
4. **version last**: ``spec/workspace.version`` is written at the very end, so a crash leaves the
   old version (the command refuses to run, migrate can be run again) and the backup.

Running it again on a current workspace changes nothing (``already at format N``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from treasure.errors import ConfigError, TreasureError, WorkspaceError
from treasure.workspace import Workspace, bundle_dir

#: The format this release reads and writes.
CURRENT_FORMAT = 2
#: Workspace-relative path of the version file.
FORMAT_REL = "spec/workspace.version"
#: Folders whose packaged files migrate manages.
_MANAGED = ("spec", "truth", "fixtures")
#: Never replaced: the operator's SSOT and lock, the version file, datasets.
_NOT_MANAGED = ("spec/ssot.json", "spec/ssot.lock", FORMAT_REL)
_NOT_MANAGED_DIRS = ("fixtures/data/",)

#: SHA-256 of every file (datasets excepted) the previous release (format 1, commit ca58ece)
#: shipped in spec/, truth/ and fixtures/: a workspace file with this hash was not edited.
#: From ``git archive ca58ece spec truth fixtures``; tests/test_migrate.py checks it against the
#: committed old workspace (tests/data/workspace_ca58ece.tar.gz).
_V1_PACKAGED: dict[str, str] = {
    "fixtures/golden/default_court_report.json": "13198e5bb32cc4d27b55e48e6584e97f740e1acf7f98f06ff47931512b20d1b3",
    "fixtures/golden/default_eqs_report.json": "23a63ea5c49c7576be87f4d989a94d972ef7c8bec331ca7b39b0d62c21683c60",
    "fixtures/live/clean.jsonl": "1a89ffa73e30eacea314b491377e30dcc8e082c6d9e1a708286a490eb5923526",
    "fixtures/live/fee_mismatch.jsonl": "c5736b1776f12b41548f4f5f744aaced6b002bc31a293b4d98209650fbec0f16",
    "fixtures/live/manifest.json": "6a917c3dec30379b08bf05985d988dc372988d8fb604118a190ebcd7f64a6e02",
    "fixtures/live/missing_fill.jsonl": "afd4bdd32911e70723077ed459ac4381f7dad9f484a8fd6c62bed0c97ddf5b60",
    "fixtures/live/order_state_drift.jsonl": "d83524d09239ededf826b47ca56066aacd21c529736c153ef3f063608341a9b1",
    "fixtures/live/price_mismatch.jsonl": "18dc7b777796bd9653f3d03b64375e0cd2c4c2e399fd87c3d2d7a986ede7b83e",
    "fixtures/live/threshold_at.jsonl": "30c4fd50707d1234028d45214100c5c8f3c4ffc8dc6b6d497118999b274fbe7a",
    "fixtures/live/threshold_over.jsonl": "40ff9d1ce7b0f43b12566767cea66e864d90b112af3218813821d490c9c8bb3f",
    "spec/config.schema.json": "04bb4855c3a36d3e1779ff8bf9346c62bc436b39c41487a90d109d66640b9da8",
    "truth/checklist.schema.json": "36f4ab4a31b3fc7228b9d18efc2c069e09bdc3572e0310ee9d5c8bd60c90d2e9",
    "truth/court_report.schema.json": "738db3699247c9ceb698a852dc8f0db4434364b16bcf34e09c7ef759f464dd56",
    "truth/diagnose.schema.json": "959bdcb472d06d2b9104edaa2cca5edb0ea3c83353ebd633aac0d0662bf57e18",
    "truth/eqs_report.schema.json": "d4fd30ece1c2a8a0ea90952cf42b49cfd26248054175d333f08e4dd7262af243",
    "truth/event.schema.json": "9b8525701390781c09eefee8b360bbaddb1549a696753868a93591c078317219",
    "truth/events/adapter_error.schema.json": "cbed560608305819a6adca374262d14c2802a6172f9e329513cfc013cd1e2f88",
    "truth/events/daily_loss_limit.schema.json": "268b0e4f1faf638078bc61564f59d407a6b2a92ddb06d437995d2242132eed75",
    "truth/events/data_gap_detected.schema.json": "77aee8e5c0fd8dc7bda1427e59a0a8adc14a7444c7bcd4519118bc9982452e8f",
    "truth/events/dataset_loaded.schema.json": "b7c6cf8a7faa88b1f7581e5fef133379806de53ecfdf224fa7c2720588dd8a42",
    "truth/events/day_end.schema.json": "5d6bbd34175a02a6f7959dfacadf272b2496e3b1a1eb289f53577f3fbb02d782",
    "truth/events/duplicate_timestamp.schema.json": "40a629d78b1a0971220677280d29f73e218f2f30d92f9317fbb8b2d4cb4498cf",
    "truth/events/halt.schema.json": "9f0efa660c382c916622a3e423590f85bbc0c0ff61ad972fd9f08602b7f21e95",
    "truth/events/intent_emitted.schema.json": "f355db08f7f024bd0af7d52f808d23839e8f2233871a72621a4fb2908539924e",
    "truth/events/limit_exceeded.schema.json": "0412d1d895b903ac72464dd6c74a51c80079c1ad44e1b18edcfa53d02187cb5f",
    "truth/events/order_cancelled.schema.json": "7dc9bec7e03801024a4e003d71ba18ec7790423452ef65315220d1b5d1175a10",
    "truth/events/order_filled.schema.json": "f25231556512745fb130950c7de4a6d477c0c6b317fa3272a06ae252e4be05ca",
    "truth/events/order_placed.schema.json": "ad41a931d3c8ae5c23351ac0585909e1bcee6ff87b3ea3fa8be761935c68a658",
    "truth/events/order_rejected.schema.json": "475f5826824c523aba85737f4b53dd1937417b91734e12644f41b5aae154f16b",
    "truth/events/position_updated.schema.json": "25e2c9841ae266f80b5169e818e40ab7722070092375dda91eec16451777ebd6",
    "truth/events/recon_completed.schema.json": "ff71813d3d9d03735f2120d0f37fad00a77ea9c7b302fccf7f1aa11927a4ef95",
    "truth/events/recon_mismatch.schema.json": "d25792550b4f3bb5f051bfbf758c99ea31fab6fa868970df9e26bd5c0fd0c3f6",
    "truth/events/recon_started.schema.json": "50eb403a20fd293c18acc4a4b9be76de70af403250ebc10406f16dfb0c3e5b17",
    "truth/events/run_end.schema.json": "508ef696f6402604ba570078bb2aa2b238233cd0c68cb5cfdce88ef0de836295",
    "truth/events/run_error.schema.json": "a7281e4becbb763a9a3e801b3524369ddfe1debf6b522f6c9fd37a4636748953",
    "truth/events/run_start.schema.json": "2e614e3e6ae17f73cfcfc3c89bfdb79a9112087a95f8019e98a544f773ce5924",
    "truth/events/strategy_log.schema.json": "3d2910b3c0536a855b07873c4d2007c0e8141e1b62845639169cde937fd337e3",
    "truth/events_report.schema.json": "34bda26c47c4db1c129ed28578ac30c13e162010115585df0f69b70e6c4cde95",
    "truth/gates_report.schema.json": "c7e28c0cdd7ae4571d5eb40818644ad43f3e0a04db1d3a3a71d76f15e9a621aa",
    "truth/recon_report.schema.json": "ecb52861d0b7394c6bb01f05fa866ddb7e7ac8bd2cd92ed039f5f20af6d6bed5",
    "truth/status.schema.json": "f81ca3f20db8e9cc9e4386832af58e5e8c87e827edeb80d49a5cf446a74f2ee7",
}
#: Hashes of files earlier releases shipped, by path (one set per path, every older format).
_OLD_PACKAGED: dict[str, frozenset[str]] = {rel: frozenset({sha}) for rel, sha in _V1_PACKAGED.items()}

#: Commands that run, verify or change evidence: refused on a workspace of another format.
GATED_COMMANDS = frozenset({"run", "verify", "replay", "recon", "sweep", "checklist", "resume", "data"})
#: Commands that work on any workspace (they make or upgrade one, or hold no workspace).
_FREE_COMMANDS = frozenset({"init", "migrate", "scan", "keys", "halt", "faultrun"})


# ------------------------------------------------------------------------------------------
# the version
# ------------------------------------------------------------------------------------------
def read_format(ws: Workspace) -> int:
    """The workspace's format: the integer in spec/workspace.version; 1 when the file is absent."""
    path = ws.root / FORMAT_REL
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 1
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceError("WORKSPACE_VERSION_INVALID", f"{FORMAT_REL} cannot be read ({exc})",
                             path=FORMAT_REL) from None
    value = text.strip()
    if not value.isdigit() or len(value) > 6 or int(value) < 1:
        raise WorkspaceError("WORKSPACE_VERSION_INVALID",
                             f"{FORMAT_REL} holds {value[:40]!r}, not a format number", path=FORMAT_REL)
    return int(value)


def write_format(ws: Workspace, version: int = CURRENT_FORMAT) -> None:
    """Write spec/workspace.version atomically (``treasure init``, and migrate's last step)."""
    from treasure.jsonio import atomic_write_bytes

    atomic_write_bytes(ws.root / FORMAT_REL, f"{version}\n".encode())


def format_problem(ws: Workspace) -> WorkspaceError | None:
    """The coded error a run would get on this workspace, or None when its format is current."""
    try:
        version = read_format(ws)
    except WorkspaceError as exc:
        return exc
    if version == CURRENT_FORMAT:
        return None
    if version > CURRENT_FORMAT:
        return WorkspaceError("WORKSPACE_NEWER", f"the workspace is format {version}; this Treasure reads "
                              f"format {CURRENT_FORMAT} (a newer release made it)", path=FORMAT_REL)
    return WorkspaceError("WORKSPACE_OLD", f"the workspace is format {version} (an older release made it); "
                          f"this Treasure needs format {CURRENT_FORMAT}: run `treasure migrate`",
                          path=FORMAT_REL)


def check_format(ws: Workspace, *, missing_ok: bool = False) -> None:
    """Raise WORKSPACE_OLD / WORKSPACE_NEWER / WORKSPACE_VERSION_INVALID unless the format is current.
    ``missing_ok``: a workspace without a version file passes (engine library calls on scratch
    workspaces assembled by tools: sweep workers, test copies)."""
    if missing_ok and not (ws.root / FORMAT_REL).exists():
        return
    problem = format_problem(ws)
    if problem is not None:
        raise problem


def cli_guard(args: argparse.Namespace) -> None:
    """Before a CLI command: refuse the commands that run or verify on a workspace of another format;
    warn (stderr) for the others. Does nothing where there is no workspace (the command says so)."""
    command = getattr(args, "command", None)
    if command in _FREE_COMMANDS or command is None:
        return
    raw = getattr(args, "workspace", None)
    try:
        ws = Workspace.at(raw, must_exist=False)
    except TreasureError:
        return
    if not ws.spec_dir.is_dir():
        return
    problem = format_problem(ws)
    if problem is None:
        return
    if command in GATED_COMMANDS:
        raise problem
    if not getattr(args, "quiet", False):
        print(f"warning[{problem.code}]: {problem.message} (read-only `treasure {command}` goes on)",
              file=sys.stderr)


# ------------------------------------------------------------------------------------------
# the plan
# ------------------------------------------------------------------------------------------
@dataclass
class FileAction:
    """One file migrate changes or looks at. ``action``: add | replace | replace_kept_orig |
    kept_edited | current; ``approved_before``: the old lock approved the workspace's copy."""

    path: str
    action: str
    note: str
    sha_before: str | None = None
    sha_after: str | None = None
    reapproved: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MigrateReport:
    """What migrate did (or, with dry_run, would do)."""

    from_format: int
    to_format: int
    dry_run: bool
    files: list[FileAction] = field(default_factory=list)
    lock: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    backup: str | None = None
    changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["files"] = [f.to_dict() for f in self.files]
        return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _packaged_files() -> dict[str, bytes]:
    """Workspace-relative path -> bytes of every packaged file migrate manages."""
    root = bundle_dir()
    out: dict[str, bytes] = {}
    for part in _MANAGED:
        base = root / part
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            rel = f"{part}/{path.relative_to(base).as_posix()}"
            if not path.is_file() or "__pycache__" in rel or rel.endswith(".pyc"):
                continue
            if rel in _NOT_MANAGED or rel.startswith(_NOT_MANAGED_DIRS) or rel.endswith(".orig"):
                continue
            out[rel] = path.read_bytes()
    return out


def _lock_files(ws: Workspace) -> dict[str, str] | None:
    """The old lock's file hashes (None without a readable lock)."""
    from treasure.approval import read_lock

    try:
        return dict(read_lock(ws).files)
    except TreasureError:
        return None


def plan(ws: Workspace) -> tuple[list[FileAction], dict[str, bytes]]:
    """The file actions of a migration to :data:`CURRENT_FORMAT` and the new bytes by path. Writes nothing."""
    actions: list[FileAction] = []
    new_bytes: dict[str, bytes] = {}
    for rel, data in _packaged_files().items():
        target = ws.root / rel
        sha_new = _sha(data)
        if target.is_symlink():
            actions.append(FileAction(rel, "kept_edited", "a symlink: left as it is; replace it with the "
                                      "packaged file by hand", None, sha_new))
            continue
        if not target.exists():
            if rel in _OLD_PACKAGED and not rel.startswith("truth/"):
                actions.append(FileAction(rel, "kept_edited", "removed by the operator: left absent", None, sha_new))
                continue
            actions.append(FileAction(rel, "add", "new in this release", None, sha_new))
            new_bytes[rel] = data
            continue
        old = target.read_bytes()
        sha_old = _sha(old)
        if sha_old == sha_new:
            actions.append(FileAction(rel, "current", "already the packaged file", sha_old, sha_old))
        elif sha_old in _OLD_PACKAGED.get(rel, frozenset()):
            actions.append(FileAction(rel, "replace", "the previous release's file: replaced by this "
                                      "release's", sha_old, sha_new))
            new_bytes[rel] = data
        elif rel.startswith("truth/") or (rel.startswith("spec/") and rel.endswith(".schema.json")):
            actions.append(FileAction(rel, "replace_kept_orig", f"edited by the operator: replaced by this "
                                      f"release's; the edited file is kept as {rel}.orig", sha_old, sha_new))
            new_bytes[rel] = data
        else:
            actions.append(FileAction(rel, "kept_edited", "edited by the operator: kept; compare it with "
                                      "the packaged file (goldens: re-record with --treasure-update-goldens)",
                                      sha_old, sha_old))
    return actions, new_bytes


def _check_ssot(ws: Workspace, new_bytes: dict[str, bytes]) -> None:
    """The SSOT must validate against the config schema it will have after the migration."""
    import tempfile

    from treasure.config import load_config

    schema_rel = "spec/config.schema.json"
    schema_data = new_bytes.get(schema_rel)
    if not ws.ssot_path.is_file():
        return  # SSOT_MISSING is the run's to report
    with tempfile.TemporaryDirectory(prefix="treasure-migrate-") as tmp:
        schema_path = ws.config_schema_path
        if schema_data is not None:
            schema_path = Path(tmp) / "config.schema.json"
            schema_path.write_bytes(schema_data)
        try:
            load_config(ws.ssot_path, schema_path, display_path="spec/ssot.json")
        except TreasureError as exc:
            raise ConfigError("MIGRATE_SSOT_INVALID", f"spec/ssot.json does not validate against format "
                              f"{CURRENT_FORMAT}'s config schema: {exc.message}", path="spec/ssot.json",
                              field=exc.field) from None


# ------------------------------------------------------------------------------------------
# the migration
# ------------------------------------------------------------------------------------------
def _checkpoint(name: str) -> None:
    """A named step of the migration (tests make one raise to simulate a crash there)."""
    from treasure import faults

    faults.fire(f"migrate_{name}")


def _db_path(ws: Workspace) -> Path | None:
    try:
        raw = json.loads(ws.ssot_path.read_bytes())
        rel = (raw.get("persistence") or {}).get("db_path") or "data/treasure.db"
        path = ws.resolve_inside(str(rel), field="persistence.db_path", source="spec/ssot.json")
    except (OSError, ValueError, AttributeError, TreasureError):
        return None
    return path if path.is_file() else None


def _store_pending(path: Path) -> list[int]:
    from treasure.store import schema
    from treasure.store.connection import open_readonly

    conn = open_readonly(path)
    try:
        return [m.version for m in schema.pending(conn)]
    finally:
        conn.close()


def _backup_dir(ws: Workspace, old: int) -> Path:
    base = ws.archive_dir / f"migrate-{old}-{CURRENT_FORMAT}"
    candidate, n = base, 1
    while candidate.exists():  # never overwrite an earlier backup (a re-run after a crash)
        candidate = base.with_name(f"{base.name}.{n}")
        n += 1
    return candidate


def _write_backup(ws: Workspace, folder: Path, files: list[str], db: Path | None) -> None:
    """backup.tar.gz of ``files`` (workspace-relative, those that exist) and the DB snapshot, plus
    SHA256SUMS; deterministic tar headers; fsynced."""
    from treasure.jsonio import atomic_write_bytes, fsync_dir

    folder.mkdir(parents=True, exist_ok=True)
    entries: list[tuple[str, bytes]] = []
    for rel in sorted(set(files)):
        path = ws.root / rel
        if path.is_file() and not path.is_symlink():
            entries.append((rel, path.read_bytes()))
    if db is not None:
        from treasure.store.backup import backup_db

        snapshot = folder / "store.db"
        backup_db(db, snapshot, overwrite=True)
        entries.append((f"{ws.relative(db)}", snapshot.read_bytes()))
        snapshot.unlink()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel, data in entries:
            info = tarfile.TarInfo(rel)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    atomic_write_bytes(folder / "backup.tar.gz", buffer.getvalue())
    sums = "".join(f"{_sha(data)}  {rel}\n" for rel, data in entries)
    sums += f"{_sha(buffer.getvalue())}  backup.tar.gz\n"
    atomic_write_bytes(folder / "SHA256SUMS", sums.encode())
    fsync_dir(folder)


def _rewrite_lock(ws: Workspace, actions: list[FileAction], old_files: dict[str, str]) -> dict[str, Any]:
    """Re-approve the files migrate replaced or added whose previous content was approved (or was
    the previous release's); every other entry stays as the old lock had it."""
    from treasure.jsonio import atomic_write_json
    from treasure.approval import Lock, lock_path, read_lock

    old = read_lock(ws)
    files = dict(old.files)
    reapproved: list[str] = []
    for act in actions:
        if act.action not in ("add", "replace", "replace_kept_orig", "current") or act.sha_after is None:
            continue
        locked = old_files.get(act.path)
        approved_before = (locked is not None and locked == act.sha_before) \
            or (locked is not None and locked in _OLD_PACKAGED.get(act.path, frozenset())) \
            or (locked is None and act.action in ("add", "current") and act.path not in _OLD_PACKAGED)
        if act.path.endswith(".json") and act.path.startswith(("spec/", "truth/")) and approved_before \
                and files.get(act.path) != act.sha_after:
            files[act.path] = act.sha_after
            act.reapproved = True
            reapproved.append(act.path)
    content: dict[str, str] = {}
    for rel, sha in files.items():  # the approved content is known where the file still matches
        path = ws.root / rel
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if _sha(data) == sha:
                try:
                    content[rel] = data.decode("utf-8")
                except UnicodeDecodeError:
                    pass
    for rel, text in old.content.items():  # an unapproved file's approved text (a v2 lock has it)
        if rel not in content and files.get(rel) == old.files.get(rel):
            content[rel] = text
    lock = Lock(files, old.dataset_path, old.dataset_sha256, content)
    atomic_write_json(lock_path(ws), lock.to_document())
    return {"present": True, "from_version": old.version, "reapproved": sorted(reapproved)}


def migrate(workspace: Workspace | str | os.PathLike[str], *, dry_run: bool = False,
            progress: Callable[[str], None] | None = None) -> MigrateReport:
    """Upgrade the workspace to :data:`CURRENT_FORMAT` (see the module doc). Idempotent."""
    from treasure.jsonio import atomic_write_bytes

    ws = workspace if isinstance(workspace, Workspace) else Workspace.at(workspace)
    old = read_format(ws)
    report = MigrateReport(old, CURRENT_FORMAT, dry_run)
    if old > CURRENT_FORMAT:
        problem = format_problem(ws)
        assert problem is not None
        raise problem
    if old == CURRENT_FORMAT:
        report.lock = {"present": (ws.spec_dir / "ssot.lock").exists(), "reapproved": []}
        report.store = {"path": None, "migrations": []}
        return report
    actions, new_bytes = plan(ws)
    report.files = actions
    _check_ssot(ws, new_bytes)
    old_files = _lock_files(ws)
    db = _db_path(ws)
    pending = _store_pending(db) if db is not None else []
    report.store = {"path": ws.relative(db) if db is not None else None, "migrations": pending}
    report.lock = {"present": old_files is not None, "reapproved": []}
    if dry_run:
        return report
    changing = sorted(new_bytes)
    backup = _backup_dir(ws, old)
    _write_backup(ws, backup, [*changing, "spec/ssot.lock", FORMAT_REL], db if pending else None)
    report.backup = ws.relative(backup)
    _checkpoint("backup_written")
    for act in actions:
        if act.path not in new_bytes:
            continue
        target = ws.root / act.path
        if act.action == "replace_kept_orig":
            atomic_write_bytes(target.with_name(target.name + ".orig"), target.read_bytes())
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, new_bytes[act.path])
        if progress is not None:
            progress(f"{act.action:<17} {act.path}")
        _checkpoint("file_written")
    if db is not None and pending:
        from treasure.store.connection import open_db

        open_db(db, migrate=True).close()
    _checkpoint("store_migrated")
    if old_files is not None:
        report.lock = _rewrite_lock(ws, actions, old_files)
    _checkpoint("lock_written")
    write_format(ws, CURRENT_FORMAT)
    report.changed = True
    return report
