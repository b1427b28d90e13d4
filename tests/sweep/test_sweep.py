"""treasure sweep: spec checks are coded, the report is the same bytes serial, on a 2-worker
LocalCluster and with a worker killed mid-sweep; re-runs are no-ops; the CLI end to end."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any, Callable

import pytest

from treasure.errors import TreasureError
from treasure.sweep import ExecutorOptions, run_sweep
from treasure.sweep.spec import expand_range
from treasure.workspace import Workspace, init_workspace

BARS = 300


def _spec(data_sha: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": 1, "name": "tiny",
        "strategies": [{"name": "sma_crossover", "params": {"fast": [5, 10], "slow": {"start": 20, "stop": 30, "step": 10}}}],
        "datasets": [{"path": "data/small.csv", "sha256": data_sha}],
        "seeds": [1, 2],
        "heatmap": {"x": "fast", "y": "slow"},
    }
    doc.update(extra)
    return doc


def _make(root: Path, **extra: Any) -> tuple[Workspace, Path]:
    ws = init_workspace(root)
    lines = (ws.root / "fixtures/data/default_bars.csv").read_bytes().splitlines(keepends=True)[:BARS + 1]
    data = b"".join(lines)
    (ws.root / "data").mkdir(exist_ok=True)
    (ws.root / "data/small.csv").write_bytes(data)
    spec = ws.root / "spec/sweep.tiny.json"
    spec.write_text(json.dumps(_spec(hashlib.sha256(data).hexdigest(), **extra), indent=2))
    return ws, spec


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path, bytes]:
    ws, spec = _make(tmp_path_factory.mktemp("serial") / "ws")
    outcome = run_sweep(ws, spec, ExecutorOptions(serial=True))
    return ws, spec, outcome.report_path.read_bytes()


def test_serial_report_rows_and_ranking(serial: tuple[Workspace, Path, bytes]) -> None:
    ws, _, data = serial
    report = json.loads(data)
    assert report["points"] == 8 and report["by_status"] == {"complete": 8}
    ids = [r["point_id"] for r in report["runs"]]
    assert ids == sorted(ids) and len(set(ids)) == 8
    values = [(-e["value"], e["point_id"]) for e in report["ranking"]]
    assert values == sorted(values) and report["rank_by"] == {"metric": "sharpe", "order": "desc"}
    for row in report["runs"]:
        assert {"fast", "slow", "order_usd"} <= set(row["params"])  # the SSOT's other params are kept
        for item in row["evidence"]:
            path = ws.root / item["path"]
            assert path.is_file() and item["path"].startswith(f"sweeps/{report['sweep_id']}/runs/{row['point_id']}/")
            if item["hashed"] == "bytes":
                assert hashlib.sha256(path.read_bytes()).hexdigest() == item["sha256"]
        assert any(e["path"].endswith(".jsonl") for e in row["evidence"])
    html = (ws.root / "sweeps" / report["sweep_id"] / "sweep_report.html").read_text()
    assert "id='heatmap'" in html and "<svg" in html and "id='ranking'" in html


def test_local_cluster_report_is_byte_identical(tmp_path: Path, serial: tuple[Workspace, Path, bytes]) -> None:
    ws, spec = _make(tmp_path / "ws")
    outcome = run_sweep(ws, spec, ExecutorOptions(n_workers=2))
    assert outcome.ran == 8
    assert outcome.report_path.read_bytes() == serial[2]


def test_worker_killed_mid_sweep_gives_the_same_bytes(tmp_path: Path, serial: tuple[Workspace, Path, bytes]) -> None:
    ws, spec = _make(tmp_path / "ws")
    killed: list[str] = []

    def chaos(client: Any, done: int) -> None:
        if done == 1 and not killed:
            busy = client.processing()  # a worker with a task in flight, so that task is retried
            victim = sorted((w for w, keys in busy.items() if keys), key=lambda w: w)[0] if any(busy.values()) \
                else sorted(busy)[0]
            killed.append(victim)
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)  # the worker process dies; its nanny starts a new one

    options = ExecutorOptions(n_workers=2, chaos=chaos)
    outcome = run_sweep(ws, spec, options)
    assert killed and killed[0] in options.lost_workers
    assert outcome.report_path.read_bytes() == serial[2]


def test_rerun_is_a_no_op_and_force_rewrites_nothing(tmp_path: Path) -> None:
    ws, spec = _make(tmp_path / "ws")
    first = run_sweep(ws, spec, ExecutorOptions(serial=True))
    before = first.report_path.read_bytes()
    again = run_sweep(ws, spec, ExecutorOptions(serial=True))
    assert (again.ran, again.reused, again.written) == (0, 8, 0)
    forced = run_sweep(ws, spec, ExecutorOptions(serial=True), force=True)
    assert forced.ran == 8 and forced.written == 0  # same content: retried/duplicate results are no-ops
    assert forced.report_path.read_bytes() == before


def test_tampered_evidence_is_a_conflict(tmp_path: Path) -> None:
    ws, spec = _make(tmp_path / "ws")
    outcome = run_sweep(ws, spec, ExecutorOptions(serial=True))
    log = next(ws.root / e["path"] for e in outcome.report["runs"][0]["evidence"] if e["path"].endswith(".jsonl"))
    log.write_bytes(log.read_bytes() + b"\n")
    with pytest.raises(TreasureError) as err:
        run_sweep(ws, spec, ExecutorOptions(serial=True))
    assert err.value.code == "SWEEP_CONFLICT"
    run_sweep(ws, spec, ExecutorOptions(serial=True), force=True)
    assert run_sweep(ws, spec, ExecutorOptions(serial=True)).report_path.read_bytes() == outcome.report_path.read_bytes()


@pytest.mark.parametrize(("change", "code", "field"), [
    (lambda d: d.pop("seeds"), "SWEEP_SPEC_INVALID", "(root)"),
    (lambda d: d.update(bogus=1), "SWEEP_SPEC_INVALID", "(root)"),
    (lambda d: d.update(version=2), "SWEEP_SPEC_INVALID", "version"),
    (lambda d: d["datasets"][0].update(sha256="0" * 64), "SWEEP_DATASET_SHA", "datasets.0.sha256"),
    (lambda d: d["datasets"][0].update(path="../outside.csv"), "PATH_ESCAPE", "datasets.0.path"),
    (lambda d: d["strategies"][0]["params"].update(slow={"start": 30, "stop": 20, "step": 5}), "SWEEP_RANGE",
     "strategies.0.params.slow"),
    (lambda d: d.update(seeds={"start": 0, "stop": 10, "step": 0}), "SWEEP_RANGE", "seeds"),
    (lambda d: d.update(max_points=3), "SWEEP_TOO_LARGE", "max_points"),
])
def test_spec_errors_are_coded(tmp_path: Path, change: Callable[[dict[str, Any]], Any], code: str, field: str) -> None:
    ws, spec = _make(tmp_path / "ws")
    doc = json.loads(spec.read_text())
    change(doc)
    spec.write_text(json.dumps(doc))
    with pytest.raises(TreasureError) as err:
        run_sweep(ws, spec, ExecutorOptions(serial=True))
    assert (err.value.code, err.value.field) == (code, field)
    assert not (ws.root / "sweeps").exists()


def test_range_is_exact_and_inclusive() -> None:
    assert expand_range({"start": 0.1, "stop": 0.3, "step": 0.1}, field="f", source="s") == [0.1, 0.2, 0.3]
    assert expand_range({"start": 5, "stop": 20, "step": 5}, field="f", source="s") == [5, 10, 15, 20]


def test_cli_end_to_end(tmp_path: Path, cli: Callable[..., tuple[int, str, str]]) -> None:
    ws, spec = _make(tmp_path / "ws")
    code, out, err = cli("sweep", spec, "--serial", "--json", "--db", ws.root / "data/sweep.db", "-w", ws.root)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["points"] == 8 and doc["ran"] == 8 and doc["by_status"] == {"complete": 8}
    assert "ETA" not in err  # no progress bar under --json
    assert (ws.root / doc["report"]).is_file()
    code, out, err = cli("sweep", spec, "--serial", "--db", ws.root / "data/sweep.db", "-w", ws.root)
    assert code == 0 and "ran now       0" in out
    from treasure.store.ingest import ingest_log  # the runs are in the DB once: storing again adds nothing

    report = json.loads((ws.root / doc["report"]).read_bytes())
    row = report["runs"][0]
    log = next(ws.root / e["path"] for e in row["evidence"] if e["path"].endswith(".jsonl"))
    again = ingest_log(ws.root / "data/sweep.db", [log], contracts=None)
    assert again.inserted == 0
    bad = ws.root / "spec/bad.json"
    bad.write_text("{\"version\": 1}")
    code, out, err = cli("sweep", bad, "--serial", "-w", ws.root)
    assert code == 2 and "error[SWEEP_SPEC_INVALID]" in (out + err) and "Traceback" not in err
