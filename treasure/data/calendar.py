"""Trading calendars: which stretches of time a market trades, hence what a gap is and what a year is.

``dataset.calendar`` names one of:

* ``24/7`` (the default): the market never closes. Any step longer than one interval is a gap, and
  a year is ``365 * 86_400_000 / interval_ms`` bars (Treasure's behaviour before calendars).
* ``weekdays``: Monday to Friday, whole UTC days (FX, crypto desks that pause at weekends, or daily
  stock bars without a holiday table). A year is 260 sessions (52 weeks of 5 days).
* ``24/5``: the foreign-exchange week, from Sunday 17:00 to Friday 17:00 New York time, which is
  Sunday 22:00 to Friday 22:00 UTC while New York keeps standard time and 21:00 to 21:00 UTC
  while it keeps daylight saving time (US rules, computed here, no tz database needed); no
  holidays (a vendor that closes on 25 December or 1 January shows those days as gaps). A bar
  slot is expected when its *start* lies inside the week, so hourly bars stamped at their open and
  daily bars stamped 00:00 Monday-Friday (or at the 21:00/22:00 UTC roll, Sunday-Thursday) hold
  no weekend gap. A year is 260 sessions (52 weeks of 5 trading days) of 24 hours:
  ``260 * 86_400_000 / interval_ms`` bars (6,240 hourly bars).
* an exchange code such as ``XNYS`` or ``XLON``: sessions (open, close, lunch breaks, early closes,
  holidays) come from the ``exchange-calendars`` package, imported only when an exchange is named
  (it takes about a second to import). A year is the mean number of sessions per calendar year
  over the years the data spans, rounded to a whole number (XNYS: 252), so a holiday table revised
  by a later release of the package does not move the annualisation.

A *gap* is a missing bar inside a session: between two consecutive bars ``a < b``, the expected bar
slots ``a + k * interval`` (``k >= 1``, slot before ``b``) that overlap a session are missing
bars. Overnight, weekends and holidays hold no session, so they hold no missing bars. Counting is
integer arithmetic per session, never a walk over slots, so a year-long hole costs what a short one
does.

Why exchange-calendars rather than pandas-market-calendars: it is maintained by the same people as
zipline-reloaded's calendars, covers 50+ exchanges with early closes and breaks, answers in UTC, is
pure Python on pandas, and builds a calendar for exactly the dates asked (no wall-clock default
window once ``start``/``end`` are given, which determinism needs).
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from treasure.errors import ConfigError

CAL_24_7 = "24/7"
CAL_WEEKDAYS = "weekdays"
CAL_24_5 = "24/5"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
#: 1970-01-01 was a Thursday: day number d is a weekday when (d + 3) % 7 < 5 (Monday = 0).
_EPOCH_WEEKDAY = 3
WEEKDAY_SESSIONS_PER_YEAR = 260
_EXCHANGE_RE = re.compile(r"^[A-Z0-9]{2,8}(?:_[A-Z0-9]+)?$")


@dataclass(frozen=True, slots=True)
class Annualization:
    """How a per-bar statistic becomes a yearly one: ``periods_per_year`` bars make a year.

    ``source`` says where the number came from: ``calendar:24/7``, ``calendar:weekdays``,
    ``calendar:XNYS`` ... or ``metrics.periods_per_year`` (the SSOT's explicit override).
    """

    source: str
    periods_per_year: float

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "periods_per_year": round(float(self.periods_per_year), 10)}


def check_calendar(name: Any, *, source: str | None = None) -> str:
    """The calendar name, or a ConfigError naming ``dataset.calendar``."""
    if name in (CAL_24_7, CAL_WEEKDAYS, CAL_24_5):
        return str(name)
    if not isinstance(name, str) or not _EXCHANGE_RE.fullmatch(name):
        raise ConfigError("CALENDAR_UNKNOWN", f"dataset.calendar {name!r} is not '24/7', 'weekdays', '24/5' or an "
                          "exchange code such as 'XNYS'", path=source, field="dataset.calendar")
    _exchange_module(name, source)
    return name


def _exchange_module(name: str, source: str | None) -> Any:
    try:
        import exchange_calendars as xc  # slow import: only when an exchange is named
    except ImportError:
        raise ConfigError("CALENDAR_UNAVAILABLE", f"dataset.calendar {name!r} needs the exchange-calendars "
                          "package", path=source, field="dataset.calendar",
                          hint="pip install 'treasure[calendars]' (or use '24/7' / 'weekdays')") from None
    if name not in xc.get_calendar_names(include_aliases=True):
        raise ConfigError("CALENDAR_UNKNOWN", f"dataset.calendar {name!r} is not an exchange that "
                          "exchange-calendars knows", path=source, field="dataset.calendar",
                          hint="use an ISO 10383 MIC such as XNYS, XNAS, XLON, XTKS, or '24/7' / 'weekdays'")
    return xc


@dataclass(frozen=True, slots=True)
class Sessions:
    """Trading sessions as sorted, disjoint half-open UTC ranges ``[opens[i], closes[i])`` in ms."""

    opens: npt.NDArray[np.int64]
    closes: npt.NDArray[np.int64]
    #: calendar days (UTC, ms at midnight) holding at least one session, for sessions-per-year
    labels: npt.NDArray[np.int64]


def _day_floor(t_ms: int) -> int:
    return (t_ms // DAY_MS) * DAY_MS


def sessions(name: str, first_ms: int, last_ms: int) -> Sessions | None:
    """The sessions of ``name`` covering ``[first_ms, last_ms]`` with a week of margin each side;
    None for ``24/7`` (always open)."""
    if name == CAL_24_7:
        return None
    start = _day_floor(first_ms) - WEEK_MS
    end = _day_floor(last_ms) + WEEK_MS
    if name == CAL_WEEKDAYS:
        days = np.arange(start // DAY_MS, end // DAY_MS + 1, dtype=np.int64)
        days = days[(days + _EPOCH_WEEKDAY) % 7 < 5]
        opens = days * DAY_MS
        return Sessions(opens, opens + DAY_MS, opens)
    if name == CAL_24_5:
        return fx_sessions(start, end)
    return _exchange_sessions(name, start, end)


def _nth_sunday(year: int, month: int, n: int) -> _dt.date:
    """The n-th Sunday of a month (n = -1: the last)."""
    if n > 0:
        first = _dt.date(year, month, 1)
        return first + _dt.timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))
    nxt = _dt.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - _dt.timedelta(days=1)
    return last - _dt.timedelta(days=(last.weekday() + 1) % 7)


@functools.lru_cache(maxsize=256)
def _us_dst(year: int) -> tuple[_dt.date, _dt.date] | None:
    """[start, end) dates of US daylight saving time (both Sundays; at 17:00 local, DST is on from
    the start Sunday and off on the end Sunday). 2007-: second Sunday of March to first Sunday of
    November; 1987-2006: first Sunday of April to last Sunday of October; 1967-1986: last Sunday
    of April to last Sunday of October; None (standard time all year) before 1967."""
    if year >= 2007:
        return _nth_sunday(year, 3, 2), _nth_sunday(year, 11, 1)
    if year >= 1987:
        return _nth_sunday(year, 4, 1), _nth_sunday(year, 10, -1)
    if year >= 1967:
        return _nth_sunday(year, 4, -1), _nth_sunday(year, 10, -1)
    return None


def ny_five_pm_utc_ms(day: int) -> int:
    """17:00 New York time on UTC day number ``day`` (days since 1970-01-01), in UTC ms: 21:00 UTC
    under daylight saving time, 22:00 UTC otherwise."""
    date = _dt.date(1970, 1, 1) + _dt.timedelta(days=day)
    dst = _us_dst(date.year)
    summer = dst is not None and dst[0] <= date < dst[1]
    return day * DAY_MS + (21 if summer else 22) * HOUR_MS


def fx_sessions(start_ms: int, end_ms: int) -> Sessions:
    """The FX weeks (Sunday 17:00 to Friday 17:00 New York) overlapping ``[start_ms, end_ms]``;
    labels are the trading days Monday to Friday (00:00 UTC) for sessions per year."""
    first = start_ms // DAY_MS
    sunday = first - (first + _EPOCH_WEEKDAY + 1) % 7  # the Sunday on or before day ``first``
    last = end_ms // DAY_MS
    opens: list[int] = []
    closes: list[int] = []
    labels: list[int] = []
    while sunday <= last:
        opens.append(ny_five_pm_utc_ms(sunday))
        closes.append(ny_five_pm_utc_ms(sunday + 5))
        labels.extend((sunday + k) * DAY_MS for k in range(1, 6))
        sunday += 7
    return Sessions(np.array(opens, dtype=np.int64), np.array(closes, dtype=np.int64),
                    np.array(labels, dtype=np.int64))


@functools.lru_cache(maxsize=16)
def _exchange_sessions(name: str, start_ms: int, end_ms: int) -> Sessions:
    with warnings.catch_warnings():  # the library's own pandas deprecation notices
        warnings.simplefilter("ignore")
        return _exchange_sessions_uncached(name, start_ms, end_ms)


def _exchange_sessions_uncached(name: str, start_ms: int, end_ms: int) -> Sessions:
    xc = _exchange_module(name, None)
    import pandas as pd

    def day(ms: int) -> str:
        return (_dt.date(1970, 1, 1) + _dt.timedelta(days=ms // DAY_MS)).isoformat()

    cal_cls = type(xc.get_calendar(name))  # the class knows its supported bounds
    bound_start = getattr(cal_cls, "bound_min", lambda: None)()
    lo = day(start_ms)
    if bound_start is not None and pd.Timestamp(lo) < pd.Timestamp(bound_start):
        lo = pd.Timestamp(bound_start).strftime("%Y-%m-%d")
    try:
        cal = xc.get_calendar(name, start=lo, end=day(end_ms))
        sched = cal.schedule
    except Exception as exc:  # the library's own range errors: say which dates, not a traceback
        raise ConfigError("CALENDAR_RANGE", f"calendar {name} cannot cover {lo}..{day(end_ms)}: {exc}",
                          field="dataset.calendar") from None

    def ms(column: str) -> npt.NDArray[np.int64]:
        values = pd.DatetimeIndex(sched[column]).tz_convert("UTC").tz_localize(None)
        return np.asarray(values.as_unit("ms").asi8, dtype=np.int64)

    opens, closes = ms("open"), ms("close")
    labels = np.asarray(pd.DatetimeIndex(sched.index).as_unit("ms").asi8, dtype=np.int64)
    if "break_start" in sched.columns and bool(sched["break_start"].notna().any()):
        has_break = np.asarray(sched["break_start"].notna())
        b_start = np.where(has_break, ms_fill(sched["break_start"], pd), 0)
        b_end = np.where(has_break, ms_fill(sched["break_end"], pd), 0)
        parts_o: list[int] = []
        parts_c: list[int] = []
        for o, c, hb, bs, be in zip(opens.tolist(), closes.tolist(), has_break.tolist(), b_start.tolist(),
                                    b_end.tolist()):
            if hb:
                parts_o += [o, be]
                parts_c += [bs, c]
            else:
                parts_o.append(o)
                parts_c.append(c)
        opens = np.array(parts_o, dtype=np.int64)
        closes = np.array(parts_c, dtype=np.int64)
    return Sessions(opens, closes, labels)


def ms_fill(column: Any, pd: Any) -> npt.NDArray[np.int64]:
    """A datetime column with NaT as UTC ms (NaT -> 0)."""
    values = pd.DatetimeIndex(column)
    out = np.zeros(len(values), dtype=np.int64)
    mask = ~values.isna()
    out[mask] = values[mask].tz_convert("UTC").tz_localize(None).as_unit("ms").asi8
    return out


def _merged(s: Sessions) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Sessions that touch (Friday's close is Saturday's open for nobody, but Monday's close is
    Tuesday's open under ``weekdays``) merged, so a slot spanning the seam counts once."""
    opens, closes = s.opens, s.closes
    if opens.shape[0] < 2:
        return opens, closes
    starts = np.ones(opens.shape[0], dtype=bool)
    starts[1:] = opens[1:] > closes[:-1]
    idx = np.flatnonzero(starts)
    ends = np.append(idx[1:] - 1, opens.shape[0] - 1)
    return opens[idx], closes[ends]


def missing_in_sessions(a: int, b: int, interval: int, opens: npt.NDArray[np.int64],
                        closes: npt.NDArray[np.int64], *, lead: int | None = None) -> tuple[int, int | None]:
    """Bar slots ``a + k*interval`` (k >= 1, slot < b) in a session: (count, first slot).

    A slot ``s`` counts when ``o - lead < s < c`` for a session ``[o, c)``: ``lead`` = the interval
    (the default) counts every slot overlapping the session; ``lead`` = 1 only slots starting inside
    it (``24/5``)."""
    lead = interval if lead is None else lead
    k_max = -(-(b - a) // interval) - 1  # last k with a + k*interval < b
    if k_max < 1:
        return 0, None
    lo = int(np.searchsorted(closes, a, side="right"))  # first session closing after a
    hi = int(np.searchsorted(opens, b, side="left"))  # sessions opening before b
    count = 0
    first: int | None = None
    for j in range(lo, hi):
        o, c = int(opens[j]), int(closes[j])
        # slot s counts iff o - lead < s < c
        k_lo = max(1, (o - lead - a) // interval + 1)
        k_hi = min(k_max, -(-(c - a) // interval) - 1)
        if k_hi >= k_lo:
            if first is None:
                first = a + k_lo * interval
            count += k_hi - k_lo + 1
    return count, first


def calendar_gaps(t_ms: npt.NDArray[np.int64], interval_ms: int, name: str) -> list[tuple[int, int, int]]:
    """(bar_idx, first missing slot, missing bars) for every gap under calendar ``name``
    (not ``24/7``: the loader's own step test is that calendar)."""
    if t_ms.shape[0] < 2:
        return []
    sess = sessions(name, int(t_ms[0]), int(t_ms[-1]))
    assert sess is not None
    opens, closes = _merged(sess)
    lead = 1 if name == CAL_24_5 else interval_ms
    candidates = np.flatnonzero(np.diff(t_ms) > interval_ms) + 1
    found: list[tuple[int, int, int]] = []
    for i in candidates.tolist():
        count, first = missing_in_sessions(int(t_ms[i - 1]), int(t_ms[i]), interval_ms, opens, closes, lead=lead)
        if count and first is not None:
            found.append((i, first, count))
    return found


def bars_per_session(sess: Sessions, interval_ms: int) -> int:
    """Bars in the most common session length (a lunch break splits a session in two ranges)."""
    if interval_ms >= DAY_MS:
        return 1
    day_of = sess.opens // DAY_MS
    lengths: dict[int, int] = {}
    for d, o, c in zip(day_of.tolist(), sess.opens.tolist(), sess.closes.tolist()):
        lengths[d] = lengths.get(d, 0) + (-(-(c - o) // interval_ms))
    values, counts = np.unique(np.array(sorted(lengths.values()), dtype=np.int64), return_counts=True)
    return int(values[int(np.argmax(counts))]) if values.shape[0] else 1


def sessions_per_year(name: str, first_ms: int, last_ms: int) -> int:
    """Mean sessions per calendar year over the whole years the data touches, rounded."""
    if name in (CAL_WEEKDAYS, CAL_24_5):
        return WEEKDAY_SESSIONS_PER_YEAR
    y0 = (_dt.date(1970, 1, 1) + _dt.timedelta(days=first_ms // DAY_MS)).year
    y1 = (_dt.date(1970, 1, 1) + _dt.timedelta(days=last_ms // DAY_MS)).year
    start = (_dt.date(y0, 1, 1) - _dt.date(1970, 1, 1)).days * DAY_MS
    end = (_dt.date(y1, 12, 31) - _dt.date(1970, 1, 1)).days * DAY_MS
    sess = sessions(name, start + WEEK_MS, end - WEEK_MS)  # sessions() adds a week each side back
    assert sess is not None
    labels = sess.labels[(sess.labels >= start) & (sess.labels <= end)]
    # the library may not reach back to Jan 1 of the first year: count only years it covers fully
    years = {(_dt.date(1970, 1, 1) + _dt.timedelta(days=int(v) // DAY_MS)).year for v in labels.tolist()}
    if not years:
        raise ConfigError("CALENDAR_RANGE", f"calendar {name} has no sessions in {y0}..{y1}",
                          field="dataset.calendar")
    counts: dict[int, int] = {}
    for v in labels.tolist():
        yr = (_dt.date(1970, 1, 1) + _dt.timedelta(days=v // DAY_MS)).year
        counts[yr] = counts.get(yr, 0) + 1
    full = [counts[y] for y in sorted(counts) if counts[y] >= 200] or [max(counts.values())]
    return int(math.floor(sum(full) / len(full) + 0.5))


def annualization(name: str, interval_ms: int | None, first_ms: int, last_ms: int,
                  override: float | None = None) -> Annualization:
    """Periods per year for Sharpe-type metrics: the SSOT's override, else from the calendar."""
    if override is not None:
        return Annualization("metrics.periods_per_year", float(override))
    interval = int(interval_ms) if interval_ms else DAY_MS
    if name == CAL_24_7:
        return Annualization(f"calendar:{CAL_24_7}", 365 * DAY_MS / interval)
    per_year = sessions_per_year(name, first_ms, last_ms)
    if name in (CAL_WEEKDAYS, CAL_24_5):
        per_session = 1 if interval >= DAY_MS else -(-DAY_MS // interval)
    else:
        sess = sessions(name, first_ms, last_ms)
        assert sess is not None
        per_session = bars_per_session(sess, interval)
    return Annualization(f"calendar:{name}", float(per_year * per_session))


def annualization_for(ssot: Any, interval_ms: int | None, first_ms: int, last_ms: int) -> Annualization:
    """The annualisation a run on this SSOT (a mapping, e.g. ``run_start.payload.ssot``) and data
    uses: ``metrics.periods_per_year`` if set, else ``dataset.calendar`` (default ``24/7``)."""
    override = (ssot.get("metrics") or {}).get("periods_per_year")
    name = (ssot.get("dataset") or {}).get("calendar", CAL_24_7)
    return annualization(name, interval_ms, first_ms, last_ms, override)
