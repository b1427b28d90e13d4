"""Read a bars CSV from disk into a :class:`Dataset`, refusing bad files with a coded DataError.

Format (see the README, "The workspace"): header ``t_ms,open,high,low,close,volume``, one bar a line,
t_ms integer milliseconds since epoch UTC; CRLF and a UTF-8 BOM are accepted.

Memory is bounded: the file is never held whole. A first streaming pass checks what concerns the
file as a whole (NUL bytes, UTF-8, the header) and counts its lines; the second pass hashes each
block and parses it, a few MiB of complete lines at a time, into column arrays allocated once at
their final size, so peak memory is the bars themselves (48 bytes a bar, less than the ~55-byte
text of a typical row) plus one block's working set. The SHA-256 pinned in the SSOT and the parsed
bars come from the same bytes of that second pass; a file that changes between or during the passes
is refused (DATA_CHANGED). The result, and every refusal (code, line, field, message), is the same
as parsing the whole file at once with :func:`treasure.data._parse.parse_bars_csv`.

Limits: at most :data:`MAX_ROWS` bars and :data:`MAX_BYTES` bytes (DATA_TOO_LARGE), and a run needs
at least :data:`MIN_DISTINCT_BARS` distinct timestamps (DATA_TOO_SHORT).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np
import numpy.typing as npt

from treasure.data._parse import (
    BOM,
    HEADER,
    Columns,
    _header_error,
    _Violation,
    exact_rows,
    fast_parse,
    time_unit_guess,
    violation_at,
    window_violation,
)
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

__all__ = ["MAX_BYTES", "MAX_ROWS", "MIN_DISTINCT_BARS", "Dataset", "Duplicate", "Gap", "load_dataset",
           "sha256_file"]

PathLike = Union[str, "os.PathLike[str]"]

_CHUNK = 1 << 20

#: Most bars one dataset may hold (2.4 GB of columns); above it the loader refuses with DATA_TOO_LARGE.
MAX_ROWS = 50_000_000
#: Largest dataset file accepted, checked before reading a byte (DATA_TOO_LARGE).
MAX_BYTES = 4 << 30
#: Fewest distinct timestamps a run can simulate (DATA_TOO_SHORT below it, when asked).
MIN_DISTINCT_BARS = 2
#: Bytes read at a time; each parsed block holds about this much text plus its last partial line.
_BLOCK = 1 << 20
#: Rows validated at a time (the validation masks cost a few bytes per row of the window).
_WINDOW = 1 << 20
#: Lookback in front of each block the fast parser's 16-byte windows read into.
_PAD = b"\n" * 16


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


@dataclass(frozen=True, slots=True)
class _Envelope:
    """What the first pass learnt: where the rows start and how many there can be at most."""

    body_offset: int  # raw file offset of the first byte after the header line
    rows: int  # upper bound of the bars: lines after the header


def _blocks(fh: BinaryIO) -> Iterator[bytes]:
    while True:
        block = fh.read(_BLOCK)
        if not block:
            return
        yield block


def _scan(fh: BinaryIO, shown: str, expected_size: int) -> _Envelope:
    """First pass: the whole-file checks of ``parse_bars_csv``'s envelope, in its order.

    NUL bytes, UTF-8 validity, whitespace-only text and the header are judged on the whole file
    before any row, exactly as the one-shot parser does, holding only the header line and the
    current block.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8_error: tuple[int, int, int] | None = None  # (text offset, byte, line)
    raw_total = 0
    bom = 0
    raw_head = b""
    offset = 0  # text offset of the current block
    newlines = 0
    all_space = True
    header_parts: list[bytes] = []
    header_end: int | None = None  # text offset just past the header's newline
    tail = b""  # the text's last two bytes
    for block in _blocks(fh):
        if raw_total == 0:
            raw_head = block[:3]
            if block.startswith(BOM):
                bom = len(BOM)
                block = block[bom:]
        raw_total += len(block) + (bom if raw_total == 0 else 0)
        if not block:
            continue
        nul = block.find(b"\x00")
        if nul >= 0:
            utf16 = raw_head[:2] in (b"\xff\xfe", b"\xfe\xff")
            what = "looks like UTF-16; save it as UTF-8" if utf16 else "contains NUL bytes (binary file?)"
            raise DataError("DATA_BINARY", f"the dataset {what}", path=shown,
                            line=newlines + block.count(b"\n", 0, nul) + 1)
        if utf8_error is None:
            pending = decoder.getstate()[0]
            if pending or not block.isascii():
                try:
                    decoder.decode(block, False)
                except UnicodeDecodeError as exc:
                    at = offset - len(pending) + exc.start
                    line = newlines + block.count(b"\n", 0, max(0, at - offset)) + 1
                    utf8_error = (at, exc.object[exc.start], line)
        if all_space:
            all_space = block.isspace()
        if header_end is None:
            newline = block.find(b"\n")
            header_parts.append(block if newline < 0 else block[:newline])
            if newline >= 0:
                header_end = offset + newline + 1
        newlines += block.count(b"\n")
        tail = (tail + block[-2:])[-2:]
        offset += len(block)
    if raw_total != expected_size:
        raise DataError("DATA_CHANGED", "the dataset file changed while it was being read", path=shown)
    if raw_total == 0:
        raise DataError("DATA_EMPTY", "the dataset file is empty (0 bytes)", path=shown)
    if utf8_error is None:
        pending = decoder.getstate()[0]
        try:
            decoder.decode(b"", True)
        except UnicodeDecodeError as exc:
            at = offset - len(pending) + exc.start
            utf8_error = (at, exc.object[exc.start], newlines + 1)
    if utf8_error is not None:
        at, byte, line = utf8_error
        raise DataError("DATA_BINARY", f"the dataset is not valid UTF-8 (byte 0x{byte:02x})",
                        path=shown, line=line)
    if offset == 0 or all_space:
        raise DataError("DATA_EMPTY", "the dataset file holds no text, only whitespace", path=shown)
    header = b"".join(header_parts)
    if header_end is not None and header.endswith(b"\r"):
        header = header[:-1]  # CRLF: the one-shot parser replaces \r\n by \n before reading the header
    del header_parts
    if header != HEADER:
        raise _header_error(header, shown)
    rest = offset - header_end if header_end is not None else 0
    if header_end is None or rest == 0 or (rest <= 2 and tail[2 - rest:] in (b"\n", b"\r\n")):
        raise DataError("DATA_HEADER_ONLY", "the dataset has a header but no bars", path=shown, line=1)
    rows = newlines - (1 if tail.endswith(b"\n") else 0)
    if rows > MAX_ROWS:
        raise DataError("DATA_TOO_LARGE", f"the dataset has {rows:,} bars, above the limit of "
                        f"{MAX_ROWS:,} (treasure.data.loader.MAX_ROWS); split it into files of at most "
                        f"{MAX_ROWS:,} bars", path=shown)
    return _Envelope(body_offset=bom + header_end, rows=rows)


def _pieces(fh: BinaryIO, digest: "hashlib._Hash", body_offset: int) -> Iterator[tuple[bytes, int]]:
    """Second pass: hash every raw byte; yield the rows as (piece, end) blocks of whole lines.

    ``piece[16:end]`` holds complete rows without their final newline (CRLF already made LF),
    behind 16 bytes of newlines the fast parser may read back into.
    """
    carry: list[bytes] = []
    position = 0
    for block in _blocks(fh):
        digest.update(block)
        start = position
        position += len(block)
        if position <= body_offset:
            continue
        if start < body_offset:
            block = block[body_offset - start:]
        newline = block.rfind(b"\n")
        if newline < 0:
            carry.append(block)
            continue
        piece = b"".join([_PAD, *carry, block[: newline + 1]])
        carry = [block[newline + 1:]] if newline + 1 < len(block) else []
        if b"\r" in piece:
            piece = piece.replace(b"\r\n", b"\n")
        yield piece, len(piece) - 1
    if carry:
        piece = b"".join([_PAD, *carry])
        yield piece, len(piece)


def _parse_file(fh: BinaryIO, shown: str, before: os.stat_result) -> tuple[str, Columns]:
    """Both passes: the file's SHA-256 and its validated columns (the one-shot parser's errors)."""
    envelope = _scan(fh, shown, before.st_size)
    fh.seek(0)
    capacity = envelope.rows
    t_ms = np.empty(capacity, dtype=np.int64)
    floats = [np.empty(capacity, dtype=np.float64) for _ in range(5)]
    columns: list[npt.NDArray[np.generic]] = [t_ms, *floats]
    digest = hashlib.sha256()
    count = 0
    failure: DataError | None = None
    overflow: _Violation | None = None
    for piece, end in _pieces(fh, digest, envelope.body_offset):
        parsed = fast_parse(piece, len(_PAD), end)
        if parsed is None:
            parsed, failure, piece_overflow = exact_rows(piece[len(_PAD):end], path=shown,
                                                         first_line=count + 2)
            if piece_overflow is not None and overflow is None:
                overflow = _Violation(piece_overflow.row + count, piece_overflow.code,
                                      piece_overflow.field, piece_overflow.message)
        n = parsed.t_ms.shape[0]
        if count + n > capacity:
            raise DataError("DATA_CHANGED", "the dataset file changed while it was being read", path=shown)
        for target, name in zip(columns, ("t_ms", "open", "high", "low", "close", "volume")):
            target[count:count + n] = getattr(parsed, name)
        count += n
        del parsed, piece
        if failure is not None:
            break
    after = os.fstat(fh.fileno())
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise DataError("DATA_CHANGED", "the dataset file changed while it was being read", path=shown)
    for column in columns:
        column.setflags(write=False)
    cols = Columns(*(column[:count] for column in columns))  # type: ignore[arg-type]
    violation = _first_violation_windowed(cols)
    if violation is not None:
        if violation.code == "DATA_NAN" and overflow is not None and overflow.row == violation.row:
            violation = overflow
        raise violation.error(shown)
    if failure is not None:
        raise failure
    return digest.hexdigest(), cols


def _first_violation_windowed(cols: Columns) -> _Violation | None:
    """``first_violation`` over windows of rows, so its masks stay small on huge datasets."""
    n = cols.t_ms.shape[0]
    if time_unit_guess(cols.t_ms) is not None:
        return violation_at(cols, 0, "DATA_TIME_UNIT", "t_ms")
    for start in range(0, n, _WINDOW):
        stop = min(n, start + _WINDOW)
        window = Columns(*(getattr(cols, name)[start:stop]
                           for name in ("t_ms", "open", "high", "low", "close", "volume")))
        found = window_violation(window, int(cols.t_ms[start - 1]) if start else None)
        if found is not None:
            row, code, field = found
            return violation_at(cols, start + row, code, field)
    return None


def load_dataset(
    path: PathLike,
    *,
    display_path: str | None = None,
    interval_ms: int | None = None,
    calendar: str = "24/7",
    min_distinct_bars: int = 1,
) -> Dataset:
    """Load, validate and hash a bars CSV.

    ``display_path`` is what errors and ``Dataset.path`` show (e.g. the workspace-relative path
    the SSOT names) so evidence does not depend on where the workspace lives. ``interval_ms``
    overrides inference, for data whose most common step is not the bar size. ``calendar``
    (``dataset.calendar``) decides which missing bars are gaps: none outside trading sessions.
    ``min_distinct_bars`` refuses (DATA_TOO_SHORT) a dataset with fewer distinct timestamps: a
    run asks for :data:`MIN_DISTINCT_BARS`; readers that only inspect data keep the default 1.
    """
    if interval_ms is not None and (
        isinstance(interval_ms, bool) or not isinstance(interval_ms, int) or interval_ms <= 0
    ):
        raise ValueError(f"interval_ms must be a positive int, got {interval_ms!r}")
    shown = _display(path, display_path)
    fd, _ = _open_checked(path, shown)
    try:
        with open(fd, "rb", closefd=True) as fh:
            before = os.fstat(fh.fileno())
            if before.st_size > MAX_BYTES:
                raise DataError("DATA_TOO_LARGE", f"the dataset is {before.st_size:,} bytes, above the limit "
                                f"of {MAX_BYTES:,} (treasure.data.loader.MAX_BYTES); split it into smaller "
                                "files", path=shown)
            sha, cols = _parse_file(fh, shown, before)
    except OSError as exc:
        raise DataError("DATA_IO", f"cannot read the dataset: {exc.strerror or exc}", path=shown) from None
    bars = Bars(cols.t_ms, cols.open, cols.high, cols.low, cols.close, cols.volume)
    n = len(bars)
    if min_distinct_bars > 1:
        t = bars.t_ms  # sorted (validated): a distinct timestamp starts wherever it changes
        distinct = int(np.count_nonzero(t[1:] != t[:-1])) + 1 if n else 0
        if distinct < min_distinct_bars:
            raise DataError("DATA_TOO_SHORT", f"the dataset has {n} bar(s) and {distinct} distinct t_ms; "
                            f"a run needs at least {min_distinct_bars} distinct bars", path=shown)
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
