"""Preparation: every check that can refuse a run's inputs, before anything is written.

SSOT schema, seed range, strategy, dataset validity and pinned SHA, adapter name and run id are
checked here; :class:`PreparedRun` is the checked, loaded result, and nothing is on disk yet.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import orjson

from treasure import faults
from treasure.canonical import canonical_bytes
from treasure.config import Config, load_config
from treasure.contracts import Contracts
from treasure.data import Dataset, load_dataset
from treasure.errors import DataError, RunError, TreasureError, WorkspaceError
from treasure.events import EventSink
from treasure.strategy import LoadedStrategy, load_strategy
from treasure.workspace import Workspace, check_run_id

MAX_SEED = 2**53  # seeds are recorded in events as exact I-JSON numbers
EVIDENCE_MODES = ("files", "memory")

SinkFactory = Callable[["PreparedRun"], EventSink]


@dataclass(frozen=True)
class RunRequest:
    """What an operator asks for; ``None`` means "as the SSOT says"."""

    workspace: Workspace
    ssot_path: Path | None = None
    dataset_path: Path | None = None
    seed: int | None = None
    run_id: str | None = None
    strategy: str | None = None
    adapter: str | None = None
    overwrite: bool = False
    validate_events: bool = True
    extra_sinks: Sequence[SinkFactory] = ()
    faults: Any = None
    progress: Callable[[int, int], None] | None = None
    adapter_options: dict[str, Any] = field(default_factory=dict)
    #: ``files`` (the event log, reports and equity.npy are written and fsynced) or ``memory``
    #: (events hashed and chained as always, kept in a :class:`~treasure.events.MemorySink`; nothing
    #: is written: the log lines, report bytes and equity bytes come back on :class:`RunResult`)
    evidence: str = "files"
    #: run every bar through Python even when the strategy declares ``signals`` (the reference
    #: the signal-driven fast path is proven byte-identical against)
    force_per_bar: bool = False


@dataclass(frozen=True)
class PreparedRun:
    """Everything checked and loaded; nothing written yet."""

    request: RunRequest
    config: Config
    dataset: Dataset
    dataset_override: bool
    strategy: LoadedStrategy
    seed: int
    run_id: str
    adapter: str
    dataset_file: Path | None = None
    #: workspace files that differ from spec/ssot.lock (empty when the SSOT is approved)
    unapproved: tuple[str, ...] = ()

    @property
    def workspace(self) -> Workspace:
        return self.request.workspace


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str
    exit_code: int
    court: dict[str, Any]
    eqs: dict[str, Any]
    event_log: Path
    report_dir: Path
    error: TreasureError | None = None
    #: ``evidence="memory"``: the event log's lines (no newlines), the reports' file bytes by name
    #: (``court_report.json``, ``eqs_report.json``) and equity.npy's bytes; ``None`` for files
    log_lines: tuple[bytes, ...] | None = None
    report_bytes: dict[str, bytes] | None = None
    equity_bytes: bytes | None = None

    @property
    def log_bytes(self) -> bytes:
        """The event log's bytes: held in memory, or read from the log file(s)."""
        if self.log_lines is not None:
            return b"".join(line + b"\n" for line in self.log_lines)
        return self.event_log.read_bytes()


def derive_run_id(strategy_name: str, config: Config, dataset_sha: str, seed: int, strategy: LoadedStrategy,
                  adapter: str) -> str:
    """Default run id: a digest of the inputs, so the same inputs name the same run (no clock)."""
    digest = hashlib.sha256(canonical_bytes({
        "ssot": config.canonical_sha256, "dataset": dataset_sha, "seed": seed, "adapter": adapter,
        "strategy": [strategy.ref, strategy.params, strategy.source_sha256],
    })).hexdigest()
    return f"{strategy_name[:40]}-{digest[:12]}".replace(" ", "_")


def prepare_run(request: RunRequest) -> PreparedRun:
    """Validate every input; raise a coded TreasureError before any evidence exists."""
    with faults.active(request.faults):
        return _prepare(request)


def _prepare(request: RunRequest) -> PreparedRun:
    ws = request.workspace
    if request.evidence not in EVIDENCE_MODES:
        raise RunError("EVIDENCE_MODE_INVALID", f"evidence mode {request.evidence!r} is not one of "
                       f"{', '.join(EVIDENCE_MODES)}", field="evidence")
    from treasure.migrate import check_format

    check_format(ws, missing_ok=True)  # WORKSPACE_NEWER/_OLD; no file: a tool's scratch copy (the CLI refuses it)
    ssot_path = Path(request.ssot_path) if request.ssot_path else ws.ssot_path
    config = load_config(ssot_path, ws.config_schema_path, display_path=ws.relative(ssot_path))
    seed = config.seed if request.seed is None else int(request.seed)
    if not 0 <= seed < MAX_SEED:
        raise RunError("SEED_INVALID", f"seed {seed} is out of range", field="seed",
                       hint="use an integer in [0, 2**53): seeds are recorded as exact JSON numbers")
    ref = request.strategy or config.strategy_name
    params = config.strategy_params if ref == config.strategy_name else {}
    strategy = load_strategy(_strategy_location(ws, ref, explicit=request.strategy is not None,
                                                source=config.path),
                             params, base_dir=ws.root, display_ref=ref)
    dataset_section = config.section("dataset")
    override = request.dataset_path is not None
    if request.dataset_path is not None:
        path = Path(request.dataset_path)
    else:
        path = ws.resolve_inside(dataset_section["path"], field="dataset.path", source=config.path)
    try:
        faults.fire("dataset_load")
    except OSError as exc:
        raise DataError("DATA_IO", f"cannot read the dataset: {exc.strerror or exc}",
                        path=ws.relative(path)) from exc
    dataset = load_dataset(path, display_path=ws.relative(path),
                           interval_ms=None if override else int(dataset_section["interval_ms"]),
                           calendar=dataset_section.get("calendar", "24/7"),
                           min_distinct_bars=2)  # DATA_TOO_SHORT: a run needs two distinct bars
    pinned = dataset_section["sha256"]
    if dataset.sha256 != pinned and not override:
        raise DataError("DATA_SHA_MISMATCH", f"dataset SHA-256 {dataset.sha256[:12]}… does not match the "
                        f"pinned {pinned[:12]}…", path=dataset.path, field="dataset.sha256")
    if dataset.gaps and dataset_section.get("on_gap", "warn") == "error":
        gap = dataset.gaps[0]
        raise DataError("DATA_GAP", f"{len(dataset.gaps)} gap(s); first before bar {gap.bar_idx} "
                        f"(expected t_ms {gap.expected_t_ms}, got {gap.actual_t_ms})",
                        path=dataset.path, line=gap.bar_idx + 2, field="t_ms")
    if dataset.duplicates and dataset_section.get("on_duplicate", "warn") == "error":
        dup = dataset.duplicates[0]
        raise DataError("DATA_DUPLICATE", f"{len(dataset.duplicates)} duplicate timestamp(s); first "
                        f"t_ms {dup.t_ms} at bar {dup.bar_idx}", path=dataset.path,
                        line=dup.bar_idx + 2, field="t_ms")
    adapter = request.adapter or config.section("execution").get("adapter", "sim")
    if request.run_id is not None:
        run_id = check_run_id(request.run_id)
    else:
        run_id = derive_run_id(strategy.name, config, dataset.sha256, seed, strategy, adapter)
    if request.evidence == "files" and ws.event_log(run_id).exists() and not request.overwrite:
        raise RunError("RUN_EXISTS", f"run {run_id} already exists ({ws.relative(ws.event_log(run_id))})",
                       field="run_id")
    check_truth(ws)
    from treasure.approval import approval_state  # noqa: PLC0415  (hashes the workspace; only for runs)

    approved, changed = _approval_state(ws, approval_state)
    return PreparedRun(request, config, dataset, override, strategy, seed, run_id, adapter, path,
                       unapproved=() if approved else tuple(changed))


_APPROVALS: dict[tuple[Any, ...], tuple[bool, list[str]]] = {}


def _approval_signature(ws: Workspace) -> tuple[Any, ...] | None:
    """What :func:`treasure.approval.approval_state` depends on, cheaply: the lock file's bytes, the
    names of every ``*.json`` under spec/ and truth/ (an unlisted file is a finding whatever it
    holds), and the identity (device, inode, size, mtime, ctime) of every file the lock lists and
    of its dataset. ``None`` when the lock cannot be read as such (no memo then)."""
    try:
        raw = (ws.spec_dir / "ssot.lock").read_bytes()
        doc = orjson.loads(raw)
        listed = sorted(doc["files"]) + [doc["dataset"]["path"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    names: list[str] = []
    folders = [str(ws.spec_dir), str(ws.truth_dir)]
    while folders:
        try:
            entries = sorted(os.scandir(folders.pop()), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink() and not entry.is_file():
                return None  # a linked folder (or a dangling link): the full check every time
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
            elif entry.name.endswith(".json"):
                names.append(entry.path)
    stats: list[Any] = []
    for rel in listed:
        if not isinstance(rel, str):
            return None
        try:
            st = os.stat(os.path.join(ws.root, rel))
        except (OSError, ValueError):
            stats.append((rel, None))
            continue
        stats.append((rel, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return (str(ws.root), raw, tuple(names), tuple(stats))


def _approval_state(ws: Workspace, compute: Callable[[Workspace], tuple[bool, list[str]]]
                    ) -> tuple[bool, list[str]]:
    """``compute(ws)`` (the lock check, ~15 ms: it hashes and path-checks every approved file),
    once per process per version of the files it reads (see :func:`_approval_signature`), so a
    hunt's thousands of runs in one scratch workspace pay it once."""
    key = _approval_signature(ws)
    if key is not None and key in _APPROVALS:
        approved, changed = _APPROVALS[key]
        return approved, list(changed)
    approved, changed = compute(ws)
    if key is not None:
        if len(_APPROVALS) >= 64:
            _APPROVALS.pop(next(iter(_APPROVALS)))
        _APPROVALS[key] = (approved, list(changed))
    return approved, changed


def check_truth(ws: Workspace) -> None:
    """Load and meta-validate every schema in truth/ (the envelope, the reports, every event
    payload), so a broken schema is refused before bar 0 with its code (SCHEMA_INVALID /
    SCHEMA_MISSING) and file, not discovered when its first event is emitted mid-run.

    Once per process per version of the files (see :func:`contracts_for`)."""
    contracts_for(ws.truth_dir)


_TRUTH_NAMES = ("event", "court_report", "eqs_report")
_CONTRACTS: dict[tuple[Any, ...], Contracts] = {}


def _truth_signature(truth_dir: Path) -> tuple[Any, ...]:
    """What identifies a version of truth/: every schema file's name, inode, size and mtime (the
    same per-file-version key as :func:`treasure.contracts._load_checked`), in sorted order."""
    signature: list[Any] = [os.path.realpath(truth_dir)]
    for folder, names in ((truth_dir, None), (truth_dir / "events", None)):
        try:
            entries = sorted((e for e in os.scandir(folder) if e.name.endswith(".schema.json")),
                             key=lambda e: e.name)
        except OSError:
            signature.append((str(folder), None))
            continue
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                signature.append((entry.path, None))
                continue
            signature.append((entry.path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(signature)


def contracts_for(truth_dir: Path) -> Contracts:
    """The :class:`Contracts` of ``truth_dir``, every schema loaded and meta-validated, shared by
    every run of this process while the files are unchanged: their compiled event checks are
    built once per process, not once per run. A changed, added or removed schema file gives a new
    signature and is checked again (SCHEMA_INVALID / SCHEMA_MISSING before any evidence)."""
    key = _truth_signature(Path(truth_dir))
    contracts = _CONTRACTS.get(key)
    if contracts is None:
        contracts = Contracts(Path(truth_dir))
        for name in _TRUTH_NAMES:
            contracts.schema(name)
        for event_type in contracts.event_types:
            contracts.schema(f"events/{event_type}")
        if len(_CONTRACTS) >= 16:
            _CONTRACTS.pop(next(iter(_CONTRACTS)))
        _CONTRACTS[key] = contracts
    return contracts


def _strategy_location(ws: Workspace, ref: str, *, explicit: bool, source: str) -> str:
    """Keep strategy files inside the workspace: a relative ``file.py:Class`` resolves inside it
    (from the SSOT or the request alike); an absolute one is accepted only as an explicit request
    (a CLI argument), never from the SSOT."""
    target, sep, class_name = ref.rpartition(":")
    if not sep or not target.endswith(".py"):
        return ref
    if Path(target).is_absolute():
        if not explicit:
            raise WorkspaceError("PATH_ESCAPE", f"strategy file {target} is absolute", path=source,
                                 field="strategy.name",
                                 hint="strategy files named in the SSOT must be workspace-relative")
        return ref
    return f"{ws.resolve_inside(target, field='strategy.name', source=source)}:{class_name}"
