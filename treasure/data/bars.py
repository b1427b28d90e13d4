"""OHLCV bars as column arrays.

Columns rather than a list of bar objects because everything downstream (indicators, risk
precomputation, validation) is vectorized: a strategy reads ``bars.close[:i]`` and the engine never
materializes 200k small objects. The arrays are read-only so a strategy cannot rewrite history that
later bars, the event log and a replay all rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

#: Column order, shared with the CSV format.
COLUMNS: tuple[str, ...] = ("t_ms", "open", "high", "low", "close", "volume")


def _readonly(name: str, values: Any, dtype: type[np.generic]) -> npt.NDArray[Any]:
    """Return a 1-D read-only array, copying only when the caller could still write to it.

    A read-only array of the right dtype is kept as is, so slices of loaded bars stay zero-copy.
    Anything else is copied first: freezing the caller's own array in place would surprise them.
    """
    if (
        isinstance(values, np.ndarray)
        and values.dtype == dtype
        and values.ndim == 1
        and not values.flags.writeable
    ):
        return values
    arr = np.array(values, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"Bars.{name} must be 1-D, got shape {arr.shape}")
    if dtype is np.int64 and arr.size and arr.dtype.kind not in "iu":
        # Truncating float timestamps silently would shift bars; make the caller round explicitly.
        raise ValueError(f"Bars.{name} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(dtype, copy=False)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class Bars:
    """Bars in time order: ``t_ms`` (int64, ms since epoch UTC) and float64 OHLCV columns.

    Construction does not validate prices (the loader does, with line numbers); it only enforces
    shape, dtype and immutability. Two ``Bars`` are equal when every column is equal.
    """

    t_ms: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        n = None
        for name in COLUMNS:
            dtype = np.int64 if name == "t_ms" else np.float64
            arr = _readonly(name, getattr(self, name), dtype)
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise ValueError(f"Bars columns differ in length: t_ms has {n}, {name} has {arr.shape[0]}")
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.t_ms.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bars):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, name), getattr(other, name), equal_nan=name != "t_ms")
            for name in COLUMNS
        )

    __hash__ = None  # type: ignore[assignment]  # arrays are not hashable; equality is by value

    def __repr__(self) -> str:
        if not len(self):
            return "Bars(n=0)"
        return f"Bars(n={len(self)}, t_ms={int(self.t_ms[0])}..{int(self.t_ms[-1])})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Rebuild through __init__ so unpickled arrays (which numpy restores writeable) are frozen.
        return (Bars, tuple(getattr(self, name) for name in COLUMNS))

    def slice(self, start: int | None = None, stop: int | None = None) -> Bars:
        """Bars ``[start:stop]`` (Python slice semantics) as zero-copy read-only views."""
        window = slice(start, stop)
        return Bars(*(getattr(self, name)[window] for name in COLUMNS))

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """The six columns by name, in CSV order."""
        return {name: getattr(self, name) for name in COLUMNS}
