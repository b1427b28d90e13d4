"""Read a bars CSV from disk into a :class:`Dataset`, refusing bad files with a coded DataError.

The file is read once into memory: the SHA-256 pinned in the SSOT and the parsed bars then come
from the same bytes, so a file rewritten mid-run cannot yield bars that do not match the recorded
hash. Format (see ``truth/`` and DESIGN.md): header ``t_ms,open,high,low,close,volume``, one bar
a line, t_ms integer milliseconds since epoch UTC; CRLF and a UTF-8 BOM are accepted.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Union

from treasure.data._parse import parse_bars_csv
from treasure.data.bars import Bars
from treasure.data.dataset import (
    Dataset,
    Duplicate,
    Gap,
    find_duplicates,
    find_gaps,
    infer_interval_ms,
)
from treasure.errors import DataError

__all__ = ["Dataset", "Duplicate", "Gap", "load_dataset", "sha256_file"]

PathLike = Union[str, "os.PathLike[str]"]

_CHUNK = 1 << 20


def _display(path: PathLike, display_path: str | None) -> str:
    return display_path if display_path is not None else os.fsdecode(path)


def _open_checked(path: PathLike, shown: str) -> tuple[int, os.stat_result]:
    """Open for reading, mapping every OS failure to a DataError the CLI can print."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise DataError("DATA_MISSING", "the dataset file does not exist", path=shown) from None
    except PermissionError as exc:
        raise DataError(
            "DATA_IO", f"cannot access the dataset: {exc.strerror}", path=shown
        ) from None
    except ValueError as exc:  # e.g. an embedded NUL in the path
        raise DataError("DATA_MISSING", f"invalid dataset path: {exc}", path=shown) from None
    except OSError as exc:
        raise DataError("DATA_IO", f"cannot access the dataset: {exc.strerror}", path=shown) from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError("DATA_IS_DIR", "the dataset path is a directory", path=shown)
    if not stat.S_ISREG(st.st_mode):
        raise DataError("DATA_IO", "the dataset path is not a regular file", path=shown)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise DataError("DATA_MISSING", "the dataset file does not exist", path=shown) from None
    except IsADirectoryError:
        raise DataError("DATA_IS_DIR", "the dataset path is a directory", path=shown) from None
    except OSError as exc:
        raise DataError("DATA_IO", f"cannot read the dataset: {exc.strerror}", path=shown) from None
    return fd, st


def read_dataset_bytes(path: PathLike, *, display_path: str | None = None) -> bytes:
    """The exact bytes of the dataset file, or a DataError (missing, directory, unreadable)."""
    shown = _display(path, display_path)
    fd, _ = _open_checked(path, shown)
    try:
        with open(fd, "rb", closefd=True) as fh:
            before = os.fstat(fh.fileno())
            raw = fh.read()
            after = os.fstat(fh.fileno())
    except OSError as exc:
        raise DataError("DATA_IO", f"cannot read the dataset: {exc.strerror or exc}", path=shown) from None
    unstable = (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns)
    if unstable or len(raw) != after.st_size:
        raise DataError("DATA_CHANGED", "the dataset file changed while it was being read", path=shown)
    return raw


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of the file's exact bytes (what ``dataset.sha256`` in the SSOT pins)."""
    shown = _display(path, None)
    fd, _ = _open_checked(path, shown)
    digest = hashlib.sha256()
    try:
        with open(fd, "rb", closefd=True) as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DataError("DATA_IO", f"cannot read the dataset: {exc.strerror or exc}", path=shown) from None
    return digest.hexdigest()


def load_dataset(
    path: PathLike,
    *,
    display_path: str | None = None,
    interval_ms: int | None = None,
    calendar: str = "24/7",
) -> Dataset:
    """Load, validate and hash a bars CSV.

    ``display_path`` is what errors and ``Dataset.path`` show (e.g. the workspace-relative path
    the SSOT names) so evidence does not depend on where the workspace lives. ``interval_ms``
    overrides inference, for data whose most common step is not the bar size. ``calendar``
    (``dataset.calendar``) decides which missing bars are gaps: none outside trading sessions.
    """
    if interval_ms is not None and (
        isinstance(interval_ms, bool) or not isinstance(interval_ms, int) or interval_ms <= 0
    ):
        raise ValueError(f"interval_ms must be a positive int, got {interval_ms!r}")
    shown = _display(path, display_path)
    raw = read_dataset_bytes(path, display_path=shown)
    sha = hashlib.sha256(raw).hexdigest()
    cols = parse_bars_csv(raw, path=shown)
    for name in ("t_ms", "open", "high", "low", "close", "volume"):
        getattr(cols, name).setflags(write=False)  # ours alone: lets Bars keep them without a copy
    bars = Bars(cols.t_ms, cols.open, cols.high, cols.low, cols.close, cols.volume)
    interval = interval_ms if interval_ms is not None else infer_interval_ms(bars.t_ms)
    return Dataset(
        path=shown,
        sha256=sha,
        bars=bars,
        interval_ms=interval,
        gaps=find_gaps(bars.t_ms, interval, calendar),
        duplicates=find_duplicates(bars.t_ms),
        calendar=calendar,
    )
