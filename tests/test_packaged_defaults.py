"""The packaged defaults are real files equal to the repository's root workspace, and the wheel
carries exactly them and the gates package (issue 11: no symlinks, nothing stray shipped)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from treasure import packaged
from treasure.workspace import bundle_dir, init_workspace

ROOT = Path(__file__).resolve().parents[1]


def test_root_workspace_equals_the_packaged_defaults() -> None:
    assert packaged.differences() == [], "run `python -m treasure.packaged --sync` and commit treasure/defaults/"


def test_no_symlinks_in_the_packages() -> None:
    links = [str(p) for pkg in ("treasure", "pytest_treasure") for p in (ROOT / pkg).rglob("*") if p.is_symlink()]
    assert links == []


def test_init_copies_the_packaged_files_and_nothing_else(tmp_path: Path) -> None:
    stray = ROOT / "fixtures" / "regressions" / "probe-not-shipped"
    stray.mkdir(parents=True, exist_ok=True)
    try:
        ws = init_workspace(tmp_path / "ws")
        assert bundle_dir() == packaged.packaged_root()
        assert packaged.shipped_files(ws.root) == packaged.shipped_files(bundle_dir())
        assert not (ws.root / "fixtures" / "regressions").exists()
    finally:
        stray.rmdir()
        if not any(stray.parent.iterdir()):
            stray.parent.rmdir()


def test_sync_then_check_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "src"
    target = tmp_path / "pkg"
    (source / "spec").mkdir(parents=True)
    (source / "spec" / "ssot.json").write_text("{}")
    (source / "fixtures" / "regressions").mkdir(parents=True)
    (source / "fixtures" / "regressions" / "x.csv").write_text("junk")
    assert packaged.differences(source, target) == ["missing from the package: spec/ssot.json"]
    packaged.sync(source, target)
    assert packaged.differences(source, target) == []
    assert not (target / "fixtures" / "regressions").exists()
    (source / "spec" / "ssot.json").write_text('{"a": 1}')
    assert packaged.differences(source, target) == ["differs: spec/ssot.json"]


def test_the_wheel_ships_the_defaults_and_the_gates(tmp_path: Path) -> None:
    had_build = (ROOT / "build").exists()
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
                              capture_output=True, text=True, timeout=300)
    finally:
        if not had_build:  # setuptools builds in the tree; leave the checkout as it was
            shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("treasure-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"treasure/defaults/{rel}" for rel in packaged.shipped_files(packaged.packaged_root())}
    assert shipped <= names
    assert {n for n in names if n.startswith("treasure/defaults/")} == shipped
    gates = {p.name for p in (ROOT / "pytest_treasure" / "gates").glob("*.py")}
    assert {n.rsplit("/", 1)[1] for n in names if n.startswith("pytest_treasure/gates/")} == gates
    assert not [n for n in names if "regressions" in n or "_bundle" in n]
