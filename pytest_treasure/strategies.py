"""Hypothesis strategies for Treasure, for tests: a re-export of :mod:`treasure.hunt.strategies`.

>>> from hypothesis import given
>>> from pytest_treasure.strategies import datasets
>>> @given(datasets(max_bars=30, gaps=2))
... def test_loader_sees_the_gaps(ds): ...

Importing this module imports hypothesis (it is not one of the plugin's modules, so a pytest
session pays for it only when a test imports it).
"""

from treasure.hunt.strategies import (
    BASE_MS,
    BROKEN_DATASET_KINDS,
    BROKEN_EVENT_KINDS,
    DATASET_PATH,
    INTERVALS_MS,
    OUTLIER_KINDS,
    REGIMES,
    BrokenDataset,
    BrokenEventStream,
    Case,
    EventStream,
    GeneratedDataset,
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
