"""Evidence other parts of Treasure write, read defensively: gates, recon, SSOT lock, the DB.

Each piece may be absent (not run yet, or an installation without that part) or broken (a torn or
hand-edited file). Readers here never raise for that: they return a state with ``problem`` set so
a checklist can say "warn: not available" or "fail: unreadable" with a reason, instead of a
traceback. Formats are read through their public files:

- ``evidence/gates.json`` (``treasure verify``; truth/gates_report.schema.json): ``gates`` is a
  list of ``{name, status: passed|failed|skipped|missing, reason}``.
- ``reports/recon_report.json`` and ``logs/events/run_recon-<run_id>.jsonl`` (``treasure recon``):
  ``mismatches`` is a list of ``{code, order_id, ...}``; RECON ``recon_mismatch`` events carry
  ``payload.code``.
- ``spec/ssot.lock`` (``treasure ssot approve``): read and compared by :mod:`treasure.approval`
  (``files`` maps spec/ and truth/ paths to their approved SHA-256; ``dataset`` the dataset's).
- the SQLite DB at the SSOT's ``persistence.db_path`` when ``persistence.enabled``, recognised and
  backed up with :mod:`treasure.store` when installed, else with the stdlib sqlite3 module.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from treasure import gate_catalog as _gate_catalog
from treasure.errors import TreasureError
from treasure.workspace import Workspace
from treasure.digest import file_sha256 as sha256_file

#: The runbook's gate suite (Step 2), in its order: see treasure.gate_catalog (the one list).
RUNBOOK_GATES = _gate_catalog.RUNBOOK_GATES
GATE_STATUSES = ("passed", "failed", "skipped", "missing")
# recon mismatch codes: one home, treasure.recon.model.CODES (truth/ schemas are tested against it)
_HEX64 = frozenset("0123456789abcdef")


def read_json_doc(path: Path) -> tuple[Any, str | None]:
    """``(document, None)``, or ``(None, problem)`` for an absent, unreadable or invalid file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, "absent"
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        line = raw[: exc.pos].count(b"\n") + 1 if exc.pos is not None else "?"
        return None, f"invalid JSON at line {line}: {exc.msg}"




def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64


# ------------------------------------------------------------------------------------------
# gates
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateState:
    """What evidence/gates.json says; ``ran`` is False when there is no report yet."""

    path: Path
    ran: bool
    gates: dict[str, str] = field(default_factory=dict)  # name -> passed|failed|skipped|missing
    reasons: dict[str, str] = field(default_factory=dict)
    overall: str | None = None
    problem: str | None = None
    mtime: float | None = None

    @property
    def failed(self) -> list[str]:
        return [name for name, status in self.gates.items() if status == "failed"]

    def status_of(self, name: str) -> str | None:
        return self.gates.get(name)

    def to_dict(self) -> dict[str, Any]:
        return {"path": "evidence/gates.json", "ran": self.ran, "overall": self.overall,
                "gates": dict(sorted(self.gates.items())), "failed": sorted(self.failed),
                "problem": self.problem}


def read_gates(ws: Workspace) -> GateState:
    path = ws.evidence_dir / "gates.json"
    doc, problem = read_json_doc(path)
    if problem == "absent":
        return GateState(path, ran=False)
    mtime = path.stat().st_mtime if path.exists() else None
    if problem is not None:
        return GateState(path, ran=True, problem=problem, mtime=mtime)
    entries = doc.get("gates") if isinstance(doc, dict) else None
    if isinstance(entries, dict):  # tolerate {name: {status}} as well as the documented list
        entries = [dict(v, name=k) if isinstance(v, dict) else {"name": k, "status": v} for k, v in entries.items()]
    if not isinstance(entries, list):
        return GateState(path, ran=True, problem="unexpected shape: no 'gates' list", mtime=mtime)
    gates: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return GateState(path, ran=True, problem="unexpected shape: a gate entry has no name", mtime=mtime)
        status = entry.get("status", entry.get("outcome"))
        gates[entry["name"]] = status if status in GATE_STATUSES else "unknown"
        if entry.get("reason"):
            reasons[entry["name"]] = str(entry["reason"])
    overall = doc.get("status") if isinstance(doc.get("status"), str) else None
    return GateState(path, ran=True, gates=gates, reasons=reasons, overall=overall, mtime=mtime)


# ------------------------------------------------------------------------------------------
# reconciliation
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReconState:
    """Reconciliation evidence for one run: a report and/or RECON events."""

    run_id: str
    source: str | None = None          # "report", "events" or None (no evidence)
    mismatches: int = 0
    mismatched_orders: int = 0
    matched: int | None = None
    by_code: dict[str, int] = field(default_factory=dict)
    halted: bool = False
    first_hash: str | None = None       # of the first recon_mismatch event (a stable alert key)
    digest: str | None = None           # of the report's mismatches (when only a report exists)
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "mismatches": self.mismatches, "mismatched_orders": self.mismatched_orders,
                "matched": self.matched,
                "by_code": dict(sorted(self.by_code.items())), "halted": self.halted, "problem": self.problem}


def recon_log_id(run_id: str) -> str | None:
    """The run id of a run's recon log: ``recon-<run_id>`` (shortened by treasure.recon when long)."""
    try:
        from treasure.recon.report import recon_run_id
    except ImportError:  # an installation without reconciliation: only the plain form can exist
        from treasure.workspace import RUN_ID_PATTERN

        candidate = f"recon-{run_id}"
        return candidate if RUN_ID_PATTERN.fullmatch(candidate) else None
    return recon_run_id(run_id)


def recon_report_paths(ws: Workspace, run_id: str) -> list[Path]:
    return [ws.run_reports(run_id) / "recon_report.json", ws.reports_dir / "recon_report.json"]


def read_recon(ws: Workspace, run_id: str, *, latest_run: str | None = None) -> ReconState:
    """Recon evidence for ``run_id``: its RECON events if any, else a recon report naming it."""
    from treasure.ops.query import EventFilter, iter_events  # query -> segments: no cycle at import
    from treasure.ops.segments import run_segments

    log_id = recon_log_id(run_id)
    segments = run_segments(ws, log_id) if log_id is not None else []
    if log_id is not None and segments:
        by_code: dict[str, int] = {}
        orders: set[str] = set()
        first_hash = None
        halted = False
        matched = None
        try:
            for hit in iter_events(ws, log_id, EventFilter(types=("recon_mismatch", "halt", "recon_completed")),
                                   segments=segments):
                event, payload = hit.event, hit.event.get("payload") or {}
                if event["event_type"] == "halt":
                    halted = True
                elif event["event_type"] == "recon_completed":
                    matched = payload.get("matched")
                else:
                    code = str(payload.get("code", "UNKNOWN"))
                    by_code[code] = by_code.get(code, 0) + 1
                    orders.add(str(payload.get("order_id")))
                    first_hash = first_hash or event.get("hash")
        except TreasureError as exc:
            return ReconState(run_id, source="events", problem=f"{exc.code}: {exc.message}")
        return ReconState(run_id, "events", sum(by_code.values()), len(orders),
                          matched if isinstance(matched, int) else None, by_code, halted, first_hash)
    found = _recon_report_for(ws, run_id, latest_run)
    if found is None:
        return ReconState(run_id)
    doc, problem = found
    if problem is not None:
        return ReconState(run_id, source="report", problem=problem)
    items = doc.get("mismatches")
    if not isinstance(items, list):
        return ReconState(run_id, source="report", problem="unexpected shape: no 'mismatches' list")
    by_code = {}
    for item in items:
        code = str(item.get("code", "UNKNOWN")) if isinstance(item, dict) else "UNKNOWN"
        by_code[code] = by_code.get(code, 0) + 1
    orders = {str(item.get("order_id")) for item in items if isinstance(item, dict)}
    digest = hashlib.sha256(orjson.dumps(items, option=orjson.OPT_SORT_KEYS)).hexdigest()
    matched = doc.get("matched")
    halt = doc.get("halt")
    halted = bool(halt.get("triggered")) if isinstance(halt, dict) else doc.get("status") == "halted"
    mismatched = doc.get("mismatched_orders")
    return ReconState(run_id, "report", len(items), mismatched if isinstance(mismatched, int) else len(orders),
                      matched if isinstance(matched, int) else None, by_code, halted, None, digest)


def _recon_report_for(ws: Workspace, run_id: str, latest_run: str | None) -> tuple[Any, str | None] | None:
    """The recon report about ``run_id``: its own copy, or the latest one if it names this run (or
    names no run and this is the latest run)."""
    for path in recon_report_paths(ws, run_id):
        doc, problem = read_json_doc(path)
        if problem == "absent":
            continue
        if problem is not None:
            return None, f"{ws.relative(path)}: {problem}"
        if not isinstance(doc, dict):
            return None, f"{ws.relative(path)}: unexpected shape (not an object)"
        named = doc.get("run_id")
        if named == run_id or (named is None and (latest_run is None or latest_run == run_id)):
            return doc, None
    return None


# ------------------------------------------------------------------------------------------
# SSOT approval lock
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LockState:
    """The SSOT approval lock: whether it exists, what it approved, and every difference found
    (``tamper``: from :func:`treasure.approval.check_tamper`, covering the SSOT, the contracts in
    spec/ and truth/, and the dataset)."""

    present: bool
    approved_sha256: str | None = None
    current_sha256: str | None = None
    problem: str | None = None
    tamper: tuple[str, ...] = ()

    @property
    def matches(self) -> bool | None:
        if not self.present or self.approved_sha256 is None:
            return None
        return self.approved_sha256 == self.current_sha256 and not self.tamper

    def to_dict(self) -> dict[str, Any]:
        return {"present": self.present, "approved_sha256": self.approved_sha256,
                "current_sha256": self.current_sha256, "matches": self.matches, "problem": self.problem,
                "tamper": list(self.tamper)}


def ssot_lock_path(ws: Workspace) -> Path:
    return ws.spec_dir / "ssot.lock"


def read_lock(ws: Workspace) -> LockState:
    current = sha256_file(ws.ssot_path) if ws.ssot_path.is_file() else None
    if not ssot_lock_path(ws).exists():
        return LockState(False, current_sha256=current)
    try:
        from treasure import approval as lock_mod
    except ImportError:
        pass  # read the SSOT's hash only (below)
    else:
        try:
            lock = lock_mod.read_lock(ws)
        except TreasureError as exc:
            return LockState(True, current_sha256=current, problem=f"{exc.code}: {exc.message}")
        findings = tuple(str(f) for f in lock_mod.check_tamper(ws))
        return LockState(True, lock.files.get("spec/ssot.json"), current, tamper=findings)
    doc, problem = read_json_doc(ssot_lock_path(ws))  # no treasure.approval: read the SSOT's hash only
    if problem is not None:
        return LockState(True, current_sha256=current, problem=problem)
    files = doc.get("files") if isinstance(doc, dict) else None
    approved = files.get("spec/ssot.json") if isinstance(files, dict) else None
    if not _is_sha(approved):
        return LockState(True, current_sha256=current, problem="unexpected shape: no files['spec/ssot.json']")
    return LockState(True, approved, current)


# ------------------------------------------------------------------------------------------
# database
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DbState:
    """``state``: disabled | absent (enabled, not created yet) | ok | broken | unknown (no SSOT).

    ``in_use``: a database file exists at the configured path (``persistence.db_path``, default
    data/treasure.db), whatever ``persistence.enabled`` says: ``treasure run --db`` writes there
    without the SSOT enabling persistence, and a DB that exists is one operations must check and
    back up."""

    enabled: bool
    path: Path | None
    state: str
    detail: str = ""
    in_use: bool = False

    @property
    def relevant(self) -> bool:
        """Enabled in the SSOT, or in use: the checklists and status must look at it."""
        return self.enabled or self.in_use

    def to_dict(self, ws: Workspace) -> dict[str, Any]:
        return {"enabled": self.enabled, "path": ws.relative(self.path) if self.path else None,
                "state": self.state, "detail": self.detail, "in_use": self.in_use}


def read_ssot(ws: Workspace) -> tuple[dict[str, Any] | None, str | None]:
    """The SSOT document as written (not validated: the checklist reports schema problems itself)."""
    doc, problem = read_json_doc(ws.ssot_path)
    if problem is None and not isinstance(doc, dict):
        return None, "not a JSON object"
    return doc, problem


def db_path(ws: Workspace, ssot: dict[str, Any] | None) -> tuple[bool, Path | None, str | None]:
    """``(enabled, path, problem)`` from the SSOT's persistence section."""
    section = (ssot or {}).get("persistence") or {}
    if not isinstance(section, dict):
        return False, None, "persistence is not an object"
    enabled = section.get("enabled") is True
    raw = section.get("db_path", "data/treasure.db")
    try:
        return enabled, ws.resolve_inside(str(raw), field="persistence.db_path"), None
    except TreasureError as exc:
        return enabled, None, exc.message


def check_db(path: Path, *, full: bool = False) -> tuple[bool, str]:
    """Open read-only and run SQLite's own check; ``(ok, detail)``. Never writes to the file.
    With treasure.store installed, the file must also be a Treasure run DB (its application id)."""
    try:
        from treasure.store import open_readonly
    except ImportError:
        pass
    else:
        try:
            open_readonly(path).close()
        except TreasureError as exc:
            return False, f"{exc.code}: {exc.message}"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return False, f"cannot open: {exc}"
    try:
        rows = conn.execute("PRAGMA integrity_check" if full else "PRAGMA quick_check").fetchall()
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
    except sqlite3.Error as exc:
        return False, f"not a usable SQLite database: {exc}"
    finally:
        conn.close()
    result = "; ".join(str(r[0]) for r in rows[:3])
    if result != "ok":
        return False, f"integrity check: {result}"
    return True, f"integrity ok, {tables} table(s)"


def read_db(ws: Workspace, ssot: dict[str, Any] | None = None) -> DbState:
    if ssot is None:
        ssot, problem = read_ssot(ws)
        if problem is not None:
            return DbState(False, None, "unknown", f"SSOT {problem}")
    enabled, path, problem = db_path(ws, ssot)
    if problem is not None:
        return DbState(enabled, None, "broken" if enabled else "disabled", problem)
    assert path is not None
    if not enabled:
        if not (path.exists() or path.is_symlink()):
            return DbState(False, path, "disabled", "persistence.enabled is false and no database exists at "
                           f"{ws.relative(path)}")
        if path.is_dir():
            return DbState(False, path, "broken", "persistence.enabled is false, but the DB path is a directory",
                           in_use=True)
        ok, detail = check_db(path)
        return DbState(False, path, "ok" if ok else "broken",
                       f"{detail}; in use (written by `treasure run --db`; persistence.enabled is false)",
                       in_use=True)
    if not path.exists():
        writable = path.parent.is_dir() or not path.parent.exists()
        return DbState(True, path, "absent", "not created yet: the first run with --db creates it"
                       if writable else f"{path.parent} is not a folder")
    if path.is_dir():
        return DbState(True, path, "broken", "is a directory", in_use=True)
    ok, detail = check_db(path)
    return DbState(True, path, "ok" if ok else "broken", detail, in_use=True)


def backup_db(src: Path, folder: Path) -> tuple[Path, bool]:
    """Online, consistent copy (SQLite's backup API, safe while a run writes), checked, and named
    after its content (``<db stem>-<sha256[:12]>.db``: an unchanged DB is not copied twice).
    Uses :func:`treasure.store.backup_db` (which runs ``db check`` on the copy) when installed.
    Returns ``(path, created)``."""
    import os

    from treasure.jsonio import fsync_dir

    folder.mkdir(parents=True, exist_ok=True)
    pending = folder / f".pending-{src.name}"
    pending.unlink(missing_ok=True)
    try:
        try:
            from treasure.store import backup_db as store_backup
        except ImportError:
            _sqlite_backup(src, pending)
        else:
            store_backup(src, pending, overwrite=True)
        dest = folder / f"{src.stem}-{sha256_file(pending)[:12]}.db"
        if dest.exists():
            return dest, False
        os.replace(pending, dest)
        fsync_dir(folder)
        return dest, True
    finally:
        pending.unlink(missing_ok=True)


def _sqlite_backup(src: Path, dest: Path) -> None:
    import os

    source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(str(dest))
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # a backup is one self-contained file
        finally:
            target.close()
    finally:
        source.close()
    ok, detail = check_db(dest, full=True)
    if not ok:
        raise sqlite3.DatabaseError(detail)
    with open(dest, "rb") as handle:
        os.fsync(handle.fileno())
