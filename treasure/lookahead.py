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
deterministic sample drawn from the run seed; the first difference found names the bar whose
decision changed and the cut that changed it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

DEFAULT_CUTS = 8
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

        return (f"the decision at bar {self.bar_idx} (t_ms {self.t_ms}) changed when the data was cut at bar "
                f"{self.cut}: full run: {show(self.full)}; data up to bar {self.cut - 1} only: "
                f"{show(self.cut_run)} -- the strategy read bars after {self.bar_idx}")


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


def run_in_memory(prep: Any, stop: int | None = None) -> list[Decision]:
    """Run a prepared run's bar loop on bars ``[0, stop)`` with events kept in memory; the intents.

    ``prep`` must come fresh from :func:`treasure.engine.prepare_run` (its strategy instance is used
    once). Nothing is written: the bus has only a MemorySink and the loop never writes reports.
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


def check_lookahead(workspace: Any, *, cuts: int = DEFAULT_CUTS, seed: int | None = None,
                    ssot_path: Path | None = None, strategy: str | None = None) -> LookaheadResult:
    """Run the workspace's strategy on the full dataset and on sampled prefixes; compare intents."""
    from treasure.engine import RunRequest, prepare_run

    def fresh() -> Any:
        return prepare_run(RunRequest(workspace=workspace, ssot_path=ssot_path, seed=seed, strategy=strategy,
                                      run_id="lookahead", overwrite=True))

    first = fresh()
    n = len(first.dataset.bars)
    t_ms = first.dataset.bars.t_ms
    full = run_in_memory(first)
    points = sample_cuts(n, first.seed, cuts)
    for cut in points:
        try:
            part = run_in_memory(fresh(), cut)
        except _Failed as failed:
            finding = LookaheadFinding(cut, cut - 1, int(t_ms[cut - 1]), (), ())
            raise LookaheadError(finding, str(failed)) from failed
        before = [d for d in full if d.bar_idx < cut]
        if before != part:
            i = next((k for k, (a, b) in enumerate(zip(before, part)) if a != b), min(len(before), len(part)))
            candidates = [x.bar_idx for x in (before[i:i + 1] + part[i:i + 1])]
            bar = min(candidates)
            finding = LookaheadFinding(cut, bar, int(t_ms[bar]),
                                       tuple(d for d in before if d.bar_idx == bar),
                                       tuple(d for d in part if d.bar_idx == bar))
            return LookaheadResult(points, n, len(full), finding)
    return LookaheadResult(points, n, len(full), None)


class LookaheadError(Exception):
    """The strategy failed on a prefix of its data (it indexes bars past the end it was given)."""

    def __init__(self, finding: LookaheadFinding, detail: str) -> None:
        super().__init__(f"the strategy failed when the data was cut at bar {finding.cut}: {detail}")
        self.finding = finding


def check_lookahead_invariant(workspace: Any, *, cuts: int = DEFAULT_CUTS, seed: int | None = None,
                              ssot_path: Path | None = None, strategy: str | None = None) -> None:
    """The hunt's form: raise :class:`treasure.invariants.InvariantViolation` ("lookahead")."""
    from treasure.invariants import InvariantViolation

    try:
        result = check_lookahead(workspace, cuts=cuts, seed=seed, ssot_path=ssot_path, strategy=strategy)
    except LookaheadError as exc:
        raise InvariantViolation("lookahead", str(exc)) from exc
    if result.finding is not None:
        raise InvariantViolation("lookahead", result.finding.message(),
                                 details=[f"cuts tried: {', '.join(map(str, result.cuts))}"])
