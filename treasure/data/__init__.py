"""Datasets: loading and validating bars CSVs, and generating seeded synthetic ones."""

from __future__ import annotations

from typing import Any

from treasure.data.bars import Bars
from treasure.data.dataset import Dataset, Duplicate, Gap
from treasure.data.loader import load_dataset, sha256_file

__all__ = [
    "Bars",
    "Dataset",
    "Duplicate",
    "Gap",
    "bars_to_csv",
    "generate_bars",
    "load_dataset",
    "sha256_file",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so `python -m treasure.data.synth` does not import synth twice.
    if name in ("generate_bars", "bars_to_csv"):
        from treasure.data import synth

        return getattr(synth, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
