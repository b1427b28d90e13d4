"""``treasure keys init|show`` and ``treasure keys anchor|verify``: the operator's signing key and
the anchored manifests it signs (see :mod:`treasure.anchor`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from treasure.cli.output import emit


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "keys", parents=[common], help="signing key for anchored evidence: init, show, anchor, verify",
        description="Runs sign their manifest (log head, report, dataset and SSOT hashes) with an Ed25519 "
        "key kept OUTSIDE the workspace: TREASURE_SIGNING_KEY, else $XDG_CONFIG_HOME/treasure/signing_key.pem. "
        "A verifier-only host sets TREASURE_VERIFY_KEY to the public PEM.")
    parser.add_argument("action", choices=("init", "show", "anchor", "verify"),
                        help="init: make a key; show: its id and public PEM; anchor RUN: (re)write a run's "
                        "manifest; verify [RUN]: check manifests, signatures and the anchor ledger")
    parser.add_argument("run_id", nargs="?", default=None, metavar="RUN_ID")
    parser.add_argument("--path", default=None, metavar="FILE", help="key file (init/show)")
    parser.add_argument("--force", action="store_true", help="init: replace an existing key")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from treasure import anchor, keys
    from treasure.errors import TreasureError
    from treasure.workspace import Workspace

    path = Path(args.path) if args.path else None
    if args.action in ("init", "show"):
        ws_root = None
        try:
            ws_root = Workspace.at(args.workspace).root
        except TreasureError:
            ws_root = None  # keys live outside workspaces; none is needed here
        if args.action == "init":
            key = keys.init_key(path, workspace=ws_root, force=args.force)
            emit(args, f"signing key {key.key_id} written to {key.path} (mode 0600)\n"
                 "  keep it outside every workspace; back it up: losing it means new runs sign with a new id",
                 {"key_id": key.key_id, "path": str(key.path)})
            return 0
        loaded = keys.load_signing_key(path, workspace=ws_root)
        if loaded is None:
            raise TreasureError("KEY_MISSING", f"no signing key at {keys.default_key_path()}")
        pem = keys.public_pem(loaded).decode()
        emit(args, f"key id {loaded.key_id} at {loaded.path}\n{pem}",
             {"key_id": loaded.key_id, "path": str(loaded.path), "public_pem": pem})
        return 0
    ws = Workspace.at(args.workspace)
    if args.action == "anchor":
        if not args.run_id:
            raise TreasureError("CLI_USAGE", "keys anchor needs a RUN_ID")
        manifest = anchor.anchor_run(ws.root, args.run_id, keys.load_signing_key(workspace=ws.root))
        emit(args, f"anchored {args.run_id} (key {manifest['key_id'] or 'none: ledger only'})", manifest)
        return 0
    runs = [args.run_id] if args.run_id else anchor.anchored_runs(ws.root)
    vkey = keys.load_verify_key(workspace=ws.root)
    findings = [f for run in runs for f in anchor.verify_run(ws.root, run, vkey)]
    lines = [f"anchors: {len(runs)} run(s) checked, key {vkey.key_id if vkey else 'none (ledger only)'}"]
    lines += [f"  {f}" for f in findings] or ["  all manifests agree with their evidence"]
    emit(args, "\n".join(lines), {"runs": runs, "key_id": vkey.key_id if vkey else None,
                                  "findings": [f.__dict__ for f in findings]})
    return 2 if findings else 0
