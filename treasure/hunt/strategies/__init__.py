"""Hypothesis strategies for Treasure: bars, datasets, SSOTs, whole cases, intents and event logs.

The public module, in the style of ``hypothesis.strategies``: import from here; the
implementation (:mod:`treasure.hunt.strategies._generate`) may move. Importing it imports
hypothesis; nothing in Treasure's engine or CLI imports it except ``treasure hunt`` when it runs.
:mod:`pytest_treasure.strategies` re-exports the same names.

>>> from hypothesis import given
>>> from treasure.hunt.strategies import datasets
>>> @given(datasets(max_bars=30, gaps=2))
... def test_loader_sees_the_gaps(ds): ...
"""

from treasure.hunt.case import DATASET_PATH, Case, GeneratedDataset
from treasure.hunt.strategies._generate import (
    BASE_MS,
    BROKEN_DATASET_KINDS,
    BROKEN_EVENT_KINDS,
    INTERVALS_MS,
    OUTLIER_KINDS,
    REGIMES,
    BrokenDataset,
    BrokenEventStream,
    EventStream,
    bars,
    broken_datasets,
    broken_event_streams,
    cases,
    datasets,
    event_streams,
    intents,
    ssot_configs,
)

__all__ = [
    "BASE_MS",
    "BROKEN_DATASET_KINDS",
    "BROKEN_EVENT_KINDS",
    "DATASET_PATH",
    "INTERVALS_MS",
    "OUTLIER_KINDS",
    "REGIMES",
    "BrokenDataset",
    "BrokenEventStream",
    "Case",
    "EventStream",
    "GeneratedDataset",
    "bars",
    "broken_datasets",
    "broken_event_streams",
    "cases",
    "datasets",
    "event_streams",
    "intents",
    "ssot_configs",
]
