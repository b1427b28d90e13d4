"""The ``24/5`` calendar: the FX week, Sunday 17:00 to Friday 17:00 New York, no holidays."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from treasure.data.calendar import annualization, calendar_gaps, check_calendar, fx_sessions, sessions_per_year
from treasure.workspace import Workspace

Cli = Callable[..., tuple[int, str, str]]
HOUR, DAY = 3_600_000, 86_400_000


def ms(text: str) -> int:
    stamp = dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
    return int(stamp.timestamp()) * 1000


def iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M %a")


def eurusd_t() -> np.ndarray:
    import pandas as pd
    from backtesting.test import EURUSD

    return np.asarray(pd.DatetimeIndex(EURUSD.index).as_unit("ms").asi8, dtype=np.int64)


def test_eurusd_hourly_has_no_weekend_gaps_only_christmas_and_new_year() -> None:
    t = eurusd_t()
    assert len(calendar_gaps(t, HOUR, "weekdays")) == 42  # every weekend's Sunday evening
    gaps = calendar_gaps(t, HOUR, "24/5")
    assert [(iso(first), count) for _, first, count in gaps] == [
        ("2017-12-24 22:00 Sun", 24), ("2017-12-31 22:00 Sun", 24)]  # closed days: no holidays in 24/5


@pytest.mark.parametrize("sunday, opens_utc", [
    ("2017-04-23", "21:00"),  # New York on daylight saving time
    ("2017-11-05", "22:00"),  # DST ended at 02:00 that Sunday: 17:00 is standard time
    ("2018-03-11", "21:00"),  # DST began at 02:00 that Sunday
    ("2018-01-07", "22:00"),
    ("2005-10-30", "22:00"),  # 1987-2006 rules: DST ended on the last Sunday of October
    ("2005-10-23", "21:00"),
])
def test_the_week_opens_sunday_17_00_new_york(sunday: str, opens_utc: str) -> None:
    start = ms(f"{sunday}T00:00:00")
    s = fx_sessions(start, start)
    (i,) = [k for k, o in enumerate(s.opens.tolist()) if iso(o).startswith(sunday)]
    assert iso(int(s.opens[i])) == f"{sunday} {opens_utc} Sun"
    friday = (dt.date.fromisoformat(sunday) + dt.timedelta(days=5)).isoformat()
    assert iso(int(s.closes[i])).startswith(f"{friday} ") and iso(int(s.closes[i])).endswith(" Fri")


def hourly_week(sunday: str, open_h: int, close_h: int) -> list[int]:
    start = ms(f"{sunday}T{open_h:02d}:00:00")
    end = start + 5 * DAY - (open_h - close_h) * HOUR
    return list(range(start, end, HOUR))


def test_a_bar_missing_inside_the_week_is_a_gap_and_friday_evening_is_not() -> None:
    week = hourly_week("2018-01-07", 22, 22) + hourly_week("2018-01-14", 22, 22)
    assert week[0] == ms("2018-01-07T22:00:00") and iso(week[119]) == "2018-01-12 21:00 Fri"
    assert calendar_gaps(np.array(week, dtype=np.int64), HOUR, "24/5") == []
    holed = np.array(week[:50] + week[53:], dtype=np.int64)
    assert calendar_gaps(holed, HOUR, "24/5") == [(50, week[50], 3)]
    # a week that stops early on Friday (the last bar 20:00, winter close 22:00): one missing bar
    short = np.array(week[:119] + week[120:], dtype=np.int64)
    assert calendar_gaps(short, HOUR, "24/5") == [(119, week[119], 1)]


@pytest.mark.parametrize("hour", [0, 22])
def test_daily_fx_bars_at_midnight_or_at_the_roll_hold_no_weekend_gap(hour: int) -> None:
    # Monday-Friday at 00:00 UTC, or Sunday-Thursday at the 22:00 UTC roll (winter)
    first = ms(f"2018-01-{8 if hour == 0 else 7:02d}T{hour:02d}:00:00")
    days = [first + (w * 7 + d) * DAY for w in range(4) for d in range(5)]
    t = np.array(days, dtype=np.int64)
    assert calendar_gaps(t, DAY, "24/5") == []
    assert [(i, n) for i, _, n in calendar_gaps(np.delete(t, 7), DAY, "24/5")] == [(7, 1)]


def test_annualisation_is_260_days_of_24_hours() -> None:
    assert sessions_per_year("24/5", ms("2017-04-19T09:00:00"), ms("2018-02-07T15:00:00")) == 260
    for interval, per_year in ((HOUR, 6240.0), (DAY, 260.0), (60_000, 374_400.0), (4 * HOUR, 1560.0)):
        a = annualization("24/5", interval, 0, 10 * 365 * DAY)
        assert (a.source, a.periods_per_year) == ("calendar:24/5", per_year)


def test_the_name_is_accepted_by_the_calendar_check_and_the_ssot_schema(workspace: Workspace) -> None:
    from treasure.config import load_config

    assert check_calendar("24/5") == "24/5"
    doc = json.loads(workspace.ssot_path.read_text())
    doc["dataset"]["calendar"] = "24/5"
    workspace.ssot_path.write_text(json.dumps(doc))
    config = load_config(workspace.ssot_path, workspace.config_schema_path)
    assert config.section("dataset")["calendar"] == "24/5"


def test_import_of_eurusd_hourly_suggests_24_5(tmp_path: Path, workspace: Workspace, cli: Cli) -> None:
    from backtesting.test import EURUSD

    src = tmp_path / "EURUSD.csv"
    EURUSD.to_csv(src)
    code, out, err = cli("data", "import", src, "-w", workspace.root)
    assert code == 0, err
    assert "calendar 24/5" in out and "gaps under it: 2" in out
    assert json.loads(workspace.ssot_path.read_text())["dataset"]["calendar"] == "24/5"
