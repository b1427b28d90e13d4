"""``treasure archive``: pack finished event logs into archive/ (deterministic tar.gz + manifest)."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.errors import EXIT_BAD_INPUT
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "archive", parents=[common], help="move finished event logs into archive/*.tar.gz with a SHA-256 manifest",
        description="Packs whole finished logs (every rotated part and the live file) into "
        "archive/events-<digest>.tar.gz, deterministic (same logs, same bytes), with a manifest of "
        "SHA-256s inside and beside it; the originals are removed only after the archive was read back "
        "and matched. `treasure events`, `diagnose` and `report` read archived runs transparently.")
    parser.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs to archive (default: all finished)")
    parser.add_argument("--keep", action="store_true", help="leave the original logs in logs/events/")
    parser.add_argument("--include-open", action="store_true", help="also archive logs without run_end")
    parser.add_argument("--dry-run", action="store_true", help="say what would be archived")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--verify", action="store_true", help="re-hash every archived member against its manifest")
    mode.add_argument("--restore", metavar="RUN_ID", help="copy a run's archived log back into logs/events/")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.ops import archive

    ws = Workspace.at(args.workspace)
    if args.verify:
        entries = archive.load_archives(ws)
        problems = archive.verify_archives(ws)
        members = sum(len(e.members) for e in entries)
        human = "\n".join([f"{len(entries)} archive(s), {members} member(s): "
                           + ("all match their manifests" if not problems else f"{len(problems)} problem(s)")]
                          + [f"  {p}" for p in problems])
        emit(args, human, {"archives": len(entries), "members": members, "problems": problems})
        return EXIT_BAD_INPUT if problems else 0
    if args.restore:
        written = archive.restore(ws, args.restore)
        emit(args, "restored " + ", ".join(written), {"restored": written})
        return 0
    result = archive.pack(ws, args.run_ids or None, keep=args.keep, include_open=args.include_open,
                          dry_run=args.dry_run)
    lines = []
    if result.runs:
        verb = "would archive" if args.dry_run else "archived"
        lines.append(f"{verb} {len(result.runs)} run(s), {result.members} file(s), {result.bytes:,} bytes "
                     f"-> {result.archive}" + ("" if result.created or args.dry_run else " (already there)"))
        if result.removed:
            lines.append(f"  removed {len(result.removed)} original(s) from logs/events/")
    else:
        lines.append("nothing to archive")
    for run_id, why in sorted(result.skipped.items()):
        lines.append(f"  left {run_id}: {why}")
    emit(args, "\n".join(lines), result.to_dict())
    return 0
