"""Common OHLCV files in, Treasure datasets out: ``treasure data import``.

Reads a CSV (e.g. the ``Date,Open,High,Low,Close,Volume`` files backtesting.py and most vendors
ship, with or without a named index column) or a Parquet file (through pyarrow, the optional
``parquet`` extra), converts its time column to integer milliseconds since 1970 UTC, and writes the
canonical ``t_ms,open,high,low,close,volume`` CSV. Values are written with Python's shortest
round-trip repr, so every price the source held is kept exactly (no rounding to 4 decimals).

Every refusal is a coded :class:`DataError` naming the source file, its line (CSV; the row number
for Parquet) and the column.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from treasure.data.bars import Bars
from treasure.data.dataset import infer_interval_ms
from treasure.errors import DataError

FIELDS = ("open", "high", "low", "close", "volume")
TIME_NAMES = ("t_ms", "timestamp", "time", "datetime", "date", "ts", "")
UNITS_PER_MS = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}
DAY_MS = 86_400_000
_NUMERIC_TIME = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class Imported:
    """The converted bars, their canonical CSV and what was inferred about them."""

    bars: Bars
    csv: bytes
    interval_ms: int | None
    calendar: str
    time_unit: str | None  # the numeric unit used (given or inferred), None for date strings
    notes: list[str] = field(default_factory=list)


def _err(message: str, source: str, *, line: int | None = None, column: str | None = None,
         hint: str | None = None) -> DataError:
    return DataError("DATA_IMPORT", message, path=source, line=line, field=column, hint=hint)


def _pick(header: Sequence[str], wanted: str, source: str, explicit: str | None) -> int:
    if explicit is not None:
        if explicit in header:
            return header.index(explicit)
        raise _err(f"no column {explicit!r}; the header has {', '.join(repr(h) for h in header)}", source,
                   line=1, column=explicit)
    lowered = [h.strip().lower() for h in header]
    if wanted in lowered:
        return lowered.index(wanted)
    raise _err(f"no {wanted!r} column (case-insensitive); the header has {', '.join(repr(h) for h in header)}",
               source, line=1, column=wanted,
               hint="name the columns: --columns OPEN,HIGH,LOW,CLOSE,VOLUME (source names, in that order)")


def _time_index(header: Sequence[str], source: str, time_col: str | None) -> int:
    if time_col is not None:
        return _pick(header, time_col, source, time_col)
    lowered = [h.strip().lower() for h in header]
    for name in TIME_NAMES:
        if name in lowered:
            return lowered.index(name)
    raise _err("no time column (looked for t_ms, timestamp, time, datetime, date or an unnamed first column)",
               source, line=1, hint="name it with --time-col NAME")


def _zone(tz: str | None, source: str) -> _dt.tzinfo:
    if tz is None or tz.upper() == "UTC":
        return _dt.timezone.utc
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(tz)
    except Exception:
        raise DataError("CLI_VALUE", f"--tz {tz!r} is not an IANA time zone (e.g. America/New_York, UTC)",
                        path=source, field="--tz") from None


def _parse_text_time(text: str, zone: _dt.tzinfo) -> int:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    stamp = _dt.datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=zone)
    delta = stamp - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _to_ms(raw: int, unit: str) -> int:
    if unit == "s":
        return raw * 1000
    return raw // UNITS_PER_MS[unit]  # type: ignore[operator]


def _guess_unit(first: int) -> str:
    from treasure.data._parse import time_unit_guess

    guess = time_unit_guess(np.array([first], dtype=np.int64))
    return guess[0] if guess is not None else "ms"


def convert_rows(rows: list[list[str]], header: Sequence[str], *, source: str, time_col: str | None = None,
                 time_unit: str | None = None, tz: str | None = None, columns: Sequence[str] | None = None,
                 first_line: int = 2) -> tuple[np.ndarray, list[np.ndarray], str | None, list[str]]:
    """Text rows -> (t_ms, [open, high, low, close, volume], numeric unit used, notes)."""
    notes: list[str] = []
    ti = _time_index(header, source, time_col)
    if columns is not None:
        if len(columns) not in (4, 5):
            raise DataError("CLI_VALUE", f"--columns names {len(columns)} column(s); give open,high,low,close"
                            "[,volume] source names in that order", field="--columns")
        idx = [_pick(header, name, source, name) for name in columns]
    else:
        idx = [_pick(header, name, source, None) for name in FIELDS[:4]]
        lowered = [h.strip().lower() for h in header]
        if "volume" in lowered:
            idx.append(lowered.index("volume"))
    if len(idx) == 4:
        notes.append("no volume column: volume written as 0")
    zone = _zone(tz, source)
    n = len(rows)
    t = np.empty(n, dtype=np.int64)
    values = [np.zeros(n, dtype=np.float64) for _ in FIELDS]
    unit = time_unit
    numeric: bool | None = None
    for r, row in enumerate(rows):
        line = first_line + r
        if len(row) != len(header):
            raise _err(f"the row has {len(row)} values, the header {len(header)}", source, line=line)
        text = row[ti]
        is_num = bool(_NUMERIC_TIME.match(text.strip()))
        if numeric is None:
            numeric = is_num
            if numeric and unit is None:
                unit = _guess_unit(int(text))
                notes.append(f"time column {header[ti]!r} read as epoch {unit} (from its magnitude; "
                             "--time-unit to say otherwise)")
        try:
            if is_num:
                if not numeric:
                    raise ValueError("a number among date strings")
                t[r] = _to_ms(int(text), unit or "ms")
            else:
                if numeric:
                    raise ValueError("a date string among epoch numbers")
                t[r] = _parse_text_time(text, zone)
        except (ValueError, OverflowError) as exc:
            raise _err(f"time {text[:40]!r} is not a date/time or epoch integer ({exc})", source, line=line,
                       column=header[ti] or "(index)") from None
        for j, col in enumerate(idx):
            cell = row[col].strip()
            try:
                number = float(cell)
            except ValueError:
                raise _err(f"{header[col]!r} value {cell[:40]!r} is not a number", source, line=line,
                           column=header[col]) from None
            if not math.isfinite(number):
                raise _err(f"{header[col]!r} value {cell[:40]!r} is not finite", source, line=line,
                           column=header[col])
            values[j][r] = number
    return t, values, (unit if numeric else None), notes


def read_csv(raw: bytes, source: str, **options: Any) -> tuple[np.ndarray, list[np.ndarray], str | None, list[str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _err(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", source, line=line) from None
    if "\x00" in text:
        raise _err("the file holds NUL bytes: not a CSV (Parquet? pass --format parquet)", source,
                   line=text.count("\n", 0, text.index("\x00")) + 1)
    reader = csv.reader(io.StringIO(text))
    try:
        table = [row for row in reader]
    except csv.Error as exc:
        raise _err(f"malformed CSV: {exc}", source, line=reader.line_num) from None
    # blank lines: refuse, naming them (a silently dropped bar is a gap nobody sees)
    for i, row in enumerate(table):
        if not row:
            raise _err("blank line", source, line=i + 1)
    if len(table) < 2:
        raise _err("no bars: the file has at most a header line", source, line=1)
    return convert_rows(table[1:], table[0], source=source, **options)


def read_parquet(path: Path, source: str, *, time_col: str | None = None, time_unit: str | None = None,
                 tz: str | None = None, columns: Sequence[str] | None = None
                 ) -> tuple[np.ndarray, list[np.ndarray], str | None, list[str]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("DATA_IMPORT", "reading Parquet needs pyarrow", path=source,
                        hint="pip install 'treasure[parquet]' (or pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow's errors for a file that is not Parquet
        raise _err(f"not a readable Parquet file: {exc}", source) from None
    names = list(table.column_names)
    header = ["" if n == "__index_level_0__" else n for n in names]
    ti = _time_index(header, source, time_col)
    tcol = table.column(ti)
    rows_t: list[str]
    if pa.types.is_timestamp(tcol.type) or pa.types.is_date(tcol.type):
        zone = _zone(tz, source)
        if pa.types.is_date(tcol.type):
            tcol = tcol.cast(pa.timestamp("ms"))
        naive = getattr(tcol.type, "tz", None) is None
        ms = tcol.cast(pa.timestamp("ms", tz=None if naive else tcol.type.tz)).cast(pa.int64()).to_pylist()
        if naive and zone is not _dt.timezone.utc:
            ms = [None if v is None else _parse_text_time(
                (_dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=v)).isoformat(), zone) for v in ms]
        rows_t = ["" if v is None else str(v) for v in ms]
        time_unit = "ms"
    else:
        rows_t = ["" if v is None else str(v) for v in tcol.to_pylist()]
    cols = [[("" if v is None else repr(v) if isinstance(v, float) else str(v))
             for v in table.column(i).to_pylist()] for i in range(len(names))]
    cols[ti] = rows_t
    rows = [list(r) for r in zip(*cols)]
    t, values, unit, notes = convert_rows(rows, header, source=source, time_col=header[ti] if time_col is None
                                          else time_col, time_unit=time_unit, tz=tz, columns=columns,
                                          first_line=1)
    return t, values, unit, notes


def to_csv(bars: Bars) -> bytes:
    """Canonical header; values in shortest round-trip form (exactly the floats read)."""
    lines = ["t_ms,open,high,low,close,volume"]
    cols = [bars.t_ms.tolist(), bars.open.tolist(), bars.high.tolist(), bars.low.tolist(), bars.close.tolist(),
            bars.volume.tolist()]
    for t, o, h, lo, c, v in zip(*cols):
        lines.append(f"{t},{o!r},{h!r},{lo!r},{c!r},{v!r}")
    lines.append("")
    return "\n".join(lines).encode("ascii")


def suggest_calendar(t_ms: np.ndarray) -> str:
    """``weekdays`` when no bar falls on a Saturday or Sunday (UTC); ``24/5`` (the FX week) when
    none falls on a Saturday and Sunday's start at 20:00 UTC or later (the week opens Sunday 17:00
    New York); else ``24/7``."""
    weekday = ((t_ms // DAY_MS) + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
    if not bool((weekday >= 5).any()):
        return "weekdays"
    sunday_hours = (t_ms[weekday == 6] % DAY_MS) // 3_600_000
    if not bool((weekday == 5).any()) and bool((sunday_hours >= 20).all()):
        return "24/5"
    return "24/7"


def import_file(path: str | Path, *, fmt: str | None = None, time_col: str | None = None,
                time_unit: str | None = None, tz: str | None = None, columns: Sequence[str] | None = None,
                calendar: str | None = None, display: str | None = None) -> Imported:
    """Read and convert; validate the result with the loader's own rules (line numbers kept)."""
    from treasure.data._parse import parse_bars_csv

    source = display or str(path)
    p = Path(path)
    if not p.is_file():
        raise DataError("DATA_MISSING", "the file to import does not exist", path=source)
    if time_unit is not None and time_unit not in UNITS_PER_MS:
        raise DataError("CLI_VALUE", f"--time-unit {time_unit!r}: use s, ms, us or ns", field="--time-unit")
    kind = fmt or ("parquet" if p.suffix.lower() in (".parquet", ".pq") else "csv")
    options: dict[str, Any] = {"time_col": time_col, "time_unit": time_unit, "tz": tz, "columns": columns}
    if kind == "parquet":
        t, values, unit, notes = read_parquet(p, source, **options)
    else:
        t, values, unit, notes = read_csv(p.read_bytes(), source, **options)
    bars = Bars(t, *values)
    data = to_csv(bars)
    try:
        parse_bars_csv(data, path=source)  # OHLC rules, sortedness, ranges: same lines as the source CSV
    except DataError as exc:
        raise DataError(exc.code if exc.code != "DATA_TIME_UNIT" else "DATA_IMPORT",
                        exc.message + ("" if exc.code != "DATA_TIME_UNIT" else
                                       " after conversion; pass the right --time-unit"),
                        path=source, line=exc.line, field=exc.field) from None
    interval = infer_interval_ms(bars.t_ms)
    chosen = calendar or suggest_calendar(bars.t_ms)
    if calendar is None and chosen == "weekdays" and interval is not None and interval >= DAY_MS:
        notes.append("daily bars on weekdays only: calendar 'weekdays'; for exchange data pass "
                     "--calendar XNYS (or the exchange's code) so holidays are not gaps and a year is "
                     "its sessions")
    return Imported(bars, data, interval, chosen, unit, notes)
