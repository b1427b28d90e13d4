"""``treasure events RUN_ID``: the runbook's grep/jq queries over a run's log, streaming.

Reads every segment of the log in chain order (rotated parts, the live file, or the run's members
in archive/), one line in memory; ``--tail`` keeps a bounded window, ``--count-by`` one counter.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from typing import Any, Iterable, Iterator

import orjson

from treasure.cli.output import print_json
from treasure.cli.types import count
from treasure.workspace import Workspace, check_run_id


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "events", parents=[common], help="filter a run's events (category, type, level, time, fields)",
        description="Stream the events of RUN_ID (an id, `latest`, or a shell pattern such as '*' over every "
        "log, recon logs included) through filters. Filters AND together; each option accepts comma lists "
        "and repeats. Times are ts_ms integers or ISO-8601 UTC (--since inclusive, --until exclusive).",
        epilog="examples:\n"
        "  treasure events latest --level ERROR,CRITICAL\n"
        "  treasure events latest --category DATA --field payload.bar_idx\n"
        "  treasure events latest --type 'order_*' --count-by event_type\n"
        "  treasure events '*' --type recon_mismatch --field payload.code\n"
        "  treasure events latest --where 'payload.position_usd>5000' --tail 5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", metavar="RUN_ID", help="run id, `latest`, or a pattern ('*', 'sma_*')")
    parser.add_argument("--category", "-c", action="append", metavar="C", help="SYS, DATA, STRAT, RISK, EXEC, RECON, PERSIST")
    parser.add_argument("--type", "-t", action="append", metavar="T", help="event_type, shell patterns allowed ('order_*')")
    parser.add_argument("--level", "-l", action="append", metavar="L", help="DEBUG, INFO, WARN, ERROR, CRITICAL")
    parser.add_argument("--min-level", metavar="L", help="this level or more severe")
    parser.add_argument("--since", metavar="TS", help="ts_ms or ISO time (inclusive)")
    parser.add_argument("--until", metavar="TS", help="ts_ms or ISO time (exclusive)")
    parser.add_argument("--where", action="append", metavar="EXPR",
                        help="FIELD OP VALUE with OP = != > >= < <= ~ (regex), e.g. payload.duration_ms>1000")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--field", "-f", action="append", metavar="PATH",
                     help="print only this value per event (payload.code); repeat for tab-separated columns")
    out.add_argument("--count-by", metavar="PATH", help="count matches per value of PATH (most frequent first)")
    out.add_argument("--count", action="store_true", help="print the number of matching events")
    out.add_argument("--raw", action="store_true", help="print matching log lines byte for byte (JSONL, for jq)")
    parser.add_argument("--head", type=count, metavar="N", help="only the first N matches")
    parser.add_argument("--tail", type=count, metavar="N", help="only the last N matches")
    parser.set_defaults(handler=handle)


def _run_ids(ws: Workspace, wanted: str) -> list[str]:
    from treasure.ops.archive import archived_run_ids
    from treasure.ops.run_catalog import latest_run_id
    from treasure.ops.segments import require_segments

    if wanted == "latest":
        return [latest_run_id(ws)]
    if any(ch in wanted for ch in "*?["):
        known = sorted(set(ws.run_ids()) | set(archived_run_ids(ws)))
        return [r for r in known if fnmatch.fnmatchcase(r, wanted)]
    check_run_id(wanted)
    require_segments(ws, wanted)
    return [wanted]


def _hits(ws: Workspace, run_ids: list[str], flt: Any, stats: list[tuple[str, Any]]) -> Iterator[Any]:
    from treasure.ops.query import ScanStats, iter_events

    for run_id in run_ids:
        scan = ScanStats()
        stats.append((run_id, scan))
        yield from iter_events(ws, run_id, flt, stats=scan)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops.query import MISSING, EventFilter, count_by, field_path, format_event, render_value, select

    ws = Workspace.at(args.workspace)
    flt = EventFilter.from_options(categories=args.category, types=args.type, levels=args.level,
                                   min_level=args.min_level, since=args.since, until=args.until, where=args.where)
    fields = [field_path(f) for f in args.field or ()]
    group = field_path(args.count_by) if args.count_by else None
    run_ids = _run_ids(ws, args.run_id)
    stats: list[tuple[str, Any]] = []
    hits = select(_hits(ws, run_ids, flt, stats), head=args.head, tail=args.tail)
    out = sys.stdout
    if args.count:
        total = sum(1 for _ in hits)
        print_json({"count": total, "runs": run_ids}) if args.json else out.write(f"{total}\n")
    elif group is not None:
        counts = count_by(hits, group)
        if args.json:
            print_json({"field": args.count_by, "counts": [{"value": v, "count": n} for v, n in counts]})
        else:
            for value, n in counts:
                out.write(f"{n:>8}  {value}\n")
    elif fields:
        if args.json:
            _json_array(out, ((_values(hit, fields)[0] if len(fields) == 1 else _values(hit, fields))
                              for hit in hits if not all(v is MISSING for v in _values(hit, fields))))
        else:
            for hit in hits:
                values = _values(hit, fields)
                if all(v is MISSING for v in values):
                    continue  # like grep before jq: events without the field are not printed
                out.write("\t".join("" if v is MISSING else render_value(v) for v in values) + "\n")
    elif args.raw:
        buffer = out.buffer if hasattr(out, "buffer") else None
        for hit in hits:
            if buffer is not None:
                buffer.write(hit.raw + b"\n")
            else:
                out.write(hit.raw.decode() + "\n")
    elif args.json:
        _json_array(out, (hit.event for hit in hits))
    else:
        for hit in hits:
            out.write(format_event(hit.event, width=200) + "\n")
    out.flush()
    for run_id, scan in stats:
        if scan.truncated_at:
            sys.stderr.write(f"warning: the log of {run_id} ends in a torn line at {scan.truncated_at} "
                             "(the writer was interrupted); it was skipped\n")
        if getattr(scan, "unverified", None):
            sys.stderr.write(f"warning: the log of {run_id} does not verify ({scan.unverified_lines} line(s); "
                             f"first at {scan.unverified}): what is shown may be edited or foreign; check it "
                             "with `treasure verify events`\n")
    if not any(scan.matched for _, scan in stats) and not args.count and not args.json:
        sys.stderr.write(f"no events of {', '.join(run_ids) or args.run_id} match the filters\n")
    return 0


def _values(hit: Any, fields: list[tuple[str, ...]]) -> list[object]:
    from treasure.ops.query import get_path

    return [get_path(hit.event, f) for f in fields]


def _json_array(out: Any, items: Iterable[Any]) -> None:
    """One JSON document, written as it streams (no list of all events in memory)."""
    from treasure.ops.query import MISSING

    out.write("[")
    first = True
    for item in items:
        out.write(("\n  " if first else ",\n  ") + orjson.dumps(
            [None if v is MISSING else v for v in item] if isinstance(item, list) else
            (None if item is MISSING else item), option=orjson.OPT_SORT_KEYS).decode())
        first = False
    out.write("\n]\n" if not first else "]\n")
