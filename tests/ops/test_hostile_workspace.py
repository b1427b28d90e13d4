"""A hostile workspace (issue 17): read-only mounts, files where folders belong, init on a file or
in /proc, directory fsync errors, evidence file modes. Every one is a coded refusal (exit 2, no
traceback), never a good log called bad, never an "internal error"."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from treasure.engine import RunRequest, run
from treasure.errors import TreasureError
from treasure.faults import FaultPlan
from treasure.workspace import Workspace, init_workspace

CLI = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def done_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace with one complete run ``a`` (shared, read-only for the tests that use it)."""
    ws = init_workspace(tmp_path_factory.mktemp("hostile") / "ws")
    run(RunRequest(ws, run_id="a"))
    return ws


@pytest.fixture
def ran(tmp_path: Path, done_ws: Workspace) -> Workspace:
    """A private copy of ``done_ws`` this test may break."""
    target = tmp_path / "ws"
    shutil.copytree(done_ws.root, target, symlinks=True)
    return Workspace.at(target)


def treasure_read_only(folder: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m treasure ARGS`` with ``folder`` read-only. Root ignores file modes, so as root the
    folder is bind-mounted read-only in a private mount namespace (unshare); otherwise chmod -w."""
    command = [sys.executable, "-m", "treasure", *args]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if os.geteuid() == 0:
        script = f'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
        return subprocess.run(["unshare", "-m", "sh", "-c", script, str(folder), *command], capture_output=True,
                              text=True, timeout=180, cwd=cwd, env=env)
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
    for path in modes:
        path.chmod(0o555)
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=cwd, env=env)
    finally:
        for path, mode in modes.items():
            path.chmod(stat.S_IMODE(mode))


def assert_coded(done: subprocess.CompletedProcess[str], code: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"error[{code}]" in output, output
    assert "Traceback" not in output and "internal error" not in output, output


@pytest.fixture
def read_only_probe(tmp_path: Path) -> None:
    """The read-only helper really makes a folder read-only here (else the tests mean nothing)."""
    folder = tmp_path / "probe"
    folder.mkdir()
    if os.geteuid() == 0:
        script = f'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
        done = subprocess.run(["unshare", "-m", "sh", "-c", script, str(folder), "touch", str(folder / "x")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "Read-only" in done.stderr, done.stderr
    assert not (folder / "x").exists()


# -- 1. read-only workspace ------------------------------------------------------------------------


def test_verify_events_on_a_read_only_workspace_is_a_coded_refusal(ran: Workspace, read_only_probe: None) -> None:
    done = treasure_read_only(ran.root, "verify", "events", "--workspace", str(ran.root))
    assert_coded(done, "IO_ERROR")
    output = done.stdout + done.stderr
    assert "read-only" in output.lower() and "evidence" in output
    assert "FAILED" not in output and "test_every_event_log_verifies" not in output  # no gate failed a good log
    assert len(output.splitlines()) <= 4


def test_init_in_a_read_only_folder_exits_2(tmp_path: Path, read_only_probe: None) -> None:
    parent = tmp_path / "parent"
    (parent / "empty").mkdir(parents=True)
    assert_coded(treasure_read_only(parent, "init", str(parent / "new")), "IO_ERROR")
    assert_coded(treasure_read_only(parent, "init", str(parent / "empty")), "IO_ERROR")


@pytest.mark.parametrize("command", [("archive",), ("checklist", "eod")])
def test_archive_and_eod_on_a_read_only_workspace_exit_2(ran: Workspace, read_only_probe: None,
                                                          command: tuple[str, ...]) -> None:
    done = treasure_read_only(ran.root, *command, "--workspace", str(ran.root))
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "IO_ERROR" in output and "Traceback" not in output and "internal error" not in output


# -- files where folders belong --------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["logs", "reports", "data", "evidence"])
def test_output_folder_replaced_by_a_file_is_refused_before_any_evidence(ran: Workspace, cli: CLI,
                                                                         folder: str) -> None:
    shutil.rmtree(ran.root / folder)
    (ran.root / folder).write_text("not a folder\n")
    code, out, err = cli("run", "--workspace", ran.root, "--run-id", "b", "--quiet")
    assert code == 2, out + err
    assert "error[WORKSPACE_LAYOUT]" in err and f"{folder} is a file" in err
    assert "internal error" not in out + err
    if folder != "logs":
        assert not ran.event_log("b").exists()


def test_truth_replaced_by_a_file_is_refused_and_leaves_no_log(ran: Workspace, cli: CLI) -> None:
    shutil.rmtree(ran.truth_dir)
    ran.truth_dir.write_text("not a folder\n")
    code, out, err = cli("run", "--workspace", ran.root, "--run-id", "b", "--quiet")
    assert code == 2, out + err
    assert "error[WORKSPACE_LAYOUT]" in err and "truth is a file" in err
    assert not ran.event_log("b").exists()


def test_verify_with_evidence_a_file_is_coded(ran: Workspace, cli: CLI) -> None:
    shutil.rmtree(ran.evidence_dir)
    ran.evidence_dir.write_text("x\n")
    code, out, err = cli("verify", "events", "--workspace", ran.root)
    assert code == 2 and "error[WORKSPACE_LAYOUT]" in err, out + err


def test_init_on_a_file_or_in_proc_is_coded(tmp_path: Path, cli: CLI) -> None:
    target = tmp_path / "file"
    target.write_text("x\n")
    code, out, err = cli("init", target)
    assert code == 2 and "error[WORKSPACE_LAYOUT]" in err, out + err
    assert target.read_text() == "x\n"
    code, out, err = cli("init", "/proc/treasure-no-such-dir")
    assert code == 2 and "error[IO_ERROR]" in err and "internal error" not in err, out + err


def test_init_refuses_a_file_where_spec_goes(tmp_path: Path, cli: CLI) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "spec").write_text("x\n")
    code, out, err = cli("init", root, "--force")
    assert code == 2 and "error[WORKSPACE_LAYOUT]" in err and "spec is a file" in err, out + err


# -- 4. fsync of a directory -----------------------------------------------------------------------


def test_fsync_dir_surfaces_eio_and_enospc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from treasure import jsonio

    for number in (errno.EIO, errno.ENOSPC):
        def failing(fd: int, number: int = number) -> None:
            raise OSError(number, os.strerror(number))

        monkeypatch.setattr(jsonio.os, "fsync", failing)
        with pytest.raises(TreasureError) as caught:
            jsonio.fsync_dir(tmp_path)
        assert caught.value.code == "IO_ERROR"
    for number in sorted(jsonio.FSYNC_DIR_UNSUPPORTED):
        def unsupported(fd: int, number: int = number) -> None:
            raise OSError(number, os.strerror(number))

        monkeypatch.setattr(jsonio.os, "fsync", unsupported)
        jsonio.fsync_dir(tmp_path)  # "this file system cannot sync a folder": ignored, documented


@pytest.mark.parametrize("call", [2, 4, 10])  # dir fsyncs: reports/runs/<id> (2, 4), reports/ (10)
def test_eio_at_a_directory_fsync_fails_the_run(ran: Workspace, cli: CLI, call: int) -> None:
    code, out, err = cli("faultrun", "--faults", f"eio@fsync:{call}", "run", "--workspace", ran.root,
                         "--run-id", "f", "--quiet")
    assert code == 2, out + err
    both = out + err
    assert "error[IO_ERROR]" in both and "fsync the folder" in both and "Input/output error" in both


# -- 7. one mode for every evidence file -----------------------------------------------------------


def test_reports_and_logs_share_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        ws = init_workspace(tmp_path / "ws")
        run(RunRequest(ws, run_id="m"))
    finally:
        os.umask(old)
    files = [ws.event_log("m"), ws.reports_dir / "court_report.json", ws.reports_dir / "eqs_report.json",
             *sorted(ws.run_reports("m").iterdir())]
    modes = {ws.relative(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes


def test_atomic_write_follows_the_umask(tmp_path: Path) -> None:
    from treasure.jsonio import atomic_write_bytes

    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "x.json", b"{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o640


# -- 5. spec/ and truth/ cannot escape -------------------------------------------------------------


def _move_out(ws: Workspace, rel: str, outside: Path) -> None:
    outside.mkdir(parents=True, exist_ok=True)
    target = outside / Path(rel).name
    shutil.move(str(ws.root / rel), target)
    (ws.root / rel).symlink_to(target)


@pytest.mark.parametrize("rel", ["spec/ssot.json", "truth"])
def test_spec_or_truth_linked_out_is_refused_by_run_approve_and_check(ran: Workspace, cli: CLI, tmp_path: Path,
                                                                     rel: str) -> None:
    from treasure.approval import check_tamper

    _move_out(ran, rel, tmp_path / "outside")
    code, out, err = cli("run", "--workspace", ran.root, "--run-id", "b", "--quiet")
    assert code == 2 and "error[PATH_ESCAPE]" in err, out + err
    assert not ran.event_log("b").exists()
    code, out, err = cli("ssot", "approve", "--workspace", ran.root)
    assert code == 2 and ("error[PATH_ESCAPE]" in err or "error[LOCK_REFUSED]" in err), out + err
    if rel == "truth":
        assert "PATH_ESCAPE" in {f.code for f in check_tamper(ran)}


def test_a_symlink_in_spec_to_dev_zero_is_refused(ran: Workspace, cli: CLI) -> None:
    (ran.spec_dir / "zero.json").symlink_to("/dev/zero")
    code, out, err = cli("run", "--workspace", ran.root, "--run-id", "b", "--quiet")
    assert code == 2 and "error[PATH_ESCAPE]" in err and "spec/zero.json" in err, out + err
    (ran.spec_dir / "zero.json").unlink()
    (ran.truth_dir / "zero").symlink_to("/dev/zero")  # any name, not only *.json
    code, out, err = cli("checklist", "pre", "--workspace", ran.root)
    assert code == 2 and "PATH_ESCAPE" in out + err, out + err


def test_a_fifo_in_truth_is_refused(ran: Workspace, cli: CLI) -> None:
    os.mkfifo(ran.truth_dir / "pipe.json")
    code, out, err = cli("run", "--workspace", ran.root, "--run-id", "b", "--quiet")
    assert code == 2 and "error[WORKSPACE_LAYOUT]" in err and "truth/pipe.json" in err, out + err


def test_archives_and_rotated_parts_share_the_evidence_mode(ran: Workspace, cli: CLI) -> None:
    old = os.umask(0o022)
    try:
        code, out, err = cli("rotate", "--workspace", ran.root, "--max-mb", "0.1")
        assert code == 0, out + err
        code, out, err = cli("archive", "--workspace", ran.root, "--keep")
        assert code == 0, out + err
    finally:
        os.umask(old)
    files = [p for p in [*ran.logs_dir.iterdir(), *ran.archive_dir.iterdir()] if p.is_file()]
    assert any(p.name.endswith(".tar.gz") for p in files) and any(p.name.endswith(".jsonl.1") for p in files)
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes


# -- 2. a run is complete only at its commit point -------------------------------------------------


def _drop_court(ws: Workspace, run_id: str) -> None:
    """What a kill at the report write leaves: the log ends with run_end(complete), no court report."""
    (ws.run_reports(run_id) / "court_report.json").unlink()


def test_run_verdict_is_the_one_rule() -> None:
    from treasure.ops.run_catalog import run_verdict

    end = {"status": "complete"}
    assert run_verdict({"status": "complete"}, None, end).complete
    assert run_verdict({"status": "error", "reason": "STORE_IO"}, None, end).label() == "error (STORE_IO)"
    missing = run_verdict(None, "absent", end)
    assert not missing.complete and missing.status == "incomplete"
    assert missing.label() == "incomplete (no court report; the log's run_end says complete)"
    assert run_verdict(None, "not valid JSON", end).status == "incomplete"
    assert run_verdict(None, "absent", None, log_open=True).status == "open"
    assert run_verdict(None, "absent", None).label() == "incomplete (no court report)"


def test_status_diagnose_and_checklist_say_incomplete_without_a_court_report(ran: Workspace, cli: CLI) -> None:
    _drop_court(ran, "a")
    code, out, err = cli("status", "--workspace", ran.root)
    line = next(row for row in out.splitlines() if row.strip().startswith("a "))
    assert "incomplete (no court report" in line and "complete " not in line.replace("incomplete", ""), out
    code, out, err = cli("diagnose", "a", "--workspace", ran.root)
    assert "status     incomplete (no court report" in out, out
    assert "RUN_INCOMPLETE" in out
    code, out, err = cli("checklist", "post", "a", "--workspace", ran.root)
    assert code == 2, out + err
    assert "incomplete (no court report" in out and "no run_end event" not in out, out


def test_status_json_keeps_its_schema_and_says_incomplete(ran: Workspace) -> None:
    from treasure.contracts import Contracts
    from treasure.ops.status import build

    _drop_court(ran, "a")
    doc = build(ran)
    Contracts(ran.truth_dir).validate("status", doc)
    row = next(r for r in doc["runs"] if r["run_id"] == "a")
    assert row["status"] == "unknown" and row["reason"].startswith("incomplete: no court report"), row


# -- 3. latest court and eqs copies paired by run id -----------------------------------------------


def test_latest_copies_from_two_runs_fail_e2_and_checklist_post(ran: Workspace, cli: CLI) -> None:
    run(RunRequest(ran, run_id="b"))
    shutil.copyfile(ran.run_reports("a") / "eqs_report.json", ran.reports_dir / "eqs_report.json")
    code, out, err = cli("checklist", "post", "b", "--workspace", ran.root)
    assert code == 2 and "reports/eqs_report.json names run 'a'" in out, out
    code, out, err = cli("verify", "e2", "--workspace", ran.root)
    assert code == 2, out + err
    assert "latest copies are from different runs" in (ran.evidence_dir / "gates.json").read_text()
    shutil.copyfile(ran.run_reports("b") / "eqs_report.json", ran.reports_dir / "eqs_report.json")
    code, out, err = cli("checklist", "post", "b", "--workspace", ran.root)
    assert "names run" not in out, out


# -- 6. replay from a read-only workspace cleans up ------------------------------------------------


def test_replay_scratch_of_a_read_only_workspace_is_writable_and_removed(ran: Workspace, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``chmod -R a-w`` a workspace (what a non-root operator's read-only copy looks like): copytree
    copied those modes into the replay's scratch folders, which a non-root user then could not
    write (the replay failed) nor delete (the temp folder leaked; root ignores modes, so this
    checks the modes themselves)."""
    from treasure.replay import replay

    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    for folder in (ran.spec_dir, ran.truth_dir, ran.fixtures_dir):
        for top, dirs, _ in os.walk(folder):
            os.chmod(top, 0o555)
    try:
        kept = replay(ran, "a", keep=True)
        assert kept.workspace is not None
        locked = [p for p in kept.workspace.rglob("*") if p.is_dir() and (p.stat().st_mode & 0o700) != 0o700]
        assert not locked, locked[:3]
        replay(ran, "a")
        assert [p.name for p in scratch.iterdir()] == [kept.workspace.parent.name]  # only the --keep one
    finally:
        for folder in (ran.spec_dir, ran.truth_dir, ran.fixtures_dir):
            for top, dirs, _ in os.walk(folder):
                os.chmod(top, 0o755)


def test_remove_tree_removes_read_only_folders(tmp_path: Path) -> None:
    from treasure.replay import remove_tree

    root = tmp_path / "scratch"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("x")
    os.chmod(root / "a" / "b", 0o555)
    os.chmod(root / "a", 0o555)
    remove_tree(root)
    assert not root.exists()
