"""The SSOT approval lock: what an operator approved, so any later change is caught before a run.

``spec/ssot.lock`` records the SHA-256 of ``spec/ssot.json``, of every JSON file under ``spec/``
and ``truth/`` (the config schema and the event/report contracts), and of the pinned dataset, as
they were when someone ran ``treasure ssot approve``. Only that command writes it. The pre-run
checklist and the e2 gate call :func:`check_tamper`, which names every file that differs, vanished
or was never approved, so a hand-edited config, a loosened schema or a swapped dataset cannot reach
a run unnoticed. The lock holds no clock or user: who approved and when is the version control's
job, and the same tree always produces the same lock bytes.

Since lock version 2 the lock also keeps the approved *content* of every JSON file it covers (as
text, under ``content``), so ``treasure ssot diff`` can show what changed in a workspace without
version control (:func:`diff`). A version-1 lock (hashes only) stays readable: its diff says the
approved content is unknown. Only regular JSON files inside the workspace can be approved: a
symlink (say to /etc/passwd), a file that is not JSON or not UTF-8, or a path that resolves out of
the workspace is refused (``LOCK_REFUSED``). :func:`approval_state` is the one-call answer for a
run that must warn on an unapproved SSOT.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from treasure.config import load_config
from treasure.contracts import check_schema, error_field, first_error
from treasure.errors import ConfigError, DataError, TreasureError
from treasure.jsonio import atomic_write_json, dumps_pretty, read_json
from treasure.workspace import Workspace
from treasure.digest import file_sha256 as _sha256

LOCK_NAME = "ssot.lock"
LOCK_VERSION = 2
READABLE_VERSIONS = (1, 2)
SSOT_REL = "spec/ssot.json"
_NOTE = "written by `treasure ssot approve`; do not edit by hand"
_SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
LOCK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["lock_version", "files", "dataset"],
    "properties": {
        "lock_version": {"enum": list(READABLE_VERSIONS)},
        "note": {"type": "string"},
        "content": {"type": "object", "additionalProperties": {"type": "string"},
                    "propertyNames": {"pattern": "^(spec|truth)/[^\\\\]+\\.json$"}},
        "files": {"type": "object", "additionalProperties": _SHA, "required": [SSOT_REL],
                  "propertyNames": {"pattern": "^(spec|truth)/[^\\\\]+\\.json$"}},
        "dataset": {"type": "object", "additionalProperties": False, "required": ["path", "sha256"],
                    "properties": {"path": {"type": "string", "minLength": 1}, "sha256": _SHA}},
    },
}


@dataclass(frozen=True)
class TamperFinding:
    """One difference between the workspace and its approval: stable ``code``, workspace-relative
    ``path`` and a message saying what changed."""

    code: str
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.code} {self.path}: {self.message}"


@dataclass(frozen=True)
class Lock:
    """The approved state: file SHA-256s by workspace-relative path, and the dataset's."""

    files: dict[str, str]
    dataset_path: str
    dataset_sha256: str
    content: dict[str, str] = field(default_factory=dict)  # approved text by path (empty: version 1)
    version: int = LOCK_VERSION

    def to_document(self) -> dict[str, Any]:
        return {"lock_version": LOCK_VERSION, "note": _NOTE, "files": dict(sorted(self.files.items())),
                "dataset": {"path": self.dataset_path, "sha256": self.dataset_sha256},
                "content": dict(sorted(self.content.items()))}


@dataclass(frozen=True)
class Approval:
    """What ``approve`` wrote and how it differs from the previous lock (empty lists: unchanged)."""

    lock: Lock
    path: Path
    added: list[str]
    changed: list[str]
    removed: list[str]
    previous_valid: bool


def _as_workspace(workspace: Workspace | str | os.PathLike[str]) -> Workspace:
    return workspace if isinstance(workspace, Workspace) else Workspace.at(workspace)


def lock_path(workspace: Workspace | str | os.PathLike[str]) -> Path:
    return _as_workspace(workspace).spec_dir / LOCK_NAME




def tracked_files(ws: Workspace) -> list[str]:
    """Workspace-relative paths the lock covers: every ``*.json`` under spec/ and truth/ (symlinks
    included, so that :func:`compute_lock` can refuse them rather than skip them silently)."""
    found = []
    for folder in (ws.spec_dir, ws.truth_dir):
        if not folder.is_dir():
            continue
        for path in folder.rglob("*.json"):
            rel = path.relative_to(ws.root).as_posix()
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            if not (path.is_file() or path.is_symlink()):
                continue
            found.append(rel)
    return sorted(found)


def _refuse(rel: str, why: str) -> ConfigError:
    return ConfigError("LOCK_REFUSED", f"refusing to approve {rel}: {why}", path=rel)


def _check_location(ws: Workspace, rel: str) -> None:
    """A file that may be approved is a regular file (not a symlink) inside its spec/ or truth/ folder."""
    path = ws.root / rel
    if path.is_symlink():
        raise _refuse(rel, f"it is a symlink (to {os.readlink(path)}); approve the real file, not a link")
    top = ws.root / rel.split("/", 1)[0]
    from treasure.workspace import is_inside  # the one containment rule

    real, base = path.resolve(), top.resolve()
    if not is_inside(base, real):
        raise _refuse(rel, f"it resolves outside {top.name}/ ({real})")
    if not path.is_file():
        raise _refuse(rel, "it is not a regular file")


def _approvable_text(ws: Workspace, rel: str) -> str:
    """The text of a file that may be approved (see :func:`_check_location`): UTF-8, valid JSON."""
    _check_location(ws, rel)
    path = ws.root / rel
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(rel, "it is not UTF-8 text") from None
    except OSError as exc:
        raise _refuse(rel, f"it cannot be read ({exc.strerror or exc})") from exc
    try:
        import orjson

        orjson.loads(text)
    except ValueError as exc:
        raise _refuse(rel, f"it is not JSON ({exc})") from None
    return text


def compute_lock(workspace: Workspace | str | os.PathLike[str]) -> Lock:
    """The lock the workspace would get now; refuses states that must not be approved (an SSOT or
    schema that does not validate, a dataset that is missing or differs from the SSOT's pin)."""
    ws = _as_workspace(workspace)
    files = {}
    content = {}
    for folder in (ws.spec_dir, ws.truth_dir):
        for top, dirs, _ in sorted(os.walk(folder)):
            for name in dirs:
                if Path(top, name).is_symlink():
                    rel_dir = Path(top, name).relative_to(ws.root).as_posix()
                    raise _refuse(rel_dir, f"it is a symlinked folder (to {os.readlink(Path(top, name))}); "
                                  "spec/ and truth/ must hold the real files")
    for rel in tracked_files(ws):
        _check_location(ws, rel)
    config = load_config(ws.ssot_path, ws.config_schema_path, display_path=SSOT_REL)  # SSOT_JSON etc. first
    for rel in tracked_files(ws):
        content[rel] = _approvable_text(ws, rel)
    for rel in tracked_files(ws):
        path = ws.root / rel
        if rel != SSOT_REL and (rel.startswith("truth/") or rel.endswith(".schema.json")):
            check_schema(read_json(path, code="SCHEMA_INVALID"), source=rel)
        files[rel] = _sha256(path)
    section = config.section("dataset")
    raw_dataset = ws.root / str(section["path"])
    if raw_dataset.is_symlink():
        raise _refuse(str(section["path"]), f"the dataset is a symlink (to {os.readlink(raw_dataset)})")
    dataset = ws.resolve_inside(section["path"], field="dataset.path", source=SSOT_REL)
    from treasure.data import sha256_file

    sha = sha256_file(dataset)
    if sha != section["sha256"]:
        raise DataError("DATA_SHA_MISMATCH", f"the dataset's SHA-256 {sha[:12]}… is not the one the SSOT "
                        f"pins ({section['sha256'][:12]}…); refusing to approve",
                        path=ws.relative(dataset), field="dataset.sha256",
                        hint="restore the pinned dataset, or set dataset.sha256 in the SSOT to "
                        f"{sha} if this file is the one to approve")
    return Lock(files, ws.relative(dataset), sha, content)


def read_lock(workspace: Workspace | str | os.PathLike[str]) -> Lock:
    """Parse and validate spec/ssot.lock (LOCK_MISSING / LOCK_INVALID otherwise)."""
    ws = _as_workspace(workspace)
    path = lock_path(ws)
    if not path.exists():
        raise ConfigError("LOCK_MISSING", "no approval lock (spec/ssot.lock)", path=f"spec/{LOCK_NAME}")
    doc = read_json(path, code="LOCK_INVALID")
    found = first_error(Draft202012Validator(LOCK_SCHEMA), doc)
    if found is not None:
        raise ConfigError("LOCK_INVALID", f"malformed lock: {found.message}", path=f"spec/{LOCK_NAME}",
                          field=error_field(found))
    for rel in [*doc["files"], doc["dataset"]["path"]]:
        try:
            ws.resolve_inside(rel, field="files", source=f"spec/{LOCK_NAME}")
        except TreasureError as exc:
            raise ConfigError("LOCK_INVALID", f"the lock names {rel!r}, outside the workspace",
                              path=f"spec/{LOCK_NAME}", field="files") from exc
    return Lock(dict(doc["files"]), doc["dataset"]["path"], doc["dataset"]["sha256"],
                dict(doc.get("content") or {}), int(doc["lock_version"]))


def approve(workspace: Workspace | str | os.PathLike[str]) -> Approval:
    """Record the current spec/, truth/ and dataset as approved (atomic write of spec/ssot.lock).
    Cheap and idempotent: the same tree always writes the same bytes."""
    ws = _as_workspace(workspace)
    lock = compute_lock(ws)
    try:
        previous: Lock | None = read_lock(ws)
    except ConfigError:
        previous = None
    path = lock_path(ws)
    data = dumps_pretty(lock.to_document())
    if not path.exists() or path.read_bytes() != data:
        atomic_write_json(path, lock.to_document())
    old = previous.files if previous else {}
    if previous is not None:
        old = {**old, f"dataset:{previous.dataset_path}": previous.dataset_sha256}
    new = {**lock.files, f"dataset:{lock.dataset_path}": lock.dataset_sha256}
    return Approval(
        lock, path,
        added=sorted(set(new) - set(old)),
        changed=sorted(k for k in set(new) & set(old) if new[k] != old[k]),
        removed=sorted(set(old) - set(new)),
        previous_valid=previous is not None,
    )


def check_tamper(workspace: Workspace | str | os.PathLike[str]) -> list[TamperFinding]:
    """Every difference between the workspace and its last approval, sorted by path (empty: clean).

    Never raises for a tampered state: a missing or malformed lock is itself a finding
    (LOCK_MISSING / LOCK_INVALID), so a gate can print everything at once.
    """
    ws = _as_workspace(workspace)
    findings: list[TamperFinding] = []
    try:
        ws.check_spec_tree()  # spec/ or truth/ linked out of the workspace: what is read is not what was pinned
    except TreasureError as exc:
        where = Path(exc.path).relative_to(ws.root).as_posix() if exc.path and Path(exc.path).is_absolute() \
            and ws.root in Path(exc.path).parents else (exc.path or "spec")
        findings.append(TamperFinding(exc.code, where, exc.message))
    try:
        lock = read_lock(ws)
    except ConfigError as exc:
        return sorted([*findings, TamperFinding(exc.code, f"spec/{LOCK_NAME}", exc.message)],
                      key=lambda f: (f.path, f.code))
    for rel, approved in sorted(lock.files.items()):
        path = ws.root / rel
        if not path.is_file():
            findings.append(TamperFinding("TAMPER_MISSING", rel, "approved file is missing"))
            continue
        now = _sha256(path)
        if now != approved:
            code = "TAMPER_SSOT" if rel == SSOT_REL else "TAMPER_SCHEMA"
            findings.append(TamperFinding(code, rel, f"changed since approval (sha256 {approved[:12]}… -> "
                                                     f"{now[:12]}…)"))
    for rel in tracked_files(ws):
        if rel not in lock.files:
            findings.append(TamperFinding("TAMPER_UNAPPROVED", rel, "not in the approval lock"))
    dataset = ws.root / lock.dataset_path
    if not dataset.is_file():
        findings.append(TamperFinding("TAMPER_DATASET", lock.dataset_path, "the approved dataset is missing"))
    else:
        now = _sha256(dataset)
        if now != lock.dataset_sha256:
            findings.append(TamperFinding("TAMPER_DATASET", lock.dataset_path,
                                          f"changed since approval (sha256 {lock.dataset_sha256[:12]}… -> "
                                          f"{now[:12]}…)"))
    return sorted(findings, key=lambda f: (f.path, f.code))


# ------------------------------------------------------------------------------------------
# what changed: `treasure ssot diff`, and the run's warning
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileDiff:
    """One file that differs from its approval. ``status``: changed | added | removed | unknown
    (changed, but the lock holds no content to compare with). ``keys``: JSON key paths that
    changed (``risk.daily_loss_limit_usd: 500 -> 40``); ``unified``: a unified diff of the text."""

    path: str
    status: str
    keys: list[str]
    unified: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in value:
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix or "(document)": value}


def _show(value: Any) -> str:
    import orjson

    text = orjson.dumps(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def key_changes(old_text: str, new_text: str) -> list[str]:
    """Key paths that differ between two JSON texts (``path: old -> new``, ``+ path: new``, ``- path``)."""
    import orjson

    try:
        old, new = _flatten(orjson.loads(old_text)), _flatten(orjson.loads(new_text))
    except ValueError:
        return []
    lines = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            lines.append(f"- {key}: {_show(old[key])}")
        elif key not in old:
            lines.append(f"+ {key}: {_show(new[key])}")
        elif old[key] != new[key] or type(old[key]) is not type(new[key]):
            lines.append(f"~ {key}: {_show(old[key])} -> {_show(new[key])}")
    return lines


def diff(workspace: Workspace | str | os.PathLike[str]) -> list[FileDiff]:
    """Every spec/ or truth/ JSON file that differs from its approval, with what changed. The
    dataset is covered by :func:`check_tamper` (a binary CSV has no readable diff here)."""
    ws = _as_workspace(workspace)
    lock = read_lock(ws)
    out: list[FileDiff] = []
    current = set(tracked_files(ws))
    for rel in sorted(current | set(lock.files)):
        path = ws.root / rel
        approved_text = lock.content.get(rel)
        try:
            now_text: str | None = path.read_bytes().decode("utf-8", errors="replace") \
                if path.is_file() and not path.is_symlink() else None
        except OSError:
            now_text = None
        if rel not in lock.files:
            out.append(FileDiff(rel, "added", [],
                                _unified("", now_text or "", rel)))
            continue
        if now_text is None:
            out.append(FileDiff(rel, "removed", [], _unified(approved_text or "", "", rel)))
            continue
        if path.is_file() and _sha256(path) == lock.files[rel]:
            continue
        if approved_text is None:
            out.append(FileDiff(rel, "unknown", [], ""))
            continue
        out.append(FileDiff(rel, "changed", key_changes(approved_text, now_text),
                            _unified(approved_text, now_text, rel)))
    return out


def _unified(old: str, new: str, rel: str) -> str:
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=f"approved/{rel}", tofile=f"current/{rel}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def approval_state(workspace: Workspace | str | os.PathLike[str]) -> tuple[bool, list[str]]:
    """``(approved, changed_files)``: whether spec/, truth/ and the dataset match spec/ssot.lock,
    and the workspace-relative paths that do not (``spec/ssot.lock`` itself when there is no valid
    lock). Never raises: for ``treasure run`` to warn with."""
    try:
        findings = check_tamper(workspace)
    except TreasureError as exc:  # pragma: no cover - check_tamper reports problems as findings
        return False, [exc.path or f"spec/{LOCK_NAME}"]
    changed = sorted({f.path for f in findings})
    return not changed, changed
