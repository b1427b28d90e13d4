"""``treasure migrate [--dry-run]``: upgrade a workspace made by an older release (see treasure.migrate)."""

from __future__ import annotations

import argparse

from treasure.cli.output import emit


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "migrate", parents=[common], help="upgrade a workspace made by an older release (spec/, truth/, "
        "the store, the lock)",
        description="Upgrade the workspace to this release's format (spec/workspace.version): packaged "
        "schemas and contracts replace the previous release's (an edited one is kept as <file>.orig), "
        "new files are added, the SSOT keeps its values, the run DB gets its schema migrations, and the "
        "approval lock re-approves only the files migrate replaced whose old content was approved. "
        "Everything changed is backed up first in archive/migrate-<from>-<to>/ (backup.tar.gz and "
        "SHA256SUMS); the new version is written last. Running it again changes nothing.")
    parser.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure.migrate import migrate
    from treasure.workspace import Workspace

    ws = Workspace.at(args.workspace)
    report = migrate(ws, dry_run=args.dry_run)
    lines: list[str] = []
    if report.from_format == report.to_format:
        lines.append(f"workspace already at format {report.to_format}: nothing to do")
    else:
        verb = "would migrate" if report.dry_run else "migrated"
        lines.append(f"{verb} {ws.root} from format {report.from_format} to {report.to_format}")
        for act in report.files:
            if act.action == "current":
                continue
            mark = " (re-approved)" if act.reapproved else ""
            lines.append(f"  {act.action:<17} {act.path}: {act.note}{mark}")
        store = report.store
        if store.get("path"):
            todo = store.get("migrations") or []
            lines.append(f"  store {store['path']}: " + (f"schema migrations {todo}" if todo else "up to date"))
        if not report.lock.get("present"):
            lines.append("  no approval lock: review, then `treasure ssot approve`")
        elif not report.dry_run:
            lines.append(f"  lock: re-approved {len(report.lock.get('reapproved', []))} file(s) migrate "
                         "replaced; anything unapproved before stays unapproved (`treasure ssot check`)")
        if report.backup:
            lines.append(f"  backup: {report.backup}/backup.tar.gz (SHA256SUMS next to it)")
        if not report.dry_run:
            lines.append("  next: treasure ssot check && treasure run && treasure verify")
    emit(args, "\n".join(lines), report.to_dict())
    return 0
