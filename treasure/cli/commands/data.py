"""``treasure data import FILE``: a common OHLCV file becomes the workspace's pinned dataset.

Writes ``fixtures/data/<name>.csv`` in Treasure's format and pins its path, SHA-256, interval and
calendar in spec/ssot.json. It does not approve: ``treasure ssot approve`` stays the operator's step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re

from treasure.cli.output import emit
from treasure.errors import DataError, EXIT_OK

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "data", help="import an OHLCV file (CSV/Parquet) as the workspace's dataset and pin it",
        description="Import OHLCV bars into the workspace and pin them in the SSOT (not approved).")
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")
    actions.required = True
    imp = actions.add_parser(
        "import", parents=[common], help="convert FILE to fixtures/data/NAME.csv and pin it in spec/ssot.json",
        description="Convert a Date,Open,High,Low,Close,Volume CSV (any case; an unnamed first column is "
        "the index) or a Parquet file into Treasure's t_ms CSV; infer the interval; suggest a calendar; "
        "pin path, sha256, interval_ms and calendar in spec/ssot.json. `treasure ssot approve` remains "
        "the operator's step.")
    imp.add_argument("file", help="CSV or Parquet file to import")
    imp.add_argument("--format", choices=["csv", "parquet"], default=None,
                     help="file format (default: from the extension; .parquet/.pq is Parquet)")
    imp.add_argument("--time-col", metavar="NAME", default=None,
                     help="time column (default: t_ms, timestamp, time, datetime, date or the unnamed index)")
    imp.add_argument("--time-unit", choices=["s", "ms", "us", "ns"], default=None,
                     help="unit of an epoch-number time column (default: from its magnitude)")
    imp.add_argument("--tz", default=None, metavar="ZONE",
                     help="IANA zone of naive date/times (default UTC), e.g. America/New_York")
    imp.add_argument("--columns", default=None, metavar="O,H,L,C[,V]",
                     help="source column names for open,high,low,close[,volume], in that order")
    imp.add_argument("--name", default=None, help="dataset name: writes fixtures/data/NAME.csv "
                     "(default: the file's stem)")
    imp.add_argument("--calendar", default=None,
                     help="dataset.calendar to pin: 24/7, weekdays, 24/5 (FX: Sunday to Friday 17:00 New York) or an "
                     "exchange code such as XNYS "
                     "(default: suggested from the data)")
    imp.add_argument("--force", action="store_true", help="replace an existing fixtures/data/NAME.csv")
    imp.set_defaults(handler=handle_import)


def handle_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from treasure.data.calendar import check_calendar
    from treasure.data.dataset import find_gaps
    from treasure.data.importer import import_file
    from treasure.workspace import Workspace, pin_dataset

    ws = Workspace.at(args.workspace)
    name = args.name or Path(args.file).stem
    if not _NAME.fullmatch(name):
        raise DataError("CLI_VALUE", f"--name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)",
                        field="--name")
    calendar = check_calendar(args.calendar, source="--calendar") if args.calendar else None
    columns = [c for c in args.columns.split(",")] if args.columns else None
    result = import_file(args.file, fmt=args.format, time_col=args.time_col, time_unit=args.time_unit,
                         tz=args.tz, columns=columns, calendar=calendar)
    if result.interval_ms is None:
        raise DataError("DATA_IMPORT", "cannot infer the bar interval: fewer than two distinct timestamps",
                        path=args.file)
    rel = f"fixtures/data/{name}.csv"
    target = ws.root / rel
    if target.exists() and target.read_bytes() != result.csv and not args.force:
        raise DataError("DATA_IMPORT_EXISTS", f"{rel} exists with other bars", path=rel)
    pin_dataset(ws, result.csv, rel, interval_ms=result.interval_ms)
    doc = json.loads(ws.ssot_path.read_text())
    doc["dataset"]["calendar"] = result.calendar
    from treasure.jsonio import atomic_write_bytes

    atomic_write_bytes(ws.ssot_path, (json.dumps(doc, indent=2) + "\n").encode())
    gaps = find_gaps(result.bars.t_ms, result.interval_ms, result.calendar)
    sha = hashlib.sha256(result.csv).hexdigest()
    n = len(result.bars)
    lines = [f"imported {n} bars from {args.file} -> {rel}",
             f"  interval_ms {result.interval_ms} (inferred)   calendar {result.calendar}   "
             f"gaps under it: {len(gaps)}",
             f"  pinned in {ws.relative(ws.ssot_path)}: dataset.path, sha256 {sha[:12]}…, interval_ms, calendar",
             *(f"  note: {note}" for note in result.notes),
             "  not approved: review it, then `treasure ssot approve` (the operator's step)"]
    emit(args, "\n".join(lines), {"path": rel, "sha256": sha, "bars": n, "interval_ms": result.interval_ms,
                                  "calendar": result.calendar, "gaps": len(gaps), "time_unit": result.time_unit,
                                  "notes": result.notes, "approved": False})
    return EXIT_OK
