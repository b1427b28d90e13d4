"""Bytes of a bars CSV -> validated column arrays, or a DataError naming line and field.

Two parsers share one contract. The fast one is vectorized over the whole body and only accepts the
canonical shape (unsigned plain decimals, at most 16 characters a value, exactly six values a row);
it never reports errors, it just declines. The exact one walks the lines, accepts every numeral the
format allows (signs, exponents, long mantissas) and pinpoints the first bad line and field. Both
produce exactly the floats Python's ``float()`` gives, so which one ran never changes a result.

Validation runs once on the arrays, vectorized, and reports the earliest offending line.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from treasure.data.bars import COLUMNS
from treasure.errors import DataError

HEADER = ",".join(COLUMNS).encode("ascii")
BOM = b"\xef\xbb\xbf"

#: First millisecond of year 2201: t_ms must lie in [0, T_END_MS) (years 1970..2200).
T_END_MS = calendar.timegm((2201, 1, 1, 0, 0, 0, 0, 1, 0)) * 1000
#: Prices and volumes above this are a unit or parsing mistake, not a market.
MAX_VALUE = 1e12
#: Timestamps beyond this cannot be held exactly in int64 arithmetic downstream.
_T_HARD_LIMIT = 2**62

_PRICE_FIELDS = ("open", "high", "low", "close")
_FLOAT_FIELDS = ("open", "high", "low", "close", "volume")

_FLOAT_RE = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT_RE = re.compile(rb"[+-]?\d+")
_NANINF_RE = re.compile(rb"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
# Characters int()/float() tolerate but the format does not (whitespace, digit separators).
_LOOSE = (b" ", b"\t", b"_", b"\r", b"\x0b", b"\x0c")


@dataclass(frozen=True, slots=True)
class Columns:
    """Parsed, validated columns; row ``i`` came from file line ``i + 2``."""

    t_ms: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]


def parse_bars_csv(raw: bytes, *, path: str) -> Columns:
    """Decode, parse and validate a whole bars CSV; ``path`` is only used in error messages."""
    text, start, end = _rows(raw, path)
    cols = fast_parse(text, start, end)
    if cols is None:
        cols = exact_parse(text[start:end], path=path)
    else:
        violation = first_violation(cols)
        if violation is not None:
            raise violation.error(path)
    return cols


# --------------------------------------------------------------------------------------------
# envelope: encoding, line endings, header


def _line_at(text: bytes, offset: int) -> int:
    return text.count(b"\n", 0, offset) + 1


def _rows(raw: bytes, path: str) -> tuple[bytes, int, int]:
    """Check encoding and header; return (text, start, end): the rows are ``text[start:end]``.

    ``text`` is ``raw`` itself unless a BOM or CRLF had to go; the rows end without a newline.
    """
    if not raw:
        raise DataError("DATA_EMPTY", "the dataset file is empty (0 bytes)", path=path)
    text = raw[len(BOM) :] if raw.startswith(BOM) else raw
    nul = text.find(b"\x00")
    if nul >= 0:
        utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
        what = "looks like UTF-16; save it as UTF-8" if utf16 else "contains NUL bytes (binary file?)"
        raise DataError(
            "DATA_BINARY", f"the dataset {what}", path=path, line=_line_at(text, nul)
        )
    if not text.isascii():
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                "DATA_BINARY",
                f"the dataset is not valid UTF-8 (byte 0x{text[exc.start]:02x})",
                path=path,
                line=_line_at(text, exc.start),
            ) from None
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")
    if not text or text.isspace():  # isspace, unlike strip, copies nothing
        raise DataError("DATA_EMPTY", "the dataset file holds no text, only whitespace", path=path)
    newline = text.find(b"\n")
    header = text if newline < 0 else text[:newline]
    if header != HEADER:
        raise _header_error(header, path)
    start = len(text) if newline < 0 else newline + 1
    end = len(text) - 1 if text.endswith(b"\n") and len(text) > start else len(text)
    if end <= start:
        raise DataError("DATA_HEADER_ONLY", "the dataset has a header but no bars", path=path, line=1)
    return text, start, end


def _header_error(header: bytes, path: str) -> DataError:
    expected = list(COLUMNS)
    shown = header.decode("utf-8", "replace")
    if len(shown) > 120:
        shown = shown[:117] + "..."

    def err(message: str, field: str | None = None) -> DataError:
        return DataError("DATA_HEADER", message, path=path, line=1, field=field)

    if b"\r" in header:
        return err("the header line contains a bare carriage return (old Mac line endings?)")
    if b"," not in header and (b";" in header or b"\t" in header):
        return err(f"the header is not comma-separated: {shown!r}")
    cols = header.decode("utf-8", "replace").split(",")
    if cols and (_FLOAT_RE.fullmatch(cols[0].encode()) or _INT_RE.fullmatch(cols[0].encode())):
        return err(f"the header is missing: line 1 looks like data ({shown!r})")
    if [c.strip() for c in cols] == expected:
        return err(f"the header has whitespace around column names: {shown!r}")
    if [c.strip().lower() for c in cols] == expected:
        return err(f"column names are case-sensitive; got {shown!r}")
    missing = [c for c in expected if c not in cols]
    extra = [c for c in cols if c not in expected]
    if missing:
        return err(f"the header lacks column(s) {', '.join(missing)}; got {shown!r}", missing[0])
    if extra:
        named = ", ".join(repr(c[:40]) for c in extra[:3])
        return err(f"the header has unexpected column(s) {named}", extra[0][:40])
    if len(cols) != len(set(cols)):
        dup = next(c for i, c in enumerate(cols) if c in cols[:i])
        return err(f"the header repeats column {dup!r}", dup)
    first = next(i for i, (a, b) in enumerate(zip(cols, expected)) if a != b)
    return err(
        f"the header columns are out of order: got {shown!r}, expected {HEADER.decode()!r}",
        expected[first],
    )


# --------------------------------------------------------------------------------------------
# fast path: SWAR decimal parsing over the whole body
#
# Each value is read as the 8 or 16 bytes ending where it ends (little-endian uint64 words; byte 0
# is the leftmost character). Bytes before the value are masked to digit 0, so right-aligned digits
# need no per-value loop, and eight digits combine into an integer with three multiplies (the
# "parse eight digits" trick of simdjson and friends). A decimal point is removed before that, so
# each value becomes an integer mantissa m < 2**53 and a digit count F, and m / 10**F is one
# correctly rounded division: exactly what float() returns for the same text.

_U = np.uint64
_ZEROS = _U(0x3030303030303030)  # '0' in every byte
_DOTX = _U(0x1E1E1E1E1E1E1E1E)  # '.' ^ '0' in every byte
_LOW7 = _U(0x7F7F7F7F7F7F7F7F)
_MASK_PAIRS = _U(0x000000FF000000FF)
_MUL1 = _U(100 + (1_000_000 << 32))
_MUL2 = _U(1 + (10_000 << 32))
# A word holding 0x01 in byte k (the dot) times these has, in its top byte: the number of digits
# after the dot for a lone word (7 - k); that number plus one for the second word of a pair
# (8 - k) and for the first (16 - k).
_FRAC_ONE = _U(0x0706050403020100)
_FRAC_W1 = _U(0x0807060504030201)
_FRAC_W0 = _U(0x100F0E0D0C0B0A09)
_POW10 = np.array([10**k for k in range(18)], dtype=np.uint64)
_POW10F = np.array([10.0**k for k in range(18)], dtype=np.float64)
_EXACT = 2**53  # integers up to here convert to float64 exactly
_LOOKBACK = 16  # bytes a window reaches back from a value's end


def _keep_tables() -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Per value length, masks keeping the value's own bytes of its right-aligned 16-byte window."""
    keep0 = np.zeros(17, dtype=np.uint64)
    keep1 = np.zeros(17, dtype=np.uint64)
    for length in range(17):
        bits = sum(0xFF << (8 * j) for j in range(16 - length, 16))
        keep0[length] = bits & 0xFFFF_FFFF_FFFF_FFFF
        keep1[length] = bits >> 64
    return keep0, keep1


_KEEP0, _KEEP1 = _keep_tables()


def _digit_word(
    words: npt.NDArray[np.uint64], at: npt.NDArray[np.int64], keep: npt.NDArray[np.uint64]
) -> npt.NDArray[np.uint64]:
    """The 8 bytes at ``at`` as digit values (0..9), bytes outside the value zeroed."""
    w = words[at]
    w ^= _ZEROS
    w &= keep
    return w


def _dot_flags(w: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """0x01 in exactly the bytes of ``w`` that held '.' (a zero-byte test without borrows)."""
    x = w ^ _DOTX
    y = x & _LOW7
    y += _LOW7
    y |= x
    y |= _LOW7
    np.invert(y, out=y)
    y >>= _U(7)
    return y


def _eight_digits(v: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Eight digit values (0..9, leftmost digit in byte 0) -> their integer, per word."""
    v = v * _U(10) + (v >> _U(8))
    return (((v & _MASK_PAIRS) * _MUL1) + (((v >> _U(16)) & _MASK_PAIRS) * _MUL2)) >> _U(32)


_Parsed = tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], int]


def _parse_short(
    w: npt.NDArray[np.uint64], lengths: npt.NDArray[np.int64], allow_dot: bool
) -> _Parsed | None:
    """Values of at most 8 characters: one word each. Returns (mantissa, F, values with a dot)."""
    d = _dot_flags(w)
    has_dot = d != 0
    with_dot = int(np.count_nonzero(has_dot))
    if with_dot == 0:
        return _eight_digits(w), np.zeros(w.shape[0], dtype=np.int64), 0
    if not allow_dot or bool((has_dot & (lengths == 1)).any()):
        return None  # a dot in a timestamp, or a lone '.'
    # Slide the integer part one byte right, over the dot; the fraction digits stay put.
    before = d - _U(1)  # the bytes left of the dot (every byte when there is none)
    after = ~before
    after <<= _U(8)
    after &= w
    w &= before
    w <<= has_dot.astype(np.uint64) * _U(8)
    w |= after
    frac = ((d * _FRAC_ONE) >> _U(56)).astype(np.int64)
    return _eight_digits(w), frac, with_dot


def _parse_long(
    w0: npt.NDArray[np.uint64],
    w1: npt.NDArray[np.uint64],
    lengths: npt.NDArray[np.int64],
    allow_dot: bool,
) -> _Parsed | None:
    """Values of up to 16 characters: two words each (timestamps, long decimals)."""
    d0 = _dot_flags(w0)
    d1 = _dot_flags(w1)
    has_dot = (d0 | d1) != 0
    with_dot = int(np.count_nonzero(has_dot))
    if with_dot and (not allow_dot or bool((has_dot & (lengths == 1)).any())):
        return None  # a dot in a timestamp, or a lone '.'
    if with_dot:
        w0 &= ~(d0 * _U(0xFF))  # the dot reads as a 0 digit ...
        w1 &= ~(d1 * _U(0xFF))
    mant = _eight_digits(w0)
    mant *= _U(100_000_000)
    mant += _eight_digits(w1)
    if not with_dot:
        return mant, np.zeros(w0.shape[0], dtype=np.int64), 0
    # ... so mant = A*10^(F+1) + B for integer part A and F fraction digits B; we want A*10^F + B.
    frac1 = (d0 * _FRAC_W0) >> _U(56)
    frac1 += (d1 * _FRAC_W1) >> _U(56)
    frac = frac1.astype(np.int64)
    frac -= has_dot
    whole = mant // _POW10[frac1]  # frac1 is 0 without a dot: divides by 1
    whole *= _U(9)
    whole *= _POW10[frac]
    whole[~has_dot] = 0
    mant -= whole
    return mant, frac, with_dot


def fast_parse(text: bytes, start: int = 0, end: int | None = None) -> Columns | None:
    """Parse canonical rows ``text[start:end]`` without a Python loop; None: use exact_parse.

    Taking the whole file and offsets (instead of a sliced body) saves copying it: the header
    in front of the rows doubles as the lookback the 16-byte windows need.
    """
    end = len(text) if end is None else end
    if start < _LOOKBACK:
        text, start, end = b"\n" * _LOOKBACK + text[start:end], _LOOKBACK, _LOOKBACK + end - start
    buf = np.frombuffer(text, dtype=np.uint8, count=end - start, offset=start)
    if buf.shape[0] == 0 or int(buf.max()) > ord("9"):
        return None  # letters or non-ASCII: exponents, nan, typos
    # Below '0' only ',', '\n' and '.' may occur; everything up to ',' must then be a separator.
    seps = np.flatnonzero(buf <= ord(","))
    dots = int(np.count_nonzero(buf == ord(".")))
    if int(np.count_nonzero(buf < ord("0"))) != seps.shape[0] + dots:
        return None  # '-', '/': signs, dates
    if (seps.shape[0] + 1) % 6:
        return None
    n = (seps.shape[0] + 1) // 6
    layout = np.empty(6 * n, dtype=np.uint8)
    layout[:-1] = buf[seps]
    layout[-1] = ord("\n")
    rows = layout.reshape(n, 6)
    if not (bool((rows[:, :5] == ord(",")).all()) and bool((rows[:, 5] == ord("\n")).all())):
        return None  # short/long rows, blank lines, tabs, spaces, '+', quotes
    ends = np.empty(6 * n, dtype=np.int64)
    np.add(seps, start, out=ends[:-1])
    ends[-1] = end
    lengths = np.empty(6 * n, dtype=np.int64)
    lengths[0] = ends[0] - start
    np.subtract(ends[1:], ends[:-1], out=lengths[1:])
    lengths[1:] -= 1
    if int(lengths.min()) < 1 or int(lengths.max()) > 16:
        return None
    words = np.ndarray(shape=(len(text) - 7,), dtype="<u8", buffer=text, strides=(1,))
    ends_2d = ends.reshape(n, 6)
    lengths_2d = lengths.reshape(n, 6)
    out: dict[str, Any] = {}
    dot_values = 0
    for j, name in enumerate(COLUMNS):
        col_end = ends_2d[:, j] - 8
        col_len = np.ascontiguousarray(lengths_2d[:, j])
        if int(col_len.max()) <= 8:
            parsed = _parse_short(_digit_word(words, col_end, _KEEP1[col_len]), col_len, j > 0)
        else:
            w0 = _digit_word(words, col_end - 8, _KEEP0[col_len])
            w1 = _digit_word(words, col_end, _KEEP1[col_len])
            parsed = _parse_long(w0, w1, col_len, j > 0)
        if parsed is None:
            return None
        mant, frac, with_dot = parsed
        dot_values += with_dot
        if j == 0:
            out[name] = mant.astype(np.int64)  # < 10**16: exact
        else:
            if int(mant.max()) > _EXACT:
                return None  # one division would no longer be correctly rounded
            values = mant.astype(np.float64)
            values /= _POW10F[frac]
            out[name] = values
    if dot_values != dots:
        return None  # some value has two dots
    return Columns(**out)


# --------------------------------------------------------------------------------------------
# exact path: line by line, pinpointing the first bad line and field


def _shown(token: bytes) -> str:
    text = token.decode("utf-8", "replace")
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _token_error(token: bytes, field: str, line: int, path: str) -> DataError:
    """Why ``token`` is not acceptable in ``field``, as precisely as can be said."""

    def err(code: str, message: str) -> DataError:
        return DataError(code, message, path=path, line=line, field=field)

    if token == b"":
        return err("DATA_PARSE", f"{field} is empty")
    if token.strip() != token:
        return err("DATA_PARSE", f"{field} value {_shown(token)} has surrounding whitespace")
    if field == "t_ms":
        if _INT_RE.fullmatch(token):
            return err("DATA_RANGE", f"t_ms {_shown(token)} is far outside years 1970..2200")
        if _FLOAT_RE.fullmatch(token) or _NANINF_RE.fullmatch(token):
            return err("DATA_PARSE", f"t_ms must be an integer (ms since epoch), got {_shown(token)}")
        return err("DATA_PARSE", f"t_ms is not an integer: {_shown(token)}")
    if b"_" in token:
        return err("DATA_PARSE", f"{field} value {_shown(token)} has digit separators '_'")
    return err("DATA_PARSE", f"{field} is not a number: {_shown(token)}")


def _parse_row(fields: list[bytes], line: int, path: str, strict: bool) -> tuple[Any, ...]:
    """One row's six values, or the DataError for its first bad field."""
    if len(fields) != 6:
        if fields == [b""]:
            raise DataError("DATA_SHORT_ROW", "the line is empty; expected 6 values", path=path, line=line)
        if len(fields) < 6:
            missing = COLUMNS[len(fields) :]
            raise DataError(
                "DATA_SHORT_ROW",
                f"the row has {len(fields)} values, expected 6 (missing {', '.join(missing)})",
                path=path,
                line=line,
                field=missing[0],
            )
        raise DataError(
            "DATA_LONG_ROW",
            f"the row has {len(fields)} values, expected 6",
            path=path,
            line=line,
        )
    tok = fields[0]
    if strict and not _INT_RE.fullmatch(tok):
        raise _token_error(tok, "t_ms", line, path)
    if len(tok) > 20:
        raise _token_error(tok, "t_ms", line, path)
    try:
        t = int(tok)
    except ValueError:
        raise _token_error(tok, "t_ms", line, path) from None
    if not -_T_HARD_LIMIT < t < _T_HARD_LIMIT:
        raise DataError(
            "DATA_RANGE", f"t_ms {t} is far outside years 1970..2200", path=path, line=line, field="t_ms"
        )
    values: list[Any] = [t]
    for name, tok in zip(_FLOAT_FIELDS, fields[1:]):
        if strict and not (_FLOAT_RE.fullmatch(tok) or _NANINF_RE.fullmatch(tok)):
            raise _token_error(tok, name, line, path)
        try:
            values.append(float(tok))
        except ValueError:
            raise _token_error(tok, name, line, path) from None
    return tuple(values)


def exact_parse(body: bytes, *, path: str) -> Columns:
    """Parse and validate line by line; raise the error of the earliest bad line."""
    cols, failure, overflow = exact_rows(body, path=path)
    violation = first_violation(cols)
    if violation is not None:
        if violation.code == "DATA_NAN" and overflow is not None and overflow.row == violation.row:
            violation = overflow
        raise violation.error(path)
    if failure is not None:
        raise failure
    return cols


def exact_rows(
    body: bytes, *, path: str, first_line: int = 2
) -> tuple[Columns, DataError | None, _Violation | None]:
    """Parse ``body`` (line ``first_line`` onwards) up to its first bad line, without validating.

    Returns the rows before the first bad line, the DataError of that line (None: all parsed)
    and, when the earliest non-finite value was not spelled nan/inf (it overflowed, e.g. 1e999),
    the DATA_RANGE violation that replaces DATA_NAN for it; its ``row`` counts from ``body``.
    """
    # int()/float() accept whitespace and '_' separators; only check tokens one by one when the
    # body contains such characters at all, which keeps the common case at C speed.
    strict = any(ch in body for ch in _LOOSE)
    rows: list[tuple[Any, ...]] = []
    failure: DataError | None = None
    lines = body.split(b"\n")
    for index, line in enumerate(lines):
        try:
            rows.append(_parse_row(line.split(b","), index + first_line, path, strict))
        except DataError as exc:
            failure = exc
            break
    cols = _columns(rows)
    overflow: _Violation | None = None
    nonfinite = _first_nonfinite(cols)
    if nonfinite is not None:
        # A value that parsed to inf without being spelled nan/inf overflowed: absurd, not missing.
        row, field = nonfinite
        token = lines[row].split(b",")[COLUMNS.index(field)]
        if not _NANINF_RE.fullmatch(token):
            overflow = _Violation(row, "DATA_RANGE", field, f"{field} {_shown(token)} overflows a 64-bit float")
    return cols, failure, overflow


def _first_nonfinite(cols: Columns) -> tuple[int, str] | None:
    """(row, field) of the earliest non-finite value, fields in CSV order (as DATA_NAN reports)."""
    best: tuple[int, str] | None = None
    for name in _FLOAT_FIELDS:
        row = _first(~np.isfinite(getattr(cols, name)))
        if row is not None and (best is None or row < best[0]):
            best = (row, name)
    return best


def _columns(rows: list[tuple[Any, ...]]) -> Columns:
    if not rows:
        empty_f = np.empty(0, dtype=np.float64)
        return Columns(np.empty(0, dtype=np.int64), empty_f, empty_f, empty_f, empty_f, empty_f)
    t, o, h, lo, c, v = zip(*rows)
    return Columns(
        np.array(t, dtype=np.int64),
        np.array(o, dtype=np.float64),
        np.array(h, dtype=np.float64),
        np.array(lo, dtype=np.float64),
        np.array(c, dtype=np.float64),
        np.array(v, dtype=np.float64),
    )


# --------------------------------------------------------------------------------------------
# validation


@dataclass(frozen=True, slots=True)
class _Violation:
    row: int
    code: str
    field: str
    message: str

    def error(self, path: str) -> DataError:
        return DataError(self.code, self.message, path=path, line=self.row + 2, field=self.field)


def _first(mask: npt.NDArray[np.bool_]) -> int | None:
    if mask.shape[0] == 0:
        return None
    i = int(mask.argmax())
    return i if mask[i] else None


#: Epoch values of 2000-01-01 and 2100-01-01 in seconds: the band a real market's timestamps live in.
_Y2000_S = 946_684_800
_Y2100_S = 4_102_444_800
#: unit -> (name, per second): a t_ms column whose values sit in the 2000..2100 band of this unit
_UNITS = (("s", "seconds", 1), ("us", "microseconds", 1_000_000), ("ns", "nanoseconds", 1_000_000_000))


def time_unit_guess(t_ms: npt.NDArray[np.int64]) -> tuple[str, str, int] | None:
    """(unit, name, per second) when the column's magnitude says seconds, micro- or nanoseconds.

    Milliseconds of 2000..2100 are 9.5e11..4.1e12. In seconds the same years are 9.5e8..4.1e9
    (as milliseconds: January 1970, which no market data is), in microseconds 9.5e14..4.1e15 and
    in nanoseconds 9.5e17..4.1e18 (as milliseconds: far beyond year 2200). The first bar decides;
    for seconds the last must also stay in the band, so millisecond data starting near the epoch
    (test fixtures) is left alone.
    """
    if t_ms.shape[0] == 0:
        return None
    first, top = int(t_ms[0]), int(t_ms.max())
    for unit, name, per_s in _UNITS:
        if _Y2000_S * per_s <= first < _Y2100_S * per_s and (per_s != 1 or top < _Y2100_S):
            return unit, name, per_s
    return None


def first_violation(cols: Columns) -> _Violation | None:
    """The earliest row breaking a rule; within a row, rules are checked in the order below.

    ``high >= low`` needs no check of its own: it follows from the two OHLC rules.
    """
    unit = time_unit_guess(cols.t_ms)
    found = (0, "DATA_TIME_UNIT", "t_ms") if unit is not None else window_violation(cols)
    if found is None:
        return None
    row, code, field = found
    return _Violation(row, code, field, _describe(cols, row, code, field))


def window_violation(cols: Columns, prev_t: int | None = None) -> tuple[int, str, str] | None:
    """(row, code, field) of the earliest row of ``cols`` breaking a rule other than DATA_TIME_UNIT.

    ``cols`` may be a window of a larger dataset: ``prev_t`` is then the t_ms of the row before it,
    for DATA_UNSORTED, and rows count from the window's start. Scanning windows in order and taking
    the first hit finds exactly what one call over all rows would.
    """
    t = cols.t_ms
    floats = {name: getattr(cols, name) for name in _FLOAT_FIELDS}
    checks: list[tuple[str, list[tuple[str, npt.NDArray[np.bool_]]]]] = [
        ("DATA_NAN", [(f, ~np.isfinite(a)) for f, a in floats.items()]),
        ("DATA_NONPOSITIVE_PRICE", [(f, floats[f] <= 0) for f in _PRICE_FIELDS]),
        ("DATA_NEGATIVE_VOLUME", [("volume", floats["volume"] < 0)]),
        (
            "DATA_RANGE",
            [("t_ms", (t < 0) | (t >= T_END_MS))] + [(f, a > MAX_VALUE) for f, a in floats.items()],
        ),
        (
            "DATA_OHLC",
            [
                ("high", cols.high < np.maximum(cols.open, cols.close)),
                ("low", cols.low > np.minimum(cols.open, cols.close)),
            ],
        ),
    ]
    unsorted = np.zeros(t.shape[0], dtype=bool)
    if t.shape[0] > 1:
        unsorted[1:] = t[1:] < t[:-1]
    if prev_t is not None and t.shape[0]:
        unsorted[0] = int(t[0]) < prev_t
    checks.append(("DATA_UNSORTED", [("t_ms", unsorted)]))

    best: tuple[int, str, str] | None = None
    for code, masks in checks:
        for field, mask in masks:
            row = _first(mask)
            if row is not None and (best is None or row < best[0]):
                best = (row, code, field)
    return best


def violation_at(cols: Columns, row: int, code: str, field: str) -> _Violation:
    """The violation ``window_violation`` found, with its message, at global ``row`` of ``cols``."""
    return _Violation(row, code, field, _describe(cols, row, code, field))


def _describe(cols: Columns, row: int, code: str, field: str) -> str:
    raw = getattr(cols, field)[row]
    value: int | float = int(raw) if field == "t_ms" else float(raw)
    if code == "DATA_NAN":
        return f"{field} is {value!r}, not a finite number"
    if code == "DATA_TIME_UNIT":
        guess = time_unit_guess(cols.t_ms)
        assert guess is not None
        unit, name, per_s = guess
        when = _dt.datetime.fromtimestamp(int(value) // per_s, tz=_dt.timezone.utc).strftime("%Y-%m-%d")
        return (f"t_ms {value} looks like {name} since the epoch ({when} in {name}), not milliseconds; "
                f"convert the file with: treasure data import FILE --time-unit {unit}")
    if code == "DATA_NONPOSITIVE_PRICE":
        return f"{field} is {value!r}; prices must be > 0"
    if code == "DATA_NEGATIVE_VOLUME":
        return f"volume is {value!r}; it must be >= 0"
    if code == "DATA_RANGE":
        if field == "t_ms":
            return f"t_ms {value} lies outside years 1970..2200 (0 <= t_ms < {T_END_MS})"
        return f"{field} is {value!r}, above the sanity limit {MAX_VALUE:g}"
    if code == "DATA_OHLC":
        o, h, lo, c = (float(getattr(cols, f)[row]) for f in _PRICE_FIELDS)
        rule = "high >= max(open, close)" if field == "high" else "low <= min(open, close)"
        return f"bar breaks {rule}: open={o!r} high={h!r} low={lo!r} close={c!r}"
    # DATA_UNSORTED
    prev = int(cols.t_ms[row - 1])
    return f"t_ms {value} goes back in time: line {row + 1} has t_ms {prev}"
