"""``treasure rotate``: split event logs over the size limit into parts, chain intact."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.cli.types import megabytes
from treasure.ops import DEFAULT_MAX_MB
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "rotate", parents=[common], help="rotate event logs over --max-mb into run_<id>.jsonl.<N> parts",
        description="Cuts each finished live log over the limit at line boundaries into rotated parts "
        "(oldest first) and a smaller live file; bytes are copied, never rewritten, so the hash chain "
        "and the events gate hold across parts. Open logs (no run_end) are skipped unless --include-open.")
    parser.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs to rotate (default: all)")
    parser.add_argument("--max-mb", type=megabytes, default=DEFAULT_MAX_MB, metavar="MB",
                        help=f"size limit per file (default {DEFAULT_MAX_MB:g})")
    parser.add_argument("--include-open", action="store_true",
                        help="also rotate logs without run_end (only if no run is writing them)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops import rotate

    ws = Workspace.at(args.workspace)
    results = rotate.rotate(ws, rotate.max_bytes_from_mb(args.max_mb), args.run_ids or None,
                            include_open=args.include_open)
    lines = []
    for r in results:
        if r.action.endswith("rotated"):
            lines.append(f"{r.run_id}: {r.action} into {len(r.parts)} part(s); live file now {r.live_bytes:,} bytes")
        elif r.action == "skipped":
            lines.append(f"{r.run_id}: skipped ({r.reason})")
    rotated = sum(1 for r in results if r.action.endswith("rotated"))
    lines.append(f"{rotated} log(s) rotated, {len(results) - rotated} left as they are (limit {args.max_mb:g} MB)")
    emit(args, "\n".join(lines), {"max_mb": args.max_mb, "results": [r.to_dict() for r in results]})
    return 0
