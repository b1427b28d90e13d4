"""What a hunt generates and runs: a dataset (with what was injected into it) and an SSOT.

Kept free of hypothesis so a reproducer, a worker process or a user script can rebuild a case
from files alone. The generators live in :mod:`treasure.hunt.strategies`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import orjson

from treasure.data import Bars

#: Where a case's dataset sits inside the workspace it runs in (the SSOT's ``dataset.path``).
DATASET_PATH = "data/dataset.csv"


@dataclass(frozen=True, eq=False)
class GeneratedDataset:
    """Valid bars, their canonical CSV bytes, and what the generator injected into them.

    ``gaps`` and ``duplicates`` hold the bar indices the loader must report (a gap before bar
    ``i``; bar ``i`` repeating bar ``i - 1``'s timestamp); ``outliers`` and ``regimes`` are
    ``(bar index, kind)`` pairs, for describing a failure.
    """

    bars: Bars
    csv: bytes
    interval_ms: int
    gaps: tuple[int, ...] = ()
    duplicates: tuple[int, ...] = ()
    outliers: tuple[tuple[int, str], ...] = ()
    regimes: tuple[tuple[int, str], ...] = ()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.csv).hexdigest()

    def __len__(self) -> int:
        return len(self.bars)

    def write(self, path: str | Path) -> Path:
        """Write the CSV bytes to ``path`` (parents created) and return it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.csv)
        return target

    def describe(self) -> str:
        """One line for humans: ``5 bars (1 gap at 3, 1 duplicate at 2)``."""
        parts = []
        for label, items in (("gap", self.gaps), ("duplicate", self.duplicates)):
            if items:
                parts.append(f"{len(items)} {label}{'s' if len(items) > 1 else ''} at "
                             + ", ".join(map(str, items)))
        if self.outliers:
            parts.append("outliers " + ", ".join(f"{kind}@{i}" for i, kind in self.outliers))
        if len(self.regimes) > 1:
            parts.append("regimes " + ", ".join(f"{kind}@{i}" for i, kind in self.regimes))
        n = len(self)
        head = f"{n} bar{'s' if n != 1 else ''}"
        return f"{head} ({'; '.join(parts)})" if parts else head


@dataclass(frozen=True, eq=False)
class Case:
    """One generated run: a dataset plus an SSOT pinned to it (``dataset.sha256``)."""

    dataset: GeneratedDataset
    ssot: Mapping[str, Any] = field(default_factory=dict)

    @property
    def strategy_ref(self) -> str:
        return str(self.ssot["strategy"]["name"])

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical SSOT and the dataset bytes: names the case's reproducer."""
        doc = {"ssot": dict(self.ssot), "dataset": self.dataset.sha256}
        return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def expected_refusal(self) -> tuple[str, int] | None:
        """``(code, line)`` the engine must refuse this case with, by the SSOT's data policies.

        ``dataset.on_gap: error`` refuses a dataset with gaps (checked first), ``on_duplicate:
        error`` one with duplicate timestamps; the line is the first offending bar's file line.
        """
        section = self.ssot.get("dataset", {})
        if self.dataset.gaps and section.get("on_gap", "warn") == "error":
            return "DATA_GAP", min(self.dataset.gaps) + 2
        if self.dataset.duplicates and section.get("on_duplicate", "warn") == "error":
            return "DATA_DUPLICATE", min(self.dataset.duplicates) + 2
        return None

    def describe(self) -> str:
        risk = self.ssot.get("risk", {})
        params = orjson.dumps(dict(self.ssot["strategy"].get("params", {})), option=orjson.OPT_SORT_KEYS).decode()
        return (f"{self.dataset.describe()}; strategy {self.strategy_ref} {params}; seed "
                f"{self.ssot['run']['seed']}; cash {self.ssot['run']['starting_cash_usd']:g}; max position "
                f"{risk.get('max_position_size_usd', 0):g}; daily loss {risk.get('daily_loss_limit_usd', 0):g}")
