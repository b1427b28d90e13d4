"""``treasure ssot approve|check|diff``: record the approved SSOT, schemas and dataset; detect and
show changes.

``approve`` is the only writer of spec/ssot.lock (see :mod:`treasure.approval`); ``check`` exits 0 when
the workspace matches its approval and 2 with one line per changed, missing or unapproved file;
``diff`` shows what changed in each JSON file (key paths and a unified diff against the approved
content the lock keeps), exit 0 when nothing changed and 2 otherwise.
"""

from __future__ import annotations

import argparse

from treasure.cli.output import emit
from treasure.errors import EXIT_BAD_INPUT, HINTS, EXIT_OK
from treasure.approval import approve, check_tamper, diff
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
    diff_parser = actions.add_parser("diff", parents=[common],
                                     help="show what changed since the last approval (key paths and a unified "
                                     "diff; exit 2 if anything changed)")
    diff_parser.add_argument("--keys-only", action="store_true", help="only the changed key paths, no text diff")
    diff_parser.set_defaults(handler=handle_diff)


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


def handle_diff(args: argparse.Namespace) -> int:
    ws = Workspace.at(args.workspace)
    changes = diff(ws)
    dataset = [f for f in check_tamper(ws) if f.code == "TAMPER_DATASET"]
    if not changes and not dataset:
        emit(args, "ssot diff: no change since approval (spec/ssot.lock)",
             {"clean": True, "files": [], "dataset": []})
        return EXIT_OK
    lines = [f"ssot diff: {len(changes) + len(dataset)} change(s) since approval (spec/ssot.lock)"]
    for change in changes:
        lines.append(f"{change.status:>8} {change.path}")
        if change.status == "unknown":
            lines.append("         the approved content is unknown: this lock (version 1) keeps only hashes; "
                         "review the file, then `treasure ssot approve` records its content")
        for key in change.keys:
            lines.append(f"           {key}")
        if change.unified and not args.keys_only:
            lines.extend(f"         {line}" for line in change.unified.rstrip("\n").splitlines())
    for finding in dataset:
        lines.append(f" dataset {finding.path}: {finding.message}")
    lines.append("next: restore the approved files, or approve the change with `treasure ssot approve`")
    emit(args, "\n".join(lines), {"clean": False, "files": [c.to_dict() for c in changes],
                                  "dataset": [f.to_dict() for f in dataset]})
    return EXIT_BAD_INPUT
