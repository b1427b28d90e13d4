"""``treasure db ingest|check|backup|restore|export|restore-log|runs``: the run database, for operators.

Thin wrappers over :mod:`treasure.store`; every failure is a coded error. The DB is ``--db PATH``
or the SSOT's ``persistence.db_path`` (default data/treasure.db).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from treasure.cli.output import emit
from treasure.contracts import Contracts
from treasure.cli.types import add_out_option, out_target
from treasure.errors import EXIT_BAD_INPUT, EXIT_OK, TreasureError
from treasure.store import StoreReader, backup_db, check_store, ingest_log, log_parts, restore_db
from treasure.store.errors import StoreError
from treasure.store.location import db_label, resolve_db
from treasure.workspace import Workspace, check_run_id


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "db", parents=[common], help="the run database: ingest logs, check, back up, restore, export",
        description="The SQLite run database (default: the SSOT's persistence.db_path). Exit 0 ok, "
        "2 bad input or a failed check.")
    db_common = argparse.ArgumentParser(add_help=False, parents=[common])
    db_common.add_argument("--db", metavar="PATH", help="database file (default: SSOT persistence.db_path)")
    sub = parser.add_subparsers(dest="db_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("ingest", parents=[db_common], help="verify an event log and store it (idempotent)",
                       description="Verify an event log (schema, seq, hash chain) and store its events, with "
                       "its reports when found. Ingesting the same log again changes nothing.")
    p.add_argument("logs", nargs="*", metavar="LOG", help="event log file(s) run_<id>.jsonl (rotated parts "
                   "run_<id>.jsonl.N next to it are included)")
    p.add_argument("--run", action="append", default=[], metavar="RUN_ID",
                   help="ingest a run of this workspace by id (its log and reports); repeatable")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--reports", metavar="DIR", help="folder with the run's court_report.json and "
                       "eqs_report.json (default: reports/runs/<id>/ of the workspace)")
    group.add_argument("--no-reports", action="store_true", help="store the events only (run stays 'running')")
    p.set_defaults(handler=handle_ingest)

    p = sub.add_parser("check", parents=[db_common], help="integrity, schema, every run's chain and counts",
                       description="PRAGMA integrity_check, schema version, each run's events complete and "
                       "chained, derived rows equal to their events, reports matching. Exit 2 on any error.")
    p.set_defaults(handler=handle_check)

    p = sub.add_parser("backup", parents=[db_common], help="consistent online copy (SQLite backup API), checked",
                       description="Copy the DB with SQLite's online backup API and check the copy before it "
                       "is renamed into place. The target is -o/--out FILE (or the DEST positional).")
    p.add_argument("dest", metavar="DEST", nargs="?", default=None, help="backup file to write (same as --out)")
    add_out_option(p, help="backup file to write")
    p.add_argument("--overwrite", action="store_true", help="same as --force")
    p.set_defaults(handler=handle_backup)

    p = sub.add_parser("restore", parents=[db_common], help="replace the DB with a checked backup",
                       description="Check SRC, then atomically replace the DB with a copy of it; the old DB is "
                       "kept as <db>.pre-restore. Stop runs writing to the DB first.")
    p.add_argument("src", metavar="SRC", help="backup file to restore")
    p.set_defaults(handler=handle_restore)

    p = sub.add_parser("export", parents=[db_common], help="write a stored run back out as a JSONL event log",
                       description="Rebuild a run's event log from the DB, byte-identical to the original.")
    p.add_argument("run_id", metavar="RUN_ID")
    add_out_option(p, help="JSONL file to write (atomically)", required=True)
    p.set_defaults(handler=handle_export)

    p = sub.add_parser("restore-log", parents=[db_common],
                       help="put a run's missing or broken event log back into logs/events/ from the DB",
                       description="Rebuild RUN_ID's event log from the DB into logs/events/run_<id>.jsonl, only "
                       "when the workspace's log of that run is missing or does not verify. The stored lines are "
                       "verified first (truth/ schemas, hash chain, the DB's hashes, the court report's head "
                       "hash); a broken log is moved to logs/broken/run_<id>.<n>/, never deleted. Exit 0 "
                       "when restored or when nothing needed restoring, 2 when the DB's copy does not match.")
    p.add_argument("run_id", metavar="RUN_ID")
    p.set_defaults(handler=handle_restore_log)

    p = sub.add_parser("runs", parents=[db_common], help="list the stored runs and their status")
    p.set_defaults(handler=handle_runs)


def _workspace(args: argparse.Namespace) -> Workspace:
    # with an explicit --db the db commands also work outside a workspace
    return Workspace.at(args.workspace, must_exist=not getattr(args, "db", None))


def _contracts(ws: Workspace) -> Contracts:
    if ws.truth_dir.is_dir():
        return Contracts(ws.truth_dir)
    from treasure.workspace import bundle_dir

    return Contracts(bundle_dir() / "truth")


def handle_ingest(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    db = resolve_db(ws, args.db)
    jobs: list[tuple[list[Path], Path | None, bool]] = []  # parts, reports, kept inside the workspace
    for raw in args.logs:
        path = ws.resolve_cli(raw, field="LOG")
        reports = None
        if args.reports:
            reports = ws.resolve_cli(args.reports, field="--reports")
        elif not args.no_reports and path.name.startswith("run_") and path.name.endswith(".jsonl"):
            try:
                reports = ws.run_reports(path.name[len("run_"):-len(".jsonl")])
            except Exception:  # a log named outside the run-id alphabet: no default reports
                reports = None
        from treasure.workspace import is_inside

        jobs.append((log_parts(path), reports, is_inside(ws.root, path)))
    for run_id in args.run:
        check_run_id(run_id)
        from treasure.logfiles import locate, restore_hint

        found = locate(ws, run_id)
        parts = list(found.paths)
        if not parts:
            raise StoreError("RUN_UNKNOWN", f"run {run_id} has no event log in {ws.relative(ws.logs_dir)}"
                             + (" (it is archived)" if found.location == "archive" else ""), field="--run",
                             hint=restore_hint(run_id) if found.location == "archive" else None)
        reports = None if args.no_reports else (ws.resolve_cli(args.reports, field="--reports")
                                                if args.reports else ws.run_reports(run_id))
        jobs.append((parts, reports, True))
    if not jobs:
        raise StoreError("STORE_NOTHING", "nothing to ingest: give LOG file(s) or --run RUN_ID",
                         hint="e.g. `treasure db ingest logs/events/run_<id>.jsonl`")
    contracts = _contracts(ws)
    results = [ingest_log(db, parts, contracts=contracts, reports_dir=reports, root=ws.root if run_job else None)
               for parts, reports, run_job in jobs]
    lines = []
    for r in results:
        if r.nothing_to_do:
            lines.append(f"run {r.run_id}: already ingested ({r.events} events), nothing to do")
        else:
            new = f"{r.inserted} new" + (f", {r.unchanged} already stored" if r.unchanged else "")
            lines.append(f"run {r.run_id}: ingested {r.events} events ({new}); reports {r.reports}; "
                         f"status {r.status}")
    emit(args, "\n".join(lines) + f"\n  db  {db_label(ws, db)}",
         {"db": str(db), "runs": [r.to_dict() for r in results]})
    return EXIT_OK


def handle_check(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    db = resolve_db(ws, args.db)
    report = check_store(db)
    report.path = db_label(ws, db)
    emit(args, report.render(), report.to_dict())
    return EXIT_OK if report.ok else EXIT_BAD_INPUT


def handle_backup(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    db = resolve_db(ws, args.db)
    if args.dest is not None and args.out is not None and args.dest != args.out:
        raise TreasureError("CLI_USAGE", f"two targets: DEST {args.dest!r} and --out {args.out!r}", field="--out",
                            hint="give the backup file once: `treasure db backup -o FILE`")
    raw = args.out if args.out is not None else args.dest
    if raw is None:
        raise TreasureError("CLI_USAGE", "db backup needs a target file", field="--out",
                            hint="`treasure db backup -o backups/treasure-DATE.db` (the folder is created)")
    force = args.force or args.overwrite
    dest = out_target(ws.root, ws.resolve_cli, raw, force=force, field="--out" if args.out else "DEST",
                      protected=[db] if isinstance(db, Path) else [],  # a postgresql:// URL is no file
                      check_exists=False)  # backup_db refuses an existing file itself
    report = backup_db(db, dest, overwrite=force)
    events = sum(r["events"] for r in report.runs)
    emit(args, f"db backup: {db_label(ws, db)} -> {ws.relative(dest)} ({len(report.runs)} run(s), {events} events; "
         "copy checked)", {"db": str(db), "dest": str(dest), "check": report.to_dict()})
    return EXIT_OK


def handle_restore(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    db = resolve_db(ws, args.db)
    src = ws.resolve_cli(args.src, field="SRC")
    report, kept = restore_db(src, db)
    events = sum(r["events"] for r in report.runs)
    text = f"db restore: {ws.relative(src)} -> {db_label(ws, db)} ({len(report.runs)} run(s), {events} events; " \
           "source checked)"
    if kept is not None:
        text += f"\n  previous DB kept as {ws.relative(kept)}"
    emit(args, text, {"db": str(db), "source": str(src), "kept": str(kept) if kept else None,
                      "check": report.to_dict()})
    return EXIT_OK


def handle_export(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    db = resolve_db(ws, args.db)
    out = out_target(ws.root, ws.resolve_cli, args.out, force=args.force,
                     protected=[db] if isinstance(db, Path) else [])
    with StoreReader(db) as reader:
        count = reader.export(check_run_id(args.run_id), out)
    emit(args, f"db export: run {args.run_id}: {count} events -> {ws.relative(out)}",
         {"run_id": args.run_id, "events": count, "out": str(out)})
    return EXIT_OK


def handle_restore_log(args: argparse.Namespace) -> int:
    from treasure.store.restore_log import restore_log

    ws = Workspace.at(args.workspace)  # the log goes into a workspace: it must exist
    db = resolve_db(ws, args.db)
    result = restore_log(ws, db, check_run_id(args.run_id), contracts=_contracts(ws))
    if result.restored:
        lines = [f"db restore-log: run {result.run_id}: {result.events} events -> {result.path} "
                 f"(from {db_label(ws, db)}; head {str(result.last_hash)[:16]}…)",
                 f"  the workspace's log was {result.workspace_log}" + (f": {result.problem}" if result.problem else "")]
        lines += [f"  moved aside  {path}" for path in result.moved_aside]
        lines.append(f"  checked      {'; '.join(result.checked_against)}")
    else:
        lines = [f"db restore-log: run {result.run_id}: {result.note}"]
    emit(args, "\n".join(lines), {"db": str(db), **result.to_dict()})
    return EXIT_OK


def handle_runs(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    db = resolve_db(ws, args.db)
    with StoreReader(db) as reader:
        runs = reader.runs()
    lines = [f"{len(runs)} run(s) in {db_label(ws, db)}"]
    lines += [f"  {r.run_id:<40} {r.status:<9} {r.events:>8} events" for r in runs]
    emit(args, "\n".join(lines), {"db": str(db), "runs": [r.to_dict() for r in runs]})
    return EXIT_OK
