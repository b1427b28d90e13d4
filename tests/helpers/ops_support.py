"""Shared fixtures and helpers of the tests/test_ops_*.py modules (no tests here).

Workspaces are built once per session (per xdist worker) and copied for each test: a clean run of
the default SSOT, a run halted by the daily loss limit, a run ended by a failing strategy. Crafted
logs (adapter errors, recon records) are written with the real EventBus so their hash chain holds.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from treasure.cli.main import main
from treasure.contracts import Contracts
from treasure.events import EventBus, JsonlSink
from treasure.workspace import Workspace, init_workspace

FAILING_STRATEGY = '''
from treasure import Intent, Strategy

class Boom(Strategy):
    name = "boom"

    def on_bar(self, ctx, bar):
        if bar.idx == 300:
            raise RuntimeError("boom at bar 300")
        return [Intent("buy", 1.0, "test")] if bar.idx == 10 else None
'''


def approve(ws: Workspace) -> None:
    """Approve the workspace's SSOT, contracts and dataset (spec/ssot.lock), as a fresh clone whose
    lock is current would be; a no-op where the approval lock is not installed."""
    try:
        from treasure.approval import approve as approve_lock
    except ImportError:  # pragma: no cover - an installation without the lock
        (ws.spec_dir / "ssot.lock").unlink(missing_ok=True)
        return
    approve_lock(ws)


def run_cli(ws: Workspace | Path | None, *args: str) -> int:
    """``treasure ARGS --workspace WS`` in-process; returns the exit code."""
    argv = list(args)
    if ws is not None:
        argv += ["--workspace", str(ws.root if isinstance(ws, Workspace) else ws)]
    return main(argv)


def set_ssot(ws: Workspace, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(ws.ssot_path.read_text())
    change(doc)
    ws.ssot_path.write_text(json.dumps(doc, indent=2))


def write_log(ws: Workspace, run_id: str, events: list[tuple[str, str, str, dict[str, Any]]],
              *, ts0: int = 1_767_225_600_000, step: int = 300_000) -> Path:
    """A hash-chained log of ``(category, event_type, level, payload)`` events (payloads unchecked)."""
    path = ws.event_log(run_id)
    bus = EventBus(run_id, [JsonlSink(path)])
    for i, (category, kind, level, payload) in enumerate(events):
        bus.emit(ts0 + i * step, category, kind, level, payload)
    bus.flush(durable=False)
    bus.close()
    return path


def start_payload(ws: Workspace) -> dict[str, Any]:
    ssot = json.loads(ws.ssot_path.read_text())
    return {"seed": 1, "ssot_sha256": "0" * 64, "ssot": ssot, "package_version": "0.1.0",
            "strategy": {"name": "x", "ref": "x", "params": {}, "source_sha256": "0" * 64},
            "dataset": {"path": "d.csv", "sha256": "0" * 64, "pinned_sha256": "0" * 64, "override": False},
            "adapter": "sim", "symbol": "SYNTH-USD", "starting_cash_usd": 100000}


def end_payload(status: str = "complete", reason: str | None = None) -> dict[str, Any]:
    return {"status": status, "reason": reason, "bars_processed": 10, "bars_total": 10, "orders": 0, "fills": 0,
            "trades": 0, "final_equity": 100000.0, "total_return": 0.0}


def validate(ws: Workspace, schema: str, doc: Any) -> None:
    errors = Contracts(ws.truth_dir).errors(schema, doc)
    assert not errors, errors


class Templates:
    """Workspaces built once per session, copied per test."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.built: dict[str, Path] = {}

    def get(self, name: str) -> Path:
        if name not in self.built:
            root = self.base / name
            ws = init_workspace(root)
            approve(ws)
            getattr(self, f"_build_{name}")(ws)
            self.built[name] = root
        return self.built[name]

    @staticmethod
    def _build_empty(ws: Workspace) -> None:
        pass

    @staticmethod
    def _build_clean(ws: Workspace) -> None:
        assert run_cli(ws, "run", "--run-id", "clean", "-q") == 0

    @staticmethod
    def _build_halted(ws: Workspace) -> None:
        set_ssot(ws, lambda d: d["risk"].__setitem__("daily_loss_limit_usd", 40))
        assert run_cli(ws, "run", "--run-id", "halted", "-q") == 3

    @staticmethod
    def _build_failed(ws: Workspace) -> None:
        (ws.root / "boom.py").write_text(FAILING_STRATEGY)
        strategy = f"{ws.root / 'boom.py'}:Boom"  # CLI paths are relative to the current directory
        assert run_cli(ws, "run", "--run-id", "failed", "--strategy", strategy, "-q") != 0


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("ops-templates"))


@pytest.fixture
def make_ws(templates: Templates, tmp_path: Path) -> Callable[[str], Workspace]:
    """``make_ws("clean")``: a private copy of a template workspace."""
    made: list[str] = []

    def make(name: str = "clean") -> Workspace:
        made.append(name)
        dest = tmp_path / f"ws-{name}-{len(made)}"
        shutil.copytree(templates.get(name), dest, symlinks=True)
        return Workspace.at(dest)
    return make


@pytest.fixture
def clean_ws(make_ws: Callable[[str], Workspace]) -> Workspace:
    """A workspace after one complete run with id ``clean``."""
    return make_ws("clean")


def json_out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


PYTHON = sys.executable
