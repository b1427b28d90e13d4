"""Recorded live sessions of a workspace's own runs: ``treasure recon record RUN_ID`` and the lookup.

No venue is reachable, so a run's "recording" is derived from the run's own verified evidence with
the packaged generator (:mod:`treasure.recon.fixturegen`, ``adaptive=True``): the clean session the
venue would report for exactly the run's orders, and faulty variants that each trigger one mismatch
code or cross ``recon.max_mismatches``. They are written to ``fixtures/live/runs/<RUN_ID>/`` with a
``manifest.json`` declaring what recon must find in each; the dryrun-live gate holds recon to it,
and ``treasure recon RUN_ID`` reconciles against the run's own ``clean.jsonl`` by default.

Which sessions belong to a run (:func:`sessions_for`): the run's own folder first; else the
workspace's top-level ``fixtures/live/manifest.json`` if it was generated from the same dataset and
symbol (the packaged default sessions, in a workspace on the default data). Never the sessions of
another dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treasure.config import load_config
from treasure.contracts import Contracts
from treasure.errors import RunError, TreasureError
from treasure.jsonio import atomic_write_bytes, fsync_dir
from treasure.recon import fixturegen
from treasure.recon.model import STATE_CODE, Tolerances
from treasure.recon.runlog import RECON_PREFIX, RunRecord, read_run
from treasure.recon.service import recorded_sessions_dir
from treasure.workspace import Workspace, check_run_id

MANIFEST = fixturegen.MANIFEST
#: the per-code sessions every recording must have (the threshold ones depend on the run's size)
REQUIRED = ("clean", "price_mismatch", "fee_mismatch", "missing_fill", "order_state_drift")


@dataclass(frozen=True)
class Recording:
    """What ``recon record`` wrote (or found identical): the folder and its files."""

    run_id: str
    folder: Path
    files: tuple[str, ...]
    written: tuple[str, ...]
    manifest: dict[str, Any]


def record_sessions(ws: Workspace, run_id: str, *, overwrite: bool = False, ssot_path: Path | None = None,
                    contracts: Contracts | None = None) -> Recording:
    """Derive run ``run_id``'s recorded sessions from its verified log and write them.

    Idempotent: the same run gives the same bytes, and identical files are left alone. Files that
    differ (the run was re-made with other orders) are replaced only with ``overwrite``.
    """
    check_run_id(run_id)
    if run_id.startswith(RECON_PREFIX):
        raise RunError("RECON_OF_RECON", f"{run_id} is a reconciliation log, not a trading run", field="run_id")
    ssot = Path(ssot_path) if ssot_path else ws.ssot_path
    config = load_config(ssot, ws.config_schema_path, display_path=ws.relative(ssot))
    tolerances = Tolerances.from_config(config.section("recon"))
    record = read_run(ws, run_id, contracts=contracts or Contracts(ws.truth_dir))
    files = derive(record, tolerances)
    folder = recorded_sessions_dir(ws, record.run_id)
    stale = fixturegen.stale_files(folder, files)
    existing = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    changed = [name for name in stale if (folder / name).exists()] + [n for n in existing if n not in files]
    if changed and not overwrite:
        raise RunError("RECON_SESSIONS_EXIST", f"{ws.relative(folder)} holds sessions of another version of run "
                       f"{record.run_id} ({', '.join(sorted(changed))} differ)", path=ws.relative(folder),
                       field="run_id", hint=f"`treasure recon record {record.run_id} --overwrite` replaces them")
    folder.mkdir(parents=True, exist_ok=True)
    for name in existing:
        if name not in files:
            (folder / name).unlink()
    order = sorted(n for n in stale if n != MANIFEST) + ([MANIFEST] if MANIFEST in stale else [])
    for name in order:  # the manifest last: it declares sessions that are all in place
        atomic_write_bytes(folder / name, files[name])
    if order:
        fsync_dir(folder)
    return Recording(record.run_id, folder, tuple(sorted(files)), tuple(order), json.loads(files[MANIFEST]))


def derive(record: RunRecord, tolerances: Tolerances) -> dict[str, bytes]:
    """The session files (name -> bytes) of ``record``; RECON_RECORD_FAILED if the run is too small."""
    filled = int((record.ledger.state == STATE_CODE["filled"]).sum())
    plan = fixturegen.adaptive_sessions(record.ledger, tolerances)
    missing = [name for name in REQUIRED if name not in plan]
    if missing:
        raise RunError("RECON_RECORD_FAILED", f"run {record.run_id} has {record.ledger.orders} orders "
                       f"({filled} filled): too few to derive the {', '.join(missing)} session(s)", field="run_id")
    try:
        return fixturegen.generate(run=(record, tolerances), adaptive=True)
    except (RuntimeError, TreasureError) as exc:  # the generator's self-check: never write sessions that lie
        raise RunError("RECON_RECORD_FAILED", f"cannot derive sessions from run {record.run_id}: {exc}",
                       field="run_id") from exc


@dataclass(frozen=True)
class SessionSet:
    """Recorded sessions that belong to a run: their folder, manifest, and how they were matched."""

    folder: Path
    manifest: dict[str, Any]
    matched_by: str          # "run_id" (recorded for the run) | "dataset" (the workspace's top-level sessions)


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def sessions_for(ws: Workspace, run_id: str, *, dataset_sha256: str | None, symbol: str | None) -> SessionSet | None:
    """The recorded sessions of run ``run_id`` in ``ws``, or None (see the module doc)."""
    own = recorded_sessions_dir(ws, run_id)
    doc = _manifest(own / MANIFEST)
    if doc is not None:
        return SessionSet(own, doc, "run_id")
    top = ws.fixtures_dir / "live"
    doc = _manifest(top / MANIFEST)
    if doc is None:
        return None
    run: dict[str, Any] = doc["run"] if isinstance(doc.get("run"), dict) else {}
    if run.get("run_id") == run_id:
        return SessionSet(top, doc, "run_id")
    if dataset_sha256 is not None and run.get("dataset_sha256") == dataset_sha256 and \
            (symbol is None or run.get("symbol") in (None, symbol)):
        return SessionSet(top, doc, "dataset")
    return None
