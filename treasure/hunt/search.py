"""The hunt: hypothesis generates cases for one strategy, every invariant is checked on each,
and the first failure is shrunk and written as a reproducer.

Reproducible by construction: the search is seeded (``hypothesis.seed``), uses no example
database, and checks determinism in worker processes with fixed hash seeds, so the same
``--seed`` and ``--examples`` give the same examples, the same verdict and the same reproducer.
Only ``max_minutes`` (a wall-clock budget) can cut a hunt short, and the report says so: the
budget is checked between examples, never inside data generation, and a spent budget ends the
search the way a finished one does (hypothesis sees an interruption, not a failing or a rejected
example, so nothing is replayed and nothing is flaky: see :class:`_BudgetSpent`). A failure found before the budget ran out
is still reported, shrunk as far as the budget allowed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from treasure.hunt.case import Case
from treasure.hunt.constants import without_local_constants
from treasure.hunt.execute import MODES, make_executor
from treasure.hunt.runner import resolve_strategy_ref, scratch_parent
from treasure.invariants import INVARIANTS
from treasure.workspace import Workspace


class _BudgetSpent(KeyboardInterrupt):
    """Raised at the start of an example, before any draw, once ``max_minutes`` is spent.

    Hypothesis handles a KeyboardInterrupt as "the user stops now": it neither records the example
    (so its data tree stays consistent: no FlakyStrategyDefinition) nor treats it as a failure to
    shrink. Any other exception or ``reject()`` here would be recorded as an example that drew
    nothing, which hypothesis then finds inconsistent with the examples it replays."""


@dataclass(frozen=True)
class HuntRequest:
    """What to hunt and how hard. ``params`` fixes the strategy's params (default: drawn for
    built-ins, ``{}`` for others); ``regressions_dir`` defaults to the workspace's
    ``fixtures/regressions``."""

    workspace: Workspace
    strategy: str
    params: dict[str, Any] | None = None
    examples: int = 100
    seed: int = 0
    max_minutes: float | None = None
    max_bars: int = 60
    determinism: str = "process"
    skip: tuple[str, ...] = ()
    write: bool = True
    regressions_dir: Path | None = None
    progress: Callable[["Progress"], None] | None = None
    #: a hypothesis ExampleDatabase (default none): its saved examples are replayed first
    #: (``Phase.reuse``) and what the hunt finds is saved to it (``treasure hunt --sweep``)
    database: Any = None


@dataclass(frozen=True)
class Progress:
    """Where a hunt is, after each example (the CLI prints it at most once a second)."""

    phase: str  # "generate" | "shrink"
    examples: int  # generated so far, or shrink steps so far
    found_after: int  # examples generated before the first failure (0 while none)
    total: int
    bars: int
    status: str
    elapsed_s: float = 0.0  # wall-clock seconds since the hunt started (display only)
    found: int = 0  # failures found so far (0 or 1: the hunt stops at the first and shrinks it)


@dataclass
class HuntReport:
    """What was tried and what was found; ``to_dict`` is the ``--json`` document."""

    strategy: str
    seed: int
    examples_requested: int
    determinism: str
    invariants: tuple[str, ...]
    examples: int = 0
    bars_total: int = 0
    bars_max: int = 0
    with_gaps: int = 0
    with_duplicates: int = 0
    with_outliers: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    stopped_by_time: bool = False
    failure: dict[str, Any] | None = None
    reproducer: Path | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None

    def to_dict(self, relative: Callable[[Path], str] = str) -> dict[str, Any]:
        return {
            "status": "passed" if self.passed else "failed",
            "strategy": self.strategy,
            "seed": self.seed,
            "examples": {"requested": self.examples_requested, "run": self.examples,
                         "stopped_by_time": self.stopped_by_time},
            "bars": {"total": self.bars_total, "max": self.bars_max, "with_gaps": self.with_gaps,
                     "with_duplicates": self.with_duplicates, "with_outliers": self.with_outliers},
            "outcomes": dict(sorted(self.outcomes.items())),
            "refusals": dict(sorted(self.refusals.items())),
            "invariants": list(self.invariants),
            "skipped": [n for n in INVARIANTS if n not in self.invariants],
            "determinism": self.determinism,
            "failure": self.failure,
            "reproducer": relative(self.reproducer) if self.reproducer is not None else None,
        }


def check_strategy(workspace: Workspace, ref: str, params: dict[str, Any] | None) -> None:
    """Fail fast with the loader's coded error (unknown strategy, bad params) before hunting."""
    from treasure.strategy import load_strategy

    load_strategy(resolve_strategy_ref(ref, workspace.root), params or {}, base_dir=workspace.root)


def hunt(request: HuntRequest) -> HuntReport:
    """Run the hunt; return the report (its ``reproducer`` is set when one was written)."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
    from hypothesis import strategies as st

    from treasure.hunt.strategies import cases
    from treasure.invariants import InvariantViolation, check_outcome, selected

    if request.determinism not in MODES:
        raise ValueError(f"determinism must be one of {', '.join(MODES)}")
    if request.examples < 1:
        raise ValueError("examples must be >= 1")
    check_strategy(request.workspace, request.strategy, request.params)
    names = selected(skip=tuple(request.skip) + (("determinism",) if request.determinism == "off" else ()))
    report = HuntReport(strategy=request.strategy, seed=request.seed, examples_requested=request.examples,
                        determinism=request.determinism, invariants=names)
    budget_s = None if request.max_minutes is None else request.max_minutes * 60.0
    started = time.monotonic()  # treasure: allow-nondeterminism --max-minutes is a wall-clock budget
    root = Path(tempfile.mkdtemp(prefix="treasure-hunt-", dir=scratch_parent()))
    executor = make_executor(request.determinism, root, base_dir=request.workspace.root)
    state: dict[str, Any] = {"failing": None, "shrinks": 0}
    generated = cases(strategy=request.strategy, params=request.params, max_bars=request.max_bars)

    def elapsed() -> float:
        return time.monotonic() - started  # treasure: allow-nondeterminism budget and progress only

    def tell(phase: str, case: Case, status: str) -> None:
        if request.progress is not None:
            done = report.examples if phase == "generate" else state["shrinks"]
            found = report.examples if state["failing"] is not None else 0
            request.progress(Progress(phase, done, found, request.examples, len(case.dataset), status,
                                      elapsed_s=elapsed(), found=int(state["failing"] is not None)))

    @settings(max_examples=request.examples, deadline=None, database=request.database, derandomize=False,
              report_multiple_bugs=False, print_blob=False, verbosity=Verbosity.quiet,
              phases=((Phase.reuse,) if request.database is not None else ()) + (Phase.generate, Phase.target,
                                                                                  Phase.shrink),
              suppress_health_check=list(HealthCheck))
    @seed(request.seed)  # under @settings: @seed on top would force database=None
    @given(data=st.data())
    def property_(data: Any) -> None:
        if budget_s is not None and elapsed() > budget_s:
            raise _BudgetSpent()  # before drawing anything: hypothesis stops, it does not replay
        case = data.draw(generated)
        first, second = executor.run(case, twice=request.determinism != "off")
        try:
            check_outcome(case, first, second, only=names)
        except InvariantViolation as violation:
            if state["failing"] is None:
                _count(report, case, first)
            else:
                state["shrinks"] += 1
            state["failing"] = (case, violation)
            tell("shrink", case, "failed")
            raise
        if state["failing"] is None:
            _count(report, case, first)
            tell("generate", case, first.status)
        else:
            state["shrinks"] += 1

    try:
        with without_local_constants():  # the cases depend on the seed, not on the modules loaded
            property_()
    except _BudgetSpent:
        report.stopped_by_time = True
    except InvariantViolation:
        pass
    except Exception as exc:  # hypothesis' own verdicts (flaky, unsatisfiable) wrap ours
        from hypothesis.errors import Unsatisfiable

        if state["failing"] is None and not isinstance(exc, Unsatisfiable):
            raise
    finally:
        executor.close()
        shutil.rmtree(root, ignore_errors=True)
    if state["failing"] is not None:
        case, violation = state["failing"]
        report.failure = {**violation.to_dict(), "case": case.describe(), "bars": len(case.dataset),
                          "shrinks": state["shrinks"]}
        if request.write:
            from treasure.hunt.reproducer import reproducer_id, write_reproducer

            directory = request.regressions_dir or (request.workspace.fixtures_dir / "regressions")
            folder = directory / reproducer_id(case, violation.invariant)

            report.reproducer = write_reproducer(
                directory, case, violation, strategy=request.strategy, seed=request.seed,
                examples=report.examples, shrinks=state["shrinks"], determinism=request.determinism,
                skip=tuple(request.skip), display_dir=request.workspace.relative(folder))
    return report


def _count(report: HuntReport, case: Case, outcome: Any) -> None:
    ds = case.dataset
    report.examples += 1
    report.bars_total += len(ds)
    report.bars_max = max(report.bars_max, len(ds))
    report.with_gaps += bool(ds.gaps)
    report.with_duplicates += bool(ds.duplicates)
    report.with_outliers += bool(ds.outliers)
    report.outcomes[outcome.status] += 1
    if outcome.status == "refused" and outcome.code:
        report.refusals[outcome.code] += 1
