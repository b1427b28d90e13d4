"""``treasure data import``: common OHLCV files become pinned workspace datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from treasure.data import load_dataset
from treasure.workspace import Workspace

Cli = Callable[..., tuple[int, str, str]]


def goog_csv() -> Path:
    import backtesting.test

    return Path(backtesting.test.__file__).parent / "GOOG.csv"


def ssot(ws: Workspace) -> dict:
    return json.loads(ws.ssot_path.read_text())


def test_backtesting_goog_csv_imports_pins_and_runs_without_weekend_gaps(workspace: Workspace, cli: Cli) -> None:
    lock_before = (workspace.root / "spec" / "ssot.lock").read_bytes()
    code, out, err = cli("data", "import", goog_csv(), "-w", workspace.root, "--calendar", "XNYS", "--name", "goog")
    assert code == 0, err
    assert "ssot approve" in out and "not approved" in out
    ds = ssot(workspace)["dataset"]
    assert ds["path"] == "fixtures/data/goog.csv" and ds["interval_ms"] == 86_400_000 and ds["calendar"] == "XNYS"
    loaded = load_dataset(workspace.root / ds["path"], interval_ms=ds["interval_ms"], calendar="XNYS")
    assert loaded.sha256 == ds["sha256"] and len(loaded) == 2148 and loaded.gaps == ()
    assert float(loaded.bars.close[0]) == 100.34 and int(loaded.bars.t_ms[0]) == 1_092_873_600_000  # 2004-08-19
    assert (workspace.root / "spec" / "ssot.lock").read_bytes() == lock_before  # import does not approve
    code, _out, err = cli("run", "-w", workspace.root, "--quiet", "--run-id", "goog")
    assert code == 0, err
    log = workspace.event_log("goog").read_text()
    assert "data_gap_detected" not in log


def test_daily_weekday_data_suggests_weekdays_and_names_an_exchange(workspace: Workspace, cli: Cli) -> None:
    code, out, _ = cli("data", "import", goog_csv(), "-w", workspace.root)
    assert code == 0
    assert ssot(workspace)["dataset"]["calendar"] == "weekdays"
    assert "--calendar XNYS" in out


def test_prices_keep_every_digit(tmp_path: Path, workspace: Workspace, cli: Cli) -> None:
    src = tmp_path / "fx.csv"
    src.write_text("Date,Open,High,Low,Close,Volume\n2017-04-19 09:00:00,1.0716,1.0722,1.07083,1.07219,1413\n"
                   "2017-04-19 10:00:00,1.07214,1.07296,1.07214,1.0726,1241\n")
    assert cli("data", "import", src, "-w", workspace.root)[0] == 0
    ds = ssot(workspace)["dataset"]
    bars = load_dataset(workspace.root / ds["path"]).bars
    assert bars.low.tolist() == [1.07083, 1.07214] and ds["interval_ms"] == 3_600_000


@pytest.mark.parametrize("unit,scale", [("s", 1), ("us", 1_000_000), ("ns", 1_000_000_000)])
def test_epoch_numbers_in_any_unit(tmp_path: Path, workspace: Workspace, cli: Cli, unit: str, scale: int) -> None:
    src = tmp_path / "epoch.csv"
    rows = "".join(f"{(1_767_225_600 + 60 * i) * scale},10,11,9,10.5,5\n" for i in range(5))
    src.write_text("timestamp,open,high,low,close,volume\n" + rows)
    code, _, err = cli("data", "import", src, "-w", workspace.root, "--time-unit", unit)
    assert code == 0, err
    bars = load_dataset(workspace.root / ssot(workspace)["dataset"]["path"]).bars
    assert bars.t_ms.tolist()[:2] == [1_767_225_600_000, 1_767_225_660_000]
    # without --time-unit the magnitude decides, and says so
    code, out, _ = cli("data", "import", src, "-w", workspace.root, "--name", f"auto_{unit}")
    assert code == 0 and f"epoch {unit}" in out


def test_timezone_of_naive_dates(tmp_path: Path, workspace: Workspace, cli: Cli) -> None:
    src = tmp_path / "ny.csv"
    src.write_text("Datetime,Open,High,Low,Close\n2024-01-02 09:30,1,2,1,2\n2024-01-02 09:31,1,2,1,2\n")
    assert cli("data", "import", src, "-w", workspace.root, "--tz", "America/New_York")[0] == 0
    bars = load_dataset(workspace.root / ssot(workspace)["dataset"]["path"]).bars
    assert int(bars.t_ms[0]) == 1_704_205_800_000  # 14:30 UTC
    assert bars.volume.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("body,line,column", [
    ("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,1,2,3\n2024-01-03,1,x2,1,2,3\n", 3, "High"),
    ("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,1,2,3\nnot-a-date,1,2,1,2,3\n", 3, "Date"),
    ("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,1,2,3\n2024-01-03,1,2,1,2\n", 3, None),
    ("When,Open,High,Low,Close,Volume\n2024-01-02,1,2,1,2,3\n", 1, None),
    ("Date,Open,High,Low,Volume\n2024-01-02,1,2,1,3\n", 1, "close"),
])
def test_unparseable_files_are_coded_errors_naming_line_and_column(
        tmp_path: Path, workspace: Workspace, cli: Cli, body: str, line: int, column: str | None) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(body)
    before = workspace.ssot_path.read_bytes()
    code, _, err = cli("data", "import", src, "-w", workspace.root)
    assert code == 2 and "error[DATA_IMPORT]" in err and "Traceback" not in err
    assert f"bad.csv:{line}" in err
    if column:
        assert f"field {column}" in err
    assert workspace.ssot_path.read_bytes() == before


def test_ohlc_breaks_keep_the_source_line(tmp_path: Path, workspace: Workspace, cli: Cli) -> None:
    src = tmp_path / "ohlc.csv"
    src.write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,1,2,3\n2024-01-03,1,2,1,5,3\n")
    code, _, err = cli("data", "import", src, "-w", workspace.root)
    assert code == 2 and "error[DATA_OHLC]" in err and "ohlc.csv:3" in err


def test_an_existing_dataset_with_other_bars_is_not_replaced_without_force(
        tmp_path: Path, workspace: Workspace, cli: Cli) -> None:
    src = tmp_path / "default_bars.csv"
    src.write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,1,2,3\n2024-01-03,1,2,1,2,3\n")
    code, _, err = cli("data", "import", src, "-w", workspace.root)
    assert code == 2 and "error[DATA_IMPORT_EXISTS]" in err
    assert cli("data", "import", src, "-w", workspace.root, "--force")[0] == 0


def test_parquet_with_a_datetime_index(tmp_path: Path, workspace: Workspace, cli: Cli) -> None:
    from backtesting.test import GOOG

    src = tmp_path / "goog.parquet"
    GOOG.iloc[:50].to_parquet(src)
    code, _, err = cli("data", "import", src, "-w", workspace.root, "--calendar", "XNYS")
    assert code == 0, err
    csv_copy = tmp_path / "goog50.csv"
    GOOG.iloc[:50].to_csv(csv_copy)
    assert cli("data", "import", csv_copy, "-w", workspace.root, "--calendar", "XNYS")[0] == 0
    a = load_dataset(workspace.root / "fixtures/data/goog.csv").bars
    b = load_dataset(workspace.root / "fixtures/data/goog50.csv").bars
    assert a == b and len(a) == 50
