"""A loaded dataset and what the loader noticed about its time axis.

The loader reports gaps and duplicate timestamps but decides nothing: whether they are fatal,
warned about or repaired is run policy (the SSOT's ``data.gaps`` / ``data.duplicates``), applied by
the engine, which also emits the ``data_gap_detected`` / ``duplicate_timestamp`` events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from treasure.data.bars import Bars


@dataclass(frozen=True, slots=True)
class Gap:
    """Bars are missing before bar ``bar_idx``: its t_ms is later than one interval on."""

    bar_idx: int
    expected_t_ms: int
    actual_t_ms: int
    #: bars missing inside trading sessions (None: every interval step in between, the 24/7 count)
    missing_bars: int | None = field(default=None, compare=False)

    def missing(self, interval_ms: int) -> int:
        if self.missing_bars is not None:
            return self.missing_bars
        return max(0, (self.actual_t_ms - self.expected_t_ms) // interval_ms)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Bar ``bar_idx`` repeats the timestamp of bar ``bar_idx - 1``."""

    bar_idx: int
    t_ms: int


@dataclass(frozen=True, slots=True)
class Dataset:
    """Validated bars plus their provenance (``sha256`` of the exact file bytes).

    ``interval_ms`` is None only when it was not given and cannot be inferred (fewer than two
    distinct timestamps); gaps are then not detectable and ``gaps`` is empty. Bar ``i`` came from
    line ``i + 2`` of the file (the loader refuses blank lines, so this always holds).
    """

    path: str
    sha256: str
    bars: Bars
    interval_ms: int | None
    gaps: tuple[Gap, ...]
    duplicates: tuple[Duplicate, ...]
    #: ``dataset.calendar``: which missing bars are gaps, and what a year is (treasure.data.calendar)
    calendar: str = "24/7"

    def __len__(self) -> int:
        return len(self.bars)


def infer_interval_ms(t_ms: npt.NDArray[np.int64]) -> int | None:
    """The most common positive step (ties: the smallest), robust to a few gaps and duplicates."""
    steps = np.diff(t_ms)
    steps = steps[steps > 0]
    if steps.shape[0] == 0:
        return None
    values, counts = np.unique(steps, return_counts=True)
    return int(values[int(np.argmax(counts))])  # unique sorts ascending; argmax takes the first max


def find_gaps(t_ms: npt.NDArray[np.int64], interval_ms: int | None, calendar: str = "24/7") -> tuple[Gap, ...]:
    """Bars missing inside trading sessions; under ``24/7`` every step longer than one interval."""
    if interval_ms is None or t_ms.shape[0] < 2:
        return ()
    if calendar != "24/7":
        from treasure.data.calendar import calendar_gaps

        return tuple(Gap(bar_idx=i, expected_t_ms=first, actual_t_ms=int(t_ms[i]), missing_bars=count)
                     for i, first, count in calendar_gaps(t_ms, interval_ms, calendar))
    prev = t_ms[:-1]
    idx = np.flatnonzero(np.diff(t_ms) > interval_ms) + 1
    return tuple(
        Gap(bar_idx=int(i), expected_t_ms=int(prev[i - 1]) + interval_ms, actual_t_ms=int(t_ms[i]))
        for i in idx
    )


def find_duplicates(t_ms: npt.NDArray[np.int64]) -> tuple[Duplicate, ...]:
    if t_ms.shape[0] < 2:
        return ()
    idx = np.flatnonzero(np.diff(t_ms) == 0) + 1
    return tuple(Duplicate(bar_idx=int(i), t_ms=int(t_ms[i])) for i in idx)
