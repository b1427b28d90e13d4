"""Workspace format versions and ``treasure migrate`` (issue 15, "Workspace versions").

The old workspace is the previous release's (git commit ca58ece) ``treasure init`` output:
tests/data/workspace_ca58ece.tar.gz (made by tests/data/make_old_workspace.py from
``git archive ca58ece``) plus the dataset and recorded live sessions, which did not change since
and are taken from the current package after checking their SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Callable

import pytest

from treasure import faults
from treasure.engine import RunRequest, run
from treasure.errors import TreasureError
from treasure.approval import check_tamper, read_lock
from treasure.migrate import _V1_PACKAGED, CURRENT_FORMAT, FORMAT_REL, migrate, read_format
from treasure.workspace import Workspace, bundle_dir, init_workspace

OLD_TARBALL = Path(__file__).resolve().parent / "data" / "workspace_ca58ece.tar.gz"
CLI = Callable[..., tuple[int, str, str]]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_old_workspace(dest: Path) -> Workspace:
    """The previous release's workspace, byte for byte (see the module doc)."""
    dest.mkdir(parents=True)
    with tarfile.open(OLD_TARBALL) as tar:
        tar.extractall(dest, filter="data")
    ssot = json.loads((dest / "spec" / "ssot.json").read_text())
    dataset = bundle_dir() / ssot["dataset"]["path"]
    assert _sha(dataset.read_bytes()) == ssot["dataset"]["sha256"], "the packaged dataset changed since ca58ece"
    (dest / "fixtures" / "data").mkdir(parents=True)
    shutil.copyfile(dataset, dest / ssot["dataset"]["path"])
    for rel, sha in _V1_PACKAGED.items():
        if rel.startswith("fixtures/live/") and rel.endswith(".jsonl"):
            data = (bundle_dir() / rel).read_bytes()
            assert _sha(data) == sha, f"{rel} changed since ca58ece"
            (dest / rel).write_bytes(data)
    return Workspace(dest.resolve())


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def old(tmp_path: Path) -> Workspace:
    return make_old_workspace(tmp_path / "old")


def test_the_fixture_is_the_previous_release(old: Workspace) -> None:
    """Every file of the rebuilt workspace is the one ca58ece shipped (table and lock agree)."""
    files = snapshot(old.root)
    assert FORMAT_REL not in files and read_format(old) == 1
    for rel, sha in _V1_PACKAGED.items():
        assert _sha(files[rel]) == sha, rel
    lock = read_lock(old)
    assert lock.version == 1
    for rel, sha in lock.files.items():
        assert _sha(files[rel]) == sha, rel
    assert check_tamper(old) == []


def test_init_writes_the_current_format(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    assert (ws.root / FORMAT_REL).read_text() == f"{CURRENT_FORMAT}\n"
    assert read_format(ws) == CURRENT_FORMAT
    assert migrate(ws).changed is False


def test_an_old_workspace_is_refused_until_migrated(old: Workspace, cli: CLI) -> None:
    code, out, err = cli("run", "--workspace", old.root)
    assert code == 2 and "error[WORKSPACE_OLD]" in err and "treasure migrate" in err
    code, out, err = cli("verify", "--workspace", old.root)
    assert code == 2 and "error[WORKSPACE_OLD]" in err
    code, out, err = cli("status", "--workspace", old.root)  # read-only: works, but says so
    assert code == 0 and "warning[WORKSPACE_OLD]" in err
    assert not old.logs_dir.exists() or not any(old.logs_dir.iterdir())


def test_dry_run_changes_nothing(old: Workspace, cli: CLI) -> None:
    before = snapshot(old.root)
    code, out, err = cli("migrate", "--dry-run", "--json", "--workspace", old.root)
    assert code == 0, err
    report = json.loads(out)
    assert report["dry_run"] is True and report["from_format"] == 1 and report["to_format"] == CURRENT_FORMAT
    actions = {f["path"]: f["action"] for f in report["files"]}
    assert actions["truth/court_report.schema.json"] == "replace"
    assert actions["truth/events/insufficient_buying_power.schema.json"] == "add"
    assert snapshot(old.root) == before
    assert not old.archive_dir.exists()


def test_migrate_then_run_and_every_gate_passes(old: Workspace, cli: CLI) -> None:
    """Done when: a workspace made by the previous release migrates and passes `treasure verify`."""
    ssot_before = old.ssot_path.read_bytes()
    code, out, err = cli("migrate", "--json", "--workspace", old.root)
    assert code == 0, err
    report = json.loads(out)
    assert report["changed"] is True and read_format(old) == CURRENT_FORMAT
    assert old.ssot_path.read_bytes() == ssot_before  # the SSOT keeps the user's values
    # every packaged contract is now this release's
    for rel in ("spec/config.schema.json", "truth/court_report.schema.json", "truth/events/run_end.schema.json"):
        assert (old.root / rel).read_bytes() == (bundle_dir() / rel).read_bytes(), rel
    # the lock approved the old content: migrate re-approved what it replaced; nothing is unapproved
    assert check_tamper(old) == []
    assert "truth/court_report.schema.json" in report["lock"]["reapproved"]
    assert read_lock(old).version == 2
    # the backup holds what changed, with a manifest that checks
    backup = old.root / report["backup"]
    sums = dict(reversed(line.split("  ", 1)) for line in (backup / "SHA256SUMS").read_text().splitlines())
    assert sums["backup.tar.gz"] == _sha((backup / "backup.tar.gz").read_bytes())
    with tarfile.open(backup / "backup.tar.gz") as tar:
        names = tar.getnames()
        court = tar.extractfile("truth/court_report.schema.json")
        assert court is not None and _sha(court.read()) == _V1_PACKAGED["truth/court_report.schema.json"]
    assert "spec/ssot.lock" in names and sums["spec/ssot.lock"]
    # idempotent: a second migrate changes nothing
    after = snapshot(old.root)
    code, out, err = cli("migrate", "--workspace", old.root)
    assert code == 0 and "nothing to do" in out
    assert snapshot(old.root) == after
    # an unedited old workspace now holds exactly what this release's `treasure init` writes
    fresh = init_workspace(old.root.parent / "fresh")
    ours = {k: v for k, v in snapshot(old.root).items() if k.startswith(("spec/", "truth/", "fixtures/"))}
    theirs = {k: v for k, v in snapshot(fresh.root).items() if k.startswith(("spec/", "truth/", "fixtures/"))}
    ours.pop("spec/ssot.lock"), theirs.pop("spec/ssot.lock")
    assert ours == theirs
    # run, then every gate, as an operator would (subprocess: the gates run pytest themselves)
    env = {**os.environ, "TREASURE_DEBUG": "1"}
    done = subprocess.run([sys.executable, "-m", "treasure", "run", "--workspace", str(old.root)],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "treasure", "verify", "--json", "--workspace", str(old.root)],
                          capture_output=True, text=True, env=env)
    failed = [g.get("name") for g in json.loads(done.stdout or "{}").get("gates", []) if g.get("status") != "passed"] \
        if done.stdout.strip().startswith("{") else None
    assert done.returncode == 0, f"gates not passed: {failed}\n{done.stderr[-3000:]}"


def test_a_newer_or_unreadable_format_is_refused(tmp_path: Path, cli: CLI) -> None:
    ws = init_workspace(tmp_path / "ws")
    (ws.root / FORMAT_REL).write_text("99\n")
    code, out, err = cli("run", "--workspace", ws.root)
    assert code == 2 and "error[WORKSPACE_NEWER]" in err
    with pytest.raises(TreasureError) as caught:  # the engine refuses it too
        run(RunRequest(workspace=ws))
    assert caught.value.code == "WORKSPACE_NEWER"
    code, out, err = cli("migrate", "--workspace", ws.root)
    assert code == 2 and "error[WORKSPACE_NEWER]" in err
    (ws.root / FORMAT_REL).write_text("two\n")
    code, out, err = cli("run", "--workspace", ws.root)
    assert code == 2 and "error[WORKSPACE_VERSION_INVALID]" in err


def test_a_crash_mid_migrate_leaves_the_old_version_and_the_backup(old: Workspace) -> None:
    seen: list[str] = []

    def crash(point: str, *_: Any) -> None:
        seen.append(point)
        if point == "migrate_file_written" and seen.count(point) == 3:
            raise OSError(28, "No space left on device (injected)")

    with faults.active(crash), pytest.raises(OSError):
        migrate(old)
    assert read_format(old) == 1 and not (old.root / FORMAT_REL).exists()
    backup = old.archive_dir / "migrate-1-2"
    assert (backup / "backup.tar.gz").is_file() and (backup / "SHA256SUMS").is_file()
    with pytest.raises(TreasureError) as caught:  # still refused: nothing runs half-migrated
        from treasure.migrate import check_format
        check_format(old)
    assert caught.value.code == "WORKSPACE_OLD"
    # running it again finishes the job, keeps the first backup, and approves what it replaced
    report = migrate(old)
    assert report.changed and read_format(old) == CURRENT_FORMAT
    assert (backup / "backup.tar.gz").is_file() and (old.archive_dir / "migrate-1-2.1").is_dir()
    assert check_tamper(old) == []


def test_edited_schema_is_kept_as_orig_and_an_unapproved_ssot_stays_unapproved(old: Workspace) -> None:
    schema = old.truth_dir / "court_report.schema.json"
    edited = schema.read_bytes().replace(b'"court_report.json"', b'"court_report.json (ours)"')
    assert edited != schema.read_bytes()
    schema.write_bytes(edited)
    doc = json.loads(old.ssot_path.read_text())
    doc["risk"]["daily_loss_limit_usd"] = 1234
    old.ssot_path.write_text(json.dumps(doc, indent=2))
    report = migrate(old)
    acts = {a.path: a for a in report.files}
    assert acts["truth/court_report.schema.json"].action == "replace_kept_orig"
    assert (old.truth_dir / "court_report.schema.json.orig").read_bytes() == edited
    assert schema.read_bytes() == (bundle_dir() / "truth/court_report.schema.json").read_bytes()
    assert json.loads(old.ssot_path.read_text())["risk"]["daily_loss_limit_usd"] == 1234
    findings = check_tamper(old)
    assert [(f.code, f.path) for f in findings] == [("TAMPER_SSOT", "spec/ssot.json")]


def test_an_ssot_the_new_schema_refuses_stops_migrate_before_any_change(old: Workspace) -> None:
    doc = json.loads(old.ssot_path.read_text())
    doc["risk"]["daily_loss_limit_usd"] = -5  # refused by the config schema
    old.ssot_path.write_text(json.dumps(doc, indent=2))
    before = snapshot(old.root)
    with pytest.raises(TreasureError) as caught:
        migrate(old)
    assert caught.value.code == "MIGRATE_SSOT_INVALID" and caught.value.path == "spec/ssot.json"
    assert snapshot(old.root) == before


def test_the_run_db_is_migrated_in_place(old: Workspace) -> None:
    from treasure.store.connection import open_db
    from treasure.store.schema import latest_version, user_version

    db = old.data_dir / "treasure.db"
    open_db(db, create=True).close()
    report = migrate(old)
    assert report.store == {"path": "data/treasure.db", "migrations": []}
    conn = open_db(db, migrate=False)
    try:
        assert user_version(conn) == latest_version()
    finally:
        conn.close()
