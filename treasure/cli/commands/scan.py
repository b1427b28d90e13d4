"""``treasure scan [PATH...]``: the determinism gate's source scan, on its own.

Without paths it scans what the gate scans: the installed treasure package and the SSOT's
strategy when that is user code (``file.py:Class`` or ``module:Class``). Exit 0 when clean, 2 when
anything is flagged (each finding ``path:line:col: CODE message``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from treasure.cli.output import emit
from treasure.errors import EXIT_BAD_INPUT, EXIT_OK, WorkspaceError
from treasure.determinism_scan import RULES, default_targets, package_dir, scan_paths
from treasure.workspace import Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    rules = "; ".join(f"{code} {text}" for code, text in RULES.items())
    parser = subparsers.add_parser(
        "scan", parents=[common], help="scan Python code for wall clock, global random, set order and "
        "other nondeterminism", description="Scan Python files with the AST for nondeterminism. Rules: "
        f"{rules}. Allow a justified case with '# treasure: allow-nondeterminism <reason>' on its line. "
        "Exit 0 clean, 2 findings.")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or folders (default: the treasure package and the SSOT's strategy)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.paths:
        targets = [Path(p) for p in args.paths]
        missing = [str(p) for p in targets if not p.exists()]
        if missing:
            raise WorkspaceError("SCAN_PATH", f"no such file or folder: {', '.join(missing)}", path=missing[0])
        base = Path.cwd()
    else:
        try:
            root = Workspace.at(args.workspace).root
        except WorkspaceError:
            if args.workspace:
                raise
            root = Path.cwd()  # outside a workspace: still scan the package
        targets = default_targets(root)
        base = root
    result = scan_paths(targets, relative_to=[base, package_dir().parent])
    lines = [f.render() for f in result.findings]
    verdict = (f"treasure scan: {'clean' if result.clean else f'{len(result.findings)} finding(s)'} in "
               f"{len(result.files)} file(s)" + (f", {result.allowed} allowed by comment" if result.allowed else ""))
    emit(args, "\n".join([*lines, verdict]), {**result.to_dict(), "targets": [str(t) for t in targets]})
    return EXIT_OK if result.clean else EXIT_BAD_INPUT
