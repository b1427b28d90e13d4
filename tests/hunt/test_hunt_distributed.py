"""treasure hunt --sweep: hunts over (strategy, seed) as pure tasks on the sweep executor.

The buggy example over 2 seeds gives the same report bytes and the same reproducer files serially
(through the CLI, --json) and on a 2-worker LocalCluster; both seeds shrink to the same case, which is
written once; a second sweep replays the saved examples from .hypothesis/examples and writes nothing;
a clean built-in finds nothing.

The buggy hunts skip ``clean_run``: with the data loader's DATA_TOO_SHORT (2 bars, 1 distinct
timestamp) the generator's 2-bar case with a duplicate is refused, and seed 0 finds that first.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from treasure.errors import TreasureError
from treasure.hunt.distributed import (HuntSweepOutcome, HuntSweepRequest, SnapshotDatabase, _merge_database,
                                       _write_reproducers, database_key, hunt_sweep, parse_seeds, HuntTask)
from treasure.sweep import ExecutorOptions
from treasure.workspace import Workspace, init_workspace

BUGGY = "examples/buggy_gap.py:GapFade"
REPO = Path(__file__).resolve().parents[2]
ARGS = ["--strategy", BUGGY, "--seeds", "0,1", "--examples", "30", "--max-bars", "10", "--skip", "clean_run"]


def _workspace(root: Path) -> Workspace:
    ws = init_workspace(root)
    (ws.root / "examples").mkdir(exist_ok=True)
    shutil.copy(REPO / "examples" / "buggy_gap.py", ws.root / "examples" / "buggy_gap.py")
    return ws


def _cli(*args: Any) -> tuple[int, str]:
    from treasure.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in args])
    return code, out.getvalue()


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict[str, Any], bytes]:
    ws = _workspace(tmp_path_factory.mktemp("serial") / "ws")
    code, out = _cli("hunt", "--workspace", ws.root, "--sweep", "--serial", "--json", *ARGS)
    assert code == 2, out
    doc = json.loads(out)
    return ws, doc, (ws.root / doc["report"]).read_bytes()


def test_serial_cli_finds_the_bug_once(serial: tuple[Workspace, dict[str, Any], bytes]) -> None:
    ws, doc, data = serial
    report = json.loads(data)
    assert data == json.dumps(report, sort_keys=True, separators=(",", ":")).encode() + b"\n"  # canonical
    assert [(r["strategy"], r["seed"]) for r in report["rows"]] == [(BUGGY, 0), (BUGGY, 1)]
    assert report["by_status"] == {"failed": 2}
    # each seed shrinks to a determinism case; a case found by both seeds is listed (and written) once
    per_seed = [[f["reproducer"] for f in r["failures"]] for r in report["rows"]]
    assert all(len(ids) == 1 and ids[0].startswith("determinism-") for ids in per_seed)
    distinct = sorted({ids[0] for ids in per_seed})
    assert [f["reproducer"] for f in report["failures"]] == distinct
    assert sum(len(f["found_by"]) for f in report["failures"]) == 2
    assert all(r["examples"]["run"] >= 1 for r in report["rows"])
    assert report["database"]["used"] and report["database"]["entries_before"] == 0
    assert doc["reproducers"] == [f"fixtures/regressions/{rid}" for rid in distinct]
    assert doc["written"] == 3 * len(distinct) and doc["unchanged"] + doc["kept"] == 6 - 3 * len(distinct)
    folder = ws.root / "fixtures" / "regressions" / per_seed[0][0]
    assert sorted(p.name for p in folder.iterdir()) == ["dataset.csv", "ssot.json", "test_reproduce.py"]
    test = (folder / "test_reproduce.py").read_text()
    assert f"treasure hunt --strategy {BUGGY} --seed 0" in test  # the first task in (strategy, seed) order
    assert json.loads((folder / "ssot.json").read_text())["strategy"]["name"] == BUGGY
    assert any((ws.root / ".hypothesis" / "examples").rglob("*"))  # the shrunk example was saved


def test_local_cluster_gives_the_same_bytes(tmp_path: Path, serial: tuple[Workspace, dict[str, Any], bytes]) -> None:
    ws = _workspace(tmp_path / "ws")
    request = HuntSweepRequest(ws, (BUGGY,), (0, 1), examples=30, max_bars=10, skip=("clean_run",))
    outcome = hunt_sweep(request, ExecutorOptions(n_workers=2))
    assert outcome.report_path.read_bytes() == serial[2]
    assert ws.relative(outcome.report_path) == serial[1]["report"]
    regressions = "fixtures/regressions"
    assert _tree(ws.root / regressions) == _tree(serial[0].root / regressions)
    assert outcome.written == 3 * len(serial[1]["reproducers"])


def test_second_sweep_replays_saved_examples_and_writes_nothing(
        serial: tuple[Workspace, dict[str, Any], bytes]) -> None:
    ws, first, _ = serial
    before = _tree(ws.root / "fixtures" / "regressions")
    code, out = _cli("hunt", "--workspace", ws.root, "--sweep", "--serial", "--json", *ARGS)
    assert code == 2
    doc = json.loads(out)
    assert doc["database"]["entries_before"] > 0
    # the saved failures are replayed (a seed may now meet another seed's saved case first)
    assert {f["reproducer"] for f in doc["failures"]} <= {f["reproducer"] for f in first["failures"]}
    assert [r["examples"]["run"] for r in doc["rows"]] == [1, 1]  # the saved failure is replayed first
    assert doc["written"] == 0 and _tree(ws.root / "fixtures" / "regressions") == before


def test_clean_builtin_over_two_seeds_finds_nothing(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    code, out = _cli("hunt", "--workspace", ws.root, "--sweep", "--serial", "--json", "--strategies", "sma_crossover",
                     "--seeds", "0-1", "--examples", "5", "--max-bars", "12", "--determinism", "inprocess")
    doc = json.loads(out)
    assert code == 0, out
    assert doc["by_status"] == {"passed": 2} and doc["failures"] == [] and doc["reproducers"] == []
    assert [(r["seed"], r["examples"]["run"]) for r in doc["rows"]] == [(0, 5), (1, 5)]
    assert not (ws.root / "fixtures" / "regressions").exists() or not any((ws.root / "fixtures" / "regressions").iterdir())


def test_parse_seeds() -> None:
    assert parse_seeds("0-3,9") == (0, 1, 2, 3, 9)
    assert parse_seeds("2,1,2") == (1, 2)
    for bad in ("", "a", "3-1", "-1", "0-"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


@pytest.mark.parametrize("args, field", [(["--seeds", "x"], None), (["--strategies", "sma_crossover"], "--strategies"),
                                         (["--serial"], "--serial")])
def test_cli_refuses_bad_sweep_options(tmp_path: Path, args: list[str], field: str | None) -> None:
    ws = init_workspace(tmp_path / "ws")
    code, out = _cli("hunt", "--workspace", ws.root, "--json", *args)
    assert code == 2
    if field is not None:
        assert json.loads(out)["error"]["field"] == field


def test_snapshot_database_is_sorted_and_reports_changes() -> None:
    db = SnapshotDatabase({"": (b"bb", b"a"), ".secondary": (b"x",)})
    assert list(db.fetch(b"anykey")) == [b"a", b"bb"]
    db.save(b"k", b"c")
    db.delete(b"k.secondary", b"x")
    db.move(b"k", b"k.pareto", b"a")
    assert db.changes() == {"added": {"": [b"c"], ".secondary": [], ".pareto": [b"a"]},
                            "deleted": {"": [b"a"], ".secondary": [b"x"], ".pareto": []}}


def test_merge_does_not_depend_on_task_order(tmp_path: Path) -> None:
    from hypothesis.database import DirectoryBasedExampleDatabase

    def task(seed: int) -> HuntTask:
        return HuntTask("sma_crossover", seed, None, 1, 2, None, "off", (), "0" * 64, {})

    changes = [(task(0), {"deleted": {"": [b"old"]}, "added": {"": [b"new"]}}),
               (task(1), {"deleted": {"": [b"new"]}, "added": {"": [b"more"], ".secondary": [b"s"]}})]
    trees = []
    for name, order in (("a", changes), ("b", changes[::-1])):
        store = DirectoryBasedExampleDatabase(str(tmp_path / name))
        store.save(database_key("sma_crossover", None), b"old")
        _merge_database(store, order, HuntSweepOutcome({}, tmp_path / "r.json"))
        assert sorted(store.fetch(database_key("sma_crossover", None))) == [b"more", b"new"]  # adds win
        trees.append(sorted(store.fetch(database_key("sma_crossover", None) + b".secondary")))
    assert trees[0] == trees[1] == [b"s"]


def test_a_different_case_under_the_same_id_is_refused(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    row = {"failures": [{"reproducer": "determinism-000000000000"}]}
    files = {"dataset.csv": b"t_ms\n", "ssot.json": b"{}\n", "test_reproduce.py": b"# a\n"}
    outcome = HuntSweepOutcome({}, tmp_path / "r.json")
    _write_reproducers(ws, [{"row": row, "files": files}], outcome)
    _write_reproducers(ws, [{"row": row, "files": {**files, "test_reproduce.py": b"# b\n"}}], outcome)
    assert (outcome.written, outcome.unchanged, outcome.kept) == (3, 2, 1)
    assert (ws.root / "fixtures/regressions/determinism-000000000000/test_reproduce.py").read_bytes() == b"# a\n"
    with pytest.raises(TreasureError) as caught:
        _write_reproducers(ws, [{"row": row, "files": {**files, "dataset.csv": b"other\n"}}], outcome)
    assert caught.value.code == "HUNT_REPRODUCER_CONFLICT"
