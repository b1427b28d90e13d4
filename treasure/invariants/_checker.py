"""Running cases and checking them: what the ``treasure_invariants`` fixture hands a test."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from treasure.invariants._checks import INVARIANTS, check_evidence, check_outcome, selected

if TYPE_CHECKING:  # pragma: no cover
    from treasure.hunt.case import Case, GeneratedDataset
    from treasure.hunt.runner import Evidence, Outcome


class InvariantChecker:
    """Runs cases, checks evidence.

    ``run(case)`` stages the case in a scratch workspace, runs it (twice, for determinism) and
    checks every invariant, raising :class:`~treasure.invariants.InvariantViolation`; it returns
    the first run's :class:`~treasure.hunt.runner.Outcome`. ``check(evidence, dataset=None)``
    checks evidence from anywhere. Both honour an enclosing :func:`~treasure.invariants.restrict`
    (what ``@pytest.mark.treasure_invariants(only=..., skip=...)`` sets).
    """

    names = INVARIANTS

    def __init__(self, root: str | Path, *, base_dir: str | Path | None = None,
                 determinism: str = "inprocess") -> None:
        self.root = Path(root)
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.determinism = determinism
        self._executor: Any = None

    def run(self, case: "Case", *, only: Iterable[str] | None = None,
            skip: Iterable[str] | None = None) -> "Outcome":
        from treasure.hunt.execute import make_executor

        names = selected(only, skip)
        if self._executor is None:
            self._executor = make_executor(self.determinism, self.root, base_dir=self.base_dir)
        first, second = self._executor.run(case, twice="determinism" in names)
        check_outcome(case, first, second, only=names)
        return first

    def check(self, evidence: "Evidence", *, dataset: "GeneratedDataset | None" = None,
              only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> None:
        check_evidence(evidence, dataset=dataset, only=selected(only, skip))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None
