"""Look-ahead check: a strategy's decisions up to a bar may not depend on the bars after it.

``on_start`` receives the whole series (so strategies can precompute indicators in one vectorised
pass), which also lets a careless strategy read the future: a z-score against the whole series'
mean, a "next close" peek, a filter fitted on all the data. Nothing in a backtest's numbers shows
it; the results are just too good.

The check runs the workspace's strategy (same SSOT, seed, adapter settings) on prefixes of its
dataset cut at sampled bars, in memory (an :class:`~treasure.events.EventBus` over a
:class:`~treasure.events.MemorySink`: no files), and requires that every intent emitted before
the cut is identical (bar, side, quantity, reason) to the full run's. A prefix run knows nothing
after its cut, so any difference is a decision that depended on the future. Cuts are a
deterministic sample drawn from the run seed; every sampled cut is tried and the finding names the
*first* bar whose decision changed (the earliest over all cuts) and the cut that changed it.

The run is prepared once (config, dataset, contracts, strategy loaded and checked); each prefix
run gets a fresh copy of the not-yet-started strategy instance, so the 1 + ``cuts`` runs cost the
bar loops only.

Two forms: :func:`check_lookahead` for a workspace (the ``lookahead`` gate,
``treasure verify lookahead``) and :func:`check_case_lookahead` for a hunt's generated case (the
``lookahead`` invariant of :mod:`treasure.invariants`): that one re-runs the case as its evidence
recorded it and only :data:`CASE_CUTS` prefixes of it, since a hunt checks hundreds of small cases
and hypothesis varies the data far more than the cuts could. The full run is always redone in the
checking process, so a strategy whose output depends on hash order (the determinism invariant's
finding) is never reported as reading the future.
"""

from __future__ import annotations

import copy
import datetime as _dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from treasure.engine.request import PreparedRun
    from treasure.hunt.case import Case
    from treasure.hunt.runner import Evidence

DEFAULT_CUTS = 8
#: prefixes tried per generated case by the hunt's ``lookahead`` invariant
CASE_CUTS = 3
_STREAM = 0x6C6F6F6B  # "look": this check's own seed stream, independent of the run's


@dataclass(frozen=True)
class Decision:
    bar_idx: int
    side: str
    qty: float
    reason: str

    def describe(self) -> str:
        return f"{self.side} {self.qty!r} ({self.reason})"


@dataclass(frozen=True)
class LookaheadFinding:
    """At ``bar_idx`` the full run decided ``full`` but the run cut at ``cut`` decided ``cut_run``
    (None: no intent there). Bars ``>= cut`` were unknown to the cut run."""

    cut: int
    bar_idx: int
    t_ms: int
    full: tuple[Decision, ...]
    cut_run: tuple[Decision, ...]

    def message(self) -> str:
        def show(ds: tuple[Decision, ...]) -> str:
            return "; ".join(d.describe() for d in ds) or "no intent"

        return (f"the decision at bar {self.bar_idx} ({_utc(self.t_ms)}, t_ms {self.t_ms}) changed when the "
                f"data was cut at bar {self.cut}; it is the first bar whose decision changed: full run: "
                f"{show(self.full)}; data up to bar {self.cut - 1} only: {show(self.cut_run)} -- the "
                f"strategy read bars after {self.bar_idx}")


def _utc(t_ms: int) -> str:
    try:
        stamp = _dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=int(t_ms))
    except OverflowError:
        return "out of datetime range"
    return stamp.isoformat(timespec="seconds") + "Z"


@dataclass(frozen=True)
class LookaheadResult:
    cuts: tuple[int, ...]
    bars: int
    intents: int
    finding: LookaheadFinding | None

    @property
    def ok(self) -> bool:
        return self.finding is None


def sample_cuts(n_bars: int, seed: int, count: int = DEFAULT_CUTS) -> tuple[int, ...]:
    """``count`` distinct cut points in ``[2, n_bars - 1]`` (a cut at c keeps bars 0..c-1), sorted,
    drawn from ``seed`` alone (no global random, no clock)."""
    if n_bars < 3 or count <= 0:
        return ()
    # a partial Fisher-Yates shuffle on PCG64's raw words: numpy pins bit-generator streams across
    # releases, not Generator methods (as treasure.data.synth explains)
    bits = np.random.PCG64(np.random.SeedSequence([int(seed), _STREAM]))
    pool = list(range(2, n_bars))
    take = min(count, len(pool))
    for i in range(take):
        j = i + ((int(bits.random_raw()) * (len(pool) - i)) >> 64)
        pool[i], pool[j] = pool[j], pool[i]
    return tuple(sorted(pool[:take]))


def _decisions(events: Sequence[dict[str, Any]]) -> list[Decision]:
    return [Decision(int(e["payload"]["bar_idx"]), str(e["payload"]["side"]), float(e["payload"]["qty"]),
                     str(e["payload"]["reason"]))
            for e in events if e["event_type"] == "intent_emitted"]


def run_in_memory(prep: "PreparedRun", stop: int | None = None) -> list[Decision]:
    """Run a prepared run's bar loop on bars ``[0, stop)`` with events kept in memory; the intents.

    The strategy instance in ``prep`` is used as is (a strategy keeps state: give each call a fresh
    one, as :class:`_Runner` does). Nothing is written: the bus has only a MemorySink and the loop
    never writes reports.
    """
    from treasure.engine.loop import BarLoop
    from treasure.events import EventBus, MemorySink

    dataset = prep.dataset
    if stop is not None:
        bars = dataset.bars.slice(0, stop)
        dataset = replace(dataset, bars=bars, gaps=tuple(g for g in dataset.gaps if g.bar_idx < stop),
                          duplicates=tuple(d for d in dataset.duplicates if d.bar_idx < stop))
    prep = replace(prep, dataset=dataset, dataset_file=None)  # no "dataset changed" check on a prefix
    sink = MemorySink()
    bus = EventBus(prep.run_id, [sink])
    loop = BarLoop(prep, bus)
    try:
        loop.run()
    except Exception as exc:  # a strategy that fails on a prefix has a decision that depends on length
        raise _Failed(stop, exc) from exc
    bus.flush(durable=False)
    return _decisions(sink.events)


class _Failed(Exception):
    def __init__(self, stop: int | None, exc: BaseException) -> None:
        super().__init__(f"run on bars [0, {stop}) failed: {type(exc).__name__}: {exc}")
        self.stop = stop


class _Runner:
    """One prepared run, replayed on prefixes: each run gets a deep copy of the strategy instance as
    it was before any run started (falls back to preparing the run again for a strategy that cannot
    be copied)."""

    def __init__(self, prepare: Callable[[], "PreparedRun"]) -> None:
        self._prepare = prepare
        self.prep = prepare()
        try:
            self._template: Any = copy.deepcopy(self.prep.strategy.strategy)
        except Exception:  # noqa: BLE001 - an uncopyable strategy (a lock, a handle): prepare each time
            self._template = None

    def fresh(self) -> "PreparedRun":
        if self._template is None:
            return self._prepare()
        instance = copy.deepcopy(self._template)
        return replace(self.prep, strategy=replace(self.prep.strategy, strategy=instance))

    def run(self, stop: int | None = None) -> list[Decision]:
        return run_in_memory(self.fresh(), stop)


def _first_change(full: Sequence[Decision], part: Sequence[Decision], cut: int) -> int | None:
    """The earliest bar before ``cut`` whose decisions differ between the full and the cut run."""
    before = [d for d in full if d.bar_idx < cut]
    if before == list(part):
        return None
    i = next((k for k, (a, b) in enumerate(zip(before, part)) if a != b), min(len(before), len(part)))
    return min(x.bar_idx for x in (before[i:i + 1] + list(part[i:i + 1])))


def compare_cuts(runner: _Runner, full: Sequence[Decision], points: Sequence[int],
                 t_ms: Any) -> LookaheadFinding | None:
    """Run every cut; the finding with the earliest changed bar (ties: the earliest cut), or None.
    A cut run that fails raises :class:`LookaheadError` naming the cut."""
    best: LookaheadFinding | None = None
    for cut in points:
        if best is not None and cut <= best.bar_idx:
            continue  # cannot reveal a change before bar best.bar_idx
        try:
            part = runner.run(cut)
        except _Failed as failed:
            finding = LookaheadFinding(cut, cut - 1, int(t_ms[cut - 1]), (), ())
            raise LookaheadError(finding, str(failed)) from failed
        bar = _first_change(full, part, cut)
        if bar is not None and (best is None or bar < best.bar_idx):
            best = LookaheadFinding(cut, bar, int(t_ms[bar]), tuple(d for d in full if d.bar_idx == bar),
                                    tuple(d for d in part if d.bar_idx == bar))
    return best


def check_lookahead(workspace: Any, *, cuts: int = DEFAULT_CUTS, seed: int | None = None,
                    ssot_path: Path | None = None, strategy: str | None = None) -> LookaheadResult:
    """Run the workspace's strategy on the full dataset and on sampled prefixes; compare intents."""
    from treasure.engine import RunRequest, prepare_run

    def prepare() -> "PreparedRun":
        return prepare_run(RunRequest(workspace=workspace, ssot_path=ssot_path, seed=seed, strategy=strategy,
                                      run_id="lookahead", overwrite=True))

    runner = _Runner(prepare)
    n = len(runner.prep.dataset.bars)
    t_ms = runner.prep.dataset.bars.t_ms
    full = runner.run()
    points = sample_cuts(n, runner.prep.seed, cuts)
    return LookaheadResult(points, n, len(full), compare_cuts(runner, full, points, t_ms))


class LookaheadError(Exception):
    """The strategy failed on a prefix of its data (it indexes bars past the end it was given)."""

    def __init__(self, finding: LookaheadFinding, detail: str) -> None:
        super().__init__(f"the strategy failed when the data was cut at bar {finding.cut}: {detail}")
        self.finding = finding


def check_lookahead_invariant(workspace: Any, *, cuts: int = DEFAULT_CUTS, seed: int | None = None,
                              ssot_path: Path | None = None, strategy: str | None = None) -> None:
    """The workspace form as an invariant: raise :class:`treasure.invariants.InvariantViolation`
    ("lookahead")."""
    try:
        result = check_lookahead(workspace, cuts=cuts, seed=seed, ssot_path=ssot_path, strategy=strategy)
    except LookaheadError as exc:
        _violation(str(exc), ())
    if result.finding is not None:
        _violation(result.finding.message(), result.cuts)


def _violation(message: str, cuts: Sequence[int]) -> None:
    from treasure.invariants import InvariantViolation

    raise InvariantViolation("lookahead", message,
                             details=[f"cuts tried: {', '.join(map(str, cuts))}"] if cuts else ())


#: what the hunt's form writes next to a staged case (never the case's own files)
#: (outside spec/: a file there would change later runs' SSOT_UNAPPROVED finding)
CASE_SSOT = "lookahead/case.json"
CASE_DATA = "lookahead/dataset.csv"


def check_case_lookahead(case: "Case", evidence: "Evidence", *, cuts: int = CASE_CUTS) -> None:
    """The hunt's form, for one generated case that ran (complete or halted).

    The full run and ``cuts`` prefixes (sampled from the case's seed) are re-run in memory, in
    this process, in the workspace the case ran in (``evidence.truth_dir``'s parent, where its
    strategy file was staged) on exactly what the run recorded: the SSOT of its ``run_start``
    event (with the staged strategy reference) and the case's dataset, written to
    :data:`CASE_SSOT` and :data:`CASE_DATA` beside the case's own files, whatever was staged
    since. Raises :class:`treasure.invariants.InvariantViolation` ("lookahead")."""
    import orjson

    from treasure.engine import RunRequest, prepare_run
    from treasure.workspace import Workspace

    n = len(case.dataset)
    start = evidence.events[0]["payload"]
    points = sample_cuts(n, int(start["seed"]), cuts)
    if not points:
        return
    if start["dataset"]["sha256"] != case.dataset.sha256:
        raise ValueError(f"the evidence is of dataset {start['dataset']['sha256'][:12]}…, the case's is "
                         f"{case.dataset.sha256[:12]}…: check a case against its own run")
    ws = Workspace(Path(evidence.truth_dir).parent)
    ssot = dict(start["ssot"])
    ssot["dataset"] = {**dict(ssot["dataset"]), "path": CASE_DATA}
    data_path = ws.root / CASE_DATA
    if not data_path.is_file() or data_path.read_bytes() != case.dataset.csv:
        data_path.parent.mkdir(parents=True, exist_ok=True)
        data_path.write_bytes(case.dataset.csv)
    ssot_path = ws.root / CASE_SSOT
    ssot_path.write_bytes(orjson.dumps(ssot, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))

    def prepare() -> "PreparedRun":
        return prepare_run(RunRequest(workspace=ws, ssot_path=ssot_path, run_id="lookahead", overwrite=True,
                                      validate_events=False, evidence="memory"))

    runner = _Runner(prepare)
    if runner.prep.strategy.source_sha256 != start["strategy"]["source_sha256"]:
        raise ValueError(f"strategy {ssot['strategy']['name']!r} in {ws.root} is not the source the case ran "
                         "(source_sha256 differs)")
    try:
        # the full run again, in this process: the evidence may come from a worker with another
        # PYTHONHASHSEED, and a strategy iterating a set would then differ by hash order, not by
        # look-ahead (that is the determinism invariant's finding, not this one's)
        full = runner.run()
        finding = compare_cuts(runner, full, points, runner.prep.dataset.bars.t_ms)
    except (LookaheadError, _Failed) as exc:
        _violation(str(exc), points)
    if finding is not None:
        _violation(finding.message(), points)
