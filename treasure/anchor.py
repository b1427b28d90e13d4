"""Anchored evidence: each committed run's manifest, signed, and recorded in a second place.

A hash chain proves a log was not edited *after* its head was known; it cannot prove which head
is the real one, because whoever can write the log can recompute the chain. So at commit a run
writes ``reports/runs/<id>/manifest.json``: the log's head hash and event count, the SHA-256 of
every report file, and the dataset and SSOT hashes. Two things then pin the manifest:

* a signature (``manifest.sig``) with the operator's Ed25519 key (:mod:`treasure.keys`), kept
  outside the workspace: without the key a forger cannot produce a manifest that verifies;
* the anchor ledger ``evidence/anchors.jsonl``: one hash-chained line per manifest, append-only.
  Without a key this is the second place a re-chained log must also be made to agree with.

:func:`verify_run` recomputes the manifest from the files on disk and reports every disagreement
as a coded finding. The threat model (what an attacker with write access but no key can and
cannot do undetected) is in docs/robustness.md.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

from treasure.canonical import canonical_bytes
from treasure.digest import file_sha256
from treasure.errors import TreasureError
from treasure.file_locks import exclusive
from treasure.jsonio import atomic_write_bytes, dumps_pretty
from treasure.keys import SigningKey, VerifyKey

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
LEDGER = Path("evidence") / "anchors.jsonl"
SCHEMA_VERSION = 1
#: Report-directory files the manifest pins (in this order); the manifest and signature are not.
PINNED = ("court_report.json", "eqs_report.json", "equity.npy")
_GENESIS = "0" * 64
#: Longest ledger line read; a ledger line is ~300 bytes, anything longer is not ours.
MAX_LEDGER_LINE = 1 << 16


@dataclass(frozen=True)
class AnchorFinding:
    """One disagreement between a run's evidence and its anchors."""

    code: str
    run_id: str
    message: str
    level: str = "ERROR"

    def __str__(self) -> str:
        return f"{self.code}: {self.run_id}: {self.message}"


def report_dir(ws_root: Path, run_id: str) -> Path:
    return ws_root / "reports" / "runs" / run_id


def _load_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise TreasureError("ANCHOR_UNREADABLE", f"cannot read {path.name}: {exc}", path=str(path)) from exc


def build_manifest(ws_root: Path, run_id: str, *, key_id: str | None = None) -> dict[str, Any]:
    """The manifest of a committed run, from its report directory (court report is the source)."""
    rdir = report_dir(ws_root, run_id)
    court = _load_json(rdir / "court_report.json")
    events = court.get("events") or {}
    inputs = court.get("inputs") or {}
    evidence = court.get("evidence") or {}
    files = {name: _pinned_sha256(ws_root, rdir / name) for name in PINNED if (rdir / name).is_file()}
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "status": court.get("status"),
        "log": {"path": evidence.get("event_log"), "last_hash": events.get("last_hash"),
                "total": events.get("total")},
        "reports": files,
        "inputs": {k: inputs.get(k) for k in ("dataset_sha256", "ssot_sha256", "ssot_canonical_sha256")},
        "key_id": key_id,
    }


def _pinned_sha256(ws_root: Path, path: Path) -> str:
    """SHA-256 the manifest pins for one report file. A JSON report is pinned by its canonical form
    without the fields its schema marks volatile (wall-clock timing), so the same inputs give the
    same manifest in any process, as the rest of the evidence does; any other edit still changes it.
    Other files (the equity curve) are pinned by their bytes."""
    if path.suffix != ".json":
        return file_sha256(path)
    from treasure.canonical import drop_paths
    from treasure.contracts import Contracts

    document = _load_json(path)
    try:
        volatile = Contracts(ws_root / "truth").volatile_paths(path.stem)
    except TreasureError:
        volatile = []
    return hashlib.sha256(canonical_bytes(drop_paths(document, volatile))).hexdigest()


def manifest_sha256(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(manifest)).hexdigest()


def _ledger_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if len(raw) > MAX_LEDGER_LINE:
                yield number, None
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                yield number, None
                continue
            yield number, record if isinstance(record, dict) else None


def _record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def _append_ledger(ws_root: Path, run_id: str, digest: str, key_id: str | None) -> None:
    """Append one chained record under an exclusive lock, fsynced (concurrent runs serialise)."""
    path = ws_root / LEDGER
    with exclusive(path.with_name(".anchors.lock")):
        prev = _GENESIS
        for _, record in _ledger_lines(path):
            if record is not None and isinstance(record.get("hash"), str):
                prev = record["hash"]
        record = {"run_id": run_id, "manifest_sha256": digest, "key_id": key_id, "prev": prev}
        record["hash"] = _record_hash(record)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            os.write(fd, orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)


def anchor_run(ws_root: Path, run_id: str, key: SigningKey | None) -> dict[str, Any]:
    """Write the run's manifest (and signature with ``key``) and append it to the ledger.

    Called at the run's commit point, after its reports are written; also by
    ``treasure anchor RUN`` to anchor runs made before anchoring existed.
    """
    rdir = report_dir(ws_root, run_id)
    manifest = build_manifest(ws_root, run_id, key_id=None if key is None else key.key_id)
    body = canonical_bytes(manifest)
    atomic_write_bytes(rdir / MANIFEST, dumps_pretty(manifest))
    if key is not None:
        sig = {"alg": "ed25519", "key_id": key.key_id, "signature": key.sign(body).hex()}
        atomic_write_bytes(rdir / SIGNATURE, dumps_pretty(sig))
    elif (rdir / SIGNATURE).exists():
        (rdir / SIGNATURE).unlink()  # a stale signature of an older manifest would mislead
    _append_ledger(ws_root, run_id, hashlib.sha256(body).hexdigest(), manifest["key_id"])
    return manifest


def _log_head(ws_root: Path, log_path: str | None) -> str | None:
    """Hash of the last event in the run's log on disk, or None when the log is not on disk."""
    if not log_path:
        return None
    from treasure.ops.segments import read_last_line

    path = ws_root / log_path
    if not path.is_file():
        return None
    line = read_last_line(path)
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return ""
    return event.get("hash") if isinstance(event, dict) else ""


def verify_run(ws_root: Path, run_id: str, verify_key: VerifyKey | None) -> list[AnchorFinding]:
    """Every way the run's evidence disagrees with its manifest, signature or ledger entry."""
    out: list[AnchorFinding] = []
    rdir = report_dir(ws_root, run_id)
    mpath = rdir / MANIFEST
    if not mpath.is_file():
        return [AnchorFinding("ANCHOR_MISSING", run_id, f"no {MANIFEST} in {rdir.relative_to(ws_root)}")]
    stored = _load_json(mpath)
    body = canonical_bytes(stored)
    fresh = build_manifest(ws_root, run_id, key_id=stored.get("key_id"))
    for section in ("run_id", "status", "log", "reports", "inputs"):
        if fresh.get(section) != stored.get(section):
            out.append(AnchorFinding("ANCHOR_MISMATCH", run_id,
                                     f"manifest section {section!r} disagrees with the files on disk"))
    head = _log_head(ws_root, (stored.get("log") or {}).get("path"))
    if head is not None and head != (stored.get("log") or {}).get("last_hash"):
        out.append(AnchorFinding("ANCHOR_LOG_HEAD", run_id,
                                 "the event log's last hash is not the one the manifest anchors"))
    sig_path = rdir / SIGNATURE
    if verify_key is not None:
        if stored.get("key_id") is None or not sig_path.is_file():
            out.append(AnchorFinding("ANCHOR_UNSIGNED", run_id,
                                     "a signing key is configured but this run's manifest is not signed"))
        else:
            sig = _load_json(sig_path)
            if sig.get("key_id") != verify_key.key_id or stored.get("key_id") != verify_key.key_id:
                out.append(AnchorFinding("ANCHOR_SIG_KEY", run_id,
                                         f"signed by key {sig.get('key_id')}, the configured key is "
                                         f"{verify_key.key_id}"))
            else:
                try:
                    raw = bytes.fromhex(str(sig.get("signature", "")))
                except ValueError:
                    raw = b""
                if not verify_key.verify(body, raw):
                    out.append(AnchorFinding("ANCHOR_SIG_BAD", run_id, "the manifest's signature does not verify"))
    ledger_digest = None
    prev = _GENESIS
    for number, record in _ledger_lines(ws_root / LEDGER):
        if record is None or record.get("prev") != prev or record.get("hash") != _record_hash(record):
            out.append(AnchorFinding("ANCHOR_LEDGER_BROKEN", run_id, f"{LEDGER} line {number} breaks the chain"))
            break
        prev = record["hash"]
        if record.get("run_id") == run_id:
            ledger_digest = record.get("manifest_sha256")
    if ledger_digest is None:
        out.append(AnchorFinding("ANCHOR_LEDGER_MISSING", run_id, f"the run has no entry in {LEDGER}"))
    elif ledger_digest != hashlib.sha256(body).hexdigest():
        out.append(AnchorFinding("ANCHOR_LEDGER_MISMATCH", run_id,
                                 f"the manifest is not the one {LEDGER} recorded at commit"))
    return out


def anchored_runs(ws_root: Path) -> list[str]:
    """Run ids with a report directory, sorted (the runs a gate must check)."""
    base = ws_root / "reports" / "runs"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "court_report.json").is_file())
