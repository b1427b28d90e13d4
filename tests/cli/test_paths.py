"""Paths never escape the workspace (traversal, symlinks), unless an operator passes an absolute
path on the command line on purpose.

Covers run ids, the SSOT's paths (dataset, DB, live fixture, strategy file), CLI paths (--ssot,
--dataset, --db, --live, --out) and the evidence folders the engine writes into. The holes these
tests found (strategy files and output folders outside the workspace, NUL in paths) are fixed; a
new one gets an ``xfail(strict=True)`` test and a line in docs/robustness.md, "Known gaps".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from treasure.data import bars_to_csv, generate_bars
from treasure.errors import RunError, TreasureError, WorkspaceError
from treasure.workspace import Workspace, check_run_id, init_workspace, pin_dataset

pytestmark = pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")


@pytest.fixture
def ws(tmp_path) -> Workspace:
    ws = init_workspace(tmp_path / "ws")
    pin_dataset(ws, bars_to_csv(generate_bars(n_bars=200, seed=4)), "fixtures/data/paths.csv", interval_ms=300_000)
    return ws


@pytest.fixture
def outside(tmp_path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def edit_ssot(ws: Workspace, change) -> None:
    doc = json.loads(ws.ssot_path.read_text())
    change(doc)
    ws.ssot_path.write_text(json.dumps(doc, indent=2))


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture
def in_ws(ws, monkeypatch) -> Workspace:
    """Run with the current directory inside the workspace (relative CLI paths resolve from it)."""
    monkeypatch.chdir(ws.root)
    return ws


# -- run ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["a", "run-1", "A.b_c-9", "x" * 64, "2026.01.01"])
def test_good_run_ids(run_id):
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["", ".", "..", "../x", "a/../../b", "a/b", "a\\b", "/abs", "-x", ".hidden",
                                    "a..b", "x" * 65, "a b", "a\x00b", "é", "a\nb", "~root", "$(rm)", "a:b"])
def test_bad_run_ids(run_id):
    with pytest.raises(RunError) as exc:
        check_run_id(run_id)
    assert exc.value.code == "RUN_ID_INVALID"


@pytest.mark.parametrize("run_id", ["../../escape", "a/b", ".."])
def test_cli_refuses_traversing_run_ids_and_writes_nothing(ws, cli, run_id):
    before = listing(ws.root.parent)
    code, _, err = cli("run", "--workspace", ws.root, "--run-id", run_id, "--quiet")
    assert code == 2 and "error[RUN_ID_INVALID]" in err
    assert listing(ws.root.parent) == before


def test_evidence_paths_check_the_run_id(ws):
    for method in (ws.event_log, ws.run_reports, ws.log_parts):
        with pytest.raises(RunError):
            method("../x")


# -- Workspace.resolve_inside (paths written in workspace files) -----------------------------------


def test_resolve_inside_accepts_paths_inside(ws):
    assert ws.resolve_inside("spec/ssot.json") == ws.ssot_path
    assert ws.resolve_inside("spec/../spec/ssot.json") == ws.ssot_path
    assert ws.resolve_inside(".") == ws.root


@pytest.mark.parametrize("path", ["../x", "spec/../../x", "/etc/passwd", "fixtures/../../../etc"])
def test_resolve_inside_refuses_escapes(ws, path):
    with pytest.raises(WorkspaceError) as exc:
        ws.resolve_inside(path, field="dataset.path", source="spec/ssot.json")
    assert exc.value.code == "PATH_ESCAPE" and exc.value.field == "dataset.path"


def test_resolve_inside_follows_symlinks(ws, outside):
    (ws.root / "fixtures" / "out").symlink_to(outside)
    (ws.root / "fixtures" / "in").symlink_to(ws.root / "spec")
    with pytest.raises(WorkspaceError) as exc:
        ws.resolve_inside("fixtures/out/data.csv")
    assert exc.value.code == "PATH_ESCAPE"
    assert ws.resolve_inside("fixtures/in/ssot.json") == ws.ssot_path


def test_resolve_inside_refuses_a_prefix_sibling(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    (tmp_path / "ws2").mkdir()
    with pytest.raises(WorkspaceError):
        ws.resolve_inside("../ws2/x")  # /.../ws2 starts with /.../ws but is not inside it


@pytest.mark.parametrize("path", ["fixtures/a\x00b.csv", ""])
def test_resolve_inside_refuses_nul_and_empty_with_a_code(ws, path):
    with pytest.raises(TreasureError) as exc:
        ws.resolve_inside(path, field="dataset.path")
    assert exc.value.code == "PATH_INVALID" and exc.value.field == "dataset.path"


# -- Workspace.resolve_cli (paths typed on the command line) ---------------------------------------


def test_resolve_cli_relative_stays_inside_absolute_is_explicit(in_ws, outside):
    assert in_ws.resolve_cli("spec/ssot.json") == in_ws.ssot_path
    with pytest.raises(WorkspaceError) as exc:
        in_ws.resolve_cli("../outside/x.csv", field="--dataset")
    assert exc.value.code == "PATH_ESCAPE" and "absolute path" in exc.value.hint
    assert in_ws.resolve_cli(str(outside / "x.csv")) == outside / "x.csv"


def test_resolve_cli_relative_from_outside_the_workspace(ws, monkeypatch):
    monkeypatch.chdir(ws.root.parent)
    assert ws.resolve_cli("ws/spec/ssot.json") == ws.ssot_path
    with pytest.raises(WorkspaceError):
        ws.resolve_cli("elsewhere.csv")


# -- the SSOT's paths ------------------------------------------------------------------------------


def test_ssot_dataset_outside_is_refused(ws, cli, outside):
    (outside / "data.csv").write_bytes((ws.root / "fixtures/data/paths.csv").read_bytes())
    edit_ssot(ws, lambda d: d["dataset"].update(path="../outside/data.csv"))
    code, _, err = cli("run", "--workspace", ws.root, "--quiet")
    assert code == 2 and "error[PATH_ESCAPE]" in err and "dataset.path" in err


def test_ssot_dataset_symlinked_outside_is_refused(ws, cli, outside):
    (outside / "data.csv").write_bytes((ws.root / "fixtures/data/paths.csv").read_bytes())
    (ws.root / "fixtures" / "data" / "link.csv").symlink_to(outside / "data.csv")
    edit_ssot(ws, lambda d: d["dataset"].update(path="fixtures/data/link.csv"))
    code, _, err = cli("run", "--workspace", ws.root, "--quiet")
    assert code == 2 and "error[PATH_ESCAPE]" in err


def test_ssot_db_path_outside_is_refused(ws, cli):
    pytest.importorskip("treasure.store")
    edit_ssot(ws, lambda d: d["persistence"].update(enabled=True, db_path="../escape.db"))
    code, _, err = cli("run", "--workspace", ws.root, "--quiet", "--run-id", "d")
    assert code == 2 and "error[PATH_ESCAPE]" in err and "persistence.db_path" in err
    assert not (ws.root.parent / "escape.db").exists()
    assert not ws.event_log("d").exists()


def test_ssot_db_path_through_a_symlinked_data_dir_is_refused(ws, cli, outside):
    pytest.importorskip("treasure.store")
    os.rmdir(ws.data_dir)
    ws.data_dir.symlink_to(outside)
    edit_ssot(ws, lambda d: d["persistence"].update(enabled=True))
    code, _, err = cli("run", "--workspace", ws.root, "--quiet", "--run-id", "d")
    assert code == 2 and "error[PATH_ESCAPE]" in err
    assert listing(outside) == []


def test_ssot_live_fixture_outside_is_refused(ws, cli, outside):
    pytest.importorskip("treasure.recon")
    assert cli("run", "--workspace", ws.root, "--quiet", "--run-id", "r")[0] == 0
    (outside / "live.jsonl").write_text("{}\n")
    edit_ssot(ws, lambda d: d["recon"].update(live_fixture="../outside/live.jsonl"))
    code, _, err = cli("recon", "r", "--workspace", ws.root)
    assert code == 2 and "error[PATH_ESCAPE]" in err and "recon.live_fixture" in err


def test_ssot_strategy_file_outside_is_refused(ws, cli, outside):
    (outside / "evil.py").write_text(
        "from pathlib import Path\n"
        "Path(__file__).with_name('EXECUTED').write_text('yes')\n"
        "from treasure.strategy.builtin import BUILTIN\n"
        "Evil = BUILTIN['buy_and_hold']\n")
    edit_ssot(ws, lambda d: d.update(strategy={"name": "../outside/evil.py:Evil", "params": {}}))
    code, _, err = cli("run", "--workspace", ws.root, "--quiet", "--run-id", "s")
    assert not (outside / "EXECUTED").exists(), "code outside the workspace was executed"
    assert code == 2 and "error[PATH_ESCAPE]" in err


# -- CLI paths -------------------------------------------------------------------------------------


def test_cli_dataset_relative_outside_refused_absolute_accepted(in_ws, cli, outside):
    data = outside / "data.csv"
    data.write_bytes((in_ws.root / "fixtures/data/paths.csv").read_bytes())
    code, _, err = cli("run", "--dataset", "../outside/data.csv", "--quiet", "--run-id", "a")
    assert code == 2 and "error[PATH_ESCAPE]" in err and not in_ws.event_log("a").exists()
    code, out, _ = cli("run", "--dataset", data, "--quiet", "--run-id", "b")
    assert code == 0 and "DATASET_OVERRIDE" not in out  # same bytes as the pinned file: no finding
    court = json.loads((in_ws.run_reports("b") / "court_report.json").read_text())
    assert court["inputs"]["dataset_override"] is True and court["inputs"]["dataset_path"] == str(data)


def test_cli_ssot_relative_outside_refused(in_ws, cli, outside):
    (outside / "ssot.json").write_text(in_ws.ssot_path.read_text())
    code, _, err = cli("run", "--ssot", "../outside/ssot.json", "--quiet")
    assert code == 2 and "error[PATH_ESCAPE]" in err and "--ssot" in err


def test_cli_db_relative_outside_refused_absolute_accepted(in_ws, cli, outside):
    pytest.importorskip("treasure.store")
    code, _, err = cli("run", "--db", "../outside/x.db", "--quiet", "--run-id", "a")
    assert code == 2 and "error[PATH_ESCAPE]" in err and listing(outside) == []
    code, _, err = cli("run", "--db", outside / "x.db", "--quiet", "--run-id", "b")
    assert code == 0, err
    assert (outside / "x.db").exists()


def test_cli_report_out_relative_outside_refused(in_ws, cli):
    assert cli("run", "--quiet", "--run-id", "a")[0] == 0
    code, _, err = cli("report", "a", "--html", "--out", "../escape.html")
    assert code == 2 and "error[PATH_ESCAPE]" in err
    assert not (in_ws.root.parent / "escape.html").exists()


# -- evidence folders symlinked out of the workspace -------------------------------------------------


def _symlink_out(ws: Workspace, folder: Path, outside: Path) -> None:
    if folder.exists():
        folder.rmdir() if not any(folder.iterdir()) else None
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.symlink_to(outside, target_is_directory=True)


def test_reports_dir_symlinked_outside_is_refused(ws, cli, outside):
    import shutil

    shutil.rmtree(ws.reports_dir)
    _symlink_out(ws, ws.reports_dir, outside)
    code, _, err = cli("run", "--workspace", ws.root, "--quiet", "--run-id", "x")
    assert listing(outside) == [], "reports were written outside the workspace"
    assert code == 2 and "error[PATH_ESCAPE]" in err


def test_logs_dir_symlinked_outside_is_refused(ws, cli, outside):
    import shutil

    shutil.rmtree(ws.logs_dir)
    _symlink_out(ws, ws.logs_dir, outside)
    code, _, err = cli("run", "--workspace", ws.root, "--quiet", "--run-id", "x")
    assert listing(outside) == [], "the event log was written outside the workspace"
    assert code == 2 and "error[PATH_ESCAPE]" in err


def test_archive_dir_symlinked_outside_is_refused(ws, cli, outside):
    assert cli("run", "--workspace", ws.root, "--quiet", "--run-id", "x")[0] == 0
    _symlink_out(ws, ws.archive_dir, outside)
    code, _, err = cli("archive", "--workspace", ws.root, "--quiet")
    assert listing(outside) == [], "the archive was written outside the workspace"
    assert code == 2 and "error[PATH_ESCAPE]" in err


def test_a_planted_log_symlink_is_not_followed(ws, cli, outside):
    """A symlink planted where the next run's log goes is refused (O_EXCL), not written through."""
    target = outside / "victim.txt"
    target.write_text("precious\n")
    ws.logs_dir.mkdir(parents=True, exist_ok=True)
    ws.event_log("x").symlink_to(target)
    code, _, err = cli("run", "--workspace", ws.root, "--quiet", "--run-id", "x")
    assert code == 2 and "error[RUN_EXISTS]" in err
    assert target.read_text() == "precious\n"


def test_a_planted_latest_report_symlink_is_replaced_not_followed(ws, cli, outside):
    target = outside / "victim.json"
    target.write_text("precious\n")
    ws.reports_dir.mkdir(parents=True, exist_ok=True)
    (ws.reports_dir / "court_report.json").symlink_to(target)
    assert cli("run", "--workspace", ws.root, "--quiet", "--run-id", "x")[0] == 0
    assert target.read_text() == "precious\n"  # os.replace swaps the link itself
    assert not (ws.reports_dir / "court_report.json").is_symlink()
