"""How a case is run for checking: once, twice in this process, or in two worker processes.

``process`` (what ``treasure hunt`` uses) runs every case in two worker processes with
different ``PYTHONHASHSEED`` values, at the same time, and checks the first's evidence and the
pair's equality: it catches dependence on hash order, ``id()`` and the global ``random`` module,
and the hunt's own output does not depend on the parent's hash seed. ``inprocess`` runs twice in
this process (catches unseeded randomness, not hash order; no subprocess, so cheap in tests).
``off`` runs once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from treasure.hunt.case import Case
from treasure.hunt.runner import RUN_ID, Outcome, Scratch
from treasure.hunt.worker import Worker

MODES = ("process", "inprocess", "off")
#: The two hash seeds of the ``process`` mode (fixed, so a hunt's result is reproducible).
HASH_SEEDS = (1, 2)


class Executor(Protocol):
    def run(self, case: Case, *, twice: bool = True) -> tuple[Outcome, Outcome | None]: ...

    def close(self) -> None: ...


class InProcess:
    def __init__(self, root: Path, *, base_dir: Path | None, repeat: bool, evidence: str = "memory") -> None:
        self.scratch = Scratch(root, evidence=evidence)
        self.base_dir = base_dir
        self.repeat = repeat

    def run(self, case: Case, *, twice: bool = True) -> tuple[Outcome, Outcome | None]:
        first = self.scratch.run(case, base_dir=self.base_dir)
        if not (twice and self.repeat):
            return first, None
        return first, self.scratch.run(case, base_dir=self.base_dir)

    def close(self) -> None:
        pass


class TwoProcesses:
    def __init__(self, root: Path, *, base_dir: Path | None) -> None:
        self.base_dir = base_dir
        self.scratches = [Scratch(Path(root) / f"hash{seed}") for seed in HASH_SEEDS]
        self.workers = [Worker(s.root, hash_seed=seed) for s, seed in zip(self.scratches, HASH_SEEDS)]

    def run(self, case: Case, *, twice: bool = True) -> tuple[Outcome, Outcome | None]:
        active = list(zip(self.scratches, self.workers))[: 2 if twice else 1]
        for scratch, worker in active:
            worker.submit(scratch.stage(case, base_dir=self.base_dir), RUN_ID)
        outcomes = [worker.receive(RUN_ID) for _, worker in active]
        return outcomes[0], (outcomes[1] if len(outcomes) > 1 else None)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


def make_executor(mode: str, root: str | Path, *, base_dir: str | Path | None = None,
                  evidence: str = "memory") -> Executor:
    """``evidence``: ``memory`` (default; in-process modes keep each run's evidence in memory: no
    files, no fsync, the same bytes) or ``files`` (written to the scratch workspace and read
    back). The ``process`` mode always writes files: its workers hand evidence over through them."""
    root = Path(root)
    base = Path(base_dir) if base_dir is not None else None
    if mode == "process":
        return TwoProcesses(root, base_dir=base)
    if mode in ("inprocess", "off"):
        return InProcess(root, base_dir=base, repeat=mode == "inprocess", evidence=evidence)
    raise ValueError(f"determinism mode {mode!r}: choose from {', '.join(MODES)}")
