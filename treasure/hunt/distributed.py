"""``treasure hunt --sweep``: many hunts, one per (strategy, seed), as pure tasks on the sweep executor.

Each task is a normal hunt (:func:`treasure.hunt.search.hunt`, seeded with its seed) in a throw-away
workspace built on the worker from content-addressed inputs: the client's ``truth/``, its config
schema and any ``file.py:Class`` strategy file, shipped as bytes (the sweep's bundle,
:func:`treasure.sweep.planner.bundle_files`), never a client path. A task returns what it found as
data: its row for the report and, for a failure, the reproducer's files (``dataset.csv``,
``ssot.json``, ``test_reproduce.py``) as bytes. The client writes them under
``fixtures/regressions/<id>/`` once: an absent file is written, the same bytes are a no-op, and a
folder whose case files (``dataset.csv``, ``ssot.json``) match keeps the ``test_reproduce.py`` it
has (another seed found the same shrunk case first: only the provenance in its docstring differs).
Results are written in (strategy, seed) order after the tasks finish, so which seed's provenance a
new folder gets never depends on completion order.

Hypothesis' example database is shared through the workspace's ``.hypothesis/examples``
(a :class:`~hypothesis.database.DirectoryBasedExampleDatabase`), one key per strategy (and fixed
params), by snapshot and merge, the same way serially, on a LocalCluster and on a remote scheduler:
the client reads each strategy's saved examples before the sweep and ships them inside the task; a
task hunts against an in-memory copy (:class:`SnapshotDatabase`: replayed first, as hypothesis'
``Phase.reuse`` does) and returns what hypothesis saved and deleted; after every task finished, the
client applies all deletions, then all additions, to the directory. Every task of a sweep therefore
sees the same examples whatever ran first or where, so the report is byte-identical serial and on
any number of workers; what one sweep finds is replayed by the next. ``--no-database`` hunts
exactly as ``treasure hunt --seed N`` does (no replay, nothing saved).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from treasure.canonical import canonical_bytes
from treasure.errors import RunError, TreasureError
from treasure.jsonio import atomic_write_bytes
from treasure.sweep.executor import ExecutorOptions, PureTask, run_pure
from treasure.sweep.planner import bundle_files, manifest_sha256
from treasure.workspace import Workspace

#: hypothesis' keys for one test: its corpus, the secondary corpus and the pareto front
SUFFIXES = ("", ".secondary", ".pareto")
#: the reproducer files, in the order they are written; the first two are the case itself
REPRODUCER_FILES = ("dataset.csv", "ssot.json", "test_reproduce.py")
DATABASE_DIR = ".hypothesis/examples"
MAX_SEEDS = 100_000

Progress = Callable[[int, int], None]


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0-7``, ``0,1,2`` or a mix (``0-3,9``): sorted, without repeats; ValueError when malformed."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            start, stop = (int(low), int(high)) if dash else (int(part), int(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a seed or a range like 0-7") from None
        if not 0 <= start <= stop < 2**53:
            raise ValueError(f"{part!r}: seeds are integers in [0, 2**53), ranges low-high with low <= high")
        if stop - start + 1 + len(seeds) > MAX_SEEDS:
            raise ValueError(f"more than {MAX_SEEDS} seeds")
        seeds.update(range(start, stop + 1))
    return tuple(sorted(seeds))


def database_key(strategy: str, params: dict[str, Any] | None) -> bytes:
    """The example-database key of a strategy's hunts (its fixed params included)."""
    return b"treasure-hunt-sweep/v1 " + canonical_bytes({"strategy": strategy, "params": params})


class SnapshotDatabase(ExampleDatabase):
    """An in-memory copy of one strategy's saved examples, for one hunt.

    Every key hypothesis uses for the hunt's test maps to one of :data:`SUFFIXES` (its corpus,
    ``.secondary``, ``.pareto``); ``fetch`` yields values sorted, so replaying and sampling do
    not depend on set order. :meth:`changes` is what the hunt saved and deleted."""

    def __init__(self, snapshot: dict[str, tuple[bytes, ...]] | None = None) -> None:
        super().__init__()
        self.before = {s: frozenset((snapshot or {}).get(s, ())) for s in SUFFIXES}
        self.data = {s: set(v) for s, v in self.before.items()}

    @staticmethod
    def _suffix(key: bytes) -> str:
        return next((s for s in SUFFIXES[1:] if key.endswith(s.encode())), "")

    def fetch(self, key: bytes) -> Iterable[bytes]:
        yield from sorted(self.data[self._suffix(key)], key=lambda v: (len(v), v))

    def save(self, key: bytes, value: bytes) -> None:
        self.data[self._suffix(key)].add(bytes(value))

    def delete(self, key: bytes, value: bytes) -> None:
        self.data[self._suffix(key)].discard(bytes(value))

    def changes(self) -> dict[str, dict[str, list[bytes]]]:
        return {"added": {s: sorted(self.data[s] - self.before[s]) for s in SUFFIXES},
                "deleted": {s: sorted(self.before[s] - self.data[s]) for s in SUFFIXES}}


@dataclass(frozen=True)
class HuntTask:
    """One (strategy, seed) hunt: everything a worker needs besides the bundle (small, picklable)."""

    strategy: str
    seed: int
    params: dict[str, Any] | None
    examples: int
    max_bars: int
    max_minutes: float | None
    determinism: str
    skip: tuple[str, ...]
    bundle_sha256: str
    snapshot: dict[str, tuple[bytes, ...]] | None  # None: no example database

    @property
    def key(self) -> str:
        """The Dask key: stable for the same hunt, unique in a sweep."""
        digest = hashlib.sha256(canonical_bytes({"strategy": self.strategy, "seed": self.seed,
                                                 "params": self.params})).hexdigest()[:16]
        return f"treasure-hunt-{digest}"


def run_hunt_task(task: HuntTask, bundle: dict[str, bytes]) -> dict[str, Any]:
    """Run one hunt on a worker; return its row, the reproducer's files and the database changes.

    Pure: the same task and bundle give the same result, so the scheduler may re-run it. A coded
    error is a result (status ``error``); inputs that do not match their hash give ``fatal``."""
    if manifest_sha256(bundle) != task.bundle_sha256:
        return {"key": task.key, "fatal": {"code": "SWEEP_INPUT_MISMATCH",
                                           "message": f"hunt {task.key}: the worker's inputs do not match their SHA-256"}}
    import warnings

    from hypothesis.errors import HypothesisDeprecationWarning

    from treasure.hunt.search import HuntRequest, hunt

    # a Dask worker's own threads use the global `random` module while a case is drawn; hypothesis
    # notices and warns, although the hunt does not use it (its engine runs are in other processes)
    warnings.filterwarnings("ignore", message="Do not use the `random` module", category=HypothesisDeprecationWarning)
    row: dict[str, Any] = {"strategy": task.strategy, "seed": task.seed}
    files: dict[str, bytes] = {}
    database = SnapshotDatabase(task.snapshot) if task.snapshot is not None else None
    with tempfile.TemporaryDirectory(prefix="treasure-hunt-sweep-") as tmp:
        root = Path(tmp).resolve()
        for rel, data in bundle.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        ws = Workspace(root)
        regressions = root / "fixtures" / "regressions"
        try:
            report = hunt(HuntRequest(
                workspace=ws, strategy=task.strategy, params=task.params, examples=task.examples, seed=task.seed,
                max_minutes=task.max_minutes, max_bars=task.max_bars, determinism=task.determinism,
                skip=task.skip, write=True, regressions_dir=regressions, database=database))
        except TreasureError as exc:
            row.update(status="error", error={"code": exc.code, "message": exc.message, "field": exc.field},
                       examples={"requested": task.examples, "run": 0, "stopped_by_time": False},
                       failures=[])
            return {"key": task.key, "row": row, "files": {}, "database": None}
        doc = report.to_dict(ws.relative)
        failures = []
        if report.failure is not None and report.reproducer is not None:
            folder = Path(report.reproducer)
            failures.append({"invariant": report.failure["invariant"], "reproducer": folder.name,
                             "message": report.failure["message"], "bars": report.failure["bars"],
                             "shrinks": report.failure["shrinks"]})
            files = {name: (folder / name).read_bytes() for name in REPRODUCER_FILES}
        row.update(status=doc["status"], error=None, examples=doc["examples"], bars=doc["bars"],
                   outcomes=doc["outcomes"], refusals=doc["refusals"], failures=failures)
    return {"key": task.key, "row": row, "files": files,
            "database": database.changes() if database is not None else None}


@dataclass(frozen=True)
class HuntSweepRequest:
    workspace: Workspace
    strategies: tuple[str, ...]
    seeds: tuple[int, ...]
    params: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # per strategy; absent: None
    examples: int = 100
    max_bars: int = 60
    max_minutes: float | None = None
    determinism: str = "process"
    skip: tuple[str, ...] = ()
    write: bool = True
    database: bool = True


@dataclass
class HuntSweepOutcome:
    report: dict[str, Any]
    report_path: Path
    written: int = 0  # reproducer files written now
    unchanged: int = 0  # already there with the same bytes
    kept: int = 0  # test_reproduce.py of a folder whose case matched, kept as it was
    database_added: int = 0  # examples saved into .hypothesis/examples
    database_deleted: int = 0
    reproducers: list[str] = field(default_factory=list)  # workspace-relative folders, sorted


def hunt_sweep(request: HuntSweepRequest, options: ExecutorOptions, *,
               progress: Progress | None = None) -> HuntSweepOutcome:
    """Run every (strategy, seed) hunt of ``request`` on ``options``' executor; write the reproducers,
    merge the example database and write the canonical report."""
    from treasure.hunt.execute import MODES
    from treasure.hunt.search import check_strategy

    ws = request.workspace
    if not request.strategies or not request.seeds:
        raise TreasureError("CLI_VALUE", "a hunt sweep needs at least one strategy and one seed",
                            field="--strategies" if not request.strategies else "--seeds")
    if request.determinism not in MODES:
        raise ValueError(f"determinism must be one of {', '.join(MODES)}")
    strategies = tuple(sorted(set(request.strategies)))
    for ref in strategies:
        check_strategy(ws, ref, request.params.get(ref))
    bundle = bundle_files(ws, list(strategies))
    bundle_sha = manifest_sha256(bundle)
    store = DirectoryBasedExampleDatabase(str(ws.root / DATABASE_DIR)) if request.database else None
    snapshots: dict[str, dict[str, tuple[bytes, ...]] | None] = {}
    for ref in strategies:
        key = database_key(ref, request.params.get(ref))
        snapshots[ref] = None if store is None else {
            s: tuple(sorted(set(store.fetch(key + s.encode())), key=lambda v: (len(v), v))) for s in SUFFIXES}
    tasks = [HuntTask(strategy=ref, seed=seed, params=request.params.get(ref), examples=request.examples,
                      max_bars=request.max_bars, max_minutes=request.max_minutes, determinism=request.determinism,
                      skip=tuple(request.skip), bundle_sha256=bundle_sha, snapshot=snapshots[ref])
             for ref in strategies for seed in request.seeds]
    by_key = {t.key: t for t in tasks}
    results: dict[str, dict[str, Any]] = {}
    if progress is not None:
        progress(0, len(tasks))

    def on_result(result: dict[str, Any]) -> None:
        if "fatal" in result:
            raise RunError(result["fatal"]["code"], result["fatal"]["message"])
        results[result["key"]] = result
        if progress is not None:
            progress(len(results), len(tasks))

    run_pure(run_hunt_task, [PureTask(t.key, (t,), (bundle_sha,)) for t in tasks], {bundle_sha: bundle},
             on_result, options)
    ordered = [results[t.key] for t in sorted(tasks, key=lambda t: (t.strategy, t.seed))]
    hunt_id = hashlib.sha256(canonical_bytes({
        "strategies": list(strategies), "seeds": list(request.seeds),
        "params": {r: request.params.get(r) for r in strategies}, "examples": request.examples,
        "max_bars": request.max_bars, "determinism": request.determinism, "skip": sorted(request.skip),
        "bundle": bundle_sha, "database": request.database})).hexdigest()[:12]
    outcome = HuntSweepOutcome(report={}, report_path=ws.root / "sweeps" / f"hunt-{hunt_id}" / "hunt_report.json")
    if request.write:
        _write_reproducers(ws, ordered, outcome)
    if store is not None:
        _merge_database(store, [(by_key[r["key"]], r["database"]) for r in ordered if r["database"] is not None],
                        outcome)
    outcome.report = build_report(hunt_id, request, strategies, bundle_sha, snapshots, [r["row"] for r in ordered])
    data = canonical_bytes(outcome.report) + b"\n"
    if not outcome.report_path.is_file() or outcome.report_path.read_bytes() != data:
        atomic_write_bytes(outcome.report_path, data)
    return outcome


def _write_reproducers(ws: Workspace, results: Sequence[dict[str, Any]], outcome: HuntSweepOutcome) -> None:
    base = ws.fixtures_dir / "regressions"
    for result in results:
        for failure in result["row"]["failures"]:
            folder = base / failure["reproducer"]
            files = result["files"]
            outcome.reproducers.append(ws.relative(folder))
            for name in REPRODUCER_FILES:
                target = folder / name
                if not target.is_file():
                    atomic_write_bytes(target, files[name])
                    outcome.written += 1
                elif target.read_bytes() == files[name]:
                    outcome.unchanged += 1
                elif name == "test_reproduce.py":
                    outcome.kept += 1  # same case (checked above), found by another seed first
                else:
                    raise RunError("HUNT_REPRODUCER_CONFLICT", f"{ws.relative(target)} already holds a different "
                                   f"case than the one this hunt found under the same id", path=ws.relative(target))
    outcome.reproducers = sorted(set(outcome.reproducers))


def _merge_database(store: ExampleDatabase, changes: Sequence[tuple[HuntTask, dict[str, Any]]],
                    outcome: HuntSweepOutcome) -> None:
    """All deletions, then all additions: the result does not depend on which task finished first."""
    for kind in ("deleted", "added"):
        pending: set[tuple[bytes, bytes]] = set()
        for task, change in changes:
            key = database_key(task.strategy, task.params)
            for suffix, values in change[kind].items():
                pending.update((key + suffix.encode(), v) for v in values)
        for key, value in sorted(pending):
            if kind == "deleted":
                store.delete(key, value)
                outcome.database_deleted += 1
            else:
                store.save(key, value)
                outcome.database_added += 1


def build_report(hunt_id: str, request: HuntSweepRequest, strategies: Sequence[str], bundle_sha: str,
                 snapshots: dict[str, dict[str, tuple[bytes, ...]] | None],
                 rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The canonical hunt-sweep report: settings, the database snapshot the hunts started from, one row
    per (strategy, seed) and the distinct failures with the tasks that found each."""
    by_status: dict[str, int] = {}
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
        for failure in row["failures"]:
            entry = found.setdefault(failure["reproducer"], {"reproducer": failure["reproducer"],
                                                             "invariant": failure["invariant"], "found_by": []})
            entry["found_by"].append({"strategy": row["strategy"], "seed": row["seed"]})
    snapshot_doc = {ref: {s: [hashlib.sha256(v).hexdigest() for v in values] for s, values in snap.items()}
                    for ref, snap in snapshots.items() if snap is not None}
    return {
        "kind": "hunt_sweep", "version": 1, "hunt_id": hunt_id,
        "strategies": list(strategies), "seeds": list(request.seeds),
        "params": {r: request.params.get(r) for r in strategies},
        "examples": request.examples, "max_bars": request.max_bars, "max_minutes": request.max_minutes,
        "determinism": request.determinism, "skip": sorted(request.skip), "bundle_sha256": bundle_sha,
        "database": {"used": request.database, "path": DATABASE_DIR if request.database else None,
                     "entries_before": sum(len(v) for snap in snapshots.values() if snap for v in snap.values()),
                     "sha256": hashlib.sha256(canonical_bytes(snapshot_doc)).hexdigest() if request.database else None},
        "tasks": len(rows), "by_status": dict(sorted(by_status.items())),
        "failures": [found[k] for k in sorted(found)],
        "rows": rows,
    }
