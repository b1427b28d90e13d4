"""Trading calendars: only a bar missing inside a session is a gap; a year is the calendar's.

Before calendars every step longer than one interval was a gap (GOOG daily: 463 gaps, one per
weekend and holiday) and every Sharpe assumed 365 trading days.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from treasure.data import bars_to_csv, load_dataset
from treasure.data.bars import Bars
from treasure.data.calendar import annualization, annualization_for, calendar_gaps, check_calendar
from treasure.data.dataset import find_gaps
from treasure.errors import ConfigError, DataError
from treasure.workspace import Workspace, pin_dataset

DAY = 86_400_000
HOUR = 3_600_000


def ms(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return int(dt.datetime(y, m, d, hh, mm, tzinfo=dt.timezone.utc).timestamp() * 1000)


def days(*dates: tuple[int, int, int]) -> np.ndarray:
    return np.array([ms(*d) for d in dates], dtype=np.int64)


def weekdays_between(start: dt.date, end: dt.date, skip: tuple[dt.date, ...] = ()) -> np.ndarray:
    out = []
    d = start
    while d <= end:
        if d.weekday() < 5 and d not in skip:
            out.append(ms(d.year, d.month, d.day))
        d += dt.timedelta(days=1)
    return np.array(out, dtype=np.int64)


# -- gaps -----------------------------------------------------------------------------------------

def test_daily_weekday_bars_have_no_gaps_under_weekdays_but_one_per_weekend_under_24_7() -> None:
    t = weekdays_between(dt.date(2024, 1, 1), dt.date(2024, 3, 29))  # 13 weekends
    assert len(find_gaps(t, DAY)) == 12  # the old behaviour: every weekend is a gap
    assert find_gaps(t, DAY, "weekdays") == ()


def test_a_missing_weekday_is_a_gap_naming_the_missing_bar() -> None:
    wednesday = dt.date(2024, 1, 10)
    t = weekdays_between(dt.date(2024, 1, 1), dt.date(2024, 1, 31), skip=(wednesday,))
    gaps = find_gaps(t, DAY, "weekdays")
    assert len(gaps) == 1
    assert gaps[0].expected_t_ms == ms(2024, 1, 10) and gaps[0].missing_bars == 1
    assert gaps[0].actual_t_ms == ms(2024, 1, 11)


def test_xnys_daily_holidays_are_not_gaps_but_a_missing_session_is() -> None:
    # Christmas 2013 and New Year 2014 are XNYS holidays: no bars those days is correct.
    holidays = (dt.date(2013, 12, 25), dt.date(2014, 1, 1))
    t = weekdays_between(dt.date(2013, 12, 16), dt.date(2014, 1, 10), skip=holidays)
    assert len(find_gaps(t, DAY, "weekdays")) == 2  # a weekday calendar does not know holidays
    assert find_gaps(t, DAY, "XNYS") == ()
    lost = dt.date(2014, 1, 7)
    t2 = weekdays_between(dt.date(2013, 12, 16), dt.date(2014, 1, 10), skip=holidays + (lost,))
    gaps = find_gaps(t2, DAY, "XNYS")
    assert [(g.expected_t_ms, g.missing_bars) for g in gaps] == [(ms(2014, 1, 7), 1)]


def test_xnys_intraday_overnight_is_not_a_gap_and_an_early_close_is_respected() -> None:
    # 2013-11-27 (Wed) full day, 28 Thanksgiving (closed), 29 early close at 13:00 ET = 18:00 UTC.
    t = [ms(2013, 11, 27, 14, 30) + k * HOUR for k in range(7)]  # 14:30 .. 20:30 UTC
    t += [ms(2013, 11, 29, 14, 30) + k * HOUR for k in range(4)]  # 14:30 .. 17:30 UTC
    t += [ms(2013, 12, 2, 14, 30) + k * HOUR for k in range(7)]  # Monday
    arr = np.array(t, dtype=np.int64)
    assert len(find_gaps(arr, HOUR)) == 2
    assert find_gaps(arr, HOUR, "XNYS") == ()
    dropped = np.delete(arr, 3)  # 17:30 on the 27th
    gaps = find_gaps(dropped, HOUR, "XNYS")
    assert [(g.bar_idx, g.expected_t_ms, g.missing_bars) for g in gaps] == [(3, ms(2013, 11, 27, 17, 30), 1)]


def test_a_long_hole_counts_only_in_session_bars_without_walking_the_slots() -> None:
    # a minute-bar series with four weeks missing: 20 weekdays * 1440 bars, computed not iterated
    t = np.array([ms(2024, 1, 5, 23, 59), ms(2024, 2, 5, 0, 0)], dtype=np.int64)
    found = calendar_gaps(t, 60_000, "weekdays")
    assert found == [(1, ms(2024, 1, 8), 20 * 1440)]


def test_unknown_calendar_is_a_coded_error() -> None:
    with pytest.raises(ConfigError) as exc:
        check_calendar("XXXX")
    assert exc.value.code == "CALENDAR_UNKNOWN" and exc.value.field == "dataset.calendar"
    with pytest.raises(ConfigError) as exc2:
        check_calendar("mon-fri")
    assert exc2.value.code == "CALENDAR_UNKNOWN"
    assert check_calendar("XNYS") == "XNYS" and check_calendar("24/7") == "24/7"


# -- annualisation ---------------------------------------------------------------------------------

def test_24_7_annualisation_is_the_pre_calendar_one() -> None:
    a = annualization("24/7", 300_000, ms(2026, 1, 1), ms(2026, 2, 1))
    assert a.periods_per_year == 365 * DAY / 300_000 and a.source == "calendar:24/7"


def test_exchange_annualisation_is_sessions_per_year_times_bars_per_session() -> None:
    first, last = ms(2004, 8, 19), ms(2013, 3, 1)
    assert annualization("XNYS", DAY, first, last).periods_per_year == 252.0
    hourly = annualization("XNYS", HOUR, first, last)  # 6.5 h sessions: 7 hourly bars from 14:30
    assert hourly.periods_per_year == 252.0 * 7 and hourly.source == "calendar:XNYS"
    assert annualization("weekdays", DAY, first, last).periods_per_year == 260.0
    assert annualization("weekdays", HOUR, first, last).periods_per_year == 260.0 * 24


def test_override_wins_and_says_so() -> None:
    ssot = {"dataset": {"calendar": "XNYS"}, "metrics": {"periods_per_year": 250}}
    a = annualization_for(ssot, DAY, ms(2010, 1, 4), ms(2011, 1, 4))
    assert a.to_dict() == {"source": "metrics.periods_per_year", "periods_per_year": 250.0}
    assert annualization_for({"dataset": {}}, DAY, 0, DAY).source == "calendar:24/7"


# -- the engine -------------------------------------------------------------------------------------

def _daily_bars(t: np.ndarray) -> Bars:
    n = len(t)
    close = 100.0 + np.round(np.sin(np.arange(n) / 3.0) * 5.0, 4)
    return Bars(t, close, close + 1.0, close - 1.0, close, np.full(n, 1000.0))


def _calendar_workspace(workspace: Workspace, edit: Callable[[dict[str, Any]], None] | None = None) -> None:
    t = weekdays_between(dt.date(2013, 12, 2), dt.date(2014, 3, 28),
                         skip=(dt.date(2013, 12, 25), dt.date(2014, 1, 1), dt.date(2014, 1, 20),
                               dt.date(2014, 2, 17)))
    pin_dataset(workspace, bars_to_csv(_daily_bars(t)), "fixtures/data/daily.csv", interval_ms=DAY)
    doc = json.loads(workspace.ssot_path.read_text())
    doc["strategy"] = {"name": "sma_crossover", "params": {"fast": 3, "slow": 8, "order_usd": 5000}}
    doc["risk"]["daily_loss_limit_usd"] = 1e6
    doc["dataset"]["calendar"] = "XNYS"
    if edit:
        edit(doc)
    workspace.ssot_path.write_text(json.dumps(doc, indent=2))


def test_run_under_xnys_has_no_weekend_gaps_and_reports_its_annualisation(workspace: Workspace) -> None:
    from treasure.engine import RunRequest, run

    _calendar_workspace(workspace)
    result = run(RunRequest(workspace=workspace, run_id="xnys"))
    assert result.status == "complete", result.error
    log = result.event_log.read_text()
    assert "data_gap_detected" not in log
    assert not [f for f in result.court["findings"] if f["code"] == "DATA_GAP"]
    assert result.court["metrics"]["annualization"] == {"source": "calendar:XNYS", "periods_per_year": 252.0}


def test_run_under_24_7_warns_every_weekend_and_holiday(workspace: Workspace) -> None:
    from treasure.engine import RunRequest, run

    _calendar_workspace(workspace, lambda d: d["dataset"].update(calendar="24/7"))
    result = run(RunRequest(workspace=workspace, run_id="all"))
    gaps = [json.loads(line) for line in result.event_log.read_text().splitlines()
            if '"data_gap_detected"' in line]
    # 16 weekends, and 2 midweek holidays (the two Monday holidays only lengthen a weekend gap)
    assert len(gaps) == 16 + 2
    assert result.court["metrics"]["annualization"]["source"] == "calendar:24/7"


def test_periods_per_year_override_changes_sharpe_by_the_square_root(workspace: Workspace) -> None:
    from treasure.engine import RunRequest, run

    _calendar_workspace(workspace)
    base = run(RunRequest(workspace=workspace, run_id="a")).court["metrics"]
    _calendar_workspace(workspace, lambda d: d.update(metrics={"periods_per_year": 63}))
    over = run(RunRequest(workspace=workspace, run_id="b")).court["metrics"]
    assert over["annualization"] == {"source": "metrics.periods_per_year", "periods_per_year": 63.0}
    assert base["sharpe"] != 0
    assert over["sharpe"] == pytest.approx(base["sharpe"] * (63 / 252) ** 0.5, rel=1e-9)


def test_run_refuses_timestamps_in_seconds_with_a_hint_naming_data_import(
        workspace: Workspace, cli: Callable[..., tuple[int, str, str]]) -> None:
    t = weekdays_between(dt.date(2024, 1, 1), dt.date(2024, 2, 1)) // 1000  # seconds
    pin_dataset(workspace, bars_to_csv(_daily_bars(t)), "fixtures/data/secs.csv", interval_ms=DAY)
    code, _out, err = cli("run", "--workspace", workspace.root, "--quiet")
    assert code == 2
    assert "error[DATA_TIME_UNIT]" in err and "treasure data import" in err and "--time-unit s" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("unit,factor", [("us", 1_000), ("ns", 1_000_000)])
def test_microseconds_and_nanoseconds_are_named_too(tmp_path: Path, unit: str, factor: int) -> None:
    t = weekdays_between(dt.date(2024, 1, 1), dt.date(2024, 1, 12)) * factor
    path = tmp_path / "bars.csv"
    head = "t_ms,open,high,low,close,volume\n"
    path.write_text(head + "".join(f"{v},1,1,1,1,1\n" for v in t.tolist()))
    with pytest.raises(DataError) as exc:
        load_dataset(path)
    assert exc.value.code == "DATA_TIME_UNIT" and exc.value.line == 2
    assert f"--time-unit {unit}" in exc.value.message
