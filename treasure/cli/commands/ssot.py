"""``treasure ssot approve|check``: record the approved SSOT, schemas and dataset; detect changes.

``approve`` is the only writer of spec/ssot.lock (see :mod:`treasure.lock`); ``check`` exits 0 when
the workspace matches its approval and 2 with one line per changed, missing or unapproved file.
"""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.errors import EXIT_BAD_INPUT, HINTS, EXIT_OK
from treasure.lock import approve, check_tamper
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "ssot", help="approve the SSOT, schemas and dataset (spec/ssot.lock), or check for changes",
        description="approve: record SHA-256 of spec/ssot.json, every JSON under spec/ and truth/, and "
        "the pinned dataset in spec/ssot.lock. check: compare the workspace with that lock "
        "(exit 0 clean, 2 changed).")
    actions = parser.add_subparsers(dest="ssot_action", metavar="ACTION")
    actions.required = True
    approve_parser = actions.add_parser("approve", parents=[common],
                                        help="validate and record the current state as approved")
    approve_parser.set_defaults(handler=handle_approve)
    check_parser = actions.add_parser("check", parents=[common],
                                      help="list every change since the last approval (exit 2 if any)")
    check_parser.set_defaults(handler=handle_check)


def handle_approve(args: argparse.Namespace) -> int:
    ws = Workspace.at(args.workspace)
    result = approve(ws)
    changes = [f"  + {p}" for p in result.added] + [f"  ~ {p}" for p in result.changed] + \
        [f"  - {p}" for p in result.removed]
    if not result.previous_valid:
        head = f"approved: {ws.relative(result.path)} written ({len(result.lock.files)} files + dataset)"
    elif changes:
        head = f"approved: {ws.relative(result.path)} updated"
    else:
        head = f"approved: {ws.relative(result.path)} unchanged"
    human = "\n".join([head, *(changes if result.previous_valid else [])])
    emit(args, human, {"lock": ws.relative(result.path), "files": len(result.lock.files),
                       "dataset": {"path": result.lock.dataset_path, "sha256": result.lock.dataset_sha256},
                       "added": result.added, "changed": result.changed, "removed": result.removed})
    return EXIT_OK


def handle_check(args: argparse.Namespace) -> int:
    ws = Workspace.at(args.workspace)
    findings = check_tamper(ws)
    if findings:
        lines = [f"ssot check: {len(findings)} change(s) since approval"]
        for finding in findings:
            lines.append(f"  error[{finding.code}]: {finding.path}: {finding.message}")
        for code in sorted({f.code for f in findings}):
            lines.append(f"  hint[{code}]: {HINTS.get(code, '')}")
    else:
        lines = ["ssot check: clean (spec/, truth/ and the dataset match spec/ssot.lock)"]
    emit(args, "\n".join(lines), {"clean": not findings, "findings": [f.to_dict() for f in findings]})
    return EXIT_BAD_INPUT if findings else EXIT_OK
